"""parse_fault against every error body QBO sends: the sandbox's exact bytes and samples from Intuit's
error pages (https://developer.intuit.com/app/developer/qbo/docs/develop/troubleshooting/error-codes)
and from SDK issues that recorded QBO's answers (e.g. https://github.com/routablehq/python-quickbooks/issues/43)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from qbo_sandbox import faults
from qbo_sandbox.wire import dumps
from shared.qbo.errors import (
    AuthenticationError,
    AuthorizationError,
    DuplicateDocumentNumberError,
    DuplicateNameError,
    FaultDetail,
    NotFoundError,
    QboError,
    QboTransportError,
    ServerError,
    StaleObjectError,
    ThrottledError,
    ValidationError,
    classify,
    error_from_fault,
    parse_fault,
    retry_after_seconds,
)

NOW = datetime(2026, 5, 5, 9, 5, 12, 193000, tzinfo=UTC)
TID = {"intuit_tid": "1-6630c1f8-5a4c2d7e3b1f"}


def sandbox_body(fault: faults.QboFault) -> bytes:
    """What the sandbox puts on the wire for ``fault`` (api._fault_response)."""
    return dumps(fault.body(NOW))


# --- the sandbox's bodies, byte for byte ---------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "expected", "code", "fault_type"),
    [
        (faults.stale_object("5"), StaleObjectError, "5010", "ValidationFault"),
        (faults.duplicate_name(), DuplicateNameError, "6240", "ValidationFault"),
        (faults.object_not_found("Customer", "999"), NotFoundError, "610", "ValidationFault"),
        (
            faults.business_rule("Make sure all your transactions have a VAT rate"),
            ValidationError,
            "6000",
            "",
        ),
        (faults.required_param("DisplayName"), ValidationError, "2020", "ValidationFault"),
        (
            faults.query_validation("value 1500 is too large. Max allowed value is 1000"),
            ValidationError,
            "4001",
            "",
        ),
        (faults.unsupported_operation("Unsupported path"), ValidationError, "500", "ValidationFault"),
        (faults.authentication_failed("Token expired"), AuthenticationError, "3200", "AUTHENTICATION"),
        (faults.authorization_failed(), AuthorizationError, "3100", "SERVICE"),
        (faults.throttled(), ThrottledError, "3001", "SERVICE"),
        (faults.system_fault(500), ServerError, "10000", "SystemFault"),
        (faults.system_fault(503), ServerError, "10000", "SystemFault"),
    ],
)
def test_sandbox_fault_bodies_map_to_their_types(
    fault: faults.QboFault, expected: type[QboError], code: str, fault_type: str
) -> None:
    error = parse_fault(fault.status, TID, sandbox_body(fault))
    assert type(error) is expected
    assert error.status == fault.status
    assert error.code == code
    assert error.message == fault.errors[0].message
    assert error.detail == fault.errors[0].detail
    assert error.intuit_tid == TID["intuit_tid"]
    if fault_type:
        assert error.fault_type == fault_type


def test_sandbox_duplicate_document_number_codes() -> None:
    for code in ("6210", "6140"):
        fault = faults.validation(
            code, "Duplicate Document Number Error", "Duplicate Document Number Error : 1038"
        )
        error = parse_fault(400, TID, sandbox_body(fault))
        assert type(error) is DuplicateDocumentNumberError
        assert error.code == code


def test_sandbox_gateway_body_is_lowercase_with_epoch_time() -> None:
    body = sandbox_body(faults.authentication_failed("Token revoked"))
    assert body.startswith(
        b'{"warnings":null,"intuitObject":null,"fault":{"error":[{"message":"message=AuthenticationFailed;'
    )
    error = parse_fault(401, TID, body)
    assert isinstance(error, AuthenticationError)
    assert error.detail == "Token revoked"
    assert error.errors == (
        FaultDetail(
            "3200", "message=AuthenticationFailed; errorCode=003200; statusCode=401", "Token revoked"
        ),
    )


def test_sandbox_xml_throttle_body() -> None:
    body = faults.THROTTLE_XML.format(time="2026-05-05T02:05:12.193-07:00").encode()
    error = parse_fault(429, {"Content-Type": "application/xml", **TID}, body)
    assert isinstance(error, ThrottledError)
    assert error.code == "3001"
    assert error.fault_type == "SERVICE"
    assert error.message == "message=ThrottleExceeded; errorCode=003001; statusCode=429"
    assert error.detail == "The request limit was reached.  Try again later"
    assert error.retry_after is None
    assert error.retryable
    assert not error.outcome_uncertain


def test_sandbox_element_is_kept() -> None:
    error = parse_fault(
        400, TID, sandbox_body(faults.invalid_field("requestid", "requestid must be 1 to 50"))
    )
    assert isinstance(error, ValidationError)
    assert error.element == "requestid"


# --- samples: Intuit's error pages and recorded SDK issues -------------------------------------

DOC_SAMPLE = (
    b'{"Fault":{"Error":[{"Message":"A business validation error has occurred while processing your '
    b'request","Detail":"Business Validation Error: You must select a product/service or an account for '
    b'each split line with either a quantity or an amount.","code":"6000","element":""}],'
    b'"type":"ValidationFault"},"time":"2017-09-29T09:17:31.892-07:00"}'
)
STALE_SAMPLE = (
    b'{"Fault":{"Error":[{"Message":"Stale Object Error","Detail":"Stale Object Error : You and Jane Doe '
    b'were working on this at the same time. Jane Doe finished before you did, so your work was not saved.",'
    b'"code":"5010","element":""}],"type":"ValidationFault"},"time":"2019-01-24T12:23:24.393-08:00"}'
)
AUTH_3200_SAMPLE = (
    b'{"warnings":null,"intuitObject":null,"fault":{"error":[{"message":"message=AuthenticationFailed; '
    b'errorCode=003200; statusCode=401","detail":"Token expired: AB11570127472roDjzPmIVt1ojUmDxNt",'
    b'"code":"3200","element":null}],"type":"AUTHENTICATION"},"report":null,"queryResponse":null,"batchItemResponse":[],'
    b'"attachableResponse":[],"syncErrorResponse":null,"requestId":null,"time":1570128099123,"status":null,'
    b'"cdcresponse":[]}'
)
AUTHZ_3100_SAMPLE = (
    b'{"fault":{"error":[{"message":"message=ApplicationAuthorizationFailed; errorCode=003100; '
    b'statusCode=403","detail":null,"code":"3100","element":null}],"type":"SERVICE"},"requestId":null,"time":1642513123000}'
)
THROTTLE_XML_SAMPLE = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="2016-08-31T07:53:38.583-07:00">\n'
    b'  <Fault type="SERVICE">\n    <Error code="3001">\n'
    b"      <Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>\n"
    b"      <Detail>The request limit was reached.  Try again later</Detail>\n"
    b"    </Error>\n  </Fault>\n</IntuitResponse>"
)
DUPLICATE_NAME_XML_SAMPLE = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><IntuitResponse '
    b'xmlns="http://schema.intuit.com/finance/v3" time="2018-06-13T08:42:33.553-07:00">'
    b'<Fault type="ValidationFault"><Error code="6240" element=""><Message>Duplicate Name Exists Error'
    b"</Message><Detail>The name supplied already exists. : Another customer, vendor or employee is "
    b"already using this name. Please use a different name.</Detail></Error></Fault></IntuitResponse>"
)
GENERAL_AUTH_XML_SAMPLE = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><IntuitResponse '
    b'xmlns="http://schema.intuit.com/finance/v3" time="2015-11-03T12:01:10.000-08:00">'
    b'<Fault type="AUTHENTICATION"><Error code="100"><Message>General Authentication Error</Message>'
    b"<Detail>AuthenticationErrorGeneral: SRV-110-Authentication Failure , statusCode: 401</Detail></Error>"
    b"</Fault></IntuitResponse>"
)


@pytest.mark.parametrize(
    ("status", "body", "expected", "code"),
    [
        (400, DOC_SAMPLE, ValidationError, "6000"),
        (400, STALE_SAMPLE, StaleObjectError, "5010"),
        (401, AUTH_3200_SAMPLE, AuthenticationError, "3200"),
        (403, AUTHZ_3100_SAMPLE, AuthorizationError, "3100"),
        (429, THROTTLE_XML_SAMPLE, ThrottledError, "3001"),
        (400, DUPLICATE_NAME_XML_SAMPLE, DuplicateNameError, "6240"),
        (401, GENERAL_AUTH_XML_SAMPLE, AuthenticationError, "100"),
    ],
)
def test_documented_samples(status: int, body: bytes, expected: type[QboError], code: str) -> None:
    error = parse_fault(status, TID, body)
    assert type(error) is expected
    assert error.code == code
    assert error.message
    assert error.intuit_tid == TID["intuit_tid"]


def test_null_detail_and_element_become_empty_strings() -> None:
    error = parse_fault(403, {}, AUTHZ_3100_SAMPLE)
    assert isinstance(error, AuthorizationError)
    assert error.detail == ""
    assert error.element == ""
    assert error.intuit_tid is None


def test_pre_2016_throttle_as_403_with_3001_is_throttling() -> None:
    body = sandbox_body(faults.throttled())
    assert type(parse_fault(403, TID, body)) is ThrottledError


# --- classification rules ----------------------------------------------------------------------


def test_status_decides_before_code() -> None:
    # A 401 whose body claims a stale object is still an authentication failure.
    assert type(parse_fault(401, {}, STALE_SAMPLE)) is AuthenticationError
    assert type(parse_fault(503, {}, STALE_SAMPLE)) is ServerError
    assert type(parse_fault(404, {}, DOC_SAMPLE)) is NotFoundError


def test_gateway_codes_are_not_validation_by_numeric_range() -> None:
    assert classify(400, "3200", "") is AuthenticationError
    assert classify(400, "3100", "") is AuthorizationError
    assert classify(400, "3001", "") is ThrottledError
    assert classify(400, "3002", "") is ValidationError


def test_message_text_never_classifies() -> None:
    body = (
        b'{"Fault":{"Error":[{"Message":"Stale Object Error","Detail":"Duplicate Name Exists Error",'
        b'"code":"6000","element":""}],"type":"ValidationFault"}}'
    )
    assert type(parse_fault(400, {}, body)) is ValidationError


def test_several_errors_classify_by_the_first_with_a_code_and_keep_all() -> None:
    body = (
        b'{"Fault":{"Error":[{},{"Message":"Duplicate Name Exists Error","Detail":"taken","code":"6240",'
        b'"element":"DisplayName"},{"Message":"Required param missing","Detail":"x","code":"2020",'
        b'"element":"Line"}],'
        b'"type":"ValidationFault"},"time":"2026-05-05T02:05:12.193-07:00"}'
    )
    error = parse_fault(400, TID, body)
    assert isinstance(error, DuplicateNameError)
    assert error.element == "DisplayName"
    assert [e.code for e in error.errors] == ["", "6240", "2020"]


def test_fault_type_decides_when_the_code_is_unknown() -> None:
    assert classify(200, "", "SystemFault") is ServerError
    assert classify(400, "", "AuthenticationFault") is AuthenticationError
    assert classify(400, "", "AuthorizatonFault") is AuthorizationError  # Intuit's XSD spelling
    assert classify(409, "", "") is QboError


# --- HTTP 200 with a Fault, batch items --------------------------------------------------------


def test_http_200_carrying_a_fault_is_an_error() -> None:
    error = parse_fault(200, TID, STALE_SAMPLE)
    assert isinstance(error, StaleObjectError)
    assert error.status == 200


def test_http_200_carrying_an_xml_fault_is_an_error() -> None:
    assert isinstance(parse_fault(200, TID, DUPLICATE_NAME_XML_SAMPLE), DuplicateNameError)


def test_http_200_success_bodies_are_not_errors() -> None:
    assert parse_fault(200, TID, b'{"Customer":{"Id":"1"},"time":"2026-05-05T02:05:12.193-07:00"}') is None
    assert parse_fault(200, TID, b"%PDF-1.4 ...") is None
    assert parse_fault(200, TID, b'<IntuitResponse time="x"><Customer/></IntuitResponse>') is None
    assert parse_fault(200, TID, b"") is None


def test_batch_item_fault_from_the_sandbox() -> None:
    item = {"bId": "2", "Fault": faults.duplicate_name().fault_json()}
    fault = item["Fault"]
    assert isinstance(fault, dict)
    error = error_from_fault(fault, status=200, intuit_tid="tid-1")
    assert isinstance(error, DuplicateNameError)
    assert error.intuit_tid == "tid-1"
    assert error.element == "DisplayName"


# --- bodies that are not QBO's --------------------------------------------------------------------


def test_non_json_error_body_is_classified_by_status() -> None:
    html = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
    error = parse_fault(502, TID, html)
    assert isinstance(error, ServerError)
    assert error.code == ""
    assert "502 Bad Gateway" in error.detail
    assert len(parse_fault(400, {}, b"x" * 5000).detail) == 200  # type: ignore[union-attr]


def test_xml_with_a_dtd_is_not_parsed() -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
        b'<Fault type="SERVICE"><Error code="3001"/></Fault>'
    )
    error = parse_fault(400, {}, body)
    assert type(error) is ValidationError
    assert error.code == ""


def test_json_array_or_garbage_is_not_a_fault() -> None:
    assert type(parse_fault(500, {}, b"[1,2]")) is ServerError
    assert type(parse_fault(400, {}, b"{not json")) is ValidationError


# --- Retry-After and the error properties ------------------------------------------------------


def test_retry_after_seconds_and_http_date() -> None:
    assert retry_after_seconds({"Retry-After": "7"}) == 7.0
    assert retry_after_seconds({"retry-after": " 2.5 "}) == 2.5
    later = format_datetime(NOW + timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds({"Retry-After": later}, now=NOW.replace(microsecond=0)) == 30.0
    assert retry_after_seconds({"Retry-After": later}, now=NOW + timedelta(minutes=5)) == 0.0
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_throttle_carries_retry_after_from_headers() -> None:
    error = parse_fault(429, {"Retry-After": "12", **TID}, sandbox_body(faults.throttled()))
    assert isinstance(error, ThrottledError)
    assert error.retry_after == 12.0


def written(error: QboError) -> QboError:
    error.write = True
    return error


def test_retryable_and_outcome_uncertain() -> None:
    assert ServerError("boom", status=500).retryable
    assert not ServerError("boom", status=500).outcome_uncertain  # a read: nothing to be unsure of
    assert written(ServerError("boom", status=500)).outcome_uncertain
    lost = written(QboTransportError("timeout", sent=True))
    assert lost.retryable
    assert lost.outcome_uncertain
    assert not written(QboTransportError("connect", sent=False)).outcome_uncertain
    stale = written(StaleObjectError("stale", status=400, code="5010"))
    assert not stale.retryable
    assert not stale.outcome_uncertain
    assert not written(ThrottledError("slow down", status=429)).outcome_uncertain
    assert str(stale) == "400 5010: stale"
