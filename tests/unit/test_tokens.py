"""Bearer tokens and request signatures: pure cryptography, no I/O."""

from __future__ import annotations

import base64
import json

import pytest

from lighthouse.auth.keys import agent_secret, derive, session_token_key, sign_session_request
from lighthouse.auth.tokens import TokenSigner
from lighthouse.errors import Unauthenticated

SECRET = "k" * 40
NOW = 1_800_000_000.0


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner(session_token_key(SECRET))


def test_issue_and_verify_round_trip(signer: TokenSigner) -> None:
    token, issued = signer.issue("alice", "agent", NOW, 3600)

    verified = signer.verify(token, NOW + 3599)

    assert verified == issued
    assert len(issued.token_id) == 32  # 128 bits, hex


def test_two_tokens_for_the_same_agent_and_second_differ(signer: TokenSigner) -> None:
    first, _ = signer.issue("alice", "agent", NOW, 3600)
    second, _ = signer.issue("alice", "agent", NOW, 3600)
    assert first != second


def test_expired_token_is_rejected(signer: TokenSigner) -> None:
    token, _ = signer.issue("alice", "agent", NOW, 60)
    with pytest.raises(Unauthenticated, match="expired"):
        signer.verify(token, NOW + 60)


def test_tampered_payload_is_rejected(signer: TokenSigner) -> None:
    token, _ = signer.issue("alice", "agent", NOW, 3600)
    prefix, payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=="))
    body["role"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()

    with pytest.raises(Unauthenticated, match="does not verify"):
        signer.verify(f"{prefix}.{forged}.{signature}", NOW)


def test_token_from_another_install_is_rejected(signer: TokenSigner) -> None:
    token, _ = TokenSigner(session_token_key("o" * 40)).issue("alice", "agent", NOW, 3600)
    with pytest.raises(Unauthenticated, match="does not verify"):
        signer.verify(token, NOW)


@pytest.mark.parametrize(
    "token", ["", "abc", "lh1.abc", "lh2.abc.def", "lh1..sig", "lh1.a.b.c", "x" * 3000, "lh1.!!!.sig"]
)
def test_malformed_tokens_are_rejected(signer: TokenSigner, token: str) -> None:
    with pytest.raises(Unauthenticated):
        signer.verify(token, NOW)


def test_signed_but_unreadable_payload_is_rejected(signer: TokenSigner) -> None:
    payload = base64.urlsafe_b64encode(b'{"sub": "alice"}').rstrip(b"=").decode()
    token = f"lh1.{payload}.{signer._sign(payload)}"
    with pytest.raises(Unauthenticated, match="unreadable"):
        signer.verify(token, NOW)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing"),
        ("", "missing"),
        ("Basic abc", "expected 'Bearer"),
        ("Bearer   ", "expected 'Bearer"),
    ],
)
def test_authorization_header_problems_say_what_is_wrong(signer: TokenSigner, header: str | None, message: str) -> None:
    with pytest.raises(Unauthenticated, match=message):
        signer.verify_header(header, NOW)


def test_bearer_scheme_is_case_insensitive(signer: TokenSigner) -> None:
    token, _ = signer.issue("alice", "agent", NOW, 3600)
    assert signer.verify_header(f"bearer {token}", NOW).agent_id == "alice"


def test_agent_secrets_depend_on_master_agent_and_salt() -> None:
    base = agent_secret(SECRET, "alice", "salt")
    assert base == agent_secret(SECRET, "alice", "salt")
    assert len({base, agent_secret(SECRET, "bob", "salt"), agent_secret(SECRET, "alice", "other"),
                agent_secret("m" * 40, "alice", "salt")}) == 4  # fmt: skip


def test_derived_keys_are_separated_by_purpose() -> None:
    assert derive(SECRET, "a") != derive(SECRET, "b")
    assert derive(SECRET, "a", "bc") != derive(SECRET, "ab", "c")


def test_session_request_signature_is_hmac_sha256_over_id_timestamp_nonce() -> None:
    import hashlib
    import hmac

    expected = hmac.new(b"s3cret", b"alice\n1700000000\nabcd", hashlib.sha256).hexdigest()
    assert sign_session_request("s3cret", "alice", 1_700_000_000, "abcd") == expected
