"""Importing JUnit XML reports into a build, exactly once, in one transaction.

A report arrives as the request body (optionally gzip-compressed) or as the
files of a multipart form. Each file streams through :mod:`webapp.junit`, and
its cases go into the database in multi-row INSERTs through
:func:`webapp.results.add_cases`, so counters stay exact. Nothing commits here
except :func:`idempotent`, which stores the reply in the same transaction as
the import it answers.

Rules worth knowing (also in the README):

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
import json
import tempfile
import threading
from datetime import timedelta

import pymysql
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import Conflict as HTTPConflict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.exceptions import UnsupportedMediaType

from webapp import junit
from webapp import results
from webapp.api.payload import ValidationError
from webapp.extensions import db
from webapp.models import STATUSES
from webapp.models import IdempotencyRecord
from webapp.models import TestCase
from webapp.models import TestSuite
from webapp.models import utcnow

DEFAULT_MAX_REPORT_BYTES = 512 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
SPOOL_MEMORY = 8 * 1024 * 1024
SPOOL_CHUNK = 1024 * 1024
# a batch is one INSERT statement: small enough for MySQL's max_allowed_packet
BATCH_ROWS = 1000
BATCH_TEXT_CHARS = 4 * 1024 * 1024
# one statement of escaped rows stays well under MySQL's max_allowed_packet (16 MB by default)
STATEMENT_CHARS = 4 * 1024 * 1024
SUITE_NAME_LIMIT = 255
CASE_NAME_LIMIT = 512
IDEMPOTENCY_KEY_LIMIT = 255
FAILING = ("FAILED", "ERROR")


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


def spooled_body(request):
    """The raw request body, read once into a temporary file (on disk beyond a few MB).

    Reading the upload before the transaction starts keeps a slow client from
    holding database locks, and lets a rerun after a lost race read it again.
    """
    # it lives as long as the request, which may rerun the import, and is deleted when collected
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115
    while chunk := request.stream.read(SPOOL_CHUNK):
        spool.write(chunk)
    return spool


def report_files(request):
    """The request's report files, unread: the body, or the files of a multipart form.

    :raise UnsupportedMediaType: for a content encoding other than gzip or identity.
    :raise ValidationError: for a multipart form without files.
    """
    encoding = (request.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip"):
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not supported; send gzip or plain XML")
    if request.mimetype != "multipart/form-data":
        return [("body", spooled_body(request), encoding != "identity" or None)]
    if encoding != "identity":
        raise UnsupportedMediaType("a multipart upload cannot be gzip-encoded as a whole; compress each file")
    files = [upload for _, upload in request.files.items(multi=True)]
    if not files:
        raise ValidationError("the multipart form holds no files", {"file": "attach one or more reports"})
    return [(upload.filename or upload.name or "file", upload.stream, None) for upload in files]


def report_sources(files):
    """``(label, binary stream)`` pairs read from the start, decompressed as needed."""
    sources = []
    for label, stream, compressed in files:
        stream.seek(0)
        sources.append((label, decoded(stream, compressed)))
    return sources


class InsertPipe:
    """Sends an import's multi-row INSERTs from a helper thread, on the session's own connection.

    The database stores one batch while the request thread parses and escapes
    the next, so an import costs about the larger of the two rather than their
    sum. The connection is never used by two threads at once: the request
    thread calls :meth:`drain` before any statement of its own. Off MySQL the
    statements simply run in the request thread.
    """

    def __init__(self):
        self.thread = None
        self.error = None

    def prepare(self, statement, rows, tail):
        """Escape rows into multi-row INSERTs (in this thread, while another batch is being sent).

        :param tail: values that end every row (ids and times, never text with a "%"), escaped
            once into the row template.
        """
        connection = db.session.connection()
        if connection.dialect.name != "mysql":
            return [(statement, [row + tail for row in rows])]
        cursor = connection.connection.dbapi_connection.cursor()
        head, _, template = statement.partition(" VALUES ")
        marks = template.count("%s")
        template = cursor.mogrify(template.replace("%s", "%%s", marks - len(tail)), tail)
        statements, parts, size = [], [], 0
        for row in rows:
            part = cursor.mogrify(template, row)
            parts.append(part)
            size += len(part)
            if size >= STATEMENT_CHARS:
                statements.append((f"{head} VALUES {','.join(parts)}", None))
                parts, size = [], 0
        if parts:
            statements.append((f"{head} VALUES {','.join(parts)}", None))
        return statements

    def start(self, statements):
        """Send prepared statements: from a helper thread on MySQL, else at once."""
        self.drain()
        connection = db.session.connection()
        if connection.dialect.name != "mysql":
            for statement, rows in statements:
                connection.exec_driver_sql(statement, rows)
            return
        cursor = connection.connection.dbapi_connection.cursor()
        self.thread = threading.Thread(target=self.send, args=(cursor, statements), daemon=True)
        self.thread.start()

    def send(self, cursor, statements):
        """Run the statements (helper thread); a failure waits for :meth:`drain` to raise it."""
        try:
            for statement, _ in statements:
                cursor.execute(statement)
        except Exception as error:  # raised in the request thread by drain()
            self.error = DBAPIError.instance(statement, None, error, pymysql.MySQLError)
        finally:
            cursor.close()

    def drain(self, quietly=False):
        """Wait for the statements in flight; raise their error here, as SQLAlchemy would.

        :param quietly: drop their error (the caller is already failing with its own).
        """
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        error, self.error = self.error, None
        if error is not None and not quietly:
            raise error


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
        self.pipe = InsertPipe()

    def add_file(self, label, stream, max_bytes):
        """Parse one report and store its suites.

        :raise ValidationError: the file is not a readable, safe JUnit report (400).
        :raise RequestEntityTooLarge: it decompresses to more than ``max_bytes`` (413).
        """
        try:
            for parsed, cases in junit.iter_suites(stream, max_bytes=max_bytes):
                self.add_suite(parsed, cases)
        except junit.ReportTooLarge:
            raise RequestEntityTooLarge(
                f"{label}: the report is larger than {max_bytes} bytes once decompressed"
            ) from None
        except junit.ReportError as error:
            raise ValidationError(f"{label}: {error}", {"report": str(error)}) from None

    def add_suite(self, parsed, cases):
        """Store one parsed suite's cases in batches; re-reported cases are merged after."""
        suite, names = self.suite_for(parsed)
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
        }

    def suite_for(self, parsed):
        """The stored suite for a parsed one and the case names it holds, creating it when new."""
        name = fit_name(parsed.name, SUITE_NAME_LIMIT)
        if name in self.suites:
            return self.suites[name], self.names[name]
        self.pipe.drain()
        suite = db.session.scalar(
            select(TestSuite).where(TestSuite.build_id == self.build.id, TestSuite.name == name)
        )
        if suite is None:
            finished = None
            if parsed.started is not None and parsed.duration is not None:
                finished = parsed.started + timedelta(seconds=parsed.duration)
            suite = results.create_suite(
                self.build, name, started=parsed.started, finished=finished,
                system_out=parsed.system_out, system_err=parsed.system_err,
            )
            self.created += 1
            names = set()
        else:
            names = self.stored_names(suite)
        if parsed.started is not None and (self.earliest is None or parsed.started < self.earliest):
            self.earliest = parsed.started
        self.suites[name], self.names[name] = suite, names
        return suite, names

    def stored_names(self, suite):
        """The names of the cases an existing suite already holds (repeats of them are merged)."""
        return set(db.session.scalars(select(TestCase.name).where(TestCase.suite_id == suite.id)))

    def merge(self, suite, name, case):
        """Fold a re-reported case into the stored one: the new result wins, attempts add up."""
        self.pipe.drain()
        stored = db.session.scalar(
            select(TestCase).where(TestCase.suite_id == suite.id, TestCase.name == name)
        )
        flaky = case.status == "SUCCESS" and (
            case.flaky or stored.is_flaky or stored.result_status in FAILING
        )
        fields = self.row(name, case)
        self.flaky += flaky - case.flaky
        self.merged += 1
        fields.update(attempts=stored.attempts + case.attempts, is_flaky=flaky)
        del fields["name"]
        results.update_case(stored, **fields)

    def reply(self):
        """What the import stored: suites touched and created, and cases per status."""
        total = sum(self.counts.values())
        return {
            "suites": len(self.suites),
            "suites_created": self.created,
            "cases": dict(total=total, **self.counts, flaky=self.flaky, merged=self.merged),
        }


def import_files(build, files, max_bytes, new_build=False):
    """Store every report of ``files`` (from :func:`report_files`) into ``build``; return the reply counts.

    A new build takes its start from the earliest suite timestamp (else now)
    and is marked finished. The caller commits.
    """
    writer = ReportWriter(build)
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
        build.started = writer.earliest or writer.finished
        build.finished = max(writer.finished, build.started)
    db.session.flush()
    db.session.refresh(build)
    return dict(writer.reply(), files=len(sources))


def request_fingerprint(request):
    """The path and a digest of the query string: what one Idempotency-Key may be reused for."""
    query = request.query_string
    return request.path + ("?" + hashlib.sha256(query).hexdigest()[:32] if query else "")


def idempotency_key(request):
    """The request's Idempotency-Key, or None; too long is a 400."""
    key = (request.headers.get("Idempotency-Key") or "").strip()
    if len(key) > IDEMPOTENCY_KEY_LIMIT:
        raise ValidationError(
            "Idempotency-Key must be at most 255 characters", {"Idempotency-Key": "too long"}
        )
    return key or None


def stored_reply(user_id, key, fingerprint):
    """The committed reply for this user's key, or None; a key reused elsewhere is a 409."""
    record = db.session.scalar(
        select(IdempotencyRecord).where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)
    )
    if record is not None and record.request_path != fingerprint:
        raise HTTPConflict("this Idempotency-Key was already used for a different request")
    return record


def lock_timeout(error):
    """Whether a database error means another transaction held the lock too long."""
    code = error.orig.args[0] if getattr(error.orig, "args", None) else None
    return code == 1205 or "database is locked" in str(error.orig)


def claim(user_id, key, fingerprint):
    """Insert the key's record first, so a parallel request with the same key waits for this one.

    :return: the winner's record when another request stored the key first, else None.
    """
    for _ in range(2):
        db.session.add(IdempotencyRecord(user_id=user_id, key=key, request_path=fingerprint,
                                         response_status=0, response_body=""))
        try:
            db.session.flush()
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
    raise HTTPConflict("a request with this Idempotency-Key is still being processed; retry later")


def idempotent(user_id, key, fingerprint, produce):
    """Run ``produce()`` (returning ``(status, body)``) once per key and commit; replay it after.

    :return: ``(status, JSON text, replayed)``.
    """
    if key is None:
        status, body = produce()
        db.session.commit()
        return status, json.dumps(body), False
    record = stored_reply(user_id, key, fingerprint) or claim(user_id, key, fingerprint)
    if record is not None:
        return record.response_status, record.response_body, True
    status, body = produce()
    text = json.dumps(body)
    db.session.execute(
        IdempotencyRecord.__table__.update()
        .where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)
        .values(response_status=status, response_body=text)
    )
    db.session.commit()
    return status, text, False
