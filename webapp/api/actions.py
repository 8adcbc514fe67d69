"""API endpoints for acting on results: failure groups and triage, quarantine, gate, split, badge token.

Declared with :func:`webapp.api.declare.operation` by :func:`declare_all`; what
they take and give is in :mod:`webapp.api.actions_models`. The figures come
from :mod:`webapp.failures`, :mod:`webapp.quarantine`, :mod:`webapp.gate`,
:mod:`webapp.split` and :mod:`webapp.badges`; these views add links and turn
the services' refusals into 400s.
"""

import re
import time

from flask import Response
from flask import abort
from flask import current_app
from flask import url_for
from flask_login import current_user

from webapp import badges
from webapp import failures
from webapp import gate
from webapp import quarantine
from webapp import split
from webapp import stats
from webapp.api import actions_models as am
from webapp.api.declare import operation
from webapp.api.resources import get_build
from webapp.api.resources import get_instance
from webapp.api.resources import page_url
from webapp.exceptions import ValidationError
from webapp.extensions import db

SIGNATURE = re.compile(r"[0-9a-f]{16}")
WAIT_STEP = 0.5
QUARANTINE_DOCUMENT = {
    "responses": {
        "200": {
            "description": "Success: JSON, or with ?format=text one suite::name line per test",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/QuarantineEntryList"}},
                "text/plain": {"schema": {"type": "string"}},
            },
        }
    }
}


def page_links(total, query):
    """The ``count``, ``next`` and ``previous`` of one page of a computed list."""
    following = query.offset + query.limit
    return {
        "count": total,
        "next": page_url(following, query.limit) if following < total else None,
        "previous": page_url(max(query.offset - query.limit, 0), query.limit) if query.offset > 0 else None,
    }


def linked_test(instance_id, test):
    """Add the API address of its case to a test of a group."""
    test["url"] = url_for(
        "api.readCase",
        instance_id=instance_id,
        build_id=test["build_id"],
        suite_id=test["suite_id"],
        case_id=test["case_id"],
    )
    return test


def linked_groups(instance_id, groups):
    """Add case links to the examples and tests of failure groups."""
    for group in groups:
        linked_test(instance_id, group["example"])
        for test in group["tests"]:
            linked_test(instance_id, test)
    return groups


def build_failure_groups(instance_id, build_id, query):
    """A build's failures grouped by signature, largest group first, with the new/known split."""
    build = get_build(instance_id, build_id)
    found = failures.build_failure_groups(build, query.offset, query.limit)
    return {
        **page_links(found["count"], query),
        "build": stats.build_ref(build),
        "failures": found["failures"],
        "new": found["new"],
        "known": found["known"],
        "results": linked_groups(instance_id, found["results"]),
    }


def instance_failure_groups(instance_id, query):
    """The top failure causes over the last ``builds`` builds (on ``branch``), largest first."""
    get_instance(instance_id)
    found = failures.top_causes(
        instance_id, query.builds, query.branch, offset=query.offset, limit=query.limit
    )
    return {
        **page_links(found["count"], query),
        "builds": found["builds"],
        "branch": query.branch,
        "results": linked_groups(instance_id, found["results"]),
    }


def checked_signature(instance_id, signature):
    """The signature of the path under an existing instance, or 404 when it cannot be one."""
    get_instance(instance_id)
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
    return {"signature": signature, "label": failures.label_json(label), "history": history}


def read_label(instance_id, signature):
    """A signature's triage label and its history."""
    return label_reply(instance_id, checked_signature(instance_id, signature))


def put_label(instance_id, signature, body):
    """Label a failure signature: product_bug, test_bug, environment or to_investigate."""
    signature = checked_signature(instance_id, signature)
    try:
        failures.set_label(
            instance_id, signature, body["label"], current_user, body.get("note"), body.get("issue_url")
        )
    except failures.TriageError as error:
        raise ValidationError(str(error), {"label": str(error)}) from None
    return label_reply(instance_id, signature)


def delete_label(instance_id, signature):
    """Remove a signature's label (recorded in its history)."""
    signature = checked_signature(instance_id, signature)
    if not failures.remove_label(instance_id, signature, current_user):
        abort(404, description=f"failure signature {signature} has no label in test instance {instance_id}")


def entry_json(entry):
    """A quarantine entry as the API shows it."""
    return {
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


def list_quarantine(instance_id, query):
    """The entries that apply now; ``?format=text`` gives ``suite::name`` lines for CI."""
    get_instance(instance_id)
    entries = quarantine.active_entries(instance_id)
    if query.format == "text":
        return Response("".join(quarantine.node_id(entry) + "\n" for entry in entries), mimetype="text/plain")
    # every entry that applies now, in one page: CI wants the whole list
    return {
        "count": len(entries),
        "next": None,
        "previous": None,
        "results": [entry_json(e) for e in entries],
    }


def create_quarantine(instance_id, body):
    """Quarantine a test: ``suite``, ``name``, ``reason``, optional ``owner`` (a username) and ``expires``."""
    get_instance(instance_id)
    owner = None
    if body.get("owner"):
        owner = quarantine.user_named(body["owner"])
        if owner is None:
            raise ValidationError(f"no active user named {body['owner']!r}", {"owner": "no such user"})
    entry = quarantine.add_entry(
        instance_id, body["suite"], body["name"], body["reason"], current_user, owner, body.get("expires")
    )
    return entry_json(entry)


def delete_quarantine(instance_id, entry_id):
    """End a quarantine entry now; the entry stays as the record of who ended it."""
    get_instance(instance_id)
    entry = quarantine.get_entry(instance_id, entry_id)
    if entry is None:
        abort(404, description=f"quarantine entry {entry_id} does not exist in test instance {instance_id}")
    quarantine.remove_entry(entry, current_user)


def read_rules(instance_id):
    """The instance's quality-gate rules (a rule that is null is off)."""
    get_instance(instance_id)
    return gate.rules_json(gate.rules_for(instance_id))


def put_rules(instance_id, body):
    """Replace the instance's quality-gate rules; a rule left out or null is off."""
    get_instance(instance_id)
    rules = gate.save_rules(instance_id, current_user, **body)
    return gate.rules_json(rules)


def build_gate(instance_id, build_id, query):
    """The gate's verdict on a build; ``?wait=S`` waits for it to finish, else an unfinished build is 409."""
    build = get_build(instance_id, build_id)
    # a server may cap the wait lower (GATE_MAX_WAIT): each waiting request holds a worker
    wait = min(query.wait, current_app.config.get("GATE_MAX_WAIT", am.MAX_WAIT))
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
    return gate.evaluate(build, query.base_branch)


def split_tests(instance_id, query):
    """The instance's tests in ``shards`` lists balanced by median duration over the last ``builds``."""
    get_instance(instance_id)
    return split.split_tests(instance_id, query.shards, query.branch, query.builds, query.before)


def rotate_badge_token(instance_id):
    """Give the instance a new badge token; badge links with the old one stop working."""
    get_instance(instance_id)
    token = badges.rotate_token(instance_id, current_user)
    return {"token": token.token, "rotated": token.rotated, "urls": badge_urls(instance_id, token.token)}


def badge_urls(instance_id, token):
    """The public address of each kind of badge."""
    return {
        kind: url_for("badges.badge", instance_id=instance_id, token=token, kind=kind, _external=True)
        for kind in badges.KINDS
    }


def declare_all(bp, instance_rule, build_rule):
    """Declare the acting-on-results operations under an instance's and a build's rules.

    :return: the endpoints that need the maintainer role whatever their method: removing a
        label or a quarantine entry is a maintainer's everyday work, not an admin's clean-up.
    """
    label_rule = instance_rule + "failure-groups/<string(length=16):signature>/label/"
    quarantine_rule = instance_rule + "quarantine/"
    declarations = [
        (build_rule + "failure-groups/", "GET", build_failure_groups, "buildFailureGroups",
         "A build's failures grouped by signature, largest group first",
         {"query": am.PageQuery, "reply": am.BuildFailureGroups, "errors": (400, 404)}),
        (instance_rule + "failure-groups/", "GET", instance_failure_groups, "instanceFailureGroups",
         "The top failure causes over the newest builds, largest first",
         {"query": am.CausesQuery, "reply": am.FailureCauses, "errors": (400, 404)}),
        (label_rule, "GET", read_label, "readFailureLabel",
         "A failure signature's triage label and its history",
         {"reply": am.FailureLabel, "errors": (404,)}),
        (label_rule, "PUT", put_label, "setFailureLabel", "Label a failure signature (maintainer)",
         {"body": am.FailureLabelIn, "reply": am.FailureLabel, "errors": (400, 403, 404), "recorded": True}),
        (label_rule, "DELETE", delete_label, "deleteFailureLabel",
         "Remove a failure signature's label (maintainer)", {"errors": (403, 404)}),
        (quarantine_rule, "GET", list_quarantine, "listQuarantine",
         "The quarantine entries that apply now; ?format=text gives suite::name lines",
         {"query": am.QuarantineQuery, "reply": am.QuarantineEntryList, "errors": (400, 404),
          "document": QUARANTINE_DOCUMENT}),
        (quarantine_rule, "POST", create_quarantine, "createQuarantine", "Quarantine a test (maintainer)",
         {"body": am.QuarantineIn, "reply": am.QuarantineEntry, "status": 201, "errors": (400, 403, 404),
          "recorded": True}),
        (quarantine_rule + "<int:entry_id>/", "DELETE", delete_quarantine, "deleteQuarantine",
         "End a quarantine entry now (maintainer)", {"errors": (403, 404)}),
        (instance_rule + "gate/", "GET", read_rules, "readGateRules", "The instance's quality-gate rules",
         {"reply": am.GateRules, "errors": (404,)}),
        (instance_rule + "gate/", "PUT", put_rules, "replaceGateRules",
         "Replace the quality-gate rules; a rule left out is off",
         {"body": am.GateRulesIn, "reply": am.GateRules, "errors": (400, 403, 404)}),
        (build_rule + "gate/", "GET", build_gate, "buildGate",
         "The quality gate's verdict on a finished build (409 while it runs)",
         {"query": am.GateQuery, "reply": am.GateVerdict, "errors": (400, 404, 409)}),
        (instance_rule + "split/", "GET", split_tests, "splitTests",
         "The tests in N shards balanced by median duration",
         {"query": am.SplitQuery, "reply": am.Split, "errors": (400, 404)}),
        (instance_rule + "badge-token/", "POST", rotate_badge_token, "rotateBadgeToken",
         "Give the instance a new badge token (maintainer)", {"reply": am.BadgeToken, "errors": (403, 404)}),
    ]  # fmt: skip
    for rule, method, view, operation_id, summary, schemas in declarations:
        operation(bp, rule, method, view, operation_id=operation_id, summary=summary, **schemas)
    return {
        f"{bp.name}.{name}{alias}"
        for name in ("deleteFailureLabel", "deleteQuarantine")
        for alias in ("", "_alias")
    }
