"""Reading an HTTP request's JSON body safely, before any parser recurses into it.

Python's ``json`` module recurses once per nesting level, so a body of a few thousand ``[`` raises
``RecursionError`` (not ``ValueError``) wherever it is parsed; an integer of more than 4,300 digits
raises a bare ``ValueError`` (CPython's integer string conversion limit); ``NaN`` and ``Infinity``
are accepted although JSON (RFC 8259, section 6) has no such numbers.  ``read_json_text`` refuses
all of these, and bodies that are not UTF-8 or not JSON at all, with a ``BodyRefusedError`` naming
the status and the reason, so that the parsers behind it only ever see text they can handle.

Plain syntax errors are left to the route's own parser (which names the position): this module
only guarantees that parsing cannot fail in any other way.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from decimal import Decimal
from typing import Any, Final

MAX_DEPTH: Final = 32  # no document of the API nests deeper than 5 levels
MAX_NUMBER_CHARS: Final = 100  # a JSON number literal longer than this is no amount, count or id
JSON_TYPES: Final = ("application/json",)
# A string (possessive: no backtracking on long strings) or one bracket: counting brackets outside
# strings gives the nesting depth without recursing.
_STRING_OR_BRACKET: Final = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[\]{}]', re.DOTALL)


class BodyRefusedError(ValueError):
    """A body no route should try to read: ``status`` (400, 415, 422) and ``kind`` say why."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


def is_json_type(content_type: str | None) -> bool:
    """No content type (read as JSON) or ``application/json``: what Powertools' validation reads
    as JSON (it refuses ``application/merge-patch+json`` and the like in a shape of its own)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return not media or media in JSON_TYPES


def decode_body(body: str | None, *, base64_encoded: bool) -> str:
    """The body as text: base64 undone when API Gateway applied it, then strict UTF-8."""
    if not body:
        return ""
    if not base64_encoded:
        return body
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise BodyRefusedError(400, "body_not_base64", "the body is marked base64 but is not") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BodyRefusedError(
            400, "body_not_utf8", f"the body is not UTF-8 (byte {error.start}): send UTF-8 JSON"
        ) from None


def nesting_depth(text: str, limit: int = MAX_DEPTH) -> int:
    """The deepest bracket nesting outside strings, counting stops once past ``limit``."""
    depth = deepest = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        lexeme = match.group()
        if lexeme in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif lexeme in "]}":
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise BodyRefusedError(422, "json_invalid", f"{name} is not a JSON number")


def _number(text: str) -> Decimal:
    if len(text) > MAX_NUMBER_CHARS:
        raise BodyRefusedError(
            422, "json_invalid", f"a number of {len(text)} characters (at most {MAX_NUMBER_CHARS})"
        )
    return Decimal(text)


def read_json_text(body: str | None, content_type: str | None, *, base64_encoded: bool = False) -> str:
    """The body's text, proved safe to parse as JSON by any parser of the API; "" for no body.

    Refuses (``BodyRefusedError``): a content type that is not JSON (415), bytes that are not UTF-8
    or bad base64 (400), nesting deeper than ``MAX_DEPTH``, ``NaN``/``Infinity`` and number literals
    longer than ``MAX_NUMBER_CHARS`` (422 ``json_invalid``).
    """
    text = decode_body(body, base64_encoded=base64_encoded)
    if not text:
        return ""
    if not is_json_type(content_type):
        media = (content_type or "").split(";", 1)[0].strip()[:100]
        raise BodyRefusedError(415, "unsupported_media_type", f"send application/json, not {media!r}")
    if nesting_depth(text) > MAX_DEPTH:
        raise BodyRefusedError(422, "json_invalid", f"the JSON nests deeper than {MAX_DEPTH} levels")
    try:
        json.loads(text, parse_float=_number, parse_int=_number, parse_constant=_no_constant)
    except BodyRefusedError:
        raise
    except RecursionError:  # cannot happen below MAX_DEPTH; kept so no parse escapes as a 5xx
        raise BodyRefusedError(422, "json_invalid", "the JSON nests too deeply") from None
    except ValueError:
        pass  # a syntax error: the route's parser refuses it and names the position
    return text
