"""Importing JUnit XML reports into a build, exactly once, in one transaction.

The caller (``webapp.api.imports``) hands over the reports as plain file
objects, each optionally gzip-compressed. Each file streams through :mod:`webapp.junit`, and
its cases go into the database in multi-row INSERTs through
:func:`webapp.results.add_cases`, so counters stay exact. Nothing commits here
except :func:`idempotent`, which stores the reply in the same transaction as
the import it answers.

Rules worth knowing (also in docs/junit-import.md):

- a suite whose name is already in the build gets the new cases added to it;
  a case whose name is already in its suite (a re-run uploaded again) is
  merged into the stored one: the new result wins, attempts add up, and a case
  that failed before and passes now is marked flaky;
- names longer than the columns keep their head and get a digest of the whole
  name, so that they stay distinct and stable from build to build;
- a gzip body may decompress to at most ``MAX_REPORT_BYTES`` (default 512 MB):
  a bomb is refused with 413 while it streams, never held in memory.
"""

import gzip
import hashlib
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import OperationalError

from webapp import events
from webapp import junit
from webapp import results
from webapp import telemetry
from webapp.domain import CASE_NAME_LIMIT
from webapp.domain import FAILING
from webapp.domain import MAX_DURATION
from webapp.domain import NAME_LIMIT
from webapp.domain import STATUSES
from webapp.domain import Status
from webapp.domain import end_of
from webapp.exceptions import Conflict
from webapp.exceptions import ReportTooLarge
from webapp.exceptions import ValidationError
from webapp.extensions import db
from webapp.models import IdempotencyRecord
from webapp.models import TestCase
from webapp.models import TestSuite
from webapp.models import utcnow
from webapp.mysql_writes import InsertPipe

DEFAULT_MAX_REPORT_BYTES = 512 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
# a batch is one INSERT statement: small enough for MySQL's max_allowed_packet
BATCH_ROWS = 1000
BATCH_TEXT_CHARS = 4 * 1024 * 1024


def fit_name(name, limit):
    """Shorten a name to ``limit`` characters, keeping it unique with a digest of the whole."""
    if len(name) <= limit:
        return name
    digest = hashlib.blake2b(name.encode(), digest_size=6).hexdigest()
    return name[: limit - len(digest) - 2] + "…~" + digest


class Prefixed:
    """A binary stream with some already-read bytes put back in front."""

    def __init__(self, head, rest):
        self.head = head
        self.rest = rest

    def read(self, size=-1):
        """Read the put-back bytes first, then the rest of the stream."""
        if not self.head:
            return self.rest.read(size)
        if size is None or size < 0:
            data, self.head = self.head + self.rest.read(), b""
            return data
        data, self.head = self.head[:size], self.head[size:]
        return data


def decoded(stream, compressed=None):
    """Return ``stream`` decompressed when it is gzip (said so, or starting with gzip's magic bytes)."""
    head = stream.read(2)
    stream = Prefixed(head, stream)
    if compressed or (compressed is None and head == GZIP_MAGIC):
        return gzip.GzipFile(fileobj=stream, mode="rb")
    return stream


def report_sources(files):
    """``(label, binary stream)`` pairs read from the start, decompressed as needed."""
    sources = []
    for label, stream, compressed in files:
        stream.seek(0)
        sources.append((label, decoded(stream, compressed)))
    return sources


def ignore_progress(cases):
    """A synchronous import reports no progress."""


class ReportWriter:
    """Stores the suites of one or more parsed reports into one build, in the caller's transaction."""

    def __init__(self, build):
        self.build = build
        self.finished = utcnow()
        self.suites = {}
        self.names = {}
        self.created = 0
        self.counts = dict.fromkeys(STATUSES, 0)
        self.flaky = 0
        self.merged = 0
        self.earliest = None
        self.latest_end = None
        self.untimed = 0.0
        self.warnings = []
        self.pipe = InsertPipe()
        self.progress = ignore_progress

    def add_file(self, label, stream, max_bytes):
        """Parse one report and store its suites.

        :raise ValidationError: the file is not a readable, safe JUnit report (400).
        :raise ReportTooLarge: it decompresses to more than ``max_bytes`` (413).
        """
        try:
            for parsed, cases in junit.iter_suites(stream, max_bytes=max_bytes):
                self.warnings += [f"{label}: suite {parsed.name!r}: {warning}" for warning in parsed.warnings]
                self.add_suite(parsed, cases)
        except junit.ReportTooLarge:
            raise ReportTooLarge(
                f"{label}: the report is larger than {max_bytes} bytes once decompressed"
            ) from None
        except junit.ReportError as error:
            raise ValidationError(f"{label}: {error}", {"report": str(error)}) from None

    def add_suite(self, parsed, cases):
        """Store one parsed suite's cases in batches; re-reported cases are merged after."""
        self.note_times(parsed)
        suite, names = self.suite_for(parsed)
        self.add_cases_to(suite, names, cases)

    def add_cases_to(self, suite, names, cases):
        """Store cases into a suite already holding ``names`` (kept up to date): new ones in
        batches, repeated ones merged after."""
        batch, chars, repeats = [], 0, []
        for case in cases:
            name = fit_name(case.name, CASE_NAME_LIMIT)
            if name in names:
                repeats.append((name, case))
                continue
            names.add(name)
            batch.append(self.row(name, case))
            chars += sum(len(text) for text in (case.details, case.system_out, case.system_err) if text)
            if len(batch) >= BATCH_ROWS or chars >= BATCH_TEXT_CHARS:
                results.add_cases(suite, self.build, batch, self.pipe)
                self.progress(sum(self.counts.values()))
                batch, chars = [], 0
        results.add_cases(suite, self.build, batch, self.pipe)
        for name, case in repeats:
            self.merge(suite, name, case)

    def row(self, name, case):
        """The stored fields of a parsed case, counted into the reply."""
        self.counts[case.status] += 1
        self.flaky += case.flaky
        return {
            "name": name,
            "result_status": case.status,
            "finished": self.finished,
            "duration": case.duration,
            "message": case.message or case.error_type,
            "details": case.details,
            "system_out": case.system_out,
            "system_err": case.system_err,
            "attempts": case.attempts,
            "is_flaky": case.flaky,
            "properties": case.properties,
        }

    def suite_for(self, parsed):
        """The stored suite for a parsed one and the case names it holds, creating it when new."""
        name = fit_name(parsed.name, NAME_LIMIT)
        if name in self.suites:
            return self.suites[name], self.names[name]
        self.pipe.drain()
        suite = db.session.scalar(
            select(TestSuite).where(TestSuite.build_id == self.build.id, TestSuite.name == name)
        )
        if suite is None:
            suite = results.create_suite(
                self.build,
                name,
                started=parsed.started,
                finished=end_of(parsed.started, parsed.duration),
                system_out=parsed.system_out,
                system_err=parsed.system_err,
                properties=parsed.properties,
            )
            self.created += 1
            names = set()
        else:
            names = self.stored_names(suite)
        self.suites[name], self.names[name] = suite, names
        return suite, names

    def stored_names(self, suite):
        """The names of the cases an existing suite already holds (repeats of them are merged)."""
        return set(db.session.scalars(select(TestCase.name).where(TestCase.suite_id == suite.id)))

    def note_times(self, parsed):
        """Note a suite's start and end, or its time when it has no start: they give the build's times."""
        if parsed.started is None:
            self.untimed += parsed.duration or 0.0
            return
        end = end_of(parsed.started, parsed.duration) or parsed.started
        self.earliest = min(self.earliest or parsed.started, parsed.started)
        self.latest_end = max(self.latest_end or end, end)

    def build_times(self):
        """When a build made from the reports started and finished.

        It starts at the earliest suite timestamp and finishes at the latest suite
        end (timestamp plus time), or at the start plus the summed times of the
        suites without a timestamp when that is later. With no timestamp at all it
        finishes at the upload and starts the summed suite times before.
        """
        if self.earliest is None:
            return self.finished - timedelta(seconds=min(self.untimed, MAX_DURATION)), self.finished
        return self.earliest, max(self.latest_end, end_of(self.earliest, self.untimed) or self.latest_end)

    def merge(self, suite, name, case):
        """Fold a re-reported case into the stored one: the new result wins, attempts add up."""
        self.pipe.drain()
        stored = db.session.scalar(
            select(TestCase).where(TestCase.suite_id == suite.id, TestCase.name == name)
        )
        flaky = case.status == Status.SUCCESS and (
            case.flaky or stored.is_flaky or stored.result_status in FAILING
        )
        fields = self.row(name, case)
        self.flaky += flaky - case.flaky
        self.merged += 1
        fields.update(attempts=stored.attempts + case.attempts, is_flaky=flaky)
        if flaky:
            # the passing attempt keeps the failure it recovered from, as within one report
            fields["message"] = fields["message"] or stored.message
            fields["details"] = fields["details"] or stored.details
        del fields["name"]
        results.update_case(stored, **fields)

    def reply(self):
        """What the import stored: suites touched and created, and cases per status."""
        total = sum(self.counts.values())
        reply = {
            "suites": len(self.suites),
            "suites_created": self.created,
            "cases": dict(total=total, **self.counts, flaky=self.flaky, merged=self.merged),
        }
        if self.warnings:
            reply["warnings"] = self.warnings
        return reply


def import_files(build, files, max_bytes, new_build=False, progress=None):
    """Store every report of ``files`` (from :func:`report_files`) into ``build``; return the reply counts.

    A new build takes its start and finish from the reports' suites (see
    :meth:`ReportWriter.build_times`). The caller commits.
    """
    writer = ReportWriter(build)
    if progress is not None:
        writer.progress = progress
    sources = report_sources(files)
    try:
        for label, stream in sources:
            writer.add_file(label, stream, max_bytes)
    except BaseException:
        # the helper thread must be done with the connection before the rollback
        writer.pipe.drain(quietly=True)
        raise
    writer.pipe.drain()
    if new_build:
        build.started, build.finished = writer.build_times()
        events.build_finished(build)
    db.session.flush()
    db.session.refresh(build)
    reply = dict(writer.reply(), files=len(sources))
    telemetry.count_cases(db.session, "import", reply["cases"]["total"])
    return reply


def stored_reply(user_id, key, fingerprint):
    """The committed reply for this user's key, or None; a key reused elsewhere is a 409."""
    record = db.session.scalar(
        select(IdempotencyRecord).where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)
    )
    if record is not None and record.request_path != fingerprint:
        raise Conflict(
            "this Idempotency-Key was already used for a different request "
            "(another path, query string or body); send a new key for a new request"
        )
    return record


def lock_timeout(error):
    """Whether a database error means another transaction held the lock too long."""
    code = error.orig.args[0] if getattr(error.orig, "args", None) else None
    return code == 1205 or "database is locked" in str(error.orig)


def claim(user_id, key, fingerprint):
    """Insert the key's record first, so a parallel request with the same key waits for this one.

    :return: the stored record when a request (this user's earlier one, or a parallel one)
        has the key, else None.
    """
    for _ in range(2):
        try:
            db.session.connection().execute(
                IdempotencyRecord.__table__.insert(),
                {
                    "user_id": user_id,
                    "key": key,
                    "request_path": fingerprint,
                    "response_status": 0,
                    "response_body": "",
                },
            )
            return None
        except IntegrityError:
            db.session.rollback()
        except OperationalError as error:
            db.session.rollback()
            if not lock_timeout(error):
                raise
            break
        # the other request committed its reply, or rolled back and freed the key
        record = stored_reply(user_id, key, fingerprint)
        if record is not None:
            return record
    raise Conflict("a request with this Idempotency-Key is still being processed; retry later")


def idempotent(user_id, key, fingerprint, produce):
    """Run ``produce()`` (returning ``(status, JSON text)``) once per key and commit; replay it after.

    :return: ``(status, JSON text, replayed)``.
    """
    if key is None:
        status, text = produce()
        db.session.commit()
        return status, text, False
    # the first use of a key is the common case: claim it without reading first
    record = claim(user_id, key, fingerprint)
    if record is not None:
        return record.response_status, record.response_body, True
    status, text = produce()
    db.session.connection().execute(
        IdempotencyRecord.__table__.update()
        .where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)
        .values(response_status=status, response_body=text)
    )
    db.session.commit()
    return status, text, False
