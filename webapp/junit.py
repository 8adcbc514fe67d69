"""Streaming parser for JUnit-family XML test reports.

One reader covers the dialects Greenbar imports: Ant/classic JUnit, Maven
Surefire and Failsafe, Gradle, the JUnit Platform console, pytest (xunit1 and
xunit2), jest-junit, mocha-junit-reporter, go-junit-report, gotestsum, PHPUnit,
CTest and Robot Framework.  ``iter_suites(fileobj)`` reads a binary file
object (wrap gzip bodies in ``gzip.GzipFile`` first) and yields
``(ParsedSuite, [ParsedCase, ...])`` pairs.  Call it once per file for
multi-file uploads.

Streaming and memory
    The body is fed to libxml2 in 64 KiB chunks through an lxml parser
    *target*: no element tree is built at all, and character data is kept
    only inside the elements that are stored, already cut to the limits
    below while it streams in.  What is held is the parsed case list of the
    current *top-level suite* (a ``<testsuite>`` that is the root or a child
    of ``<testsuites>``): its cases must be complete before it is yielded,
    because re-runs anywhere inside it are merged.  A pytest report is one
    top-level suite, so its parsed cases are held until it ends.  The cyclic
    garbage collector is paused while the parser's own code runs (never while
    the caller holds a yielded suite): see ``_pause_gc``.

Safety
    No DTD is loaded, no external entity is resolved and nothing is fetched
    from the network.  A document with a DOCTYPE (and so any entity declaration,
    internal subset or external DTD) is refused before its root element is
    read; invalid XML (with its line and column), an empty body, a body that
    is not XML and a root other than ``<testsuites>``/``<testsuite>`` are
    refused too.  Every refusal is a ``ReportError`` (a ``ValueError``).
    ``max_bytes`` caps the bytes read from ``fileobj``, which is what bounds
    a decompressed gzip body, and raises ``ReportTooLarge``.

Suite names and test identity
    A test is identified by its suite name plus its case name.  A case's
    suite name is its ``classname`` when that is a real grouping key:
    non-empty and not derived from the case title (it is not equal to the
    name, and neither ends with the other after a space, as jest-junit's
    "{classname} {title}" and mocha's "fullTitle"/"title" pairs do).  This
    splits pytest's single "pytest" suite into one suite per module/class and
    keeps Surefire, Ant, Gradle and Go reports as they are (their classname
    equals the suite name).  Otherwise the suite name is the path of
    ``<testsuite>`` names from the top-level suite down to the case's own
    suite, empty names skipped, joined with " › " (e.g. "Suites › Login"),
    or "(unnamed suite)".  Cases landing in the same suite name within one
    top-level suite form one ParsedSuite.  The same suite name can still be
    yielded more than once per file (two top-level suites with equal names,
    like jest-junit's "undefined"), so a caller storing suites should look
    them up by name.  Names are kept exactly as written (never shortened or
    stripped): they are identities.

Statuses
    ``<error>`` beats ``<failure>`` beats ``<skipped>``; a case with none of
    them is SUCCESS, except that a ``status`` attribute of "notrun",
    "disabled" or "skipped" (CTest) makes it SKIPPED.  pytest's xfail is
    written as ``<skipped type="pytest.xfail">`` and is SKIPPED; a strict
    xpass is a failure.  ``message`` is the element's ``message`` attribute,
    or the first non-blank line of its text when the attribute is missing or
    empty; ``details`` is its text; ``error_type`` its ``type`` attribute.

Re-runs and flakiness
    Surefire/Failsafe (and Gradle's mergeReruns): each ``flakyFailure`` or
    ``flakyError`` is a failed earlier attempt of a case that then passed:
    the case is SUCCESS, flaky, with one attempt more per element.  Each
    ``rerunFailure``/``rerunError`` is a further failed attempt: the case
    keeps its failure and counts one attempt more per element.
    A case reported more than once in the same suite (pytest-rerunfailures,
    gotestsum --rerun-fails) is merged into one: the last record gives the
    status, duration, texts and classname, attempts add up, and the case is
    flaky when the last record passed and an earlier one was not a skip.  An
    earlier *passing* record counts as a failed attempt on purpose:
    pytest-rerunfailures writes each failed attempt as an empty
    ``<testcase>`` (its failure is lost), and a runner only repeats a test
    that failed.  A flaky case keeps the message, details and type of its
    last failed attempt when one was recorded.

Times
    ``time`` is seconds.  Missing, empty, unreadable ("N/A"), negative
    values and values above ``MAX_DURATION`` (10^9 s, the API's bound) give
    ``None``.  "1,234.5" and "1,234" use commas as thousands separators
    (Surefire's own time format); "0,5" is a decimal comma.  A suite
    ``timestamp`` is ISO 8601, with or without an offset; a naive one is
    taken as UTC.  ``started`` is always an aware UTC datetime
    or ``None`` (the innermost suite element with a readable timestamp in the
    API's range, 1970 to 2999, its end included).  A timestamp that is
    unreadable or out of that range is dropped, and the suite's ``warnings``
    say so.  A
    suite's ``duration`` is its readable ``time`` attribute when the
    ParsedSuite comes from exactly one ``<testsuite>`` element holding only
    its cases, else the sum of its cases' known durations (None if none is).

Limits (in characters; a longer text keeps its head and its tail around a
marker saying how many characters were cut, and is never longer than the
limit)
    ``OUTPUT_LIMIT`` for each case's or suite's system-out and system-err
    (all such elements of one case or suite joined), ``DETAILS_LIMIT`` for
    failure details, ``MESSAGE_LIMIT`` for messages, ``PROPERTY_VALUE_LIMIT``
    per property value (``PROPERTY_NAME_LIMIT`` per name) and ``MAX_PROPERTIES``
    properties per suite or case.
    Suites nested deeper than ``MAX_SUITE_DEPTH`` make the report refused.
"""

import gc
import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timezone

from lxml import etree

from webapp.domain import DETAILS_LIMIT
from webapp.domain import MAX_DURATION
from webapp.domain import MAX_PROPERTIES
from webapp.domain import MAX_TIME
from webapp.domain import MAX_YEAR
from webapp.domain import MESSAGE_LIMIT
from webapp.domain import MIN_TIME
from webapp.domain import MIN_YEAR
from webapp.domain import OUTPUT_LIMIT
from webapp.domain import PROPERTY_NAME_LIMIT
from webapp.domain import PROPERTY_VALUE_LIMIT
from webapp.domain import Status
from webapp.domain import clip
from webapp.domain import cut_middle
from webapp.domain import end_of

SUCCESS = Status.SUCCESS
FAILED = Status.FAILED
ERROR = Status.ERROR
SKIPPED = Status.SKIPPED

# real reports nest suites a few levels deep (PHPUnit 4, Robot one per
# directory); suite paths cost memory quadratic in the depth, so cap it.
MAX_SUITE_DEPTH = 64
PATH_SEPARATOR = " › "
UNNAMED_SUITE = "(unnamed suite)"
UNNAMED_CASE = "(unnamed case)"

CHUNK_SIZE = 64 * 1024
# how far into the body to look for a DOCTYPE before the root element; past
# this the parser's own doctype callback still refuses it.
_PROLOG_SCAN_BYTES = 64 * 1024
_ROOT_TAGS = ("testsuites", "testsuite")
_SKIP_STATUS_ATTRS = frozenset({"notrun", "disabled", "skipped"})
_RESULT_TAGS = {"skipped": SKIPPED, "failure": FAILED, "error": ERROR}
_RANK = {SKIPPED: 1, FAILED: 2, ERROR: 3}
_FLAKY_TAGS = frozenset({"flakyFailure", "flakyError"})
_RERUN_TAGS = frozenset({"rerunFailure", "rerunError"})


class ReportError(ValueError):
    """The body is not a JUnit XML report Greenbar can read safely."""


class ReportTooLarge(ReportError):
    """The report is longer than the ``max_bytes`` the caller allowed."""


@dataclass(slots=True)
class ParsedSuite:
    """One suite of a report, ready to store."""

    name: str
    started: datetime | None = None
    duration: float | None = None
    properties: list[tuple[str, str]] = field(default_factory=list)
    system_out: str | None = None
    system_err: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ParsedCase:
    """One test case of a suite, re-runs already merged."""

    name: str
    classname: str
    status: str
    duration: float | None = None
    message: str | None = None
    details: str | None = None
    error_type: str | None = None
    system_out: str | None = None
    system_err: str | None = None
    attempts: int = 1
    flaky: bool = False
    properties: list[tuple[str, str]] | None = None


def iter_suites(fileobj, *, max_bytes=None) -> Iterator[tuple[ParsedSuite, list[ParsedCase]]]:
    """Yield each suite of a JUnit XML report with its complete case list.

    :param fileobj: binary file object positioned at the start of the XML.
    :param max_bytes: optional cap on the bytes read from ``fileobj``.
    :raise ReportError: the body is unsafe, invalid or not a JUnit report.
    :raise ReportTooLarge: more than ``max_bytes`` bytes were read.
    """
    reader = _GuardedReader(fileobj, max_bytes)
    target = _Target()
    grouper = target.suites
    parser = etree.XMLParser(
        target=target,
        # "internal" never fetches an external entity; with False libxml2 hands
        # a target attribute values with "&" re-escaped as "&#38;".  Any entity
        # declaration sits in a DOCTYPE, which is refused before it is parsed.
        resolve_entities="internal",
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        collect_ids=False,
    )
    gc_was_enabled = _pause_gc()
    try:
        while chunk := reader.read(CHUNK_SIZE):
            parser.feed(chunk)
            if grouper.ready:
                ready, grouper.ready = grouper.ready, []
                _resume_gc(gc_was_enabled)
                yield from ready
                gc_was_enabled = _pause_gc()
        parser.close()
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(exc, reader) from None
    finally:
        _resume_gc(gc_was_enabled)
    yield from grouper.ready


def _pause_gc():
    """Pause the cyclic garbage collector while the parser's own code runs.

    Each case leaves one new tracked object (its ParsedCase) behind, so the
    collector would run every 700 cases and walk them all again, for nothing:
    cases hold no cycles.  Pausing it made the parse 10-30% faster here.  It
    runs again at every hand-over to the caller (each yield), on errors and
    on close, so it is never left paused while the caller works.
    """
    enabled = gc.isenabled()
    gc.disable()
    return enabled


def _resume_gc(was_enabled):
    """Restart the cyclic garbage collector if it was running before the pause."""
    if was_enabled:
        gc.enable()


def count_statuses(cases) -> dict[str, int]:
    """Count cases per status (all four keys present) plus ``"flaky"``."""
    counts = {SUCCESS: 0, FAILED: 0, ERROR: 0, SKIPPED: 0, "flaky": 0}
    for case in cases:
        counts[case.status] += 1
        counts["flaky"] += case.flaky
    return counts


def _syntax_error(exc, reader):
    """Turn a libxml2 parse failure into a ReportError naming line and column."""
    if reader.bytes_read == 0:
        return ReportError("the report is empty")
    # libxml2 appends ", line N, column M" itself; say it once, up front.
    message = exc.msg
    suffix = f", line {exc.lineno}, column "
    if suffix in message:
        message = message[: message.rindex(suffix)]
    return ReportError(f"invalid XML at line {exc.lineno}, column {exc.offset + 1}: {message}")


def _doctype_error(where=""):
    """The refusal of a DOCTYPE, with its position when known."""
    return ReportError(f"DOCTYPE/DTD declarations are not allowed in a report{where}")


class _GuardedReader:
    """File wrapper that counts bytes, enforces a cap and refuses a DOCTYPE early."""

    def __init__(self, raw, max_bytes):
        self._raw = raw
        self._max = max_bytes
        self._head = b""
        self._scanning = True
        self.bytes_read = 0

    def read(self, size):
        """Read from the wrapped object, checking each chunk on the way."""
        try:
            data = self._raw.read(size)
        except (OSError, EOFError, zlib.error) as exc:
            raise ReportError(f"could not read the report: {exc}") from None
        self.bytes_read += len(data)
        if self._max is not None and self.bytes_read > self._max:
            raise ReportTooLarge(f"the report is larger than {self._max} bytes")
        if self._scanning and data:
            self._head += data
            self._scanning = not _prolog_done(self._head) and len(self._head) < _PROLOG_SCAN_BYTES
            if not self._scanning:
                self._head = b""
        return data


def _prolog_done(head):
    """Scan the bytes before the root element; raise on a DOCTYPE.

    Return True once the root element starts, False if more bytes are needed.
    Only ASCII-compatible encodings are scanned; for others the parser's
    doctype callback does the refusing.
    """
    i = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    while True:
        j = head.find(b"<", i)
        if j < 0 or j + 1 >= len(head):
            return False
        if head[j + 1] == 0x3F:  # "<?": the XML declaration or a processing instruction
            end = head.find(b"?>", j + 2)
            if end < 0:
                return False
            i = end + 2
        elif head.startswith(b"<!--", j):
            end = head.find(b"-->", j + 4)
            if end < 0:
                return False
            i = end + 3
        elif head[j + 1] == 0x21:  # "<!": before the root only a DOCTYPE can stand here
            line = head.count(b"\n", 0, j) + 1
            column = j - (head.rfind(b"\n", 0, j) + 1) + 1
            raise _doctype_error(f" (line {line}, column {column})")
        else:
            return True


class _Text:
    """Character data of one element, kept within a limit while it streams in."""

    __slots__ = ("limit", "parts", "size", "head", "cut")

    def __init__(self, limit):
        self.limit = limit
        self.parts = []
        self.size = 0
        self.head = None
        self.cut = 0

    def add(self, text):
        """Append a piece of character data."""
        self.parts.append(text)
        self.size += len(text)
        if self.size > 4 * self.limit:
            self._squeeze()

    def _squeeze(self):
        """Keep the first and the last ``limit`` characters, count the rest."""
        text = "".join(self.parts)
        if self.head is None:
            self.head = text[: self.limit]
            text = text[self.limit :]
        self.cut += len(text) - self.limit
        text = text[-self.limit :]
        self.parts = [text]
        self.size = len(text)

    def value(self):
        """The text within the limit, or None when it is blank."""
        text = "".join(self.parts)
        if self.head is not None:
            return cut_middle(self.head, text, len(self.head) + self.cut + len(text), self.limit)
        if not text or text.isspace():
            return None
        return clip(text, self.limit)


class _SuiteInfo:
    """What is known of one <testsuite> element (or the root standing in for one)."""

    __slots__ = ("parent", "path", "started", "time", "properties", "out", "err", "groups")

    def __init__(self, attrib, parent):
        name = attrib.get("name") or ""
        self.parent = parent
        parent_path = parent.path if parent is not None else ""
        self.path = parent_path + PATH_SEPARATOR + name if parent_path and name else parent_path or name
        self.started = attrib.get("timestamp")
        self.time = attrib.get("time")
        self.properties = []
        self.out = None
        self.err = None
        self.groups = []

    def lineage(self):
        """This suite's enclosing suites, outermost first, then itself."""
        chain = []
        node = self
        while node is not None:
            chain.append(node)
            node = node.parent
        chain.reverse()
        return chain


class _Group:
    """Cases that share one suite name inside a top-level suite."""

    __slots__ = ("suite", "cases", "infos", "out", "err")

    def __init__(self, name, info):
        self.suite = ParsedSuite(name)
        self.cases = {}
        self.infos = [info]
        self.out = []
        self.err = []


class _PropertyReader:
    """Reads the <property> elements of one <properties> list into ``(name, value)`` pairs.

    A value is the ``value`` attribute, or else the element's text; names and
    values are clipped, and a list keeps at most ``MAX_PROPERTIES`` pairs.
    """

    __slots__ = ("into", "name", "text")

    def __init__(self):
        self.into = None
        self.name = None
        self.text = None

    def start(self, attrib):
        """A <property> opens: keep its value, or return the sink its text goes to."""
        self.name = self.text = None
        name = attrib.get("name")
        if not name or len(self.into) >= MAX_PROPERTIES:
            return None
        name = clip(name, PROPERTY_NAME_LIMIT)
        value = attrib.get("value")
        if value is not None:
            self.into.append((name, clip(value, PROPERTY_VALUE_LIMIT)))
            return None
        self.name, self.text = name, _Text(PROPERTY_VALUE_LIMIT)
        return self.text

    def end(self):
        """A <property> closes: keep the value its text gave."""
        if self.name is not None:
            self.into.append((self.name, self.text.value() or ""))
        self.name = self.text = None


class _CaseBuilder:
    """Builds one ParsedCase from a <testcase> element and the elements inside it.

    ``open`` reads the case's attributes; ``child_start`` and ``child_end`` the
    results, re-runs, outputs and properties inside it, leaving in ``sink`` the
    text that character data goes to; ``close`` applies them and hands the case over.
    """

    __slots__ = (
        "case",
        "sink",
        "properties",
        "depth",
        "dirty",
        "child_tag",
        "child_sink",
        "result",
        "result_rank",
        "details",
        "flaky",
        "flaky_details",
        "out",
        "err",
    )

    def __init__(self):
        self.case = None
        self.sink = None
        self.properties = _PropertyReader()
        self._forget()

    def open(self, attrib):
        """A <testcase> opens: its name, classname, duration and a skip ``status`` attribute."""
        get = attrib.get
        time_text = get("time")
        try:
            duration = float(time_text)
            if not 0.0 <= duration <= MAX_DURATION:
                duration = None
        except (TypeError, ValueError):
            duration = _seconds(time_text)
        self.case = ParsedCase(
            get("name") or UNNAMED_CASE, get("classname") or get("class") or "", SUCCESS, duration
        )
        status = get("status")
        if status is not None and status.lower() in _SKIP_STATUS_ATTRS:
            self.case.status = SKIPPED

    def child_start(self, tag, attrib):
        """An element inside the case opens."""
        self.depth += 1
        self.dirty = True
        if self.depth == 1:
            self.child_tag = tag
            self.sink = self.child_sink = self._child_sink(tag, attrib)
        elif self.depth == 2:
            if tag == "stackTrace" and self.child_tag in _FLAKY_TAGS:
                self.sink = self.flaky_details = _Text(DETAILS_LIMIT)
            elif tag == "property" and self.properties.into is not None:
                self.sink = self.properties.start(attrib)

    def _child_sink(self, tag, attrib):
        """Take in a direct child of the case; return where its text goes, if anywhere."""
        if tag in _RESULT_TAGS:
            status = _RESULT_TAGS[tag]
            if _RANK[status] > self.result_rank:
                self.result_rank = _RANK[status]
                self.result = (status, attrib.get("message"), attrib.get("type"))
                self.details = _Text(DETAILS_LIMIT)
                return self.details
        elif tag in _FLAKY_TAGS:
            self.case.attempts += 1
            self.flaky = (attrib.get("message"), attrib.get("type"))
            self.flaky_details = None
        elif tag in _RERUN_TAGS:
            self.case.attempts += 1
        elif tag == "system-out":
            self.out = self.out or _Text(OUTPUT_LIMIT)
            return self.out
        elif tag == "system-err":
            self.err = self.err or _Text(OUTPUT_LIMIT)
            return self.err
        elif tag == "properties":
            if self.case.properties is None:
                self.case.properties = []
            self.properties.into = self.case.properties
        return None

    def child_end(self, tag):
        """An element inside the case closes."""
        if self.depth == 1:
            self.sink = None
            self.properties.into = None
        elif self.depth == 2:
            if tag == "property" and self.properties.into is not None:
                self.properties.end()
            self.sink = self.child_sink
        self.depth -= 1

    def close(self):
        """The <testcase> closes: apply what its children said and hand the case over."""
        case, self.case = self.case, None
        if self.dirty:
            if self.result is not None:
                status, message, error_type = self.result
                case.status = status
                _describe(case, message, error_type, self.details.value())
            elif self.flaky is not None:
                case.flaky = True
                details = self.flaky_details.value() if self.flaky_details is not None else None
                _describe(case, self.flaky[0], self.flaky[1], details)
            if self.out is not None:
                case.system_out = self.out.value()
            if self.err is not None:
                case.system_err = self.err.value()
            self._forget()
        return case

    def _forget(self):
        """Forget the children of the last case."""
        self.depth = 0
        self.dirty = False
        self.child_tag = self.child_sink = None
        self.result = None
        self.result_rank = 0
        self.details = self.flaky = self.flaky_details = None
        self.out = self.err = None


class _SuiteGrouper:
    """Tracks the open <testsuite> elements and sorts finished cases into suites by name.

    A case's suite name is its classname when that is a real grouping key, else
    the path of the suites around it (see the module doc). When a top-level
    suite closes, the suites its cases formed are queued in ``ready``.
    """

    __slots__ = ("ready", "stack", "loose", "root_attrib", "groups", "fallback", "last_key", "last_cases")

    def __init__(self):
        self.ready = []
        self.stack = []
        self.loose = None
        self.root_attrib = {}
        self.groups = {}
        self.fallback = UNNAMED_SUITE
        self.last_key = None
        self.last_cases = None

    def open_root(self, attrib):
        """A <testsuites> root opens: cases directly under it belong to it."""
        self.root_attrib = dict(attrib)
        self._use(self.current())

    def open_suite(self, attrib):
        """A <testsuite> opens."""
        if len(self.stack) >= MAX_SUITE_DEPTH:
            raise ReportError(f"suites are nested more than {MAX_SUITE_DEPTH} levels deep")
        info = _SuiteInfo(attrib, self.stack[-1] if self.stack else None)
        self.stack.append(info)
        self._use(info)

    def close_suite(self):
        """A <testsuite> closes; a top-level one hands out its suites."""
        self.stack.pop()
        if not self.stack:
            self.flush()
        self._use(self.current())

    def current(self):
        """The innermost open suite, or the root standing in for one."""
        if self.stack:
            return self.stack[-1]
        if self.loose is None:
            self.loose = _SuiteInfo(self.root_attrib, None)
        return self.loose

    def add(self, case):
        """File a finished case under its suite name, merging it with an earlier record of it."""
        name = case.name
        key = case.classname
        if (
            not key
            or key == name
            or ((" " in name or " " in key) and (key.endswith(" " + name) or name.endswith(" " + key)))
        ):
            key = self.fallback
        if key != self.last_key:
            self.last_key = key
            self.last_cases = self._group(key).cases
        earlier = self.last_cases.setdefault(name, case)
        if earlier is not case:
            self.last_cases[name] = _merge(earlier, case)

    def flush(self):
        """Queue the suites of the finished top-level suite and start afresh."""
        groups, self.groups = self.groups, {}
        self.last_key = None
        if not groups:
            return
        first = next(iter(groups.values()))
        seen = set()
        for group in groups.values():
            for info in group.infos:
                for node in info.lineage():
                    if id(node) not in seen:
                        seen.add(id(node))
                        # a suite's own texts go to its first group, an enclosing
                        # suite's to the first group of the top-level suite.
                        owner = next((groups[key] for key in node.groups if key in groups), first)
                        owner.out.append(node.out)
                        owner.err.append(node.err)
                        # the root standing in for a suite outlives this flush.
                        node.out = node.err = None
        for group in groups.values():
            self.ready.append((_finish_group(group), list(group.cases.values())))

    def _use(self, info):
        """Send the next cases to ``info``."""
        self.fallback = info.path or UNNAMED_SUITE
        self.last_key = None

    def _group(self, key):
        """Find or open the group ``key`` and tie it to the current suite."""
        info = self.current()
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = _Group(key, info)
            info.groups.append(key)
        elif info not in group.infos:
            group.infos.append(info)
            info.groups.append(key)
        return group


class _Target:
    """lxml parser target: hands each element to the case builder or the suite grouper.

    ``start``, ``end`` and ``data`` run once per element or text piece, so a
    passing case (one start, one end, one whitespace data) takes the short
    paths at their top.
    """

    def __init__(self):
        self.cases = _CaseBuilder()
        self.suites = _SuiteGrouper()
        self.properties = _PropertyReader()  # a suite's
        self.rooted = False
        self.sink = None

    def start(self, tag, attrib):
        """An element opens."""
        cases = self.cases
        if cases.case is not None:
            cases.child_start(tag, attrib)
            self.sink = cases.sink
        elif tag == "testcase" and self.rooted:
            cases.open(attrib)
        elif self.rooted:
            self._suite_child_start(tag, attrib)
        else:
            self._root_start(tag, attrib)

    def end(self, tag):
        """An element closes."""
        cases = self.cases
        if cases.case is None:
            self._suite_child_end(tag)
        elif cases.depth:
            cases.child_end(tag)
            self.sink = cases.sink
        else:
            self.suites.add(cases.close())

    def data(self, text):
        """Character data arrives (in pieces); keep it only inside stored elements."""
        if self.sink is not None:
            self.sink.add(text)

    def doctype(self, *_declaration):
        """Refuse any DOCTYPE that the prolog scan did not already catch."""
        raise _doctype_error()

    def close(self):
        """The document ended: hand out cases that sat directly under <testsuites>."""
        self.suites.flush()

    def _root_start(self, tag, attrib):
        """Check the root element; it must be <testsuites> or <testsuite>."""
        if tag not in _ROOT_TAGS:
            raise ReportError(
                f"not a JUnit report: the root element is <{tag}>, expected <testsuites> or <testsuite>"
            )
        self.rooted = True
        if tag == "testsuite":
            self.suites.open_suite(attrib)
        else:
            self.suites.open_root(attrib)

    def _suite_child_start(self, tag, attrib):
        """An element outside any case opens: a suite or one of its suite-level children."""
        if tag == "testsuite":
            self.suites.open_suite(attrib)
        elif tag == "properties":
            self.properties.into = self.suites.current().properties
        elif tag == "property" and self.properties.into is not None:
            self.sink = self.properties.start(attrib)
        elif tag == "system-out":
            info = self.suites.current()
            info.out = self.sink = info.out or _Text(OUTPUT_LIMIT)
        elif tag == "system-err":
            info = self.suites.current()
            info.err = self.sink = info.err or _Text(OUTPUT_LIMIT)

    def _suite_child_end(self, tag):
        """An element outside any case closes."""
        if tag == "testsuite":
            self.suites.close_suite()
        elif tag == "properties":
            self.properties.into = None
        elif tag == "property" and self.properties.into is not None:
            self.properties.end()
        self.sink = None


def _finish_group(group):
    """Fill a group's ParsedSuite from the suite elements its cases came from."""
    suite = group.suite
    seen = set()
    for info in group.infos:
        lineage = info.lineage()
        for node in lineage:
            for prop in node.properties:
                if prop not in seen and len(suite.properties) < MAX_PROPERTIES:
                    seen.add(prop)
                    suite.properties.append(prop)
        if suite.started is None:
            for node in reversed(lineage):
                suite.started, problem = _timestamp(node.started)
                if problem is not None and problem not in suite.warnings:
                    suite.warnings.append(problem)
                if suite.started is not None:
                    break
    suite.system_out = _join_texts(group.out)
    suite.system_err = _join_texts(group.err)
    infos = group.infos
    if len(infos) == 1 and len(infos[0].groups) == 1:
        suite.duration = _seconds(infos[0].time)
    if suite.duration is None:
        known = [case.duration for case in group.cases.values() if case.duration is not None]
        suite.duration = math.fsum(known) if known else None
    timed = suite.started is not None and suite.duration is not None
    if timed and end_of(suite.started, suite.duration) is None:
        suite.warnings.append(
            f"timestamp {suite.started.isoformat()} plus the suite's time ({suite.duration:g} s) ends after "
            f"{MAX_YEAR}; the time was dropped"
        )
        suite.started = None
    return suite


def _join_texts(texts):
    """Join the suite-level texts given to one group, within OUTPUT_LIMIT."""
    values = [text.value() for text in texts if text is not None]
    values = [value for value in values if value]
    return clip("".join(values), OUTPUT_LIMIT) if values else None


def _describe(case, message, error_type, details):
    """Set message, type and details of a case from one result element."""
    if not message and details:
        message = next(line for line in details.splitlines() if line.strip()).strip()
    case.message = clip(message, MESSAGE_LIMIT) if message else None
    case.error_type = error_type or None
    case.details = details


def _merge(earlier, later):
    """Fold a repeated record of the same case into one; the later record wins."""
    later.attempts += earlier.attempts
    if later.status == SUCCESS and (later.flaky or earlier.flaky or earlier.status != SKIPPED):
        later.flaky = True
        failed_before = earlier.status in (FAILED, ERROR) or earlier.flaky
        if failed_before and later.message is None and later.details is None:
            later.message = earlier.message
            later.details = earlier.details
            later.error_type = earlier.error_type
    return later


def _seconds(value):
    """Read a duration in seconds; odd or negative values give None."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = _odd_seconds(value)
        if seconds is None:
            return None
    if not 0.0 <= seconds <= MAX_DURATION:
        return None
    return seconds


def _odd_seconds(value):
    """Read "1,234.5" (thousands commas) or "0,5" (decimal comma)."""
    text = value.strip()
    if "," not in text:
        return None
    whole, dot, fraction = text.partition(".")
    groups = whole.split(",")
    if groups[0].isdigit() and groups[0][0] != "0" and all(len(g) == 3 and g.isdigit() for g in groups[1:]):
        text = "".join(groups) + dot + fraction
    elif not dot and len(groups) == 2:
        text = groups[0] + "." + groups[1]
    try:
        return float(text)
    except ValueError:
        return None


def _timestamp(value):
    """Read a suite's ISO 8601 timestamp (naive means UTC) by the API's range.

    :return: ``(aware UTC datetime or None, why a given timestamp was dropped or None)``.
    """
    if value is None or not value.strip():
        return None, None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None, f"timestamp {value!r} is not an ISO 8601 time; it was dropped"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    # aware datetimes compare by their UTC instants without converting, which could overflow
    if not MIN_TIME <= moment < MAX_TIME:
        return None, f"timestamp {value!r} is outside the years {MIN_YEAR} to {MAX_YEAR}; it was dropped"
    return moment.astimezone(timezone.utc), None
