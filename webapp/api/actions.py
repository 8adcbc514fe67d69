"""API endpoints for acting on results: failure groups and triage, quarantine, gate, split, badge token.

The figures come from :mod:`webapp.failures`, :mod:`webapp.quarantine`,
:mod:`webapp.gate`, :mod:`webapp.split` and :mod:`webapp.badges`; these views
check parameters and bodies, add links and write times as ISO 8601.
"""

import re
import time

from flask import Response
from flask import abort
from flask import current_app
from flask import request
from flask import url_for
from flask_login import current_user

from webapp import badges
from webapp import failures
from webapp import gate
from webapp import quarantine
from webapp import split
from webapp import stats
from webapp.api import payload as p
from webapp.api.pagination import DEFAULT_LIMIT
from webapp.api.pagination import MAX_LIMIT
from webapp.api.pagination import MAX_OFFSET
from webapp.api.pagination import page_url
from webapp.api.resources import get_build
from webapp.api.resources import get_instance
from webapp.api.serializers import iso
from webapp.api.statistics import MAX_WINDOW
from webapp.api.statistics import plain
from webapp.extensions import db

SIGNATURE = re.compile(r"[0-9a-f]{16}")
MAX_WAIT = 60
WAIT_STEP = 0.5
LABEL_FIELDS = {
    "label": p.text(32, required=True),
    "note": p.text(failures.NOTE_LIMIT),
    "issue_url": p.text(failures.ISSUE_URL_LIMIT),
}
QUARANTINE_FIELDS = {
    "suite": p.text(255, required=True),
    "name": p.text(512, required=True),
    "reason": p.text(quarantine.REASON_LIMIT, required=True),
    "owner": p.text(80),
    "expires": p.timestamp(),
}


def number(minimum, maximum):
    """A number field within bounds (null allowed: the rule is off)."""

    def check(value):
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("must be a number")
        if not minimum <= value <= maximum:
            raise ValueError(f"must be between {minimum} and {maximum}")
        return float(value)

    check.required = False
    return check


def boolean():
    """A true/false field."""

    def check(value):
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value

    check.required = False
    return check


RULE_FIELDS = {
    "min_pass_rate": number(0, 100),
    "no_new_failures": boolean(),
    "max_flaky": p.integer(minimum=0, maximum=10**9),
    "max_duration_increase": number(0, 10**6),
}


def text_arg(name):
    """An optional text query parameter of at most 255 characters (a branch name)."""
    value = request.args.get(name)
    if value is not None and len(value) > 255:
        raise p.ValidationError(f"{name} must be at most 255 characters", {name: "too long"})
    return value


def paged(items_total, results_for):
    """The usual list shape over a computed list: ``{count, next, previous, results}``."""
    limit = p.query_int("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = p.query_int("offset", 0, 0, MAX_OFFSET)
    found = results_for(offset, limit)
    total = items_total(found)
    following = offset + limit
    return found, {
        "count": total,
        "next": page_url(following, limit) if following < total else None,
        "previous": page_url(max(offset - limit, 0), limit) if offset > 0 else None,
    }


def case_link(instance_id, test):
    """Add the API address of a group's case to one of its tests."""
    test["url"] = url_for(
        "api.case",
        instance_id=instance_id,
        build_id=test["build_id"],
        suite_id=test["suite_id"],
        case_id=test["case_id"],
    )
    return test


def linked_groups(instance_id, groups):
    """Add case links to the examples and tests of failure groups."""
    for group in groups:
        case_link(instance_id, group["example"])
        for test in group["tests"]:
            case_link(instance_id, test)
    return groups


def build_failure_groups(instance_id, build_id):
    """A build's failures grouped by signature, largest group first, with the new/known split."""
    build = get_build(instance_id, build_id)
    found, page = paged(
        lambda found: found["count"],
        lambda offset, limit: failures.build_failure_groups(build, offset, limit),
    )
    return plain(
        {
            **page,
            "build": stats.build_ref(build),
            "failures": found["failures"],
            "new": found["new"],
            "known": found["known"],
            "results": linked_groups(instance_id, found["results"]),
        }
    )


def instance_failure_groups(instance_id):
    """The top failure causes over the last ``builds`` builds (on ``branch``), largest first."""
    get_instance(instance_id)
    builds = p.query_int("builds", stats.DEFAULT_WINDOW, 1, MAX_WINDOW)
    branch = text_arg("branch")
    found, page = paged(
        lambda found: found["count"],
        lambda offset, limit: failures.top_causes(instance_id, builds, branch, offset=offset, limit=limit),
    )
    return plain(
        {
            **page,
            "builds": found["builds"],
            "branch": branch,
            "results": linked_groups(instance_id, found["results"]),
        }
    )


def signature_arg(signature):
    """A signature from the path, or 404 when it cannot be one."""
    if not SIGNATURE.fullmatch(signature):
        abort(404, description=f"{signature!r} is not a failure signature (16 hex digits)")
    return signature


def label_reply(instance_id, signature):
    """A signature's label (or null) and its history of changes, newest first."""
    label = failures.labels_for(instance_id, [signature]).get(signature)
    history = [
        {
            "label": event.label,
            "note": event.note,
            "issue_url": event.issue_url,
            "by": event.username,
            "at": event.created,
        }
        for event in failures.label_history(instance_id, signature)
    ]
    return plain({"signature": signature, "label": failures.label_json(label), "history": history})


def read_label(instance_id, signature):
    """A signature's triage label and its history."""
    get_instance(instance_id)
    return label_reply(instance_id, signature_arg(signature))


def put_label(instance_id, signature):
    """Label a failure signature: product_bug, test_bug, environment or to_investigate."""
    get_instance(instance_id)
    signature = signature_arg(signature)
    body = p.validate(p.read_json_object(), LABEL_FIELDS)
    try:
        failures.set_label(
            instance_id, signature, body["label"], current_user, body.get("note"), body.get("issue_url")
        )
    except failures.TriageError as error:
        raise p.ValidationError(str(error), {"label": str(error)}) from None
    db.session.commit()
    return label_reply(instance_id, signature)


def delete_label(instance_id, signature):
    """Remove a signature's label (recorded in its history)."""
    get_instance(instance_id)
    signature = signature_arg(signature)
    if not failures.remove_label(instance_id, signature, current_user):
        abort(404, description=f"failure signature {signature} has no label in test instance {instance_id}")
    db.session.commit()
    return "", 204


def entry_json(entry):
    """A quarantine entry."""
    return plain(
        {
            "id": entry.id,
            "suite": entry.suite,
            "name": entry.name,
            "node_id": quarantine.node_id(entry),
            "test_key": entry.test_key,
            "reason": entry.reason,
            "owner": entry.owner_name,
            "created_by": entry.created_by_name,
            "created": entry.created,
            "expires": entry.expires,
            "active": quarantine.is_active(entry),
            "removed": entry.removed,
            "removed_by": entry.removed_by_name,
        }
    )


def list_quarantine(instance_id):
    """The entries that apply now; ``?format=text`` gives ``suite::name`` lines for CI."""
    get_instance(instance_id)
    entries = quarantine.active_entries(instance_id)
    if request.args.get("format") == "text":
        lines = "".join(quarantine.node_id(entry) + "\n" for entry in entries)
        return Response(lines, mimetype="text/plain")
    return {
        "count": len(entries),
        "next": None,
        "previous": None,
        "results": [entry_json(e) for e in entries],
    }


def create_quarantine(instance_id):
    """Quarantine a test: ``suite``, ``name``, ``reason``, optional ``owner`` (a username) and ``expires``."""
    get_instance(instance_id)
    body = p.validate(p.read_json_object(), QUARANTINE_FIELDS)
    owner = None
    if body.get("owner"):
        owner = quarantine.user_named(body["owner"])
        if owner is None:
            raise p.ValidationError(f"no active user named {body['owner']!r}", {"owner": "no such user"})
    try:
        entry = quarantine.add_entry(
            instance_id, body["suite"], body["name"], body["reason"], current_user, owner, body.get("expires")
        )
    except quarantine.QuarantineError as error:
        raise p.ValidationError(error.message, {error.field: error.message}) from None
    reply = entry_json(entry)
    db.session.commit()
    return reply, 201


def delete_quarantine(instance_id, entry_id):
    """End a quarantine entry now; the entry stays as the record of who ended it."""
    get_instance(instance_id)
    entry = quarantine.get_entry(instance_id, entry_id)
    if entry is None:
        abort(404, description=f"quarantine entry {entry_id} does not exist in test instance {instance_id}")
    quarantine.remove_entry(entry, current_user)
    db.session.commit()
    return "", 204


def read_rules(instance_id):
    """The instance's quality-gate rules (a rule that is null is off)."""
    get_instance(instance_id)
    return gate.rules_json(gate.rules_for(instance_id))


def put_rules(instance_id):
    """Replace the instance's quality-gate rules; a rule left out or null is off."""
    get_instance(instance_id)
    body = p.validate(p.read_json_object(), RULE_FIELDS)
    try:
        rules = gate.save_rules(instance_id, current_user, **body)
    except gate.GateError as error:
        raise p.ValidationError(error.message, {error.field: error.message}) from None
    reply = gate.rules_json(rules)
    db.session.commit()
    return reply


def build_gate(instance_id, build_id):
    """The gate's verdict on a build; ``?wait=S`` waits for it to finish, else an unfinished build is 409."""
    build = get_build(instance_id, build_id)
    # a server may cap the wait lower (GATE_MAX_WAIT): each waiting request holds a worker
    wait = min(p.query_int("wait", 0, 0, MAX_WAIT), current_app.config.get("GATE_MAX_WAIT", MAX_WAIT))
    base_branch = text_arg("base_branch")
    deadline = time.monotonic() + wait
    while build.finished is None and time.monotonic() < deadline:
        # end the transaction, so the next read sees a finish committed meanwhile
        db.session.rollback()
        time.sleep(WAIT_STEP)
        build = get_build(instance_id, build_id)
    if build.finished is None:
        abort(
            409, description=f"test build {build_id} has not finished; ask again with ?wait=S to wait for it"
        )
    return plain(gate.evaluate(build, base_branch))


def split_tests(instance_id):
    """The instance's tests in ``shards`` lists balanced by median duration over the last ``builds``."""
    get_instance(instance_id)
    shards = p.query_int("shards", None, 1, split.MAX_SHARDS)
    if shards is None:
        raise p.ValidationError("give the number of shards", {"shards": "is required"})
    window = p.query_int("builds", split.DEFAULT_WINDOW, 1, MAX_WINDOW)
    return split.split_tests(instance_id, shards, text_arg("branch"), window)


def rotate_badge_token(instance_id):
    """Give the instance a new badge token; badge links with the old one stop working."""
    get_instance(instance_id)
    token = badges.rotate_token(instance_id, current_user)
    reply = {
        "token": token.token,
        "rotated": iso(token.rotated),
        "urls": badge_urls(instance_id, token.token),
    }
    db.session.commit()
    return reply


def badge_urls(instance_id, token):
    """The public address of each kind of badge."""
    return {
        kind: url_for("badges.badge", instance_id=instance_id, token=token, kind=kind, _external=True)
        for kind in badges.KINDS
    }
