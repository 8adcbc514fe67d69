"""A realistic sample of recorded test runs, so a new user sees something real at once."""

import random
from datetime import timedelta

from webapp import results
from webapp.models import utcnow

PRODUCTS = {
    "checkout-service": ("Payment and basket API", ["api.cart", "api.payment", "db.orders", "e2e.checkout"]),
    "mobile-app": (
        "iOS and Android client",
        ["ui.login", "ui.catalog", "sync.offline", "push.notifications", "ui.settings"],
    ),
    "data-pipeline": ("Nightly ETL jobs", ["ingest.csv", "transform.currency", "load.warehouse"]),
}


# most builds on main, every fifth on the release branch, a run of feature-branch builds
def branch_of(index):
    """The branch of the demo's build ``index`` (0-based): two or three branches per instance."""
    if index % 5 == 4:
        return "release/2.4"
    if 12 <= index < 18 and index % 2:
        return "feature/faster-sync"
    return "main"


TIMEOUT_SECONDS = 5
ASSERTION = """Traceback (most recent call last):
  File "tests/{module}.py", line {line}, in {name}
    assert response.status_code == 200
AssertionError: assert {code} == 200
 +  where {code} = <Response [{code}]>.status_code"""
TIMEOUT = """Traceback (most recent call last):
  File "tests/{module}.py", line {line}, in {name}
    response = client.get(url, timeout={seconds})
  File "lib/client.py", line 88, in get
    raise TimeoutError(f"no answer within {{timeout}} s")
TimeoutError: no answer within {seconds} s"""
RESET = """Traceback (most recent call last):
  File "tests/conftest.py", line {line}, in database
    connection = pool.connect()
  File "lib/pool.py", line 41, in connect
    return self._open()
ConnectionResetError: [Errno 104] Connection reset by peer"""


def failure(rng, name, kind):
    """The status, message, details and a plausible duration of one failure of ``kind``.

    The message is the traceback's last line, and a timeout takes the time it waited.
    """
    module, line = name.split("_")[1], rng.randint(10, 400)
    if kind == "timeout":
        return {
            "result_status": "FAILED",
            "message": f"TimeoutError: no answer within {TIMEOUT_SECONDS} s",
            "details": TIMEOUT.format(module=module, line=line, name=name, seconds=TIMEOUT_SECONDS),
            "duration": round(TIMEOUT_SECONDS + rng.uniform(0.01, 0.2), 4),
        }
    if kind == "reset":
        return {
            "result_status": "ERROR",
            "message": "ConnectionResetError: [Errno 104] Connection reset by peer",
            "details": RESET.format(line=line),
            "duration": round(rng.uniform(0.002, 0.05), 4),
        }
    code = rng.choice([500, 502, 404])
    return {
        "result_status": "FAILED",
        "message": f"AssertionError: assert {code} == 200",
        "details": ASSERTION.format(module=module, line=line, name=name, code=code),
    }


def case_result(rng, name, build_index, roles, green, usual):
    """Decide one case's result in one build, from the test's role (flaky, broken, slower) in the demo.

    :param roles: ``{"flaky": names, "broken": names, "slower": names}``.
    :param green: whether this build passes wholly (no failures, errors or skips).
    :param usual: the test's usual duration; a run takes it give or take a quarter.
    """
    base = usual * rng.uniform(0.8, 1.25)
    if name in roles["slower"] and build_index >= 25:
        base = base * 4 + 0.5  # a duration regression from build 26 on
    row = {"name": name, "duration": round(base, 4), "result_status": "SUCCESS", "attempts": 1}
    roll = rng.random()
    if green:
        return row
    if name in roles["broken"] and build_index >= 20:
        row.update(failure(rng, name, "assertion"))
    elif name in roles["flaky"] and roll < 0.35:
        # failed once, passed on the retry: two attempts' worth of time
        row.update(result_status="SUCCESS", attempts=2, is_flaky=True, duration=round(base * 2, 4))
    elif name in roles["flaky"] and roll < 0.5:
        row.update(failure(rng, name, "timeout"))
    elif roll < 0.01:
        row.update(failure(rng, name, "reset"))
    elif roll < 0.05:
        row.update(result_status="SKIPPED", duration=0.0, message="skipped: needs a device farm")
    return row


def load_instance(rng, name, description, suite_names, now, green_build=None):
    """Create one instance with 30 builds; return how many cases were stored.

    :param green_build: the index of a build in which every test passes.
    """
    instance = results.create_instance(name, description)
    suite_cases = {
        suite: [f"test_{suite.split('.')[-1]}_{i:03d}" for i in range(rng.randint(40, 120))]
        for suite in suite_names
    }
    every_case = [case for cases in suite_cases.values() for case in cases]
    picked = rng.sample(every_case, 8)
    roles = {"flaky": set(picked[:4]), "broken": set(picked[4:6]), "slower": set(picked[6:])}
    usual = {case: rng.lognormvariate(-2.5, 1.1) for case in every_case}
    stored = 0
    for index in range(30):
        started = now - timedelta(days=30 - index, minutes=rng.randint(0, 600))
        build = results.create_build(
            instance,
            name=f"nightly {started:%Y-%m-%d}",
            branch=branch_of(index),
            revision=f"{rng.getrandbits(160):040x}",
            ci_url=f"https://ci.example.com/{name}/{index + 1}",
            started=started,
        )
        clock = started
        for suite_name, case_names in suite_cases.items():
            suite = results.create_suite(build, suite_name, started=clock)
            rows = [
                case_result(rng, case, index, roles, index == green_build, usual[case]) for case in case_names
            ]
            for row in rows:
                row["started"] = clock
                clock += timedelta(seconds=row["duration"])
                row["finished"] = clock
            results.add_cases(suite, build, rows)
            suite.finished = clock
            stored += len(rows)
        build.finished = clock
    return stored


def load(seed=7):
    """Load the demo instances; the caller commits. Return counts of what was stored."""
    rng = random.Random(seed)
    now = utcnow()
    cases = 0
    for name, (description, suites) in PRODUCTS.items():
        # the data pipeline's newest build passes wholly, so a green build is there to see
        green = 29 if name == "data-pipeline" else None
        cases += load_instance(rng, name, description, suites, now, green_build=green)
    return {"instances": len(PRODUCTS), "builds": 30 * len(PRODUCTS), "cases": cases}
