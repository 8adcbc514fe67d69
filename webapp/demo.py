"""A realistic sample of recorded test runs, so a new user sees something real at once."""

import random
from datetime import timedelta

from webapp import results
from webapp.domain import FAILING
from webapp.models import utcnow

PRODUCTS = {
    "checkout-service": ("Payment and basket API", ["api.cart", "api.payment", "db.orders", "e2e.checkout"]),
    "mobile-app": (
        "iOS and Android client",
        ["ui.login", "ui.catalog", "sync.offline", "push.notifications", "ui.settings"],
    ),
    "data-pipeline": ("Nightly ETL jobs", ["ingest.csv", "transform.currency", "load.warehouse"]),
}
BRANCHES = ["main", "main", "main", "release/2.4", "feature/faster-sync"]
TRACEBACK = """Traceback (most recent call last):
  File "tests/{module}.py", line {line}, in {name}
    assert response.status_code == 200
AssertionError: assert {code} == 200
 +  where {code} = <Response [{code}]>.status_code"""


def case_result(rng, name, build_index, flaky_names, broken_names):
    """Decide one case's result in one build, with stable flaky and broken tests."""
    duration = round(rng.lognormvariate(-2.5, 1.1), 4)
    row = {"name": name, "duration": duration, "result_status": "SUCCESS", "attempts": 1}
    roll = rng.random()
    if name in broken_names and build_index >= 20:
        row.update(result_status="FAILED", message="AssertionError: assert 500 == 200")
    elif name in flaky_names and roll < 0.35:
        row.update(result_status="SUCCESS", attempts=2, is_flaky=True)
    elif name in flaky_names and roll < 0.5:
        row.update(result_status="FAILED", message="TimeoutError: no answer within 5 s")
    elif roll < 0.01:
        row.update(result_status="ERROR", message="ConnectionResetError: peer closed the connection")
    elif roll < 0.05:
        row["result_status"] = "SKIPPED"
        row["duration"] = 0.0
        row["message"] = "skipped: needs a device farm"
    if row["result_status"] in FAILING:
        code = rng.choice([500, 502, 404])
        module = name.split(".")[0]
        row["details"] = TRACEBACK.format(module=module, line=rng.randint(10, 400), name=name, code=code)
    return row


def load_instance(rng, name, description, suite_names, now):
    """Create one instance with 30 builds; return how many cases were stored."""
    instance = results.create_instance(name, description)
    suite_cases = {
        suite: [f"test_{suite.split('.')[-1]}_{i:03d}" for i in range(rng.randint(40, 120))]
        for suite in suite_names
    }
    every_case = [(suite, case) for suite, cases in suite_cases.items() for case in cases]
    flaky_names = {case for _, case in rng.sample(every_case, 4)}
    broken_names = {case for _, case in rng.sample(every_case, 2)}
    stored = 0
    for index in range(30):
        started = now - timedelta(days=30 - index, minutes=rng.randint(0, 600))
        build = results.create_build(
            instance,
            name=f"nightly {started:%Y-%m-%d}",
            branch=rng.choice(BRANCHES),
            revision=f"{rng.getrandbits(160):040x}",
            ci_url=f"https://ci.example.com/{name}/{index + 1}",
            started=started,
        )
        clock = started
        for suite_name, case_names in suite_cases.items():
            suite = results.create_suite(build, suite_name, started=clock)
            rows = [case_result(rng, case, index, flaky_names, broken_names) for case in case_names]
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
        cases += load_instance(rng, name, description, suites, now)
    return {"instances": len(PRODUCTS), "builds": 30 * len(PRODUCTS), "cases": cases}
