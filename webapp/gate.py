"""The quality gate: may this build ship? Each of an instance's rules says yes or no, with why.

Pass rate, flaky count and duration come from the builds' stored counters;
only the quarantined tests' own cases (a few index lookups) and the two
builds' failing test keys (from the covering status index) are read, so the
gate costs the same on a build of ten tests as of a hundred thousand.
Quarantined tests never count against a rule.
"""

from sqlalchemy import select

from webapp.domain import in_words
from webapp.exceptions import FieldError
from webapp.extensions import db
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models import TestSuite
from webapp.models import utcnow
from webapp.models_actions import GateRules
from webapp.quarantine import quarantined_keys
from webapp.stats import FAILING
from webapp.stats import build_ref

RULE_FIELDS = ("min_pass_rate", "no_new_failures", "max_flaky", "max_duration_increase")
NEW_FAILURES_SHOWN = 10


class GateError(FieldError):
    """Rules that cannot be stored; ``field`` names the culprit."""


def rules_for(instance_id):
    """An instance's rules; until a maintainer sets some, only "no new failures" (not stored)."""
    rules = db.session.get(GateRules, instance_id)
    if rules is None:
        rules = GateRules(
            instance_id=instance_id,
            min_pass_rate=None,
            no_new_failures=True,
            max_flaky=None,
            max_duration_increase=None,
            updated_by_name="",
        )
    return rules


def save_rules(instance_id, user, **values):
    """Store an instance's rules; a rule given as None is switched off.

    :raise GateError: for a value out of range.
    """
    checks = {
        "min_pass_rate": (0, 100, "a percentage from 0 to 100"),
        "max_flaky": (0, 10**9, "a count of 0 or more"),
        "max_duration_increase": (0, 10**6, "a percentage of 0 or more"),
    }
    for field, (low, high, meaning) in checks.items():
        value = values.get(field)
        if value is not None and not (low <= value <= high):
            raise GateError(f"{field} must be {meaning}", field)
    rules = db.session.get(GateRules, instance_id, with_for_update=True)
    if rules is None:
        rules = GateRules(instance_id=instance_id)
        db.session.add(rules)
    for field in RULE_FIELDS:
        setattr(rules, field, values.get(field))
    rules.no_new_failures = bool(values.get("no_new_failures"))
    rules.updated_by_name, rules.updated = user.username, utcnow()
    db.session.flush()
    return rules


def rules_json(rules):
    """The rules as the API gives and takes them."""
    return {field: getattr(rules, field) for field in RULE_FIELDS}


def base_build(build, base_branch=None):
    """The build to compare with: the newest finished build before it on its branch, or on ``base_branch``."""
    statement = select(TestBuild).where(
        TestBuild.instance_id == build.instance_id,
        TestBuild.id != build.id,
        TestBuild.finished.is_not(None),
    )
    if base_branch is not None:
        statement = statement.where(TestBuild.branch == base_branch)
    else:
        branch = TestBuild.branch.is_(None) if build.branch is None else TestBuild.branch == build.branch
        statement = statement.where(branch, TestBuild.number < build.number)
    return db.session.scalar(statement.order_by(TestBuild.number.desc()).limit(1))


def quarantined_cases(build, keys):
    """The quarantined tests' cases in a build (index lookups by test key)."""
    if not keys or build is None:
        return []
    return db.session.execute(
        select(TestCase.test_key, TestCase.result_status, TestCase.duration, TestCase.is_flaky).where(
            TestCase.instance_id == build.instance_id,
            TestCase.test_key.in_(keys),
            TestCase.build_id == build.id,
        )
    ).all()


def failing_keys(build):
    """The test keys that failed or errored in a build."""
    return set(
        db.session.scalars(
            select(TestCase.test_key).where(
                TestCase.build_id == build.id, TestCase.result_status.in_(FAILING)
            )
        )
    )


def counted(build, quarantined):
    """A build's pass counts, flaky count and summed duration without its quarantined cases."""
    figures = {
        "passed": build.passed,
        "ran": build.passed + build.failed + build.errored,
        "flaky": build.flaky,
        "duration": build.cases_duration or 0.0,
    }
    for row in quarantined:
        if row.result_status in ("SUCCESS", *FAILING):
            figures["ran"] -= 1
            figures["passed"] -= row.result_status == "SUCCESS"
        if row.result_status is not None:
            figures["duration"] -= row.duration or 0.0
            figures["flaky"] -= bool(row.is_flaky)
    return figures


def evaluate(build, base_branch=None):
    """The gate's verdict on a finished build: ``{"passed", "rules": [...], "build", "base"}``."""
    rules = rules_for(build.instance_id)
    keys = quarantined_keys(build.instance_id)
    base = base_build(build, base_branch)
    mine = counted(build, quarantined_cases(build, keys))
    outcomes = []
    if rules.min_pass_rate is not None:
        outcomes.append(pass_rate_rule(mine, rules.min_pass_rate, quarantined=len(keys)))
    if rules.no_new_failures:
        outcomes.append(new_failures_rule(build, base, keys))
    if rules.max_flaky is not None:
        passed = mine["flaky"] <= rules.max_flaky
        outcomes.append(
            {
                "rule": "max_flaky",
                "passed": passed,
                "detail": f"{in_words(mine['flaky'], 'flaky test')} (at most {rules.max_flaky} allowed)",
            }
        )
    if rules.max_duration_increase is not None:
        theirs = counted(base, quarantined_cases(base, keys)) if base is not None else None
        outcomes.append(duration_rule(mine, theirs, rules.max_duration_increase))
    return {
        "passed": all(outcome["passed"] for outcome in outcomes),
        "rules": outcomes,
        "build": build_ref(build),
        "base": build_ref(base) if base is not None else None,
        "quarantined": len(keys),
    }


def pass_rate_rule(figures, minimum, quarantined=0):
    """Pass rate of the cases that ran, in percent, against the minimum.

    Two decimals, so that a rate just under the minimum never reads as equal to it.
    """
    if not figures["ran"]:
        return {"rule": "min_pass_rate", "passed": True, "detail": "no counted case ran"}
    rate = 100.0 * figures["passed"] / figures["ran"]
    left_out = f"; {in_words(quarantined, 'quarantined test')} left out" if quarantined else ""
    return {
        "rule": "min_pass_rate",
        "passed": rate >= minimum,
        "detail": f"pass rate {rate:.2f} % (at least {minimum:g} % required{left_out})",
    }


def new_failures_rule(build, base, quarantined):
    """Tests failing now that did not fail in the base build, quarantined ones left out."""
    if base is None:
        new = failing_keys(build) - quarantined
        base_text = "no earlier finished build to compare with, so every failure is new"
    else:
        new = failing_keys(build) - failing_keys(base) - quarantined
        base_text = f"against build #{base.number}"
    if not new:
        return {"rule": "no_new_failures", "passed": True, "detail": f"no new failures ({base_text})"}
    names = failing_names(build, sorted(new)[:NEW_FAILURES_SHOWN])
    more = f" and {len(new) - len(names)} more" if len(new) > len(names) else ""
    return {
        "rule": "no_new_failures",
        "passed": False,
        "detail": f"{in_words(len(new), 'new failure')} ({base_text}): {', '.join(names)}{more}",
    }


def failing_names(build, keys):
    """``suite::name`` of some of a build's tests, by key."""
    rows = db.session.execute(
        select(TestSuite.name, TestCase.name)
        .join(TestSuite, TestSuite.id == TestCase.suite_id)
        .where(
            TestCase.instance_id == build.instance_id,
            TestCase.test_key.in_(keys),
            TestCase.build_id == build.id,
        )
        .order_by(TestSuite.name, TestCase.name)
    ).all()
    return [f"{suite}::{name}" for suite, name in rows]


def duration_rule(mine, theirs, maximum):
    """The increase of summed case durations over the base build's, in percent, against the maximum."""
    if theirs is None or theirs["duration"] <= 0:
        return {
            "rule": "max_duration_increase",
            "passed": True,
            "detail": "no base build duration to compare",
        }
    increase = 100.0 * (mine["duration"] - theirs["duration"]) / theirs["duration"]
    return {
        "rule": "max_duration_increase",
        "passed": increase <= maximum,
        "detail": f"duration {mine['duration']:.1f}s vs {theirs['duration']:.1f}s: "
        f"{increase:+.1f}% (at most +{maximum:g}% allowed)",
    }
