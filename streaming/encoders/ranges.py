"""Range and conditional requests for a static file, as one pure decision.

``decide(method, headers, size, etag, mtime) -> Decision`` carries out RFC 9110
sections 13 (conditional requests) and 14 (range requests) for a representation
of ``size`` bytes with a strong ``etag`` and a modification time. It does no
I/O: the response reads the file and sends what the decision says, so every
clause is table-tested here without a server (as h11 tests its protocol).

The order of evaluation is RFC 9110 13.2.2:

1. ``If-Match`` (strong comparison): none matches -> 412;
2. else ``If-Unmodified-Since``: modified after the date -> 412;
3. ``If-None-Match`` (weak comparison): one matches -> 304 for GET / HEAD, 412 otherwise;
4. else, for GET / HEAD, ``If-Modified-Since``: not modified since -> 304;
5. ``If-Range`` that does not match -> the Range is ignored (200, whole file);
6. ``Range`` (GET only, 14.2): 206 with the satisfiable ranges, coalesced;
   none satisfiable -> 416; an unknown unit or invalid syntax -> ignored.

Hostile ``Range`` headers do bounded work: at most ``MAX_RANGES`` (100,
Starlette's figure) range specs are parsed (the split stops there); a header
with more is ignored and the whole file is served, which costs the server no
more than a plain GET. A position with more than ``_MAX_DIGITS`` digits is
taken as "beyond any file" without being converted. Overlapping ranges and
ranges separated by less than ``COALESCE_GAP`` bytes are merged (14.2 allows
it), so a multipart body is never larger than the file plus the part headers
of at most ``MAX_RANGES`` parts: no amplification.
"""

from __future__ import annotations

import calendar
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import formatdate, parsedate_tz

#: The most range specs one ``Range`` header may hold; past it the header is ignored.
MAX_RANGES = 100

#: Ranges closer than this are sent as one (about the cost of a part's headers).
COALESCE_GAP = 80

#: More digits than this is beyond any file (2**63 has 19): never converted, so
#: a 100 KB number costs a length check, not a quadratic ``int()``.
_MAX_DIGITS = 19
_BEYOND = 1 << 63


class Status(enum.IntEnum):
    """What the response does."""

    OK = 200
    PARTIAL_CONTENT = 206
    NOT_MODIFIED = 304
    PRECONDITION_FAILED = 412
    RANGE_NOT_SATISFIABLE = 416


class RangeIgnored(enum.Enum):
    """Why a ``Range`` header was present and the whole file is served anyway."""

    NOT_GET = "range requests are defined for GET only (RFC 9110 14.2)"
    UNKNOWN_UNIT = "a range unit other than bytes (RFC 9110 14.2: MUST ignore)"
    INVALID = "invalid ranges-specifier syntax (RFC 9110 14.2: MAY ignore)"
    TOO_MANY = f"more than {MAX_RANGES} range specs (RFC 9110 17.15)"
    IF_RANGE_MISMATCH = "the If-Range validator does not match (RFC 9110 13.1.5)"
    EMPTY_FILE = "a zero-length file has no byte ranges to send"
    NOT_200 = "the response's status is not 200"


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes ``first`` to ``last`` of the file, both included (RFC 9110 14.1.2)."""

    first: int
    last: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.first}-{self.last}/{size}"


@dataclass(frozen=True, slots=True)
class Decision:
    """What to answer: ``status``, the ``ranges`` of a 206 (one for a single
    part, several for ``multipart/byteranges``), and ``ignored`` saying why a
    ``Range`` header present in the request was not used."""

    status: Status
    ranges: tuple[ByteRange, ...] = ()
    ignored: RangeIgnored | None = None


def decide(method: str, headers: Mapping[str, str], size: int, etag: str,
           mtime: float, *, status: int = 200) -> Decision:
    """Decide the answer to ``method`` with request ``headers`` (lower-case
    names, repeated fields joined with ``", "``) for a file of ``size`` bytes,
    strong entity tag ``etag`` (quoted, as sent in ``ETag``) and modification
    time ``mtime`` (POSIX seconds). ``status`` is the response's own status:
    conditions and ranges apply to a 200 only, as with Starlette."""
    if status != 200:  # the whole file with the response's own status
        return Decision(Status.OK, ignored=RangeIgnored.NOT_200 if "range" in headers else None)
    failed = _preconditions(method.upper(), headers, etag, int(mtime))
    if failed is not None:
        return Decision(failed)
    range_value = headers.get("range")
    if range_value is None:
        return Decision(Status.OK)
    return _ranges(method.upper(), range_value, headers.get("if-range"), size, etag, int(mtime))


# -- preconditions (RFC 9110 13.2.2) -------------------------------------------

def _preconditions(method: str, headers: Mapping[str, str], etag: str,
                   mtime: int) -> Status | None:
    if_match = headers.get("if-match")
    if if_match is not None:
        if not _any_tag_matches(if_match, etag, strong=True):
            return Status.PRECONDITION_FAILED
    else:
        since = _http_date(headers.get("if-unmodified-since"))
        if since is not None and mtime > since:
            return Status.PRECONDITION_FAILED
    safe = method in ("GET", "HEAD")
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        if _any_tag_matches(if_none_match, etag, strong=False):
            return Status.NOT_MODIFIED if safe else Status.PRECONDITION_FAILED
    elif safe:
        since = _http_date(headers.get("if-modified-since"))
        if since is not None and mtime <= since:
            return Status.NOT_MODIFIED
    return None


#: One member of an entity-tag list (RFC 9110 8.8.3): ``W/`` optional, then a
#: quoted opaque tag, which may itself contain commas.
_ETAG = re.compile(r'\s*(W/)?("[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|$)')


def _any_tag_matches(field: str, etag: str, *, strong: bool) -> bool:
    """``*`` matches any current representation (13.1.1, 13.1.2); otherwise
    compare each member, strongly (both strong, same opaque tag) or weakly
    (same opaque tag) as 8.8.3.2 defines. A malformed list matches nothing."""
    if field.strip() == "*":
        return True
    position, end = 0, len(field)
    while position < end:
        if field[position] in " \t,":  # empty list elements are allowed (5.6.1)
            position += 1
            continue
        member = _ETAG.match(field, position)
        if member is None:
            return False
        weak, opaque = member.group(1), member.group(2)
        if opaque == etag and not (strong and weak):
            return True
        position = member.end()
    return False


def _http_date(value: str | None) -> int | None:
    """An HTTP-date (RFC 9110 5.6.7: IMF-fixdate, RFC 850 or asctime) as POSIX
    seconds, or ``None`` for a missing or invalid one, which the recipient
    MUST then ignore (13.1.3, 13.1.4)."""
    if value is None or len(value) > 64:
        return None
    parsed = parsedate_tz(value)
    if parsed is None:
        return None
    try:
        seconds = calendar.timegm(parsed[:6])
    except (ValueError, OverflowError):
        return None
    return seconds - (parsed[9] or 0)


def http_date(mtime: float) -> str:
    """``Last-Modified`` for ``mtime``: an IMF-fixdate, whole seconds (5.6.7)."""
    return formatdate(int(mtime), usegmt=True)


def file_etag(size: int, mtime_ns: int, inode: int = 0) -> str:
    """A strong entity tag from the file's identity and version: inode,
    modification time in nanoseconds and size (a replaced or rewritten file
    gets a new one). Quoted, ready for ``ETag``."""
    return f'"{inode:x}-{mtime_ns:x}-{size:x}"'


# -- ranges (RFC 9110 14) ---------------------------------------------------------

def _ranges(method: str, value: str, if_range: str | None, size: int, etag: str,
            mtime: int) -> Decision:
    if method != "GET":
        return Decision(Status.OK, ignored=RangeIgnored.NOT_GET)
    if if_range is not None and not _if_range_matches(if_range, etag, mtime):
        return Decision(Status.OK, ignored=RangeIgnored.IF_RANGE_MISMATCH)
    parsed = parse_range(value)
    if isinstance(parsed, RangeIgnored):
        return Decision(Status.OK, ignored=parsed)
    if size == 0:
        return Decision(Status.OK, ignored=RangeIgnored.EMPTY_FILE)
    satisfiable = [r for r in (_resolve(spec, size) for spec in parsed) if r is not None]
    if not satisfiable:
        return Decision(Status.RANGE_NOT_SATISFIABLE)
    return Decision(Status.PARTIAL_CONTENT, coalesce(satisfiable))


def _if_range_matches(value: str, etag: str, mtime: int) -> bool:
    """13.1.5: an entity tag matches by strong comparison (a weak one never
    does); a date matches only if it equals ``Last-Modified`` exactly."""
    value = value.strip()
    if value.startswith(('"', "W/")):
        return value == etag
    return _http_date(value) == mtime


#: A range spec: ``first-last``, ``first-`` or ``-suffix`` (14.1.1). ``None``
#: stands for an absent position.
RangeSpec = tuple[int | None, int | None]

_DIGITS = re.compile(r"[0-9]+")


def parse_range(value: str) -> list[RangeSpec] | RangeIgnored:
    """Parse a ``Range`` value into range specs, or say why it is ignored.

    ``ranges-specifier = range-unit "=" range-set`` (14.1.1); the unit is
    case-insensitive (14.1); list elements may be empty and surrounded by
    optional whitespace (5.6.1). Parsing stops after ``MAX_RANGES`` specs."""
    unit, equals, range_set = value.partition("=")
    if not equals or not unit or unit.strip(" \t") != unit:
        return RangeIgnored.INVALID
    if unit.lower() != "bytes":
        return RangeIgnored.UNKNOWN_UNIT if _is_token(unit) else RangeIgnored.INVALID
    members = range_set.split(",", MAX_RANGES)
    if len(members) > MAX_RANGES:
        return RangeIgnored.TOO_MANY
    specs: list[RangeSpec] = []
    for member in members:
        member = member.strip(" \t")
        if not member:
            continue
        spec = _parse_spec(member)
        if spec is None:
            return RangeIgnored.INVALID
        specs.append(spec)
    return specs or RangeIgnored.INVALID


def _parse_spec(member: str) -> RangeSpec | None:
    first, dash, last = member.partition("-")
    if not dash:
        return None
    if not first:  # suffix-range = "-" suffix-length
        return (None, _position(last)) if last else None
    start = _position(first)
    if start is None:
        return None
    if not last:
        return (start, None)
    end = _position(last)
    if end is None or end < start:  # 14.1.1: last-pos < first-pos is invalid
        return None
    return (start, end)


def _position(digits: str) -> int | None:
    if _DIGITS.fullmatch(digits) is None:
        return None
    return _BEYOND if len(digits) > _MAX_DIGITS else int(digits)


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _is_token(text: str) -> bool:
    return _TOKEN.fullmatch(text) is not None


def _resolve(spec: RangeSpec, size: int) -> ByteRange | None:
    """The bytes a spec selects in a file of ``size`` > 0 bytes, or ``None``
    if it is unsatisfiable (14.1.1: first-pos beyond the end, or a suffix of 0)."""
    first, last = spec
    if first is None:
        assert last is not None
        if last == 0:
            return None
        return ByteRange(max(size - last, 0), size - 1)
    if first >= size:
        return None
    return ByteRange(first, size - 1 if last is None else min(last, size - 1))


def coalesce(ranges: list[ByteRange], gap: int = COALESCE_GAP) -> tuple[ByteRange, ...]:
    """Merge ranges that overlap or lie closer than ``gap`` bytes (14.2 allows
    it "regardless of the order"); the parts keep the order in which their
    first member was requested (14.6: "the same order ... excluding those
    ranges that were ... coalesced")."""
    order = sorted(range(len(ranges)), key=lambda i: ranges[i].first)
    groups: list[tuple[int, ByteRange]] = []  # (earliest request index, merged range)
    for index in order:
        current = ranges[index]
        if groups and current.first <= groups[-1][1].last + 1 + gap:
            position, merged = groups[-1]
            groups[-1] = (min(position, index),
                          ByteRange(merged.first, max(merged.last, current.last)))
        else:
            groups.append((index, current))
    groups.sort(key=lambda group: group[0])
    return tuple(merged for _, merged in groups)


# -- multipart/byteranges (RFC 9110 14.6) ------------------------------------------

def multipart_heads(ranges: tuple[ByteRange, ...], size: int, content_type: str,
                    boundary: str) -> tuple[list[bytes], bytes]:
    """The bytes around each part of a ``multipart/byteranges`` body: one head
    per range (delimiter, ``Content-Type``, ``Content-Range``, blank line; the
    part's data follows, then CRLF) and the closing delimiter. The body's
    length is ``sum(len(head)) + sum(data + 2) + len(closing)``: known before
    the first byte, so the response has a ``Content-Length``."""
    heads = [
        (f"--{boundary}\r\nContent-Type: {content_type}\r\n"
         f"Content-Range: {r.content_range(size)}\r\n\r\n").encode("latin-1")
        for r in ranges
    ]
    return heads, f"--{boundary}--".encode("latin-1")


def multipart_length(ranges: tuple[ByteRange, ...], heads: list[bytes], closing: bytes) -> int:
    """Content-Length of the body ``multipart_heads`` frames."""
    return sum(len(h) for h in heads) + sum(r.length + 2 for r in ranges) + len(closing)
