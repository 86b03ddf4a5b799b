"""The pure parts of the connection flows: OAuth state signing, the return-URL allow-list (no open
redirect), the callback's redirect parameters and the company facts read at connect time."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.connections.callback import CallbackParams, Page
from shared.connections.company import company_record
from shared.connections.errors import InvalidStateError, InvalidTenantIdError, ReturnUrlError
from shared.connections.flows import check_tenant_id
from shared.connections.oauth_state import StateCodec, check_return_url, with_params

KEY = "unit-test-state-signing-key-0123456789"
ALLOW = ("https://app.example.com/qbo", "https://admin.example.com/", "http://127.0.0.1:3000/cb")


# --- state ----------------------------------------------------------------------------------------


def test_a_new_state_verifies_to_its_id() -> None:
    codec = StateCodec(KEY)
    state_id, state = codec.new()
    assert codec.verify(state) == state_id
    assert state.startswith(state_id + ".")


def test_states_are_unguessable() -> None:
    codec = StateCodec(KEY)
    ids = {codec.new()[0] for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 32 for i in ids)  # 24 random bytes, url-safe base64


def test_a_state_signed_with_another_key_is_refused() -> None:
    _, forged = StateCodec("an-attackers-own-signing-key-xyz").new()
    with pytest.raises(InvalidStateError) as refused:
        StateCodec(KEY).verify(forged)
    assert refused.value.reason == "state_invalid"


def test_a_state_with_a_changed_id_is_refused() -> None:
    codec = StateCodec(KEY)
    state_id, state = codec.new()
    flipped = ("A" if state_id[0] != "A" else "B") + state[1:]
    with pytest.raises(InvalidStateError, match="not valid"):
        codec.verify(flipped)


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (None, "state_missing"),
        ("", "state_missing"),
        ("state-123", "state_invalid"),
        ("a" * 32 + "." + "b" * 42, "state_invalid"),
        ("a" * 32 + ".." + "b" * 42, "state_invalid"),
        ("a" * 32 + "." + "b" * 43 + "\n", "state_invalid"),
        ("a" * 500, "state_invalid"),
    ],
)
def test_malformed_states_are_refused(state: str | None, reason: str) -> None:
    with pytest.raises(InvalidStateError) as refused:
        StateCodec(KEY).verify(state)
    assert refused.value.reason == reason


# --- reconnect states, PKCE verifiers, code digests -------------------------------------------------


def test_a_reconnect_state_carries_its_realm_and_expiry() -> None:
    codec = StateCodec(KEY)
    state = codec.new_reconnect("9341452712436172", 1_800_000_600)

    claim = codec.reconnect_claim(state)

    assert claim is not None
    assert (claim.realm_id, claim.expires_at) == ("9341452712436172", 1_800_000_600)
    assert state.startswith(claim.state_id + ".")
    assert codec.new_reconnect("9341452712436172", 1_800_000_600) != state  # a fresh nonce each time


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s.replace("R9341452712436172_", "R9341452712436173_"),  # another realm
        lambda s: s.replace("_1800000600_", "_1900000600_"),  # a later expiry
        lambda s: s[:-1] + ("A" if s[-1] != "A" else "B"),  # the MAC
    ],
)
def test_a_changed_reconnect_state_is_refused(change: Any) -> None:
    state = StateCodec(KEY).new_reconnect("9341452712436172", 1_800_000_600)
    with pytest.raises(InvalidStateError, match="not valid"):
        StateCodec(KEY).reconnect_claim(change(state))


def test_a_reconnect_state_signed_with_another_key_is_refused() -> None:
    forged = StateCodec("an-attackers-own-signing-key-xyz").new_reconnect("1", 1_800_000_600)
    with pytest.raises(InvalidStateError):
        StateCodec(KEY).reconnect_claim(forged)


def test_the_two_state_shapes_are_told_apart() -> None:
    codec = StateCodec(KEY)
    _, stored = codec.new()
    reconnect = codec.new_reconnect("1", 1_800_000_600)
    assert codec.reconnect_claim(stored) is None
    assert codec.reconnect_claim(None) is None
    with pytest.raises(InvalidStateError):
        codec.verify(reconnect)


def test_a_pkce_pair_follows_rfc_7636_s256() -> None:
    codec = StateCodec(KEY)
    _, state = codec.new()

    verifier = codec.code_verifier(state)

    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", verifier)  # RFC 7636 §4.1: 43 to 128 unreserved
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    assert codec.code_challenge(state) == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert codec.code_verifier(codec.new()[1]) != verifier
    assert StateCodec("another-signing-key-0123456789").code_verifier(state) != verifier


def test_a_code_digest_is_keyed_and_reveals_nothing_of_the_code() -> None:
    code = "AB11796652627V4rhSVhiRn27MtGI5k5hUkFAnsZoLnZ46D5r"
    digest = StateCodec(KEY).code_digest(code)
    assert digest == StateCodec(KEY).code_digest(code)
    assert digest != StateCodec("another-signing-key-0123456789").code_digest(code)
    assert digest != hashlib.sha256(code.encode()).hexdigest()
    assert code[:16] not in digest


def test_a_short_signing_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        StateCodec("short")


# --- tenant ids -----------------------------------------------------------------------------------


@pytest.mark.parametrize("tenant_id", ["t1", "acme-law_firm.01", "A" * 64])
def test_valid_tenant_ids(tenant_id: str) -> None:
    assert check_tenant_id(tenant_id) == tenant_id


@pytest.mark.parametrize("tenant_id", ["", "-t", "t#1", "TENANT#x", "t/1", "t 1", "A" * 65, "é"])
def test_invalid_tenant_ids(tenant_id: str) -> None:
    with pytest.raises(InvalidTenantIdError):
        check_tenant_id(tenant_id)


# --- return URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://app.example.com/qbo",
        "https://app.example.com/qbo/",
        "https://app.example.com/qbo/settings?tab=accounting",
        "https://app.example.com/qbo#/connected",
        "https://APP.Example.com/qbo/x",
        "https://app.example.com:443/qbo",
        "https://admin.example.com/",
        "https://admin.example.com/anything/below",
        "http://127.0.0.1:3000/cb?x=1",
    ],
)
def test_return_urls_under_an_allowed_prefix_pass(url: str) -> None:
    assert check_return_url(url, ALLOW) == url


@pytest.mark.parametrize(
    "url",
    [
        "https://app.example.com.evil.com/qbo",
        "https://app.example.com@evil.com/qbo",
        "https://app.example.com:pass@evil.com/qbo",
        "https://user@app.example.com/qbo",
        "//evil.com/qbo",
        "//app.example.com/qbo",
        "javascript:alert(document.cookie)",
        "JavaScript://app.example.com/qbo%0aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "https:/\\evil.com",
        "https://app.example.com\\@evil.com/qbo",
        "https://app.example.com/qbo\\..\\..\\evil",
        "https://app.example.com/qbox",
        "https://app.example.com/qbo-evil",
        "https://app.example.com/",
        "https://app.example.com/other",
        "https://app.example.com/qbo/../admin",
        "https://app.example.com/qbo/%2e%2e/admin",
        "https://app.example.com/qbo/./x",
        "http://app.example.com/qbo",
        "https://app.example.com:8443/qbo",
        "https://app.example.com:99999/qbo",
        "https://app.example.com/qbo\t",
        "https://app.example.com/qbo\r\nLocation: https://evil.com",
        " https://app.example.com/qbo",
        "https://app.example.com/qbo/\u00e9",
        "https://xn--pp-example.com/qbo",
        "https://evil.com/https://app.example.com/qbo",
        "https://evil.com/?next=https://app.example.com/qbo",
        "http://127.0.0.1:3001/cb",
        "http://localhost:3000/cb",
        "ftp://app.example.com/qbo",
        "/qbo",
        "qbo",
        "",
        "https://app.example.com/qbo/" + "x" * 2100,
    ],
)
def test_return_urls_that_could_redirect_elsewhere_are_refused(url: str) -> None:
    with pytest.raises(ReturnUrlError):
        check_return_url(url, ALLOW)


def test_an_empty_allow_list_allows_nothing() -> None:
    with pytest.raises(ReturnUrlError, match="not under any allowed"):
        check_return_url("https://app.example.com/qbo", ())


def test_with_params_replaces_our_parameters_and_keeps_the_rest() -> None:
    url = with_params(
        "https://app.example.com/qbo?tab=1&status=connected&realmId=666#frag",
        {"status": "denied", "reason": "access_denied"},
    )
    split = urlsplit(url)
    assert split.fragment == "frag"
    assert parse_qs(split.query) == {
        "tab": ["1"],
        "realmId": ["666"],
        "status": ["denied"],
        "reason": ["access_denied"],
    }


def test_callback_params_read_intuits_names() -> None:
    params = CallbackParams.from_query({"code": "c", "state": "s", "realmId": "123", "error": None})
    assert (params.code, params.state, params.realm_id, params.error) == ("c", "s", "123", None)


def test_pages_escape_their_text() -> None:
    html = Page(400, "<b>t</b>", "<script>alert(1)</script>").html()
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


# --- company facts --------------------------------------------------------------------------------


def _info(country: str, **extra: object) -> dict[str, object]:
    return {"CompanyName": "Acme", "LegalName": "Acme LLC", "Country": country, **extra}


def _prefs(*, partner_tax: bool | None = None, currency: str | None = "USD") -> dict[str, object]:
    prefs: dict[str, object] = {"AccountingInfoPrefs": {"FirstMonthOfFiscalYear": "April"}}
    if partner_tax is not None:
        prefs["TaxPrefs"] = {"UsingSalesTax": True, "PartnerTaxEnabled": partner_tax}
    if currency is not None:
        prefs["CurrencyPrefs"] = {"HomeCurrency": {"value": currency}}
    return prefs


def test_a_us_company_with_automated_sales_tax() -> None:
    facts = company_record(_info("US", FiscalYearStartMonth="January"), _prefs(partner_tax=True))
    assert facts.tax_model == "us_automated"
    assert (facts.name, facts.legal_name, facts.country, facts.currency) == ("Acme", "Acme LLC", "US", "USD")
    assert facts.fiscal_year_start_month == 1


@pytest.mark.parametrize("partner_tax", [False, None])
def test_a_us_company_without_automated_sales_tax_is_manual(partner_tax: bool | None) -> None:
    assert company_record(_info("US"), _prefs(partner_tax=partner_tax)).tax_model == "us_manual"


@pytest.mark.parametrize("country", ["CA", "GB", "AU"])
def test_non_us_companies_put_tax_on_every_line(country: str) -> None:
    facts = company_record(_info(country), _prefs(partner_tax=True, currency="CAD"))
    assert facts.tax_model == "per_line"
    assert facts.currency == "CAD"


def test_missing_facts_stay_unknown() -> None:
    facts = company_record({"CompanyName": "Bare"}, {})
    assert facts.legal_name == "Bare"  # falls back to the company name
    assert facts.country is None
    assert facts.currency is None
    assert facts.fiscal_year_start_month is None
    assert facts.tax_model == "per_line"


def test_the_fiscal_year_falls_back_to_the_preferences() -> None:
    assert company_record(_info("GB"), _prefs()).fiscal_year_start_month == 4
