"""Greenbar's domain constants and rules: one home for each, below every other module.

Statuses, the counters kept on suites and builds, the limits of stored text and
the one rule that clips text to them, the accepted range of times and ids, how
elapsed time is measured, and how a count reads in words. Models, services, the
API's schemas and the pages all take them from here, so a limit is typed once.
This module imports nothing from Greenbar.
"""

import enum
import re
from datetime import datetime
from datetime import timedelta
from datetime import timezone


class Status(enum.StrEnum):
    """A finished case's result. A ``str``: it compares equal to, and is stored as, its name."""

    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    ERROR = "ERROR"
    SKIPPED = "SKIPPED"


STATUSES = tuple(Status)
# a failing case breaks the build; a case that ran counts towards the pass rate (skips do not).
# Tuples, not frozensets: they go into SQL IN lists, which should read the same in every process.
FAILING = (Status.FAILED, Status.ERROR)
RAN = (Status.SUCCESS, Status.FAILED, Status.ERROR)
# the worst status of a suite or build names it: ERROR beats FAILED beats SUCCESS beats SKIPPED
WORST_FIRST = (Status.ERROR, Status.FAILED, Status.SUCCESS, Status.SKIPPED)

# the aggregate counters every suite and build keeps (the columns of models.CountersMixin)
COUNTERS = ("cases_total", "passed", "failed", "errored", "skipped", "flaky", "cases_duration")
# the counter a finished case of each status adds one to
STATUS_COUNTER = {
    Status.SUCCESS: "passed",
    Status.FAILED: "failed",
    Status.ERROR: "errored",
    Status.SKIPPED: "skipped",
}

# Text limits, in characters. Names are identities and are never clipped: the API refuses a
# longer one, the JUnit import shortens it with a digest (see webapp.imports.fit_name).
NAME_LIMIT = 255  # instance, build, branch, revision and suite names
CASE_NAME_LIMIT = 512
# the longest retention by age an instance may set: a hundred years
MAX_KEEP_DAYS = 36_500
URL_LIMIT = 2048
DESCRIPTION_LIMIT = 16000
USERNAME_LIMIT = 80
# free text is accepted at any length and stored clipped to these (see clip)
MESSAGE_LIMIT = 4096
DETAILS_LIMIT = 65536
OUTPUT_LIMIT = 65536  # each of system-out and system-err
PROPERTY_NAME_LIMIT = 255
PROPERTY_VALUE_LIMIT = 1024
MAX_PROPERTIES = 256  # per suite or case
CASE_TEXT_LIMITS = {
    "message": MESSAGE_LIMIT,
    "details": DETAILS_LIMIT,
    "system_out": OUTPUT_LIMIT,
    "system_err": OUTPUT_LIMIT,
}

# Ids are BIGINT. The largest one accepted is JavaScript's largest exact integer, not 2**63 - 1:
# ids travel as JSON numbers, and a browser's JSON.parse rounds anything above 2**53.
MAX_ID = 2**53 - 1
# Times: the years 1970 to 2999. MySQL's DATETIME cannot hold year 1, and a time past 2999 is a
# client's bug (an epoch in milliseconds read as seconds), not a test run.
MIN_YEAR = 1970
MAX_YEAR = 2999
MIN_TIME = datetime(MIN_YEAR, 1, 1, tzinfo=timezone.utc)
MAX_TIME = datetime(MAX_YEAR + 1, 1, 1, tzinfo=timezone.utc)
MAX_EPOCH = int(MAX_TIME.timestamp())  # Unix seconds
MAX_DURATION = 10**9  # seconds (31 years): longer is a client's bug, not a test
# ISO 8601 times, up to microseconds, with an offset within a day or none (meaning UTC). The
# OpenAPI document states RFC 3339 (a "T" and an offset); a space for the "T" and no offset are
# accepted too, since that is what Python's isoformat() writes.
ISO_DATE = r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
ISO_CLOCK = r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
ISO_OFFSET = r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
ISO_PATTERN = f"{ISO_DATE}[T ]{ISO_CLOCK}{ISO_OFFSET}?$"
RFC3339_PATTERN = f"{ISO_DATE}T{ISO_CLOCK}{ISO_OFFSET}$"
ISO_RULE = "an ISO 8601 time from 1970 to 2999, such as 2021-12-24T18:58:07.123Z"


def parse_iso(value):
    """Read an ISO 8601 time of :data:`ISO_PATTERN` (naive means UTC) as an aware UTC datetime.

    ``re.search`` is how JSON Schema validators apply a pattern, so this accepts
    exactly what the API's document allows (its ``$`` lets one trailing newline through).

    :raise ValueError: not such a time, or not a real date (30 February).
    """
    if not re.search(ISO_PATTERN, value):
        raise ValueError(f"expected {ISO_RULE}")
    try:
        parsed = datetime.fromisoformat(value.removesuffix("\n"))
    except ValueError:
        raise ValueError("not a real date or time (such as 30 February)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def clip(text, limit):
    """Keep ``text`` within ``limit`` characters: its head, a marker saying how much was cut, its tail.

    The one clipping rule for stored text (API writes, the JUnit import, the admin panel).
    Of the two rules Greenbar had, this one is kept because the result is never longer than
    the limit, so the documented size is the stored size, and because the tail survives: in a
    traceback or a log the end (the exception, the last lines before a crash) matters most.
    """
    if text is None or len(text) <= limit:
        return text
    return cut_middle(text, text, len(text), limit)


def cut_middle(head, tail, total, limit):
    """Join the start of ``head`` and the end of ``tail`` around a cut marker, within ``limit``.

    ``total`` is the length of the whole text the two pieces come from (a streaming
    reader keeps only the two ends of a long text).
    """
    # the marker for the real cut is never longer than this estimate
    keep = limit - len(cut_marker(total))
    front = keep // 2
    return head[:front] + cut_marker(total - keep) + tail[len(tail) - (keep - front) :]


def cut_marker(cut):
    """The text put where ``cut`` characters were removed."""
    return f"\n[... {cut} characters truncated by Greenbar ...]\n"


def clip_case_text(fields):
    """Return case ``fields`` with their long texts clipped to :data:`CASE_TEXT_LIMITS`."""
    return {
        name: clip(value, CASE_TEXT_LIMITS[name]) if name in CASE_TEXT_LIMITS else value
        for name, value in fields.items()
    }


def end_of(started, seconds):
    """The time ``seconds`` after ``started``; None if either is unknown or it passes :data:`MAX_TIME`."""
    if started is None or seconds is None or seconds > (MAX_TIME - started).total_seconds():
        return None
    return started + timedelta(seconds=seconds)


def elapsed(started, finished):
    """Wall-clock seconds from ``started`` to ``finished``; None if either is unknown or they are reversed."""
    if started is None or finished is None or finished < started:
        return None
    return (finished - started).total_seconds()


def in_words(number, noun, plural=None):
    """``1 failure``, ``2 failures``: a count with its noun in the right number."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"
