"""Failure groups and their triage: failures with one signature are one cause.

Groups are counted from the ``(build_id, signature, test_key)`` index alone;
case rows are read only for the groups shown (one example each and a few of
their tests). Triage labels belong to a signature within an instance, so a
cause labelled once arrives labelled in every later build.
"""

import re

from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select

from webapp import stats
from webapp.extensions import db
from webapp.models import TestCase
from webapp.models import TestSuite
from webapp.models import utcnow
from webapp.models_actions import LABELS
from webapp.models_actions import FailureLabel
from webapp.models_actions import FailureLabelEvent

# tests listed per group; the group's count says how many there are
TESTS_SHOWN = 20
NOTE_LIMIT = 4000
ISSUE_URL_LIMIT = 2048
# an http(s) address in printable ASCII, or nothing (the same pattern is in the OpenAPI document)
ISSUE_URL_PATTERN = "^(https?://[!-~]*)?$"


class TriageError(ValueError):
    """A triage label that cannot be stored (an unknown label, an over-long note)."""


def group_counts(build_ids):
    """``{signature: failures}`` over some builds, from the index."""
    rows = db.session.execute(
        select(TestCase.signature, func.count())
        .where(TestCase.build_id.in_(build_ids), TestCase.signature.is_not(None))
        .group_by(TestCase.signature)
    ).all()
    return dict(rows)


def ranked(counts):
    """Signatures, largest group first; ties in hash order so that pages are stable."""
    return sorted(counts, key=lambda signature: (-counts[signature], signature))


def case_rows(case_ids):
    """Cases with their suite names, by id."""
    if not case_ids:
        return {}
    rows = db.session.execute(
        select(
            TestCase.id,
            TestCase.name,
            TestCase.suite_id,
            TestCase.build_id,
            TestCase.test_key,
            TestCase.result_status,
            TestCase.message,
            TestCase.signature,
            TestCase.signature_text,
            TestSuite.name.label("suite"),
        )
        .join(TestSuite, TestSuite.id == TestCase.suite_id)
        .where(TestCase.id.in_(case_ids))
    ).all()
    return {row.id: row for row in rows}


def test_json(row):
    """One test of a group: its identity and the case that failed."""
    return dict(stats.test_identity(row), status=row.result_status)


def example_json(row):
    """A group's example case, with its raw message."""
    return dict(test_json(row), message=row.message)


def labels_for(instance_id, signatures):
    """``{signature: FailureLabel}`` for the given signatures of an instance."""
    if not signatures:
        return {}
    found = db.session.scalars(
        select(FailureLabel).where(
            FailureLabel.instance_id == instance_id, FailureLabel.signature.in_(list(signatures))
        )
    )
    return {label.signature: label for label in found}


def label_json(label):
    """A triage label as the pages and the API show it, or None."""
    if label is None:
        return None
    return {
        "label": label.label,
        "note": label.note,
        "issue_url": label.issue_url,
        "updated_by": label.updated_by_name,
        "updated": label.updated,
    }


def build_failure_groups(build, offset=0, limit=50):
    """One page of a build's failure groups, largest first, with the build's new/known split.

    :return: ``{"count", "failures", "new": {...}, "known": {...}, "results": [...]}``;
        each result has ``signature``, ``count``, ``message`` (normalised), ``label``,
        ``example`` and up to :data:`TESTS_SHOWN` ``tests``.
    """
    counts = group_counts([build.id])
    order = ranked(counts)
    labels = labels_for(build.instance_id, order)
    shown = order[offset : offset + limit]
    members = (
        db.session.execute(
            select(TestCase.signature, TestCase.id)
            .where(TestCase.build_id == build.id, TestCase.signature.in_(shown))
            .order_by(TestCase.signature, TestCase.id)
        ).all()
        if shown
        else []
    )
    tests_of = {signature: [] for signature in shown}
    for signature, case_id in members:
        if len(tests_of[signature]) < TESTS_SHOWN:
            tests_of[signature].append(case_id)
    rows = case_rows([case_id for ids in tests_of.values() for case_id in ids])
    results = []
    for signature in shown:
        tests = [rows[case_id] for case_id in tests_of[signature]]
        results.append(
            {
                "signature": signature,
                "count": counts[signature],
                "message": tests[0].signature_text,
                "label": label_json(labels.get(signature)),
                "example": example_json(tests[0]),
                "tests": [test_json(row) for row in tests],
            }
        )
    return {
        "count": len(order),
        "failures": sum(counts.values()),
        **causes_split(counts, labels),
        "results": results,
    }


def causes_split(counts, labels):
    """How many causes and failures are new (unlabelled) and how many known (labelled)."""
    split = {"new": {"causes": 0, "failures": 0}, "known": {"causes": 0, "failures": 0}}
    for signature, count in counts.items():
        part = split["known" if signature in labels else "new"]
        part["causes"] += 1
        part["failures"] += count
    return split


def top_causes(instance_id, limit_builds=stats.DEFAULT_WINDOW, branch=None, offset=0, limit=10):
    """The commonest failure causes over the last builds, largest first.

    Each has its failure count, the builds and tests it affected, the builds it
    was first and last seen in (within the window), an example (its newest
    failure) and up to :data:`TESTS_SHOWN` of its tests.
    """
    window = stats.window_builds(instance_id, limit_builds, branch)
    numbers = {row.id: row.number for row in window}
    if not numbers:
        return {"builds": 0, "count": 0, "results": []}
    per_build = db.session.execute(
        select(TestCase.signature, TestCase.build_id, func.count(), func.max(TestCase.id))
        .where(TestCase.build_id.in_(list(numbers)), TestCase.signature.is_not(None))
        .group_by(TestCase.signature, TestCase.build_id)
    ).all()
    groups = {}
    for signature, build_id, count, newest_case in per_build:
        group = groups.setdefault(signature, {"count": 0, "builds": {}})
        group["count"] += count
        group["builds"][numbers[build_id]] = newest_case
    order = sorted(groups, key=lambda signature: (-groups[signature]["count"], signature))
    shown = order[offset : offset + limit]
    tests_of = distinct_tests(list(numbers), shown)
    examples = {
        signature: groups[signature]["builds"][max(groups[signature]["builds"])] for signature in shown
    }
    rows = case_rows([*examples.values(), *(case_id for ids in tests_of.values() for case_id in ids[1])])
    labels = labels_for(instance_id, shown)
    build_ids = {number: build_id for build_id, number in numbers.items()}
    results = []
    for signature in shown:
        group = groups[signature]
        example = rows[examples[signature]]
        first, last = min(group["builds"]), max(group["builds"])
        results.append(
            {
                "signature": signature,
                "count": group["count"],
                "message": example.signature_text,
                "label": label_json(labels.get(signature)),
                "builds_affected": len(group["builds"]),
                "tests_affected": tests_of[signature][0],
                "first_seen": {"id": build_ids[first], "number": first},
                "last_seen": {"id": build_ids[last], "number": last},
                "example": example_json(example),
                "tests": [test_json(rows[case_id]) for case_id in tests_of[signature][1]],
            }
        )
    return {"builds": len(numbers), "count": len(order), "results": results}


def distinct_tests(build_ids, signatures):
    """``{signature: (tests affected, [a newest case id per test, up to TESTS_SHOWN])}`` from the index."""
    found = {signature: (0, []) for signature in signatures}
    if not signatures:
        return found
    rows = db.session.execute(
        select(TestCase.signature, TestCase.test_key, func.max(TestCase.id))
        .where(TestCase.build_id.in_(build_ids), TestCase.signature.in_(signatures))
        .group_by(TestCase.signature, TestCase.test_key)
        .order_by(TestCase.signature, TestCase.test_key)
    ).all()
    for signature, _key, case_id in rows:
        count, ids = found[signature]
        if len(ids) < TESTS_SHOWN:
            ids.append(case_id)
        found[signature] = (count + 1, ids)
    return found


def set_label(instance_id, signature, label, user, note="", issue_url=""):
    """Label a signature of an instance (or change its label) and record the change.

    :raise TriageError: for an unknown label or an over-long note or link.
    """
    if label not in LABELS:
        raise TriageError(f"label must be one of {', '.join(LABELS)}")
    note, issue_url = note or "", issue_url or ""
    if len(note) > NOTE_LIMIT:
        raise TriageError(f"the note must be at most {NOTE_LIMIT} characters")
    if len(issue_url) > ISSUE_URL_LIMIT or not re.fullmatch(ISSUE_URL_PATTERN, issue_url):
        raise TriageError("the issue link must be an http(s) address of at most 2048 characters")
    stored = db.session.scalar(
        select(FailureLabel)
        .where(FailureLabel.instance_id == instance_id, FailureLabel.signature == signature)
        .with_for_update()
    )
    if stored is None:
        stored = FailureLabel(instance_id=instance_id, signature=signature)
        db.session.add(stored)
    stored.label, stored.note, stored.issue_url = label, note, issue_url
    stored.updated_by_id, stored.updated_by_name, stored.updated = user.id, user.username, utcnow()
    record(instance_id, signature, user, label, note, issue_url)
    db.session.flush()
    return stored


def remove_label(instance_id, signature, user):
    """Remove a signature's label, recording who did; return whether there was one."""
    result = db.session.execute(
        delete(FailureLabel).where(
            FailureLabel.instance_id == instance_id, FailureLabel.signature == signature
        )
    )
    if result.rowcount:
        record(instance_id, signature, user, None, "", "")
        db.session.flush()
    return bool(result.rowcount)


def record(instance_id, signature, user, label, note, issue_url):
    """Add one entry to a signature's triage history."""
    db.session.add(
        FailureLabelEvent(
            instance_id=instance_id,
            signature=signature,
            label=label,
            note=note,
            issue_url=issue_url,
            user_id=user.id,
            username=user.username,
            created=utcnow(),
        )
    )


def label_history(instance_id, signature):
    """A signature's triage changes, newest first."""
    return db.session.scalars(
        select(FailureLabelEvent)
        .where(FailureLabelEvent.instance_id == instance_id, FailureLabelEvent.signature == signature)
        .order_by(FailureLabelEvent.id.desc())
    ).all()
