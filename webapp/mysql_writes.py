"""MySQL-only write paths, kept because they pay, with what each one buys.

Everything here has a portable twin that SQLite uses (and MySQL could):

- **Multi-table UPDATEs.** :func:`counters_update` moves a suite's and its
  build's counters in one statement, and :func:`finish_and_count_update`
  writes a case's result together with both counters, locking case, suite and
  build in that order before changing any (see :mod:`webapp.results` on
  locks). The portable path sends one UPDATE per row (suite, build, then the
  case): two more round trips per case write. Measured with
  ``api_bench`` (3,000 live create/start/finish requests; the same code with
  and without this path, two runs each, interleaved, on a busy shared 2-core
  machine): 5.6-6.1 ms of app CPU per request with it, 6.65-6.7 ms without,
  and 23-33 against 21-22 requests/s; MariaDB's CPU (shared with other work)
  was too noisy to compare. The portable twin is ``results.counter_update``.
- **The insert pipe.** :class:`InsertPipe` sends an import's multi-row
  INSERTs from a helper thread while the request thread parses the next
  batch. Measured with ``import_bench`` (100,000 cases, best of 2-3 runs
  against the floor in the same run): 1.18 x the floor with the pipe, 0.88 x
  without (``add_cases`` with no pipe); CPU per import the same (7.0 and
  6.9 s): the pipe buys overlap, not work. Without it an import runs the same
  statements through PyMySQL's executemany.
- **A batch's rows without foreign-key checks**, then its counters
  (``InsertPipe(unchecked=True)``): parallel batches into one build stop
  waiting for each other's INSERT. Measured with ``batch_bench``: 0.72 x the
  import with the checks, 0.81 x without. SQLite keeps the checks and bumps
  the counters first.
- **Row literals without PyMySQL's escaping** (:class:`RowLiterals`): the
  same text as ``cursor.mogrify``, 2.7 x as fast on import rows, so an import
  or a batch spends less of its request thread turning values into SQL.
  Measured with ``batch_bench``: 0.82 x the import with mogrify, 0.88 x with
  these (best of 5 runs each).
- **The live API's statements straight on PyMySQL** (:class:`Prepared`):
  a case's key reads and its INSERT, counter and lifecycle UPDATEs, compiled
  once and run on the session connection's cursor, skipping what
  ``Connection.execute`` adds around PyMySQL (about 60 us of CPU a
  statement here, two-thirds of PyMySQL's own). Measured with ``api_bench``
  on 2026-12-05 (one run of each, on a slow day; the change also made a
  case's start and finish read a record of its reply's columns instead of
  an ORM entity): 6.14 -> 4.52 ms of app CPU per live request, 0.43 -> 0.53 x
  the floor of the same run. Its twin is ``Connection.execute``, which SQLite uses.

All run on MariaDB in the test suite: every case write of the ``app``
fixture's MySQL half, ``tests/test_api_concurrency.py`` (many writers on one
build, batches included) and the import tests, including a batch that fails in
the helper thread and an unchecked batch into a suite deleted meanwhile, and
``tests/test_prepared_statements.py`` (values and types as SQLAlchemy reads them,
a duplicate key and a killed connection raised as SQLAlchemy raises them).
"""

import collections
import dataclasses
import functools
import threading

import pymysql
from pymysql.constants.SERVER_STATUS import SERVER_STATUS_NO_BACKSLASH_ESCAPES
from sqlalchemy import bindparam
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError

from webapp.extensions import db
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models import TestSuite

# one statement of escaped rows stays well under MySQL's max_allowed_packet (16 MB by default)
STATEMENT_CHARS = 4 * 1024 * 1024
MYSQL_DEADLOCK = 1213
MYSQL_DUPLICATE_KEY = 1062
MYSQL_LOCK_WAIT = 1205
# the client's errors for a server it cannot reach: no socket, connection refused, unknown host,
# server gone away, connection lost during a query
MYSQL_UNREACHABLE = frozenset({2002, 2003, 2005, 2006, 2013})


class Prepared:
    """A Core statement compiled once for MySQL and run straight on the session's PyMySQL cursor.

    Only for statements built once (functools.cache) and run often: the live
    API's reads of a suite's or a case's key columns, its case INSERT and its
    counter and lifecycle UPDATEs. The values pass through the same type
    processors as under ``Connection.execute``; errors come out as the same
    SQLAlchemy exceptions, a lost connection invalidated as SQLAlchemy does.
    """

    def __init__(self, statement, dialect, columns=None):
        compiled = statement.compile(dialect=dialect, column_keys=columns)
        self.compiled = compiled
        self.dialect = dialect
        self.processors = {
            name: processor
            for name, bind in compiled.binds.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        self.row = None
        if statement.is_select:
            columns = statement.selected_columns
            self.row = collections.namedtuple("Row", [column.key for column in columns])
            self.readers = [
                column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
            ]

    def run(self, connection, parameters):
        """Run on the SQLAlchemy ``connection``'s DBAPI connection, in its transaction."""
        values = self.compiled.construct_params(parameters)
        for name, processor in self.processors.items():
            values[name] = processor(values[name])
        cursor = connection.connection.cursor()
        try:
            cursor.execute(self.compiled.string, values)
        except pymysql.err.Error as error:
            raise self.wrapped(error, connection, cursor, values) from error
        rows = cursor.fetchall() if self.row is not None else ()
        return Ran(cursor.rowcount, cursor.lastrowid, [self.read(row) for row in rows])

    def read(self, row):
        """A result row as a named tuple of processed values."""
        return self.row._make(
            value if reader is None else reader(value)
            for reader, value in zip(self.readers, row, strict=True)
        )

    def wrapped(self, error, connection, cursor, values):
        """The SQLAlchemy exception for a PyMySQL error; a lost connection is invalidated first."""
        lost = self.dialect.is_disconnect(error, connection.connection.dbapi_connection, cursor)
        if lost:
            connection.invalidate(error)
        return DBAPIError.instance(
            self.compiled.string,
            values,
            error,
            pymysql.err.Error,
            connection_invalidated=lost,
            dialect=self.dialect,
        )


@dataclasses.dataclass(slots=True)
class Ran:
    """What a :class:`Prepared` statement gave: what a caller of ``Connection.execute`` reads."""

    rowcount: int
    lastrowid: int
    rows: list

    @property
    def inserted_primary_key(self):
        """The new row's id, as a one-column key."""
        return (self.lastrowid,)

    def first(self):
        """The first row, or None."""
        return self.rows[0] if self.rows else None

    def one(self):
        """The one row there must be."""
        (row,) = self.rows
        return row


@functools.lru_cache(maxsize=256)
def prepared(statement, dialect, columns=None):
    """``statement`` compiled for ``dialect``, once; an INSERT for the ``columns`` it is given."""
    return Prepared(statement, dialect, columns)


def on_mysql():
    """Whether the session talks to MySQL, so that the paths of this module apply."""
    return db.session.get_bind().dialect.name == "mysql"


def counter_values(names):
    """SET clauses adding bound deltas ``d_<name>`` to a suite's and a build's counters at once."""
    return {
        getattr(model, name): getattr(model, name) + bindparam(f"d_{name}", type_=getattr(model, name).type)
        for model in (TestSuite, TestBuild)
        for name in names
    }


@functools.cache
def counters_update(names):
    """One UPDATE of a suite's and its build's counters (the build found through the suite)."""
    return (
        update(TestSuite)
        .where(TestSuite.id == bindparam("suite_id"), TestBuild.id == TestSuite.build_id)
        .values(counter_values(names))
        .execution_options(synchronize_session=False)
    )


@functools.cache
def finish_and_count_update(names, counted):
    """The UPDATE of ``results.finish_case_and_count``: case fields (bound ``v_<name>``) and counters."""
    return (
        update(TestCase)
        .where(
            TestCase.id == bindparam("case_id"),
            TestCase.finished.is_(None),
            TestSuite.id == TestCase.suite_id,
            TestBuild.id == TestSuite.build_id,
        )
        .values(
            {
                getattr(TestCase, name): bindparam(f"v_{name}", type_=getattr(TestCase, name).type)
                for name in names
            }
            | counter_values(counted)
        )
        .execution_options(synchronize_session=False)
    )


# PyMySQL's escapes of a string literal (converters.escape_string), done with str.replace, backslash
# first: its str.translate maps each character through a table of strings, about 15 x slower on a
# stack trace, where most of an import's text is
STRING_ESCAPES = (
    ("\\", "\\\\"),
    ("\0", "\\0"),
    ("\n", "\\n"),
    ("\r", "\\r"),
    ("\x1a", "\\Z"),
    ("'", "\\'"),
    ('"', '\\"'),
)


def quoted(text):
    """A string literal, escaped as PyMySQL escapes it."""
    for character, escape in STRING_ESCAPES:
        text = text.replace(character, escape)
    return "'" + text + "'"


class RowLiterals:
    """Turns rows of values into SQL literals, as ``cursor.mogrify`` does, for the types of case rows.

    Strings, numbers, booleans and NULL are written here; anything else (times)
    goes to PyMySQL's own ``escape``. Measured on 5,000 import rows (one in 20
    with a 30-line stack trace): 18 ms against mogrify's 49 ms, the same text.
    """

    def __init__(self, dbapi_connection):
        self.escape = dbapi_connection.escape
        self.literal_of = {
            str: quoted,
            type(None): lambda value: "NULL",
            int: str,
            bool: lambda value: "1" if value else "0",
            float: self.float_literal,
        }

    @staticmethod
    def usable(dbapi_connection):
        """Whether strings are escaped with backslashes on this connection (MySQL's default mode)."""
        return not dbapi_connection.server_status & SERVER_STATUS_NO_BACKSLASH_ESCAPES

    def float_literal(self, value):
        """A float as PyMySQL writes it (``e0`` marks it as a double); inf and nan are its error."""
        text = repr(value)
        if text in ("inf", "-inf", "nan"):
            return self.escape(value)
        return text if "e" in text else text + "e0"

    def literal(self, value):
        """One value as SQL."""
        write = self.literal_of.get(type(value))
        return write(value) if write is not None else self.escape(value)

    def row(self, template, row):
        """``template`` (a row's ``%s`` marks) with the row's values written in.

        Texts and NULLs, most of a row, are written without a call through :meth:`literal`.
        """
        literal = self.literal
        return template % tuple(
            [
                quoted(value) if type(value) is str else "NULL" if value is None else literal(value)
                for value in row
            ]
        )


class InsertPipe:
    """Sends an import's multi-row INSERTs from a helper thread, on the session's own connection.

    The database stores one batch while the request thread parses and escapes
    the next, so an import costs about the larger of the two rather than their
    sum. The connection is never used by two threads at once: the request
    thread calls :meth:`drain` before any statement of its own. Off MySQL the
    statements simply run in the request thread.

    ``threaded=False`` keeps the escaping (one template for the shared values)
    but sends in the request thread: a batch of results is one INSERT, with
    nothing to overlap it, so a thread would only cost its start.

    ``unchecked=True`` sends with foreign-key checks off. The checks would
    take shared locks on the suite's and build's rows until the commit, so the
    counters must be bumped (an exclusive lock) before the rows go in, and
    parallel batches into one build then wait for each other's whole INSERT.
    Without them the rows go in first and the counters after
    (:attr:`counts_after`): the build is locked only from that UPDATE to the
    commit, and the UPDATE, finding and locking suite and build, stands in for
    the checks (a parent deleted meanwhile fails the write; see
    ``results.add_cases``). Measured with ``batch_bench`` (4 clients, one
    build): 27,700 cases/s with the checks, 31,200-33,600 with each client in
    a build of its own, the rate this buys back.
    """

    def __init__(self, threaded=True, unchecked=False):
        self.threaded = threaded
        self.unchecked = unchecked
        self.thread = None
        self.error = None

    @property
    def counts_after(self):
        """Whether the caller bumps the counters after sending (unchecked, on MySQL)."""
        return self.unchecked and on_mysql()

    def prepare(self, statement, rows, tail):
        """Escape rows into multi-row INSERTs (in this thread, while another batch is being sent).

        :param tail: values that end every row (ids and times, never text with a "%"), escaped
            once into the row template.
        """
        connection = db.session.connection()
        if connection.dialect.name != "mysql":
            return [(statement, [row + tail for row in rows])]
        dbapi_connection = connection.connection.dbapi_connection
        cursor = dbapi_connection.cursor()
        head, _, template = statement.partition(" VALUES ")
        marks = template.count("%s")
        template = cursor.mogrify(template.replace("%s", "%%s", marks - len(tail)), tail)
        write = RowLiterals(dbapi_connection).row if RowLiterals.usable(dbapi_connection) else cursor.mogrify
        statements, parts, size = [], [], 0
        for row in rows:
            part = write(template, row)
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
        if not self.threaded:
            self.send(cursor, statements)
            self.drain()
            return
        self.thread = threading.Thread(target=self.send, args=(cursor, statements), daemon=True)
        self.thread.start()

    def send(self, cursor, statements):
        """Run the statements (helper thread); a failure waits for :meth:`drain` to raise it."""
        try:
            if self.unchecked:
                cursor.execute("SET SESSION foreign_key_checks = 0")
            try:
                for statement, _ in statements:
                    cursor.execute(statement)
            finally:
                if self.unchecked:
                    cursor.execute("SET SESSION foreign_key_checks = 1")
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


def claim_contended(error):
    """Whether a queue claim's OperationalError was InnoDB contention (a deadlock or lock wait between
    claimers and producers): then the round claims nothing and the next one tries again."""
    return bool(error.orig.args) and error.orig.args[0] in (MYSQL_DEADLOCK, MYSQL_LOCK_WAIT)


def duplicate_key(error):
    """Whether an IntegrityError was a unique key finding a value already stored."""
    return bool(getattr(error.orig, "args", None)) and error.orig.args[0] == MYSQL_DUPLICATE_KEY


def unreachable(error):
    """Whether a DBAPI error says the database server cannot be reached (so retrying later may work)."""
    return bool(getattr(error.orig, "args", None)) and error.orig.args[0] in MYSQL_UNREACHABLE
