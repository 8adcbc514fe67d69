"""Read benchmark: server time of the report pages and statistics on 1,000 builds x 1,000 cases.

Run from the repository root (MariaDB at TEST_DATABASE_URL, default root@127.0.0.1)::

    .venv/bin/python -m tests.benchmarks.reads_bench [--repeat 15]

It makes a scratch MariaDB database, migrates it and fills one instance with
1,000 builds of 10 suites x 100 cases (a million cases) with bulk SQL inside
the server (MariaDB's ``seq_1_to_N`` tables): about 1.5 % failures from
random, flaky and periodically broken tests, 2.5 % skips, a few retried
passes, per-test durations, and slow-downs in the newest build. Counters are
computed from the rows with two set-based UPDATEs.

Then it renders each page through the Flask test client as a logged-in viewer
(one warm-up, then ``--repeat`` times) and prints the median and worst server
time in milliseconds: the instance page and the statistics panel it loads
next, a build page and its changes panel, a suite page, and one test's history
(the case page); then the JSON statistics endpoints. Targets (issue 4):
instance 150 ms, build 100 ms, suite 100 ms, test history 50 ms. Issue 13 adds
the test search (API 100 ms; the instance page with a search, 150 ms) and the
build status filter on a separate instance's build of 100,000 cases (100 ms).
Then the reads of issue 16: a build's failure groups 100 ms, the top failure causes
over 30 builds 150 ms, the gate 100 ms, a badge 20 ms (the failing cases are
signed with webapp.signatures after the bulk load, as the migration would).
The scratch database is dropped at the end.
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time

import sqlalchemy as sa
from flask_migrate import upgrade

from tests.benchmarks.server_time import time_get
from tests.conftest import create_scratch_mysql
from tests.conftest import drop_scratch_mysql
from tests.conftest import mysql_unavailable_reason
from webapp import badges
from webapp import create_app
from webapp import results
from webapp.extensions import db
from webapp.models import User
from webapp.models import test_key
from webapp.signatures import signature_for

BUILDS, SUITES, CASES_PER_SUITE = 1000, 10, 100
CHUNK_BUILDS = 50
VIEWER_PASSWORD = "bench-viewer-pass"

TESTS_TABLE = """
CREATE TABLE bench_tests (
  idx INT PRIMARY KEY, suite_name VARCHAR(255), name VARCHAR(512), test_key VARCHAR(32),
  kind VARCHAR(8), base FLOAT
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
# r is a per-(build, test) pseudo-random number in 0..999
CASES_SQL = """
INSERT INTO test_cases (suite_id, build_id, instance_id, test_key, name, finished, result_status,
  duration, message, details, attempts, is_flaky)
SELECT su.id, y.build_id, y.instance_id, y.test_key, y.name, y.finished, y.status,
  IF(y.status = 'SKIPPED', 0, y.base * (0.6 + y.r / 1250) * IF(y.number = {builds} AND y.idx % 97 = 5, 6, 1)),
  IF(y.status IN ('FAILED', 'ERROR'), CONCAT('AssertionError: expected ', y.r, ' to be below 10'), NULL),
  IF(y.status IN ('FAILED', 'ERROR'),
     CONCAT('Traceback (most recent call last):\\n  File "bench.py", line ', y.r, ', in ', y.name,
            '\\nAssertionError'), NULL),
  IF(y.retried, 2, 1), y.retried
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
# 2.5 % skipped, about 1 % failed; durations spread by a per-case hash
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
SUITE_COUNTERS_SQL = """
UPDATE test_suites su JOIN (
  SELECT suite_id, COUNT(*) AS total, SUM(result_status = 'SUCCESS') AS passed,
    SUM(result_status = 'FAILED') AS failed, SUM(result_status = 'ERROR') AS errored,
    SUM(result_status = 'SKIPPED') AS skipped, SUM(is_flaky) AS flaky, SUM(duration) AS duration
  FROM test_cases WHERE instance_id = :instance GROUP BY suite_id
) c ON c.suite_id = su.id
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
WHERE b.instance_id = :instance
"""


def test_rows(rng):
    """The 1,000 tests: suite, name, key, kind (stable, flaky, streak, skip) and base duration."""
    rows = []
    for idx in range(SUITES * CASES_PER_SUITE):
        suite = f"com.example.bench.Suite{idx // CASES_PER_SUITE:02d}"
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


def load(app):
    """Fill the database with bulk SQL; return the instance id."""
    with app.app_context():
        upgrade()
        user = User(username="viewer", role="viewer", active=True)
        user.set_password(VIEWER_PASSWORD)
        db.session.add(user)
        instance = results.create_instance("million")
        db.session.commit()
        instance_id = instance.id
        db.session.remove()
        started = time.perf_counter()
        with db.engine.begin() as connection:
            connection.execute(sa.text(TESTS_TABLE))
            connection.execute(
                sa.text("INSERT INTO bench_tests VALUES (:idx, :suite_name, :name, :test_key, :kind, :base)"),
                test_rows(random.Random(7)),
            )
            params = {"instance": instance_id}
            connection.execute(sa.text(BUILDS_SQL.format(builds=BUILDS)), params)
            connection.execute(sa.text(SUITES_SQL.format(suites=SUITES)), params)
        for first in range(1, BUILDS + 1, CHUNK_BUILDS):
            with db.engine.begin() as connection:
                connection.execute(
                    sa.text(CASES_SQL.format(builds=BUILDS)),
                    dict(params, first=first, last=first + CHUNK_BUILDS - 1),
                )
        sign_failures(instance_id)
        big = {"instance": load_big_build()}
        with db.engine.begin() as connection:
            for counted in (params, big):
                connection.execute(sa.text(SUITE_COUNTERS_SQL), counted)
                connection.execute(sa.text(BUILD_COUNTERS_SQL), counted)
            connection.execute(sa.text("DROP TABLE bench_tests"))
            for table in ("test_builds", "test_suites", "test_cases"):
                connection.execute(sa.text(f"ANALYZE TABLE {table}"))
        with db.engine.connect() as connection:
            total, failing = connection.execute(
                sa.text("SELECT SUM(cases_total), SUM(failed + errored) FROM test_builds")
            ).one()
        seconds = time.perf_counter() - started
        print(f"loaded {total:,} cases ({failing / total:.2%} failing) in {seconds:.0f} s", flush=True)
    return instance_id


def load_big_build():
    """Make the instance "hundred-k" with one build of 100,000 cases; return its id."""
    instance = results.create_instance("hundred-k")
    db.session.commit()
    instance_id = instance.id
    db.session.remove()
    params = {"instance": instance_id}
    with db.engine.begin() as connection:
        connection.execute(sa.text(BIG_BUILD_SQL), params)
        connection.execute(sa.text(BIG_SUITES_SQL.format(suites=BIG_SUITES)), params)
        connection.execute(sa.text(BIG_CASES_SQL.format(cases=BIG_CASES_PER_SUITE)), params)
    return instance_id


def sign_failures(instance_id):
    """Give the bulk-loaded failing cases their failure signatures, as every write path would."""
    with db.engine.begin() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT id, message, details FROM test_cases "
                "WHERE instance_id = :i AND result_status IN ('FAILED', 'ERROR')"
            ),
            {"i": instance_id},
        ).all()
        signed = []
        for row in rows:
            digest, text = signature_for(row.message, row.details)
            signed.append({"id": row.id, "sig": digest, "text": text})
        connection.execute(
            sa.text("UPDATE test_cases SET signature = :sig, signature_text = :text WHERE id = :id"), signed
        )


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


def time_all(app, instance_id, repeat):
    """Print the median and worst server time of every target."""
    client = logged_in_client(app)
    # badges are read by strangers (a README's images): timed without a session, as they are served
    anonymous = app.test_client()
    print(f"{'page':42} {'median ms':>9} {'max ms':>8} {'target':>7}")
    for label, path, target in targets(app, instance_id):
        timings, _ = time_get(anonymous if path.startswith("/badges/") else client, path, repeat)
        median = statistics.median(timings)
        verdict = "" if target is None else f"{target:>5} {'ok' if median <= target else 'MISSED'}"
        print(f"{label:42} {median:9.1f} {max(timings):8.1f} {verdict}", flush=True)


def main():
    """Build the database (or reuse one kept earlier), time the pages, drop the database."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the database and print its URL")
    parser.add_argument("--reuse", metavar="URL", help="time a database kept by an earlier --keep run")
    args = parser.parse_args()
    reason = mysql_unavailable_reason()
    if reason:
        raise SystemExit(reason)
    os.environ["GREENBAR_INSTANCE_PATH"] = tempfile.mkdtemp(prefix="greenbar-reads-")
    url = args.reuse or create_scratch_mysql()
    settings = {
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": "bench",
        "RATELIMIT_ENABLED": False,
        "WTF_CSRF_ENABLED": False,
    }
    app = create_app(settings)
    try:
        if args.reuse:
            with app.app_context():
                instance_id = db.session.execute(
                    sa.text("SELECT id FROM test_instances WHERE name = 'million'")
                ).scalar_one()
                db.session.remove()
        else:
            instance_id = load(app)
        time_all(app, instance_id, args.repeat)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if args.keep:
            print(f"kept: --reuse '{url}'")
        else:
            drop_scratch_mysql(url)


if __name__ == "__main__":
    sys.exit(main())
