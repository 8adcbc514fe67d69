"""Server-side render time of each report page, on the demo data and on 100,000-case builds.

Run from the repository root::

    .venv/bin/python -m tests.benchmarks.pages_bench [--database sqlite|mysql|both] [--repeat 7]

For each database it makes a scratch database (SQLite in a temporary folder;
MySQL/MariaDB at TEST_DATABASE_URL, dropped afterwards), migrates it, loads the
demo data, then adds an instance "big" with two builds of 100,000 cases (ten
suites of 10,000; about 1 % failed and 0.5 % errors, bulk-inserted with
``results.add_cases``) and one build of 10 cases. Each page is rendered through
the Flask test client as a logged-in viewer; it prints the median and the
slowest of ``--repeat`` renders (after one warm-up), in milliseconds. Rows
marked "panel" are the statistics fragments the instance and build pages load
after they open.
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from flask_login.utils import _create_identifier
from flask_migrate import upgrade
from sqlalchemy import select

from tests.benchmarks.server_time import time_get
from webapp import create_app
from webapp import demo
from webapp import results
from webapp.extensions import db
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models import TestInstance
from webapp.models import TestSuite
from webapp.models import User

BIG_CASES = 100_000
BIG_SUITES = 10
CHUNK = 5_000


def big_rows(suite_index, rng):
    """The cases of one 10,000-case suite with a few failures and errors."""
    per_suite = BIG_CASES // BIG_SUITES
    rows = []
    for number in range(per_suite):
        roll = rng.random()
        status = "ERROR" if roll < 0.005 else "FAILED" if roll < 0.015 else "SUCCESS"
        status = "SKIPPED" if 0.015 <= roll < 0.03 else status
        row = {
            "name": f"test_{suite_index:02d}_{number:05d}",
            "result_status": status,
            "duration": round(rng.lognormvariate(-3, 1), 4),
        }
        if status in ("FAILED", "ERROR"):
            row["message"] = "AssertionError: expected 200, got 500"
            row["details"] = "Traceback (most recent call last):\n  ...\nAssertionError"
        rows.append(row)
    return rows


def add_big_build(instance, rng):
    """Bulk-insert one 100,000-case build; return it and how long the insert took."""
    started = time.perf_counter()
    build = results.create_build(instance, branch="main", ci_url="https://ci.example.com/big")
    for suite_index in range(BIG_SUITES):
        suite = results.create_suite(build, f"big.suite{suite_index:02d}")
        rows = big_rows(suite_index, rng)
        for start in range(0, len(rows), CHUNK):
            results.add_cases(suite, build, rows[start : start + CHUNK])
    db.session.commit()
    return build, time.perf_counter() - started


def load(app):
    """Fill the database: demo data, two 100,000-case builds and a 10-case build."""
    rng = random.Random(3)
    with app.app_context():
        upgrade()
        user = User(username="bench", role="viewer")
        user.set_password("bench-password")
        db.session.add(user)
        demo.load()
        db.session.commit()
        big = results.create_instance("big", "two builds of 100,000 cases")
        db.session.commit()
        for _ in range(2):
            build, seconds = add_big_build(big, rng)
            print(f"  inserted build {build.id}: {BIG_CASES} cases in {seconds:.1f} s", flush=True)
        small = results.create_build(big, branch="main")
        suite = results.create_suite(small, "small")
        results.add_cases(
            suite, small, [{"name": f"t{i}", "result_status": "SUCCESS", "duration": 0.1} for i in range(10)]
        )
        db.session.commit()
        return user.get_id()


def pages(app):
    """The paths to time, each with a label."""
    with app.app_context():
        first = db.session.scalar(
            select(TestInstance).where(TestInstance.name != "big").order_by(TestInstance.id)
        )
        demo_build = db.session.scalar(
            select(TestBuild).where(TestBuild.instance_id == first.id).order_by(TestBuild.number.desc())
        )
        demo_suite = db.session.scalar(select(TestSuite).where(TestSuite.build_id == demo_build.id))
        demo_case = db.session.scalar(select(TestCase).where(TestCase.build_id == demo_build.id))
        big = db.session.scalar(select(TestInstance).where(TestInstance.name == "big"))
        builds = db.session.scalars(
            select(TestBuild).where(TestBuild.instance_id == big.id).order_by(TestBuild.number)
        ).all()
        big_build, small_build = builds[1], builds[2]
        big_suite = db.session.scalar(select(TestSuite).where(TestSuite.build_id == big_build.id))
        failed_case = db.session.scalar(
            select(TestCase).where(TestCase.build_id == big_build.id, TestCase.result_status == "FAILED")
        )
        small_suite = db.session.scalar(select(TestSuite).where(TestSuite.build_id == small_build.id))
    return [
        ("instances list", "/"),
        ("instance (demo, 30 builds)", f"/instances/{first.id}"),
        ("build (demo, ~280 cases)", f"/builds/{demo_build.id}"),
        ("suite (demo)", f"/suites/{demo_suite.id}"),
        ("case (demo)", f"/cases/{demo_case.id}"),
        ("  panel: statistics (demo, 30 builds)", f"/instances/{first.id}/statistics?partial=1"),
        ("  panel: changes (demo build)", f"/builds/{demo_build.id}/changes?partial=1"),
        ("instance big (2 x 100k + 10-case build)", f"/instances/{big.id}"),
        ("build 10 cases", f"/builds/{small_build.id}"),
        ("build 100k cases", f"/builds/{big_build.id}"),
        ("build 100k, failures page 20", f"/builds/{big_build.id}?fpage=20"),
        ("suite 10 cases", f"/suites/{small_suite.id}"),
        ("suite 10k cases", f"/suites/{big_suite.id}"),
        ("suite 10k, page 300", f"/suites/{big_suite.id}?page=300"),
        ("suite 10k, status=SUCCESS page 200", f"/suites/{big_suite.id}?status=SUCCESS&page=200"),
        ("suite 10k, name search", f"/suites/{big_suite.id}?q=0042"),
        ("case in 100k build", f"/cases/{failed_case.id}"),
        ("  panel: statistics (big)", f"/instances/{big.id}/statistics?partial=1"),
        ("  panel: changes 100k vs 100k", f"/builds/{big_build.id}/changes?partial=1"),
        ("  panel: changes 10 vs 100k", f"/builds/{small_build.id}/changes?partial=1"),
    ]


def logged_in_client(app, user_id):
    """A test client whose session belongs to the benchmark user (``user_id``: its session id)."""
    client = app.test_client()
    with app.test_request_context(environ_base=client.environ_base):
        identifier = _create_identifier()
    with client.session_transaction() as session:
        session.update({"_user_id": user_id, "_fresh": True, "_id": identifier})
    return client


def time_pages(app, user_id, repeat):
    """Print the median and worst render time of each page."""
    client = logged_in_client(app, user_id)
    print(f"  {'page':45} {'median ms':>10} {'max ms':>9}  bytes")
    for label, path in pages(app):
        timings, response = time_get(client, path, repeat)
        print(
            f"  {label:45} {statistics.median(timings):10.1f} {max(timings):9.1f}  {len(response.data)}",
            flush=True,
        )


def run(database, repeat):
    """Benchmark one database backend."""
    from tests.conftest import create_scratch_mysql
    from tests.conftest import drop_scratch_mysql
    from tests.conftest import mysql_unavailable_reason

    folder = tempfile.mkdtemp(prefix="greenbar-bench-")
    os.environ["GREENBAR_INSTANCE_PATH"] = folder
    if database == "mysql":
        reason = mysql_unavailable_reason()
        if reason:
            print(f"skipping MySQL: {reason}")
            return
        url = create_scratch_mysql()
    else:
        url = "sqlite:///" + str(Path(folder) / "bench.sqlite3")
    settings = {"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "RATELIMIT_ENABLED": False}
    app = create_app(settings)
    print(f"{database}: loading data", flush=True)
    try:
        user_id = load(app)
        time_pages(app, user_id, repeat)
    finally:
        with app.app_context():
            db.engine.dispose()
        if database == "mysql":
            drop_scratch_mysql(url)


def main(argv=None):
    """Parse arguments and run the benchmark on the chosen databases."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "mysql", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    for database in ("sqlite", "mysql") if args.database == "both" else (args.database,):
        run(database, args.repeat)


if __name__ == "__main__":
    sys.exit(main())
