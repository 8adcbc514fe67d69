"""Read benchmark: server time of the report pages and statistics on 1,000 builds x 1,000 cases, or more.

Run from the repository root (MariaDB at TEST_DATABASE_URL, default root@127.0.0.1)::

    .venv/bin/python -m tests.benchmarks.reads_bench [--builds 1000] [--cases 1000] [--repeat 15]
    .venv/bin/python -m tests.benchmarks.reads_bench --sizes 1000x1000,10000x1000

It makes a scratch MariaDB database, migrates it and fills one instance with
``--builds`` builds of 10 suites x ``--cases`` / 10 cases (by default 1,000 x
1,000, a million cases) with bulk SQL inside the server (MariaDB's
``seq_1_to_N`` tables): about 1.5 % failures from random, flaky and
periodically broken tests, 2.5 % skips, a few retried passes, per-test
durations, and slow-downs in the newest build. The failing cases carry their
failure signatures (webapp.signatures, computed in Python once per test and
pseudo-random failure, then joined in), and the suites' counters are summed
from each chunk's rows as it is loaded, the builds' at the end.

The load is a loop of ``INSERT ... SELECT`` of about 250,000 cases each (one
transaction each), on a connection of its own with unique and foreign-key
checks off; meanwhile the server's InnoDB buffer pool is raised to
``--buffer-pool-mb`` (2,048 by default; 0 leaves it) and the redo log is
flushed once a second, both restored before anything is timed. It prints its
progress and the load time: ten million cases took 215-306 s on 2 shared cores.

Then it renders each page through the Flask test client as a logged-in viewer
(one warm-up, then ``--repeat`` times) and prints the median and worst server
time in milliseconds: the instance page and the statistics panel it loads
next, a build page and its changes panel, a suite page, and one test's history
(the case page); then the JSON statistics endpoints. Targets (issue 4):
instance 150 ms, build 100 ms, suite 100 ms, test history 50 ms; they hold at
ten million cases too. Issue 13 adds the test search (API 100 ms; the instance
page with a search, 150 ms) and the build status filter on a separate
instance's build of 100,000 cases (100 ms). Then the reads of issue 16: a
build's failure groups 100 ms, the top failure causes over 30 builds 150 ms,
the gate 100 ms, a badge 20 ms.

``--sizes 1000x1000,10000x1000`` loads and times each size in a scratch
database of its own, one after the other, then prints one table: each
target's median at every size and the growth from the first size to the
last. :func:`time_targets` times one loaded database and returns the figures,
for phases that change the data and time again. The scratch databases are
dropped at the end unless ``--keep`` (then ``--reuse URL`` times one again).
The machine's load average is printed before each load and each timing.

``--prune-half`` then sets the instance's retention policy to its newest half
of the builds, runs ``webapp.retention`` as ``flask retention run`` does
(batches of 1,000 cases), prints how fast it pruned, and times every target
again, side by side with the figures before pruning. Two extra reads cross
into the pruned builds (a test's history of 1,000 runs, and the flaky tests of
the newest 500, the most a window takes), which read run summaries once pruned.
"""

import argparse
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass

import sqlalchemy as sa
from flask_migrate import upgrade

from tests.benchmarks.processes import load_average
from tests.benchmarks.server_time import time_get
from tests.conftest import create_scratch_mysql
from tests.conftest import drop_scratch_mysql
from tests.conftest import mysql_unavailable_reason
from webapp import badges
from webapp import create_app
from webapp import results
from webapp import retention
from webapp.extensions import db
from webapp.models import TestInstance
from webapp.models import User
from webapp.models import test_key
from webapp.signatures import signature_for

SUITES = 10
DEFAULT_BUILDS, DEFAULT_CASES = 1000, 1000
# case rows per INSERT ... SELECT (and per transaction) of the bulk load
CHUNK_CASES = 250_000
VIEWER_PASSWORD = "bench-viewer-pass"
# the InnoDB buffer pool while loading (restored before anything is timed)
LOAD_BUFFER_POOL_MB = 2048

TESTS_TABLE = """
CREATE TABLE bench_tests (
  idx INT PRIMARY KEY, suite_name VARCHAR(255), name VARCHAR(512), test_key VARCHAR(32),
  kind VARCHAR(8), base FLOAT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
"""
# the message, details and failure signature of test idx failing with pseudo-random number r
FAILURES_TABLE = """
CREATE TABLE bench_failures (
  idx INT, r INT, message TEXT, details TEXT, signature VARCHAR(16), signature_text TEXT,
  PRIMARY KEY (idx, r)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
"""
BUILDS_SQL = """
INSERT INTO test_builds (instance_id, number, name, branch, revision, started, finished, created,
  suites_total, cases_total, passed, failed, errored, skipped, flaky, cases_duration)
SELECT :instance, s.seq, CONCAT('nightly ', s.seq), IF(s.seq % 10 = 0, 'dev', 'main'), MD5(s.seq),
  TIMESTAMP('2026-01-01') + INTERVAL s.seq HOUR,
  TIMESTAMP('2026-01-01') + INTERVAL s.seq HOUR + INTERVAL 12 MINUTE,
  TIMESTAMP('2026-01-01') + INTERVAL s.seq HOUR, 0, 0, 0, 0, 0, 0, 0, 0
FROM seq_1_to_{builds} s
"""
SUITES_SQL = """
INSERT INTO test_suites (build_id, name, started, finished, cases_total, passed, failed, errored,
  skipped, flaky, cases_duration)
SELECT b.id, CONCAT('com.example.bench.Suite', LPAD(s.seq - 1, 2, '0')), b.started, b.finished,
  0, 0, 0, 0, 0, 0, 0
FROM test_builds b JOIN seq_1_to_{suites} s WHERE b.instance_id = :instance ORDER BY b.id, s.seq
"""
# r is a per-(build, test) pseudo-random number in 0..999; a failing case takes its texts and
# signature from bench_failures (signed with webapp.signatures in Python, as every write path does)
CASES_SQL = """
INSERT INTO test_cases (suite_id, build_id, instance_id, test_key, name, finished, result_status,
  duration, message, details, attempts, is_flaky, signature, signature_text)
SELECT su.id, y.build_id, y.instance_id, y.test_key, y.name, y.finished, y.status,
  IF(y.status = 'SKIPPED', 0, y.base * (0.6 + y.r / 1250) * IF(y.number = {builds} AND y.idx % 97 = 5, 6, 1)),
  f.message, f.details, IF(y.retried, 2, 1), y.retried, f.signature, f.signature_text
FROM (
  SELECT x.*,
    CASE
      WHEN x.kind = 'skip' THEN 'SKIPPED'
      WHEN x.kind = 'flaky' AND x.r < 200 THEN 'FAILED'
      WHEN x.kind = 'streak' AND (x.number DIV 40) % 5 = 2 THEN 'FAILED'
      WHEN x.r < 8 THEN 'FAILED'
      WHEN x.r < 10 THEN 'ERROR'
      ELSE 'SUCCESS'
    END AS status,
    x.kind = 'flaky' AND x.r BETWEEN 200 AND 299 AS retried
  FROM (
    SELECT bb.id AS build_id, bb.instance_id, bb.number, bb.finished, tt.idx, tt.suite_name, tt.name,
      tt.test_key, tt.kind, tt.base, CRC32(CONCAT(bb.number, ':', tt.idx)) % 1000 AS r
    FROM test_builds bb JOIN bench_tests tt
    WHERE bb.instance_id = :instance AND bb.number BETWEEN :first AND :last
  ) x
) y
JOIN test_suites su ON su.build_id = y.build_id AND su.name = y.suite_name
LEFT JOIN bench_failures f ON f.idx = y.idx AND f.r = y.r AND y.status IN ('FAILED', 'ERROR')
ORDER BY su.id, y.idx
"""
# one build of 100 suites x 1,000 cases in an instance of its own, for the build status filter
BIG_SUITES, BIG_CASES_PER_SUITE = 100, 1000
BIG_BUILD_SQL = """
INSERT INTO test_builds (instance_id, number, name, branch, revision, started, finished, created,
  suites_total, cases_total, passed, failed, errored, skipped, flaky, cases_duration)
VALUES (:instance, 1, 'big', 'main', 'big', TIMESTAMP('2026-01-01'),
  TIMESTAMP('2026-01-01') + INTERVAL 1 HOUR, TIMESTAMP('2026-01-01'), 0, 0, 0, 0, 0, 0, 0, 0)
"""
BIG_SUITES_SQL = """
INSERT INTO test_suites (build_id, name, started, finished, cases_total, passed, failed, errored,
  skipped, flaky, cases_duration)
SELECT b.id, CONCAT('com.example.big.Suite', LPAD(s.seq - 1, 3, '0')), b.started, b.finished,
  0, 0, 0, 0, 0, 0, 0
FROM test_builds b JOIN seq_1_to_{suites} s WHERE b.instance_id = :instance ORDER BY s.seq
"""
# 2.5 % skipped, about 1 % failed; durations spread by a per-case hash. The test keys are stand-ins
# (MD5 in SQL), not webapp.models.test_key's: only the build status filter reads this build
BIG_CASES_SQL = """
INSERT INTO test_cases (suite_id, build_id, instance_id, test_key, name, finished, result_status,
  duration, attempts, is_flaky)
SELECT su.id, su.build_id, :instance, MD5(CONCAT(su.name, ':', c.seq)), CONCAT('test_', LPAD(c.seq, 4, '0')),
  su.finished,
  CASE WHEN c.seq % 40 = 1 THEN 'SKIPPED' WHEN CRC32(CONCAT(su.id, ':', c.seq)) % 100 = 0 THEN 'FAILED'
       ELSE 'SUCCESS' END,
  (CRC32(CONCAT(c.seq, ':', su.id)) % 10000) / 1000, 1, 0
FROM test_suites su JOIN seq_1_to_{cases} c
WHERE su.build_id = (SELECT id FROM test_builds WHERE instance_id = :instance)
ORDER BY su.id, c.seq
"""
# the counters of the suites whose cases were loaded after case :after, summed from that range of
# the primary key into a table of their own, then copied to the suites by primary key: joined to
# the suites as a derived table, MariaDB computed the sums suite by suite through an index of all
# the cases, which slowed every chunk down as the table grew
COUNTS_TABLE = """
CREATE TABLE bench_counts (
  suite_id BIGINT PRIMARY KEY, total INT, passed INT, failed INT, errored INT, skipped INT, flaky INT,
  duration DOUBLE
) ENGINE=InnoDB
"""
COUNT_SQL = """
INSERT INTO bench_counts
SELECT suite_id, COUNT(*), SUM(result_status = 'SUCCESS'), SUM(result_status = 'FAILED'),
  SUM(result_status = 'ERROR'), SUM(result_status = 'SKIPPED'), SUM(is_flaky), SUM(duration)
FROM test_cases WHERE id > :after GROUP BY suite_id
"""
SUITE_COUNTERS_SQL = """
UPDATE bench_counts c JOIN test_suites su ON su.id = c.suite_id
SET su.cases_total = c.total, su.passed = c.passed, su.failed = c.failed, su.errored = c.errored,
  su.skipped = c.skipped, su.flaky = c.flaky, su.cases_duration = c.duration
"""
BUILD_COUNTERS_SQL = """
UPDATE test_builds b JOIN (
  SELECT build_id, COUNT(*) AS suites, SUM(cases_total) AS total, SUM(passed) AS passed,
    SUM(failed) AS failed, SUM(errored) AS errored, SUM(skipped) AS skipped, SUM(flaky) AS flaky,
    SUM(cases_duration) AS duration
  FROM test_suites GROUP BY build_id
) s ON s.build_id = b.id
SET b.suites_total = s.suites, b.cases_total = s.total, b.passed = s.passed, b.failed = s.failed,
  b.errored = s.errored, b.skipped = s.skipped, b.flaky = s.flaky, b.cases_duration = s.duration
"""


@dataclass(frozen=True)
class Size:
    """How much one run loads: ``builds`` builds of ``cases`` cases (in 10 suites) each."""

    builds: int = DEFAULT_BUILDS
    cases: int = DEFAULT_CASES

    @property
    def label(self):
        """e.g. ``10,000 x 1,000``."""
        return f"{self.builds:,} x {self.cases:,}"

    @property
    def total(self):
        """Cases in the benchmarked instance."""
        return self.builds * self.cases


def parse_sizes(text):
    """``1000x1000,10000x1000`` as a list of :class:`Size`."""
    sizes = []
    for item in text.split(","):
        builds, _, cases = item.strip().lower().partition("x")
        size = Size(int(builds), int(cases))
        if size.builds < 1 or size.cases < SUITES or size.cases % SUITES:
            raise argparse.ArgumentTypeError(f"{item!r}: builds >= 1 and cases a multiple of {SUITES}")
        sizes.append(size)
    return sizes


def test_rows(rng, cases=DEFAULT_CASES):
    """The tests of a build: suite, name, key, kind (stable, flaky, streak, skip) and base duration."""
    per_suite = cases // SUITES
    rows = []
    for idx in range(cases):
        suite = f"com.example.bench.Suite{idx // per_suite:02d}"
        name = f"test_{idx:04d}"
        kind = "stable"
        if idx % 50 == 7:
            kind = "flaky"
        elif idx % 100 == 31:
            kind = "streak"
        elif idx % 40 == 1:
            kind = "skip"
        rows.append(
            {
                "idx": idx,
                "suite_name": suite,
                "name": name,
                "test_key": test_key(suite, name),
                "kind": kind,
                "base": round(rng.lognormvariate(-2.5, 1.2), 4),
            }
        )
    return rows


def failure_rows(tests):
    """Every (test, r) that CASES_SQL can make fail, with its texts and signature."""
    failing_r = {"skip": 0, "flaky": 200, "streak": 1000, "stable": 10}
    rows = []
    for test in tests:
        for r in range(failing_r[test["kind"]]):
            message = f"AssertionError: expected {r} to be below 10"
            details = (
                f'Traceback (most recent call last):\n  File "bench.py", line {r}, in {test["name"]}'
                "\nAssertionError"
            )
            signature, text = signature_for(message, details)
            rows.append(
                {
                    "idx": test["idx"],
                    "r": r,
                    "message": message,
                    "details": details,
                    "signature": signature,
                    "signature_text": text,
                }
            )
    return rows


@contextlib.contextmanager
def load_settings(engine, buffer_pool_mb):
    """Raise InnoDB's buffer pool for the bulk load, and put it back afterwards.

    Meanwhile the redo log is flushed once a second rather than at each commit,
    and is 1 GB rather than MariaDB's 96 MB, so that checkpoints do not force
    the dirty pages out while they are still being filled.
    """
    wanted = {"innodb_flush_log_at_trx_commit": 2, "innodb_log_file_size": 1024 * 1024 * 1024}
    if buffer_pool_mb:
        wanted["innodb_buffer_pool_size"] = buffer_pool_mb * 1024 * 1024
    with engine.connect() as connection:
        saved = {name: connection.execute(sa.text(f"SELECT @@GLOBAL.{name}")).scalar() for name in wanted}
        try:
            for name, value in wanted.items():
                # sizes are only ever raised
                if name.endswith("_size"):
                    value = max(value, int(saved[name]))
                if int(saved[name]) != value:
                    connection.execute(sa.text(f"SET GLOBAL {name} = {int(value)}"))
            yield
        finally:
            for name, value in saved.items():
                restore_setting(connection, name, int(value))


def restore_setting(connection, name, value, attempts=10):
    """Set a global setting back; MariaDB aborts a buffer pool shrink that it cannot do at once, so retry.

    A setting that cannot be put back is reported with the statement that would, rather than raised:
    the others must still be restored.
    """
    statement = f"SET GLOBAL {name} = {value}"
    for attempt in range(attempts):
        try:
            connection.execute(sa.text(statement))
            return
        except sa.exc.OperationalError as error:
            if attempt == attempts - 1:
                print(f"WARNING: could not restore {name} ({error.orig}); run: {statement}", flush=True)
            else:
                time.sleep(3)


def count_suites(connection, after):
    """Set the counters of the suites of the cases loaded after case ``after``."""
    connection.execute(sa.text("DELETE FROM bench_counts"))
    connection.execute(sa.text(COUNT_SQL), {"after": after})
    connection.execute(sa.text(SUITE_COUNTERS_SQL))


def last_case(connection):
    """The highest case id so far (0 for none)."""
    return connection.execute(sa.text("SELECT COALESCE(MAX(id), 0) FROM test_cases")).scalar()


def chunks(builds, cases):
    """(first, last) build numbers of each INSERT of the load."""
    step = max(1, CHUNK_CASES // cases)
    return [(first, min(first + step - 1, builds)) for first in range(1, builds + 1, step)]


def load(app, size=Size(), buffer_pool_mb=LOAD_BUFFER_POOL_MB):
    """Fill the database with bulk SQL; return (instance id, load seconds)."""
    with app.app_context():
        upgrade()
        user = User(username="viewer", role="viewer", active=True)
        user.set_password(VIEWER_PASSWORD)
        db.session.add(user)
        instance_id = results.create_instance("million").id
        big_id = results.create_instance("hundred-k").id
        db.session.commit()
        db.session.remove()
        # a connection of its own: the session settings of the load must not reach the app's pool
        engine = sa.create_engine(db.engine.url)
        started = time.perf_counter()
        try:
            with load_settings(engine, buffer_pool_mb), engine.connect() as connection:
                fill(connection, instance_id, big_id, size, started)
        finally:
            engine.dispose()
        with db.engine.connect() as connection:
            total, failing = connection.execute(
                sa.text(
                    "SELECT SUM(cases_total), SUM(failed + errored) FROM test_builds WHERE instance_id = :i"
                ),
                {"i": instance_id},
            ).one()
        seconds = time.perf_counter() - started
        print(f"loaded {total:,} cases ({failing / total:.2%} failing) in {seconds:.0f} s", flush=True)
    return instance_id, seconds


def fill(connection, instance_id, big_id, size, started):
    """The bulk load proper, on one connection, committing every chunk of builds."""
    connection.execute(sa.text("SET SESSION unique_checks = 0, foreign_key_checks = 0"))
    connection.execute(sa.text(TESTS_TABLE))
    connection.execute(sa.text(FAILURES_TABLE))
    connection.execute(sa.text(COUNTS_TABLE))
    tests = test_rows(random.Random(7), size.cases)
    connection.execute(
        sa.text("INSERT INTO bench_tests VALUES (:idx, :suite_name, :name, :test_key, :kind, :base)"), tests
    )
    connection.execute(
        sa.text(
            "INSERT INTO bench_failures VALUES (:idx, :r, :message, :details, :signature, :signature_text)"
        ),
        failure_rows(tests),
    )
    params = {"instance": instance_id}
    connection.execute(sa.text(BUILDS_SQL.format(builds=size.builds)), params)
    connection.execute(sa.text(SUITES_SQL.format(suites=SUITES)), params)
    connection.commit()
    parts = chunks(size.builds, size.cases)
    # seconds spent inserting cases, counting suites and committing since the last progress line
    spent = [0.0, 0.0, 0.0]
    for done, (first, last) in enumerate(parts, start=1):
        after = last_case(connection)
        steps = [time.perf_counter()]
        connection.execute(
            sa.text(CASES_SQL.format(builds=size.builds)), dict(params, first=first, last=last)
        )
        steps.append(time.perf_counter())
        count_suites(connection, after)
        steps.append(time.perf_counter())
        connection.commit()
        steps.append(time.perf_counter())
        spent = [total + end - begin for total, begin, end in zip(spent, steps, steps[1:], strict=False)]
        if done % max(1, len(parts) // 10) == 0 or done == len(parts):
            print(
                f"  {last * size.cases:,} cases in {time.perf_counter() - started:.0f} s"
                f" (since the last line: insert {spent[0]:.0f} s, counters {spent[1]:.0f} s,"
                f" commit {spent[2]:.0f} s)",
                flush=True,
            )
            spent = [0.0, 0.0, 0.0]
    big = {"instance": big_id}
    after = last_case(connection)
    connection.execute(sa.text(BIG_BUILD_SQL), big)
    connection.execute(sa.text(BIG_SUITES_SQL.format(suites=BIG_SUITES)), big)
    connection.execute(sa.text(BIG_CASES_SQL.format(cases=BIG_CASES_PER_SUITE)), big)
    count_suites(connection, after)
    connection.execute(sa.text(BUILD_COUNTERS_SQL))
    connection.execute(sa.text("DROP TABLE bench_tests, bench_failures, bench_counts"))
    connection.commit()
    for table in ("test_builds", "test_suites", "test_cases"):
        connection.execute(sa.text(f"ANALYZE TABLE {table}"))
    connection.execute(sa.text("SET SESSION unique_checks = 1, foreign_key_checks = 1"))


def badge_token(instance_id):
    """The instance's badge token, made on first use (a --reuse database may lack it)."""
    stored = badges.token_for(instance_id)
    if stored is None:
        stored = badges.rotate_token(instance_id, db.session.execute(sa.select(User)).scalars().first())
        db.session.commit()
    return stored.token


def targets(app, instance_id):
    """(label, path, target ms) of every page and endpoint to time."""
    with app.app_context():
        newest = db.session.execute(
            sa.text("SELECT id FROM test_builds WHERE instance_id = :i ORDER BY number DESC LIMIT 1"),
            {"i": instance_id},
        ).scalar()
        suite = db.session.execute(
            sa.text("SELECT MIN(id) FROM test_suites WHERE build_id = :b"), {"b": newest}
        ).scalar()
        case = db.session.execute(
            sa.text("SELECT MIN(id) FROM test_cases WHERE suite_id = :s"), {"s": suite}
        ).scalar()
        key = db.session.execute(
            sa.text("SELECT test_key FROM test_cases WHERE id = :c"), {"c": case}
        ).scalar()
        big_instance, big = db.session.execute(
            sa.text(
                "SELECT b.instance_id, b.id FROM test_builds b JOIN test_instances i ON i.id = b.instance_id"
                " WHERE i.name = 'hundred-k'"
            )
        ).one()
        token = badge_token(instance_id)
        db.session.remove()
    api = f"/api/test-instance/{instance_id}"
    big_api = f"/api/test-instance/{big_instance}/test-build/{big}"
    return [
        ("instance page", f"/instances/{instance_id}", 150),
        ("  + its statistics panel (loaded next)", f"/instances/{instance_id}/statistics?partial=1", 150),
        ("build page (newest)", f"/builds/{newest}", 100),
        ("  + its changes panel (loaded next)", f"/builds/{newest}/changes?partial=1", 100),
        ("suite page", f"/suites/{suite}", 100),
        ("test history (case page)", f"/cases/{case}", 50),
        ("API trend (30 builds)", f"{api}/trend/", None),
        ("API top failing (30 builds)", f"{api}/top-failing/", None),
        ("API slowest (30 builds)", f"{api}/slowest/", None),
        ("API flaky (30 builds)", f"{api}/flaky/", None),
        ("API flaky (100 builds)", f"{api}/flaky/?builds=100", None),
        ("API regressions (newest vs 30)", f"{api}/regressions/", None),
        ("API build summary", f"{api}/test-build/{newest}/summary/", None),
        ("API build diff", f"{api}/test-build/{newest}/diff/", None),
        ("API test history (50)", f"{api}/test-history/{key}/", 50),
        ("API test history (1,000 runs)", f"{api}/test-history/{key}/?limit=1000", None),
        ("API flaky (500 builds)", f"{api}/flaky/?builds=500", None),
        ("test search (instance page, 'test_004')", f"/instances/{instance_id}?q=test_004", 150),
        ("API test search ('test_004')", f"{api}/tests/?search=test_004", 100),
        ("build status filter, 100k build (SKIPPED)", f"/builds/{big}?status=SKIPPED", 100),
        ("  sorted by duration", f"/builds/{big}?status=SKIPPED&sort=-duration", 100),
        (
            "API SKIPPED cases by -duration, 100k build",
            f"{big_api}/cases/?result_status=SKIPPED&ordering=-duration",
            100,
        ),
        ("build failure groups + gate panel", f"/builds/{newest}/failures?partial=1", 100),
        ("API build failure groups", f"{api}/test-build/{newest}/failure-groups/", 100),
        ("API top failure causes (30 builds)", f"{api}/failure-groups/", 150),
        ("API gate (newest)", f"{api}/test-build/{newest}/gate/", 100),
        ("API split (4 shards, 10 builds)", f"{api}/split/?shards=4", None),
        ("badge (status, no session)", f"/badges/{instance_id}/{token}/status.svg", 20),
    ]


def logged_in_client(app):
    """A test client logged in as the viewer through the login form."""
    client = app.test_client()
    response = client.post("/auth/login", data={"username": "viewer", "password": VIEWER_PASSWORD})
    if response.status_code != 302:
        raise SystemExit(f"login failed: {response.status_code}")
    return client


@dataclass(frozen=True)
class Timing:
    """One target's figures: label, target ms (None: no target), median and worst ms."""

    label: str
    target: int | None
    median: float
    worst: float

    @property
    def verdict(self):
        """``"ok"``, ``"MISSED"`` or ``""`` when there is no target."""
        if self.target is None:
            return ""
        return "ok" if self.median <= self.target else "MISSED"


def time_targets(app, instance_id, repeat, each=None):
    """Time every target of one loaded database; return a :class:`Timing` per target, in order.

    :param each: called with each :class:`Timing` as soon as it is measured (printing progress).
    """
    client = logged_in_client(app)
    # badges are read by strangers (a README's images): timed without a session, as they are served
    anonymous = app.test_client()
    timed = []
    for label, path, target in targets(app, instance_id):
        timings, _ = time_get(anonymous if path.startswith("/badges/") else client, path, repeat)
        timed.append(Timing(label, target, statistics.median(timings), max(timings)))
        if each is not None:
            each(timed[-1])
    return timed


TABLE_HEAD = f"{'page':42} {'median ms':>9} {'max ms':>8} {'target':>7}"


def print_timing(timing):
    """One line of the single-size table."""
    verdict = "" if timing.target is None else f"{timing.target:>5} {timing.verdict}"
    print(f"{timing.label:42} {timing.median:9.1f} {timing.worst:8.1f} {verdict}", flush=True)


def print_growth(sizes, runs):
    """The medians of every size side by side, and the growth from the first size to the last."""
    width = max(12, *(len(size.label) for size in sizes))
    print()
    print(
        f"{'median ms':42} {'target':>6} " + " ".join(f"{size.label:>{width}}" for size in sizes) + "  growth"
    )
    for row in zip(*(timed for timed, _ in runs), strict=True):
        target = "" if row[0].target is None else str(row[0].target)
        cells = " ".join(f"{t.median:{width - 7}.1f} {t.verdict:>6}" for t in row)
        print(f"{row[0].label:42} {target:>6} {cells}  {row[-1].median / row[0].median:5.2f}x")
    loads = " ".join(f"{f'{seconds:.0f} s':>{width}}" for _, seconds in runs)
    print(f"{'load time':42} {'':>6} {loads}")
    print(f"{'cases':42} {'':>6} " + " ".join(f"{size.total:>{width},}" for size in sizes))


def prune_half(app, instance_id, size):
    """Keep the newest half of the builds' cases, as ``flask retention run`` would; print its speed."""
    with app.app_context():
        instance = db.session.get(TestInstance, instance_id)
        instance.keep_builds = max(1, size.builds // 2)
        db.session.commit()
        plan = retention.plan(instance)
        started = time.perf_counter()
        done = retention.run(plan)
        seconds = time.perf_counter() - started
        db.session.remove()
    with db_connection(app) as connection:
        for table in ("test_cases", "run_summaries", "test_names"):
            connection.execute(sa.text(f"ANALYZE TABLE {table}"))
    print(
        f"pruned {done['builds']:,} builds, {done['cases']:,} cases in {seconds:.0f} s "
        f"({done['cases'] / seconds:,.0f} cases/s, batches of {retention.BATCH:,}); {load_average()}",
        flush=True,
    )


@contextlib.contextmanager
def db_connection(app):
    """A connection of the app's engine, in a transaction committed at the end."""
    with app.app_context(), db.engine.begin() as connection:
        yield connection


def print_pruned(before, after):
    """Every target's median before and after pruning half the builds, side by side."""
    print()
    print(f"{'median ms':42} {'target':>6} {'all kept':>14} {'half pruned':>14}  after/before")
    for old, new in zip(before, after, strict=True):
        target = "" if old.target is None else str(old.target)
        cells = f"{old.median:7.1f} {old.verdict:>6} {new.median:7.1f} {new.verdict:>6}"
        print(f"{old.label:42} {target:>6} {cells}  {new.median / old.median:5.2f}x")


def run_size(size, args):
    """Load ``size`` into a scratch database (or reuse one), time it; return (timings, load seconds)."""
    url = args.reuse or create_scratch_mysql()
    settings = {
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": "bench",
        "RATELIMIT_ENABLED": False,
        "WTF_CSRF_ENABLED": False,
    }
    app = create_app(settings)
    seconds = 0.0
    try:
        if args.reuse:
            with app.app_context():
                instance_id = db.session.execute(
                    sa.text("SELECT id FROM test_instances WHERE name = 'million'")
                ).scalar_one()
                db.session.remove()
        else:
            print(f"loading {size.label} ({size.total:,} cases); {load_average()}", flush=True)
            instance_id, seconds = load(app, size, args.buffer_pool_mb)
        print(
            f"timing {sa.make_url(url).database if args.reuse else size.label}; {load_average()}", flush=True
        )
        print(TABLE_HEAD)
        timed = time_targets(app, instance_id, args.repeat, each=print_timing)
        if args.prune_half:
            prune_half(app, instance_id, size)
            print(f"timing {size.label} with half its builds pruned; {load_average()}", flush=True)
            print(TABLE_HEAD)
            print_pruned(timed, time_targets(app, instance_id, args.repeat, each=print_timing))
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if args.keep:
            print(f"kept: --reuse '{url}'")
        elif not args.reuse:
            drop_scratch_mysql(url)
    return timed, seconds


def main():
    """Build each size's database (or reuse one kept earlier), time the pages, drop the database."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=DEFAULT_BUILDS)
    parser.add_argument("--cases", type=int, default=DEFAULT_CASES, help="cases per build (10 suites)")
    parser.add_argument(
        "--sizes", type=parse_sizes, help="several sizes in one run, e.g. 1000x1000,10000x1000"
    )
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument(
        "--prune-half", action="store_true", help="then prune the older half of the builds and time again"
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases and print their URLs")
    parser.add_argument("--reuse", metavar="URL", help="time a database kept by an earlier --keep run")
    parser.add_argument(
        "--buffer-pool-mb",
        type=int,
        default=LOAD_BUFFER_POOL_MB,
        help="InnoDB buffer pool while loading, restored before timing (0: leave it)",
    )
    args = parser.parse_args()
    sizes = args.sizes or parse_sizes(f"{args.builds}x{args.cases}")
    if args.reuse and len(sizes) > 1:
        parser.error("--reuse times one database")
    reason = mysql_unavailable_reason()
    if reason:
        raise SystemExit(reason)
    os.environ["GREENBAR_INSTANCE_PATH"] = tempfile.mkdtemp(prefix="greenbar-reads-")
    runs = [run_size(size, args) for size in sizes]
    if len(sizes) > 1:
        print_growth(sizes, runs)
    print(load_average())


if __name__ == "__main__":
    sys.exit(main())
