"""The range / conditional decision, table-tested against RFC 9110's own examples.

Pure and synchronous (``streaming/encoders/ranges.py``): no server, no event loop.
"""

from __future__ import annotations

import itertools
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streaming.encoders.ranges import (
    COALESCE_GAP,
    MAX_RANGES,
    ByteRange,
    RangeIgnored,
    Status,
    decide,
    file_etag,
    http_date,
    multipart_heads,
    multipart_length,
    parse_range,
)

ETAG = '"abc-1"'
MTIME = 784111777.0  # Sun, 06 Nov 1994 08:49:37 GMT: RFC 9110 5.6.7's example date
DATE = "Sun, 06 Nov 1994 08:49:37 GMT"
EARLIER = "Sun, 06 Nov 1994 08:49:36 GMT"
LATER = "Sun, 06 Nov 1994 08:49:38 GMT"


def get(range_: str, size: int = 10000, **headers: str) -> tuple[Status, list[tuple[int, int]]]:
    decision = decide("GET", {"range": range_, **headers}, size, ETAG, MTIME)
    return decision.status, [(r.first, r.last) for r in decision.ranges]


# RFC 9110 14.1.2, "Examples of byte ranges ... a representation of length 10000".
@pytest.mark.parametrize(("header", "expected"), [
    ("bytes=0-499", [(0, 499)]),                      # the first 500 bytes
    ("bytes=500-999", [(500, 999)]),                  # the second 500 bytes
    ("bytes=-500", [(9500, 9999)]),                   # the final 500 bytes
    ("bytes=9500-", [(9500, 9999)]),                  # the final 500 bytes
    ("bytes=0-0,-1", [(0, 0), (9999, 9999)]),         # the first and last bytes only
    ("bytes=500-600,601-999", [(500, 999)]),          # other specs of the second 500
    ("bytes=500-700,601-999", [(500, 999)]),
])
def test_rfc_9110_14_1_2_examples(header: str, expected: list[tuple[int, int]]) -> None:
    assert get(header) == (Status.PARTIAL_CONTENT, expected)


@pytest.mark.parametrize(("header", "size", "expected"), [
    # 14.1.1: "bytes=0-999, 4500-5499, -1000" (three ranges, the suffix one last)
    ("bytes=0-999, 4500-5499, -1000", 10000, [(0, 999), (4500, 5499), (9000, 9999)]),
    # 14.1.1: a last-pos beyond the end is replaced by the last byte
    ("bytes=0-99999", 10000, [(0, 9999)]),
    # 14.1.1: a suffix longer than the file selects the whole file
    ("bytes=-20000", 10000, [(0, 9999)]),
    # 15.3.7.1's single part: "Content-Range: bytes 21010-47021/47022"
    ("bytes=21010-", 47022, [(21010, 47021)]),
    # 15.3.7.2's multipart example: 500-999 and 7000-7999 of 8000
    ("bytes=500-999,7000-7999", 8000, [(500, 999), (7000, 7999)]),
    # an unsatisfiable member is dropped when another one is satisfiable (14.1.1)
    ("bytes=0-9, 20000-", 10000, [(0, 9)]),
    # unit names are case-insensitive (14.1); list elements may be empty (5.6.1)
    ("BYTES=,0-9,,", 10000, [(0, 9)]),
])
def test_rfc_ranges(header: str, size: int, expected: list[tuple[int, int]]) -> None:
    assert get(header, size) == (Status.PARTIAL_CONTENT, expected)


@pytest.mark.parametrize(("header", "why"), [
    ("items=0-9", RangeIgnored.UNKNOWN_UNIT),     # 14.2: MUST ignore an unknown unit
    ("bytes=9-0", RangeIgnored.INVALID),          # last-pos < first-pos (14.1.1)
    ("bytes=abc", RangeIgnored.INVALID),
    ("bytes=-", RangeIgnored.INVALID),
    ("bytes=1-2-3", RangeIgnored.INVALID),
    ("bytes=+1-2", RangeIgnored.INVALID),
    ("bytes = 0-9", RangeIgnored.INVALID),        # no whitespace around "=" (14.1.1)
    ("bytes=", RangeIgnored.INVALID),
    ("=0-9", RangeIgnored.INVALID),
    ("bytes 0-9", RangeIgnored.INVALID),
    ("bytes=0-1,x", RangeIgnored.INVALID),        # one invalid member spoils the set
    ("bytes=0-1X", RangeIgnored.INVALID),
    ("Xbytes=0-9", RangeIgnored.UNKNOWN_UNIT),    # a token, not ours
    ("b@d=0-9", RangeIgnored.INVALID),            # not a token: not a unit at all
])
def test_ignored_range_serves_whole_file(header: str, why: RangeIgnored) -> None:
    decision = decide("GET", {"range": header}, 10000, ETAG, MTIME)
    assert (decision.status, decision.ranges, decision.ignored) == (Status.OK, (), why)


@pytest.mark.parametrize("header", ["bytes=10000-", "bytes=10000-20000", "bytes=-0",
                                    "bytes=20000-,30000-"])
def test_unsatisfiable(header: str) -> None:
    # 15.5.17: 416 with "Content-Range: bytes */10000" (the response adds it).
    assert get(header) == (Status.RANGE_NOT_SATISFIABLE, [])


def test_zero_length_file_ignores_ranges() -> None:
    decision = decide("GET", {"range": "bytes=0-0"}, 0, ETAG, MTIME)
    assert (decision.status, decision.ignored) == (Status.OK, RangeIgnored.EMPTY_FILE)


def test_range_is_for_get_only() -> None:
    # 14.2: "GET is the only method for which range handling is defined".
    for method in ("HEAD", "POST"):
        decision = decide(method, {"range": "bytes=0-9"}, 100, ETAG, MTIME)
        assert (decision.status, decision.ignored) == (Status.OK, RangeIgnored.NOT_GET)


def test_status_other_than_200_ignores_range_and_conditions() -> None:
    headers = {"range": "bytes=0-9", "if-none-match": ETAG}
    decision = decide("GET", headers, 100, ETAG, MTIME, status=404)
    assert (decision.status, decision.ignored) == (Status.OK, RangeIgnored.NOT_200)
    decision = decide("GET", {"if-none-match": ETAG}, 100, ETAG, MTIME, status=404)
    assert (decision.status, decision.ignored) == (Status.OK, None)  # no Range: none ignored


# -- coalescing -----------------------------------------------------------------

def test_overlapping_and_near_ranges_coalesce_in_request_order() -> None:
    # 14.2 allows coalescing overlapping ranges and ones with a small gap; 14.6:
    # the parts keep the order of the first range spec of each.
    status, ranges = get("bytes=5000-5099,0-9,5050-5199,20-29")
    assert status is Status.PARTIAL_CONTENT
    assert ranges == [(5000, 5199), (0, 29)]
    near = 10 + COALESCE_GAP  # a gap of exactly COALESCE_GAP bytes: merged
    assert get(f"bytes=0-9,{near}-{near}")[1] == [(0, near)]
    far = near + 1
    assert get(f"bytes=0-9,{far}-{far}")[1] == [(0, 9), (far, far)]


def test_many_overlapping_small_ranges_collapse_into_one() -> None:
    header = "bytes=" + ",".join(f"{i}-{i + 50}" for i in range(MAX_RANGES))
    assert get(header) == (Status.PARTIAL_CONTENT, [(0, MAX_RANGES - 1 + 50)])


# -- hostile headers: bounded work, a stated limit -----------------------------------

def test_more_than_max_ranges_is_ignored() -> None:
    at_limit = "bytes=" + ",".join(f"{i * 200}-{i * 200}" for i in range(MAX_RANGES))
    assert len(get(at_limit, size=10**6)[1]) == MAX_RANGES
    over = at_limit + ",0-0"
    decision = decide("GET", {"range": over}, 10**6, ETAG, MTIME)
    assert (decision.status, decision.ignored) == (Status.OK, RangeIgnored.TOO_MANY)


def test_thousands_of_ranges_and_huge_numbers_are_cheap() -> None:
    hostile = [
        "bytes=" + "0-0," * 100_000,                      # 100,000 ranges (400 KB)
        "bytes=0-" + "9" * 100_000,                       # a 100,000-digit number
        "bytes=" + "9" * 100_000 + "-",
        "bytes=" + " " * 100_000 + "0-1",
        "bytes=-" + "1" * 5000,
    ]
    started = time.process_time()
    results = [decide("GET", {"range": h}, 10000, ETAG, MTIME) for h in hostile]
    # Not a timing assertion: a bound so loose (seconds for five headers)
    # that only quadratic work or a full int() of 100,000 digits can miss it.
    assert time.process_time() - started < 2.0
    assert [r.status for r in results] == [Status.OK, Status.PARTIAL_CONTENT,
                                           Status.RANGE_NOT_SATISFIABLE,
                                           Status.PARTIAL_CONTENT, Status.PARTIAL_CONTENT]
    assert results[0].ignored is RangeIgnored.TOO_MANY
    assert results[1].ranges == (ByteRange(0, 9999),)


@given(st.text(alphabet="bytes=0123456789-, \t", max_size=60), st.integers(0, 5000))
def test_any_header_gives_ranges_inside_the_file_and_no_amplification(
        header: str, size: int) -> None:
    decision = decide("GET", {"range": header}, size, ETAG, MTIME)
    assert len(decision.ranges) <= MAX_RANGES
    for r in decision.ranges:
        assert 0 <= r.first <= r.last < size
    ordered = sorted(decision.ranges, key=lambda r: r.first)
    assert all(a.last + 1 + COALESCE_GAP < b.first for a, b in itertools.pairwise(ordered))
    assert sum(r.length for r in decision.ranges) <= size
    assert (decision.status is Status.PARTIAL_CONTENT) == bool(decision.ranges)


# -- conditional requests (RFC 9110 13.1, 13.2.2) -------------------------------------

@pytest.mark.parametrize(("method", "headers", "expected"), [
    # If-Match: strong comparison; "*" matches a current representation (13.1.1)
    ("GET", {"if-match": ETAG}, Status.OK),
    ("GET", {"if-match": '"other", ' + ETAG}, Status.OK),
    ("GET", {"if-match": "*"}, Status.OK),
    ("GET", {"if-match": '"other"'}, Status.PRECONDITION_FAILED),
    ("GET", {"if-match": "W/" + ETAG}, Status.PRECONDITION_FAILED),  # weak never matches strongly
    ("PUT", {"if-match": '"other"'}, Status.PRECONDITION_FAILED),
    # If-Unmodified-Since, only without If-Match (13.1.4)
    ("GET", {"if-unmodified-since": DATE}, Status.OK),
    ("GET", {"if-unmodified-since": EARLIER}, Status.PRECONDITION_FAILED),
    ("GET", {"if-match": ETAG, "if-unmodified-since": EARLIER}, Status.OK),
    ("GET", {"if-unmodified-since": "not a date"}, Status.OK),  # invalid: ignored
    # If-None-Match: weak comparison (13.1.2); 304 for GET/HEAD, 412 otherwise
    ("GET", {"if-none-match": ETAG}, Status.NOT_MODIFIED),
    ("HEAD", {"if-none-match": "W/" + ETAG}, Status.NOT_MODIFIED),
    ("GET", {"if-none-match": '"a,b", ' + ETAG}, Status.NOT_MODIFIED),  # a comma inside a tag
    ("GET", {"if-none-match": "*"}, Status.NOT_MODIFIED),
    ("GET", {"if-none-match": '"other"'}, Status.OK),
    ("POST", {"if-none-match": ETAG}, Status.PRECONDITION_FAILED),
    ("GET", {"if-none-match": "garbage"}, Status.OK),
    ("GET", {"if-none-match": "X" + ETAG}, Status.OK),  # garbage before a tag spoils the list
    # If-Modified-Since, ignored with If-None-Match and for other methods (13.1.3)
    ("GET", {"if-modified-since": DATE}, Status.NOT_MODIFIED),
    ("GET", {"if-modified-since": LATER}, Status.NOT_MODIFIED),
    ("GET", {"if-modified-since": EARLIER}, Status.OK),
    ("GET", {"if-modified-since": "Sunday, 06-Nov-94 08:49:37 GMT"}, Status.NOT_MODIFIED),
    ("GET", {"if-modified-since": "Sun Nov  6 08:49:37 1994"}, Status.NOT_MODIFIED),
    ("GET", {"if-modified-since": "yesterday"}, Status.OK),
    ("GET", {"if-none-match": '"other"', "if-modified-since": DATE}, Status.OK),
    ("POST", {"if-modified-since": DATE}, Status.OK),
    # 13.2.2's order: If-Match fails first, whatever If-None-Match says
    ("GET", {"if-match": '"other"', "if-none-match": ETAG}, Status.PRECONDITION_FAILED),
    # a precondition is evaluated before the Range (13.2.2 step 5 comes last)
    ("GET", {"if-none-match": ETAG, "range": "bytes=0-0"}, Status.NOT_MODIFIED),
    ("GET", {"if-match": '"x"', "range": "bytes=0-0"}, Status.PRECONDITION_FAILED),
])
def test_conditional_requests(method: str, headers: dict[str, str], expected: Status) -> None:
    assert decide(method, headers, 10000, ETAG, MTIME).status is expected


@pytest.mark.parametrize(("if_range", "used"), [
    (ETAG, True),            # 13.1.5: an entity tag, strong comparison
    ("W/" + ETAG, False),    # a weak tag never matches
    ('"other"', False),
    (DATE, True),            # a date: exactly Last-Modified
    ("Sun, 06 Nov 1994 09:49:37 +0100", True),  # the same instant, with a zone offset
    (LATER, False),          # a later date is not an exact match
    ("not a date", False),
])
def test_if_range(if_range: str, used: bool) -> None:
    decision = decide("GET", {"range": "bytes=0-9", "if-range": if_range}, 100, ETAG, MTIME)
    if used:
        assert decision.status is Status.PARTIAL_CONTENT
    else:
        assert (decision.status, decision.ignored) == (Status.OK, RangeIgnored.IF_RANGE_MISMATCH)


def test_if_range_without_range_is_ignored() -> None:
    assert decide("GET", {"if-range": '"other"'}, 100, ETAG, MTIME).status is Status.OK


# -- what the response sends ------------------------------------------------------

def test_multipart_body_matches_rfc_9110_example() -> None:
    # 15.3.7.2: two parts of an 8000-byte application/pdf.
    ranges = (ByteRange(500, 999), ByteRange(7000, 7999))
    heads, closing = multipart_heads(ranges, 8000, "application/pdf", "THIS_STRING_SEPARATES")
    assert heads[0] == (b"--THIS_STRING_SEPARATES\r\nContent-Type: application/pdf\r\n"
                        b"Content-Range: bytes 500-999/8000\r\n\r\n")
    assert closing == b"--THIS_STRING_SEPARATES--"
    body = heads[0] + b"a" * 500 + b"\r\n" + heads[1] + b"b" * 1000 + b"\r\n" + closing
    assert multipart_length(ranges, heads, closing) == len(body)


def test_validators() -> None:
    assert http_date(MTIME + 0.9) == DATE
    assert file_etag(10, 5, 3) == '"3-5-a"'
    assert file_etag(10, 5) == '"0-5-a"'  # no inode known
    assert parse_range("bytes=1-") == [(1, None)]
    assert ByteRange(42, 1233).content_range(1234) == "bytes 42-1233/1234"  # 14.4
