"""The tenant API's body gate: what no parser behind it could read safely is refused, precisely."""

from __future__ import annotations

import base64
import json

import pytest

from functions.api.request_body import MAX_DEPTH, BodyRefusedError, nesting_depth, read_json_text


def refused(body: str | None, content_type: str | None = "application/json", **kw: bool) -> tuple[int, str]:
    with pytest.raises(BodyRefusedError) as caught:
        read_json_text(body, content_type, **kw)
    return caught.value.status, caught.value.kind


@pytest.mark.parametrize(
    "text",
    [
        "[" * 5000 + "]" * 5000,
        '{"a":' * 3000 + "1" + "}" * 3000,
        "[" * 5000,  # not even closed
        '"x"' + "[" * (MAX_DEPTH + 1),
    ],
)
def test_nesting_past_the_limit_is_refused_before_any_parse(text: str) -> None:
    assert refused(text) == (422, "json_invalid")


def test_nesting_at_the_limit_and_brackets_inside_strings_are_fine() -> None:
    at_limit = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert read_json_text(at_limit, "application/json") == at_limit
    in_strings = json.dumps({"a": "[[[[" * 100, "b": ['\\"{{{{' * 100]})
    assert nesting_depth(in_strings) == 2
    assert read_json_text(in_strings, "application/json") == in_strings


@pytest.mark.parametrize(
    "text",
    [
        '{"n": NaN}',
        '{"n": Infinity}',
        '{"n": -Infinity}',
        '{"n": ' + "9" * 5000 + "}",
        '{"n": 1e' + "9" * 200 + "}",
    ],
)
def test_numbers_json_does_not_have_or_no_field_can_hold_are_refused(text: str) -> None:
    assert refused(text) == (422, "json_invalid")


def test_big_but_ordinary_numbers_and_syntax_errors_pass_to_the_route() -> None:
    assert read_json_text('{"n": 1e400, "m": 123456789012345678901234567890}', None)
    assert read_json_text('{"n": ', "application/json") == '{"n": '  # the route names the position


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "multipart/form-data",
        "application/x-www-form-urlencoded",
        "application/merge-patch+json",
    ],
)
def test_a_body_that_is_not_json_is_415(content_type: str) -> None:
    assert refused('{"a": 1}', content_type) == (415, "unsupported_media_type")


def test_json_media_types_and_no_type_are_json() -> None:
    for content_type in (None, "", "application/json; charset=utf-8", "Application/JSON"):
        assert read_json_text("{}", content_type) == "{}"


def test_base64_bodies_are_decoded_and_must_be_utf8() -> None:
    encoded = base64.b64encode('{"name": "Café"}'.encode()).decode()
    assert read_json_text(encoded, "application/json", base64_encoded=True) == '{"name": "Café"}'
    bad = base64.b64encode(b'{"name": "\xff"}').decode()
    assert refused(bad, "application/json", base64_encoded=True) == (400, "body_not_utf8")
    assert refused("not base64!", "application/json", base64_encoded=True) == (400, "body_not_base64")


def test_no_body_is_no_refusal() -> None:
    assert read_json_text(None, "text/plain") == ""
    assert read_json_text("", None, base64_encoded=True) == ""
