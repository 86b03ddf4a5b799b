"""Console session tokens (shared.connections.console_session): minted for one tenant, refused when
expired, tampered with, signed under another key, or not a token at all."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from shared.connections.console_session import (
    MAX_TTL_SECONDS,
    ConsoleSessionCodec,
    ConsoleSessionError,
)
from shared.connections.oauth_state import StateCodec

KEY = "unit-test-state-signing-key-0123456789"
NOW = 1_800_000_000


def _refused(token: str, now: int = NOW, codec: ConsoleSessionCodec | None = None) -> str:
    with pytest.raises(ConsoleSessionError) as refused:
        (codec or ConsoleSessionCodec(KEY)).verify(token, now)
    return refused.value.kind


def test_a_minted_token_opens_its_tenants_session_until_it_expires() -> None:
    codec = ConsoleSessionCodec(KEY)
    token, session = codec.mint("firm-1", NOW, 3600)

    opened = codec.verify(token, NOW + 3599)

    assert opened == session
    assert (opened.tenant_id, opened.expires_at) == ("firm-1", NOW + 3600)
    assert len(token) < 120  # compact, and base64url: fits a URL fragment
    assert "firm-1" not in token
    assert _refused(token, NOW + 3600) == "expired"


def test_every_token_is_a_new_session() -> None:
    codec = ConsoleSessionCodec(KEY)
    sessions = {codec.mint("firm-1", NOW)[1].session_id for _ in range(100)}
    assert len(sessions) == 100


def test_a_token_of_another_key_is_refused() -> None:
    token, _ = ConsoleSessionCodec("an-attackers-own-signing-key-xyz").mint("firm-1", NOW)
    assert _refused(token) == "invalid"


def test_a_tampered_tenant_or_expiry_is_refused() -> None:
    codec = ConsoleSessionCodec(KEY)
    token, session = codec.mint("firm-1", NOW, 60)
    _, mac = token.split(".")
    for text in (
        f"1:firm-2:{session.expires_at}:{session.session_id}",
        f"1:firm-1:{NOW + 9999}:{session.session_id}",
    ):
        payload = base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()
        assert _refused(f"{payload}.{mac}") == "invalid"
    flipped = ("A" if token[0] != "A" else "B") + token[1:]
    assert _refused(flipped) == "invalid"


def test_the_key_is_derived_so_the_raw_state_key_signs_no_session() -> None:
    """Domain separation: an HMAC under the state key itself (what states and PKCE verifiers are made
    of) never passes for a session's."""
    token, _ = ConsoleSessionCodec(KEY).mint("firm-1", NOW)
    payload = token.split(".")[0]
    for context in (b"", b"qbo-link console session v1\x00", b"qbo-link oauth state v1\x00"):
        raw = hmac.new(KEY.encode(), context + payload.encode(), hashlib.sha256).digest()
        forged = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        assert _refused(f"{payload}.{forged}") == "invalid"
    _, state = StateCodec(KEY).new()
    assert _refused(state) == "invalid"


def test_a_session_longer_than_any_mint_is_refused_even_with_a_good_mac() -> None:
    codec = ConsoleSessionCodec(KEY)
    token, _ = codec.mint("firm-1", NOW, MAX_TTL_SECONDS)
    assert codec.verify(token, NOW).tenant_id == "firm-1"
    assert _refused(token, NOW - 10) == "invalid"  # a clock pretending the token lives longer


@pytest.mark.parametrize(
    "token",
    ["", "x", "a.b", "....", "a" * 5000, "YWJj.def", "%%%%%%%%%.x", "Zm9v." + "A" * 43, "Zm9vYmFy.Zm9v.YmFy"],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    assert _refused(token) == "invalid"


def test_a_well_signed_payload_that_is_not_a_session_is_refused() -> None:
    codec = ConsoleSessionCodec(KEY)
    for text in (
        "2:firm-1:1800003600:AAAAAAAAAAAAAAAA",
        "1:../x:1800003600:AAAAAAAAAAAAAAAA",
        "1:firm-1:soon:x",
    ):
        payload = base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()
        assert _refused(f"{payload}.{codec._mac(payload)}") == "invalid"


@pytest.mark.parametrize("ttl", [0, 59, MAX_TTL_SECONDS + 1])
def test_minting_outside_the_ttl_bounds_is_an_error(ttl: int) -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        ConsoleSessionCodec(KEY).mint("firm-1", NOW, ttl)


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="16 characters"):
        ConsoleSessionCodec("short")
