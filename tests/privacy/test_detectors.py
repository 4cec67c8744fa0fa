"""The detectors find the sensitive span exactly and leave look-alike identifiers alone."""

from __future__ import annotations

import itertools
import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditkeep.privacy.detectors import (
    DEFAULT_DETECTORS,
    DETECTORS,
    Finding,
    Scanner,
    is_sensitive_key,
)

ALL = Scanner(DETECTORS)

POSITIVES: dict[str, list[tuple[str, str]]] = {
    "email": [
        ("contact alice.smith+tag@example.co.uk today", "alice.smith+tag@example.co.uk"),
        ('{"email": "bob@example.com"}', "bob@example.com"),
        ("mailto:carol_1@mail.example.org?subject=hi", "carol_1@mail.example.org"),
        ("From: <dave@example.io>", "dave@example.io"),
        ("user=erin@example.net&x=1", "erin@example.net"),
        ("sent to frank@example.com.", "frank@example.com"),
    ],
    "phone": [
        ("call +1 (415) 555-2671 now", "+1 (415) 555-2671"),
        ("office +44 20 7946 0958", "+44 20 7946 0958"),
        ("tel:+14155552671", "+14155552671"),
        ('{"phone": "(415) 555-2671"}', "(415) 555-2671"),
        ("fax 415.555.2671.", "415.555.2671"),
        ("London 020 7946 0958", "020 7946 0958"),
        ("Paris 01 23 45 67 89", "01 23 45 67 89"),
    ],
    "card": [
        ("card 4111 1111 1111 1111 exp 12/26", "4111 1111 1111 1111"),
        ('{"pan": "4111111111111111"}', "4111111111111111"),
        ("mc 5500-0000-0000-0004 ok", "5500-0000-0000-0004"),
        ("amex 378282246310005", "378282246310005"),
        ("amex 3782 822463 10005", "3782 822463 10005"),
        ("discover=6011111111111117&x", "6011111111111117"),
    ],
    "iban": [
        ("IBAN DE89 3704 0044 0532 0130 00 please", "DE89 3704 0044 0532 0130 00"),
        ("GB82 WEST 1234 5698 7654 32", "GB82 WEST 1234 5698 7654 32"),
        ('{"iban": "NL91ABNA0417164300"}', "NL91ABNA0417164300"),
        ("to FR14 2004 1010 0505 0001 3M02 606.", "FR14 2004 1010 0505 0001 3M02 606"),
        ("BE68539007547034", "BE68539007547034"),
        ("ch=CH9300762011623852957", "CH9300762011623852957"),
    ],
    "ssn": [
        ("ssn 123-45-6789", "123-45-6789"),
        ('{"ssn":"078-05-1120"}', "078-05-1120"),
        ("SSN: 219-09-9999.", "219-09-9999"),
        ("id=457-55-5462&x", "457-55-5462"),
        ("(123-45-6789)", "123-45-6789"),
        ("line\n665-12-3456\n", "665-12-3456"),
    ],
    "ipv4": [
        ("from 10.0.0.1:8080", "10.0.0.1"),
        ('{"sourceIPAddress":"203.0.113.7"}', "203.0.113.7"),
        ("net 192.168.1.0/24", "192.168.1.0"),
        ("x-forwarded-for: 198.51.100.23, unknown", "198.51.100.23"),
        ("255.255.255.255", "255.255.255.255"),
        ("host=8.8.8.8.", "8.8.8.8"),
    ],
    "ipv6": [
        ("from 2001:db8::1 port", "2001:db8::1"),
        ("loopback ::1", "::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("mapped ::ffff:192.0.2.1", "::ffff:192.0.2.1"),
        (
            '{"ip":"2001:0db8:85a3:0000:0000:8a2e:0370:7334"}',
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
        ),
        ("[2001:db8::42]:443", "2001:db8::42"),
    ],
    "jwt": [
        (
            "t eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc_DEF-123 x",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc_DEF-123",
        ),
        ('{"jwt":"eyJhbGciOiJub25lIn0.eyJzdWIiOiIyIn0."}', "eyJhbGciOiJub25lIn0.eyJzdWIiOiIyIn0."),
        ("cookie: s=eyJ0eXAiOiJKV1QifQ.eyJpZCI6M30.c2ln", "eyJ0eXAiOiJKV1QifQ.eyJpZCI6M30.c2ln"),
        ("eyJa1.eyJb2.c3", "eyJa1.eyJb2.c3"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig.",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
        ),
        ("(eyJhbGciOiJFUzI1NiJ9.eyJleHAiOjF9.q-w_e)", "eyJhbGciOiJFUzI1NiJ9.eyJleHAiOjF9.q-w_e"),
    ],
    "bearer": [
        (
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc",
        ),
        ('{"authorization": "Bearer ghp_abc123def456"}', "ghp_abc123def456"),
        ("authorization: bearer 0123456789abcdef", "0123456789abcdef"),
        ("BEARER a1b2c3d4e5==", "a1b2c3d4e5=="),
        ("Bearer\tmF_9.B5f-4.1JqM", "mF_9.B5f-4.1JqM"),
        ("header Bearer tok/en+12345 end", "tok/en+12345"),
    ],
    "basic_auth": [
        ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ('{"authorization":"Basic YWxpY2U6czNjcjN0"}', "YWxpY2U6czNjcjN0"),
        ("https://alice:s3cr3t@db.example.com/x", "alice:s3cr3t"),
        ("postgres://u:p@h:5432/db", "u:p"),
        ("dsn=mysql+pymysql://root:hunter2@10.0.0.5/app", "root:hunter2"),
        ("basic Ym9iOnBhc3M=", "Ym9iOnBhc3M="),
    ],
    "aws_access_key": [
        ("key AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
        ('{"accessKeyId":"ASIAY34FZKBOKMUTVV7A"}', "ASIAY34FZKBOKMUTVV7A"),
        ("aws_access_key_id=AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
        ("user AIDAJQABLZS4A3QDU576 x", "AIDAJQABLZS4A3QDU576"),
        ("role AROAEXAMPLEIDZ234567:alice", "AROAEXAMPLEIDZ234567"),
        ("(AKIAIOSFODNN7EXAMPLE)", "AKIAIOSFODNN7EXAMPLE"),
    ],
    "aws_secret_key": [
        (
            "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        (
            '"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        (
            "secret_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        (
            'AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        (
            "aws-secret-key = abcdefghijABCDEFGHIJ0123456789+/abcdefgh",
            "abcdefghijABCDEFGHIJ0123456789+/abcdefgh",
        ),
        (
            "export MY_AWS_SECRET_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
    ],
    "private_key": [
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
        ),
        (
            '{"k":"-----BEGIN PRIVATE KEY-----\\nMIIB\\n-----END PRIVATE KEY-----\\n"}',
            "-----BEGIN PRIVATE KEY-----\\nMIIB\\n-----END PRIVATE KEY-----",
        ),
        (
            "-----BEGIN EC PRIVATE KEY-----abc-----END EC PRIVATE KEY----- tail",
            "-----BEGIN EC PRIVATE KEY-----abc-----END EC PRIVATE KEY-----",
        ),
        (
            "x -----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----",
        ),
        (
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMII\n-----END ENCRYPTED PRIVATE KEY-----",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMII\n-----END ENCRYPTED PRIVATE KEY-----",
        ),
        (
            "cert\\n-----BEGIN PRIVATE KEY-----z-----END PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY-----z-----END PRIVATE KEY-----",
        ),
    ],
    "secret_param": [
        ("https://x.com/cb?code=abc123&state=xyz", "abc123"),
        ("login user=bob password=hunter2 ok", "hunter2"),
        ("GET /api?api_key=k-123#frag", "k-123"),
        ("username=alice&passwd=p%40ss", "p%40ss"),
        ('"url": "https://s.blob.example/f?sv=1&sig=AbC%2Fd"', "AbC%2Fd"),
        ("?Token=xyz789 ", "xyz789"),
        ("client_secret=s3cr3t&grant_type=client_credentials", "s3cr3t"),
    ],
}

NEGATIVES: dict[str, list[str]] = {
    "email": ["icon@2x.png", "nginx@sha256:abcd", "user@localhost", "@alice", "alice@", "a@b"],
    "phone": [
        "2024-05-01",
        "12:30:45",
        "ORD-2024-000123",
        "4155552671",
        "version 1.2.3.4",
        "123e4567-e89b-12d3-a456-426614174000",
        "2024-05-01T12:30:45+05:30",
        "555-1234",
        "DE89 3704 0044 0532 0130 01",
        '"resourceVersion": "123456789"',
    ],
    "card": [
        "4111111111111112",
        "ORD-4111111111111111",
        "41111111111111110000",
        "1714566645000",
        "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "1234567812345670",
        "4111.1111.1111.1111",
        "arn:aws:iam::123456789012:role/Admin",
    ],
    "iban": [
        "DE89 3704 0044 0532 0130 01",
        "GB82WEST12345698765433",
        "XX89370400440532013000",
        "DE8937040044053201300",
        "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        "UUID 123E4567-E89B-12D3-A456-426614174000",
    ],
    "ssn": [
        "000-12-3456",
        "666-12-3456",
        "900-12-3456",
        "123-00-4567",
        "123-45-0000",
        "123-45-67890",
        "1123-45-6789",
        "2024-05-01",
        "ORD-123-45-6789",
    ],
    "ipv4": ["1.2.3.4.5", "v1.2.3.4", "256.1.1.1", "10.0.0", "1.2.3.04", "1.3.6.1.4.1.311"],
    "ipv6": [
        "12:30:45",
        "00:1a:2b:3c:4d:5e",
        "arn:aws:iam::123456789012:role/x",
        "std::vector",
        "arn:aws:s3:::my-bucket",
        "dead:beef:cafe",
        "::",
        "2024-05-01T12:30:45Z",
    ],
    "jwt": [
        "eyJhbGciOiJIUzI1NiJ9",
        "eyJa.notjwt.x",
        "abc.eyJb.c",
        "xeyJa.eyJb.c",
        "eyJ.eyJ.",
        "headers eyJ",
    ],
    "bearer": [
        "Bearer ",
        'WWW-Authenticate: Bearer realm="api"',
        'Bearer error="invalid_token"',
        "Bearer tokens expire",
        "Use Bearer authentication",
        "Bearer abc",
    ],
    "basic_auth": [
        "Basic auth is on",
        "Basic 12345",
        "Basic Zm9vYmFy",
        "https://example.com/path",
        "https://alice@example.com/",
        "ssh://git@github.com/org/repo",
    ],
    "aws_access_key": [
        "AKIAIOSFODNN7EXAMPL",
        "AKIAIOSFODNN7EXAMPLE1",
        "XAKIAIOSFODNN7EXAMPLE",
        "akiaiosfodnn7example",
        "AKIA1OSFODNN7EXAMPLE",
        "ABCDIOSFODNN7EXAMPLE",
    ],
    "aws_secret_key": [
        "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "secret_key=short",
        "secret_name=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYX",
        "commit da39a3ee5e6b4b0d3255bfef95601890afd80709 secret",
    ],
    "private_key": [
        "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        "-----BEGIN PRIVATE KEY----- truncated",
        "private key rotated",
        "BEGIN PRIVATE KEY",
        "-----END PRIVATE KEY-----",
    ],
    "secret_param": [
        "exit code=1",
        "status code=404",
        "?token=&x=1",
        "tokens=5",
        "grant_type=password&user=a",
        "the monkey=1",
        "X-Amz-Credential-Date=20240501",
        "sort key=name",
    ],
}


def found(text: str, rule: str) -> list[str]:
    return [text[f.start : f.end] for f in ALL.find(text) if f.rule == rule]


@pytest.mark.parametrize(
    ("rule", "text", "expected"),
    [(rule, text, exp) for rule, cases in POSITIVES.items() for text, exp in cases],
)
def test_detector_reports_exactly_the_sensitive_span(rule: str, text: str, expected: str) -> None:
    assert found(text, rule) == [expected]


@pytest.mark.parametrize(
    ("rule", "text"), [(rule, text) for rule, cases in NEGATIVES.items() for text in cases]
)
def test_look_alike_is_not_reported(rule: str, text: str) -> None:
    assert found(text, rule) == []


def test_every_detector_has_a_table() -> None:
    assert set(POSITIVES) == set(DETECTORS) == set(NEGATIVES)


class TestScanner:
    def test_mixed_text_yields_each_kind_in_order_with_spans(self) -> None:
        text = (
            "alice@example.com paid with 4111 1111 1111 1111 from 10.0.0.1, "
            "ssn 123-45-6789, call +1 415 555 2671 ?token=abc123"
        )
        findings = Scanner([*DEFAULT_DETECTORS, "ipv4"]).find(text)
        assert [(f.rule, text[f.start : f.end]) for f in findings] == [
            ("email", "alice@example.com"),
            ("card", "4111 1111 1111 1111"),
            ("ipv4", "10.0.0.1"),
            ("ssn", "123-45-6789"),
            ("phone", "+1 415 555 2671"),
            ("secret_param", "abc123"),
        ]
        assert findings[0] == Finding("email", 0, 17)

    def test_unknown_detector_is_named(self) -> None:
        with pytest.raises(ValueError, match="'nope'"):
            Scanner(["email", "nope"])

    def test_default_detectors_leave_ip_addresses_alone(self) -> None:
        assert set(DEFAULT_DETECTORS) == set(DETECTORS) - {"ipv4", "ipv6"}
        assert Scanner().find("from 10.0.0.1 and 2001:db8::1") == []
        assert Scanner().names == DEFAULT_DETECTORS

    def test_only_enabled_detectors_run(self) -> None:
        scanner = Scanner(["ssn"])
        assert scanner.names == ("ssn",)
        assert [f.rule for f in scanner.find("a@example.com 123-45-6789")] == ["ssn"]
        assert Scanner([]).find("a@example.com") == []

    def test_failed_candidate_does_not_hide_a_later_finding(self) -> None:
        text = "4111111111111112 then 4111111111111111"
        assert found(text, "card") == ["4111111111111111"]
        assert found("Basic auth for bob@example.com", "email") == ["bob@example.com"]


SENSITIVE = [
    "password",
    "passwd",
    "pwd",
    "secret",
    "client_secret",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "apikey",
    "x-api-key",
    "authorization",
    "private_key",
    "credentials",
    "session_token",
    "cookie",
    "set-cookie",
    "apiKey",
    "X-Api-Key",
    "db_password",
    "AWS_SECRET_ACCESS_KEY",
    "clientSecret",
    "privateKey",
    "Proxy-Authorization",
    "csrftoken",
]
HARMLESS = [
    "token_type",
    "tokens_used",
    "password_changed",
    "secret_name",
    "key",
    "keyword",
    "monkey",
    "author",
    "session_id",
    "secretName",
    "NextToken",
    "page_token",
    "access_key",
]


@pytest.mark.parametrize("key", SENSITIVE)
def test_sensitive_key(key: str) -> None:
    assert is_sensitive_key(key)


@pytest.mark.parametrize("key", HARMLESS)
def test_harmless_key(key: str) -> None:
    assert not is_sensitive_key(key)


# --- properties -------------------------------------------------------------------------

NOISY = st.text(alphabet=st.sampled_from("0123456789abcdefABCXYZ -.:@+/=?&_()\"'\n"), max_size=80)


@given(st.one_of(NOISY, st.text(max_size=80)))
def test_findings_are_sorted_disjoint_and_in_bounds(text: str) -> None:
    findings = ALL.find(text)
    for f in findings:
        assert 0 <= f.start < f.end <= len(text)
        assert f.rule in DETECTORS
    for a, b in itertools.pairwise(findings):
        assert a.end <= b.start


def _luhn_digit(body: str) -> str:
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


CARDS = st.builds(
    lambda prefix, rest: (
        prefix + rest[: 15 - len(prefix)] + _luhn_digit(prefix + rest[: 15 - len(prefix)])
    ),
    st.sampled_from(["4", "51", "55", "2221", "6011", "65"]),
    st.text(alphabet=string.digits, min_size=15, max_size=15),
)
WORDS = st.lists(
    st.text(alphabet=string.ascii_letters, min_size=1, max_size=8).filter(
        lambda w: w.lower() not in ("bearer", "basic")
    ),
    max_size=4,
)


@given(WORDS, CARDS, WORDS)
def test_luhn_valid_card_between_words_is_found(
    before: list[str], card: str, after: list[str]
) -> None:
    text = " ".join([*before, card, *after])
    assert found(text, "card") == [card]


@given(st.uuids(version=4), st.booleans())
def test_uuid_is_never_personal_data(uuid: object, upper: bool) -> None:
    text = str(uuid).upper() if upper else str(uuid)
    rules = {f.rule for f in ALL.find(f"id={text} and {text}")}
    assert not rules & {"card", "phone", "ssn", "iban"}


def test_patterns_have_no_numbered_groups() -> None:
    for detector in DETECTORS.values():
        assert set(re.compile(detector.pattern).groupindex) <= {"v"}


def reference_find(text: str) -> list[Finding]:
    """The scanner's contract spelled out slowly: at each position, the first detector
    whose own match there passes its check; then resume after that match."""
    singles = [(d, re.compile(d.pattern, re.ASCII)) for d in DETECTORS.values()]
    findings, pos = [], 0
    while pos < len(text):
        for detector, regex in singles:
            m = regex.match(text, pos)
            if m is None:
                continue
            span = m.span("v") if "v" in regex.groupindex else m.span()
            if detector.check is None or detector.check(text[span[0] : span[1]]):
                findings.append(Finding(detector.name, *span))
                pos = m.end()
                break
        else:
            pos += 1
    return findings


TRICKY = st.lists(
    st.sampled_from(
        [
            "a",
            "Z",
            "0",
            "4",
            "7",
            " ",
            "-",
            ".",
            ":",
            "::",
            "@",
            "+",
            "(",
            ")",
            "=",
            "?",
            "&",
            "/",
            "//",
            "\n",
            '"',
            "_",
            "e",
            "eyJ",
            "Bearer ",
            "basic ",
            "AKIA",
            "secret_key=",
            "password=",
            "token=",
            "-----BEGIN PRIVATE KEY-----",
            "-----END PRIVATE KEY-----",
            "example.com",
            "4111111111111111",
            "123-45-6789",
            "DE89",
            "3704",
            "10.0.0.1",
            "2001:db8",
            "https://",
            "u:p@",
            "1",
            "22",
            "333",
            "4444",
            "é",
            "٣",
        ]
    ),
    max_size=30,
).map("".join)


@given(st.one_of(TRICKY, st.text(max_size=60)))
def test_scanner_agrees_with_detector_by_detector_reference(text: str) -> None:
    assert ALL.find(text) == reference_find(text)


@settings(max_examples=400)
@given(st.lists(st.one_of(TRICKY, st.text(max_size=30)), max_size=12),
       st.sampled_from([ALL, Scanner(), Scanner(["secret_param", "email"])]))
def test_find_many_is_find_of_each(texts: list[str], scanner: Scanner) -> None:
    """The joined prefilter of `find_many` never loses or invents a finding."""
    assert scanner.find_many(texts) == [scanner.find(t) for t in texts]


def test_find_many_keeps_start_anchored_parameters() -> None:
    texts = ["nothing", "key=abcdef123", "x", "pwd=hunter22", "code=1234 and more"]
    assert ALL.find_many(texts) == [ALL.find(t) for t in texts]
    assert [bool(f) for f in ALL.find_many(texts)] == [False, True, False, True, True]


def test_public_names_are_exported() -> None:
    # The order of __all__ is ruff's (RUF022: constants, classes, then functions).
    import auditkeep.privacy.detectors as module

    assert all(hasattr(module, name) for name in module.__all__)
