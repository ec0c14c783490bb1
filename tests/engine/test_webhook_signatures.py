"""The pure parts of webhooks: HMAC-SHA256 signatures in GitHub's and the timestamped format, the
per-minute rate limiter, the event built from a request, the response built from a result, and what the
history keeps (redacted, capped)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress

import pytest

from engine.services.webhook_gateway import _allowed
from engine.services.webhook_http import (
    HISTORY_BODY_CAP,
    REDACTED,
    BadResult,
    IncomingRequest,
    build_event,
    capped,
    decode_body,
    redact_headers,
    redact_query,
    result_answer,
)
from engine.services.webhook_ratelimit import FixedWindowLimiter
from engine.services.webhook_schemas import normalize_networks
from engine.services.webhook_signatures import (
    SignatureError,
    sign_github,
    sign_timestamped,
    signature_headers,
    verify,
)

SECRET = "whsec_test"
BODY = b'{"zen":"Keep it logically awesome."}'
NOW = 1_800_000_000.0


def _reason(scheme: str, headers: dict[str, str], body: bytes = BODY, **kw: object) -> str:
    with pytest.raises(SignatureError) as caught:
        verify(scheme, [SECRET], headers, body, now=NOW, **kw)  # type: ignore[arg-type]
    return caught.value.reason


# --- GitHub's format ----------------------------------------------------------------------------------


def test_github_signature_is_the_hmac_sha256_of_the_raw_body() -> None:
    expected = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert sign_github(SECRET, BODY) == f"sha256={expected}"


def test_github_known_vector_from_its_documentation() -> None:
    # docs.github.com "Validating webhook deliveries": secret "It's a Secret to Everybody", body
    # "Hello, World!" gives this signature.
    signature = sign_github("It's a Secret to Everybody", b"Hello, World!")
    assert signature == "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_a_correct_github_signature_verifies_and_any_change_is_refused() -> None:
    good = {"x-hub-signature-256": sign_github(SECRET, BODY)}
    assert verify("github", [SECRET], good, BODY, now=NOW).scheme == "github"
    assert _reason("github", good, BODY + b" ") == "signature_invalid"
    assert _reason("github", {"x-hub-signature-256": sign_github("other", BODY)}) == "signature_invalid"
    assert _reason("github", {}) == "signature_missing"
    assert _reason("github", {"x-hub-signature-256": "sha1=abc"}) == "signature_malformed"
    assert _reason("github", {"x-hub-signature-256": "sha256="}) == "signature_malformed"


def test_an_uppercase_hex_digest_is_accepted() -> None:
    value = sign_github(SECRET, BODY).upper().replace("SHA256=", "sha256=")
    verify("github", [SECRET], {"x-hub-signature-256": value}, BODY, now=NOW)


def test_any_of_several_secrets_may_have_signed() -> None:
    headers = {"x-hub-signature-256": sign_github("previous", BODY)}
    verify("github", [SECRET, "previous"], headers, BODY, now=NOW)


def test_a_scheme_that_needs_a_secret_refuses_everything_without_one() -> None:
    with pytest.raises(SignatureError):
        verify("github", [], {"x-hub-signature-256": sign_github("", BODY)}, BODY, now=NOW)


# --- the timestamped format ---------------------------------------------------------------------------


def test_timestamped_signature_covers_the_timestamp_and_the_body() -> None:
    t = int(NOW)
    expected = hmac.new(SECRET.encode(), f"{t}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign_timestamped(SECRET, BODY, t) == f"t={t},v1={expected}"


def test_a_fresh_timestamped_signature_verifies() -> None:
    headers = {"x-nimbus-signature": sign_timestamped(SECRET, BODY, int(NOW) - 30)}
    assert verify("timestamp", [SECRET], headers, BODY, now=NOW).timestamp == int(NOW) - 30


def test_a_stale_or_future_timestamp_is_refused_as_stale() -> None:
    old = {"x-nimbus-signature": sign_timestamped(SECRET, BODY, int(NOW) - 301)}
    assert _reason("timestamp", old) == "timestamp_stale"
    future = {"x-nimbus-signature": sign_timestamped(SECRET, BODY, int(NOW) + 301)}
    assert _reason("timestamp", future) == "timestamp_stale"
    within = {"x-nimbus-signature": sign_timestamped(SECRET, BODY, int(NOW) - 301)}
    verify("timestamp", [SECRET], within, BODY, now=NOW, tolerance_sec=600)


def test_moving_the_timestamp_breaks_the_signature() -> None:
    """A replay cannot be freshened: the timestamp is signed."""
    value = sign_timestamped(SECRET, BODY, int(NOW) - 1000)
    moved = value.replace(f"t={int(NOW) - 1000}", f"t={int(NOW)}")
    assert _reason("timestamp", {"x-nimbus-signature": moved}) == "signature_invalid"


def test_a_forged_stale_request_is_invalid_not_stale() -> None:
    forged = {"x-nimbus-signature": f"t={int(NOW) - 1000},v1={'ab' * 32}"}
    assert _reason("timestamp", forged) == "signature_invalid"


def test_timestamped_header_parsing() -> None:
    assert _reason("timestamp", {}) == "signature_missing"
    assert _reason("timestamp", {"x-nimbus-signature": "v1=abc"}) == "signature_malformed"
    assert _reason("timestamp", {"x-nimbus-signature": "t=soon,v1=abc"}) == "signature_malformed"
    assert _reason("timestamp", {"x-nimbus-signature": f"t={int(NOW)}"}) == "signature_malformed"
    assert _reason("timestamp", {"x-nimbus-signature": "t=1," + "v1=a," * 2000}) == "signature_malformed"
    two = (
        sign_timestamped("old", BODY, int(NOW))
        + ",v1="
        + sign_timestamped(SECRET, BODY, int(NOW)).split("v1=")[1]
    )
    verify("timestamp", [SECRET], {"x-nimbus-signature": two}, BODY, now=NOW)


def test_signature_headers_for_senders() -> None:
    assert signature_headers("none", SECRET, BODY, NOW) == {}
    github = signature_headers("github", SECRET, BODY, NOW)
    verify("github", [SECRET], {k.lower(): v for k, v in github.items()}, BODY, now=NOW)
    stamped = signature_headers("timestamp", SECRET, BODY, NOW)
    verify("timestamp", [SECRET], {k.lower(): v for k, v in stamped.items()}, BODY, now=NOW)


# --- the rate limiter -------------------------------------------------------------------------------


def test_exactly_the_limit_passes_per_window_and_the_next_window_starts_fresh() -> None:
    limiter = FixedWindowLimiter()
    start = 1_800_000_000.0  # a multiple of 60: a window starts here
    decisions = [limiter.hit("w", 5, start + i * 0.01) for i in range(12)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 7
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    assert decisions[-1].retry_after(start + 0.12) == 60
    assert decisions[-1].headers(start + 30.5)["Retry-After"] == "30"
    assert limiter.hit("w", 5, start + 59.99).allowed is False
    assert limiter.hit("w", 5, start + 60).allowed is True  # a new minute
    assert limiter.count("w", start + 60) == 1
    assert limiter.hit("other", 5, start).allowed is True  # per key


def test_refused_requests_do_not_count_and_retry_after_is_at_least_one() -> None:
    limiter = FixedWindowLimiter()
    start = 1_800_000_000.0
    limiter.hit("w", 1, start)
    for _ in range(100):
        limiter.hit("w", 1, start + 1)
    assert limiter.count("w", start + 1) == 1
    assert limiter.hit("w", 1, start + 59.9).retry_after(start + 59.9) == 1
    limiter.forget("w")
    assert limiter.hit("w", 1, start + 59.9).allowed is True


# --- allowlists -------------------------------------------------------------------------------------


def test_allowlists_take_ipv4_and_ipv6_cidrs_and_single_addresses() -> None:
    values = normalize_networks(["10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "::1", "10.0.0.0/8", " "])
    assert values == ["10.0.0.0/8", "192.168.1.7/32", "2001:db8::/32", "::1/128"]
    networks = tuple(ipaddress.ip_network(v) for v in values)
    assert _allowed("10.200.3.4", networks) and _allowed("192.168.1.7", networks)
    assert not _allowed("192.168.1.8", networks) and not _allowed("11.0.0.1", networks)
    assert _allowed("2001:db8:ffff::1", networks) and _allowed("::1", networks)
    assert not _allowed("2001:db9::1", networks)
    assert _allowed("::ffff:10.1.1.1", networks)  # an IPv4 client on a dual-stack socket
    assert not _allowed("", networks) and not _allowed("not-an-ip", networks)
    with pytest.raises(ValueError):
        normalize_networks(["10.0.0.0/33"])
    with pytest.raises(ValueError):
        normalize_networks(["10.0.0.1"] * 101)


# --- the event and the response ---------------------------------------------------------------------


def test_bodies_become_json_text_or_base64() -> None:
    assert decode_body(b'{"a":1}', "application/json") == ({"a": 1}, '{"a":1}', False)
    assert decode_body(b"[1,2]", "") == ([1, 2], "[1,2]", False)
    assert decode_body(b"a=1&b=2", "application/x-www-form-urlencoded") == ("a=1&b=2", "a=1&b=2", False)
    assert decode_body(b"{broken", "application/json") == ("{broken", "{broken", False)
    assert decode_body(b"<xml/>", "application/xml") == ("<xml/>", "<xml/>", False)
    blob = b"\xff\xfe\x00binary"
    encoded = base64.b64encode(blob).decode()
    assert decode_body(blob, "application/json") == (encoded, encoded, True)
    assert decode_body(b"", "application/json") == (None, "", False)


def test_the_event_has_the_original_fields_and_the_first_value_of_each_header() -> None:
    request = IncomingRequest(
        key="k" * 32,
        method="POST",
        path="/hooks/1",
        query=[("a", "1"), ("a", "2")],
        headers=[("content-type", "application/json"), ("x-dup", "one"), ("x-dup", "two")],
        body=b'{"n":1}',
        source_ip="10.0.0.1",
    )
    event = build_event(request, webhook_id="w", request_id="r", received_at="now")
    assert event["source"] == "webhook" and event["webhook_key"] == "k" * 32
    assert event["headers"] == {"content-type": "application/json", "x-dup": "one"}
    assert event["query"] == {"a": ["1", "2"]} and event["body"] == {"n": 1} and event["path"] == "/hooks/1"


def test_any_result_but_a_lambda_style_one_is_json_200() -> None:
    for value in ({"ok": True}, [1, 2], "text", 3, None, {"status": 201}):
        answer = result_answer(value)
        assert answer.status == 200 and answer.media_type == "application/json"


def test_a_lambda_style_result_maps_status_headers_and_body() -> None:
    answer = result_answer(
        {"statusCode": 404, "headers": {"X-A": "b", "Connection": "close"}, "body": "gone"}
    )
    assert (answer.status, answer.body, answer.headers) == (404, b"gone", {"X-A": "b"})
    assert answer.media_type.startswith("text/plain")
    binary = result_answer(
        {"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True}
    )
    assert binary.body == b"\x00\x01" and binary.media_type == "application/octet-stream"
    typed = result_answer({"statusCode": 200, "headers": {"content-type": "text/csv"}, "body": "a,b"})
    assert typed.media_type == "text/csv" and "content-type" not in typed.headers
    injected = result_answer({"statusCode": 200, "headers": {"X-Bad": "a\r\nSet-Cookie: x=1"}, "body": ""})
    assert injected.headers == {}
    for bad in (
        {"statusCode": "200"},
        {"statusCode": 600},
        {"statusCode": True},
        {"statusCode": 200, "headers": ["x"]},
        {"statusCode": 200, "body": "!!", "isBase64Encoded": True},
    ):
        with pytest.raises(BadResult):
            result_answer(bad)


# --- the history ------------------------------------------------------------------------------------


def test_secret_bearing_headers_and_parameters_are_redacted() -> None:
    headers = redact_headers(
        [
            ("authorization", "Bearer x"),
            ("cookie", "s=1"),
            ("x-hub-signature-256", "sha256=ab"),
            ("x-nimbus-signature", "t=1,v1=ab"),
            ("stripe-signature", "t=1,v1=ab"),
            ("x-api-key", "k"),
            ("x-gitlab-token", "t"),
            ("user-agent", "GitHub-Hookshot/1"),
            ("x-dup", "a"),
            ("x-dup", "b"),
        ]
    )
    assert {k for k, v in headers.items() if v == REDACTED} == {
        "authorization",
        "cookie",
        "x-hub-signature-256",
        "x-nimbus-signature",
        "stripe-signature",
        "x-api-key",
        "x-gitlab-token",
    }
    assert headers["user-agent"] == "GitHub-Hookshot/1" and headers["x-dup"] == "a, b"
    assert redact_query([("token", "t"), ("page", "2"), ("sig", "s")]) == {
        "token": [REDACTED],
        "page": ["2"],
        "sig": [REDACTED],
    }


def test_bodies_in_the_history_are_capped_and_say_so() -> None:
    assert capped(b"small") == ("small", "text", False)
    text, encoding, truncated = capped(b"x" * (HISTORY_BODY_CAP + 10))
    assert len(text) == HISTORY_BODY_CAP and encoding == "text" and truncated
    cut = ("é" * HISTORY_BODY_CAP).encode()  # a two-byte character straddles the cap
    text, encoding, truncated = capped(cut)
    assert encoding == "text" and truncated and set(text) == {"é"}
    text, encoding, _ = capped(b"\xff\x00")
    assert encoding == "base64" and base64.b64decode(text) == b"\xff\x00"
