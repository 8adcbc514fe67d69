"""The OpenAPI paths and schemas of the acting-on-results endpoints (webapp/api/actions.py).

:func:`webapp.api.openapi.document` adds them to the one document, so the
route check and schemathesis in tests/test_openapi.py hold these endpoints to
it like the rest.
"""

from webapp import failures
from webapp import quarantine
from webapp import split
from webapp.api.openapi import BUILD_REF
from webapp.api.openapi import COUNT
from webapp.api.openapi import ID
from webapp.api.openapi import INT
from webapp.api.openapi import NUMBER
from webapp.api.openapi import TIME_IN
from webapp.api.openapi import TIME_OUT
from webapp.api.openapi import nullable
from webapp.api.openapi import obj
from webapp.api.openapi import operation
from webapp.api.openapi import parameter
from webapp.api.openapi import path_ids
from webapp.api.openapi import query_int
from webapp.api.openapi import ref
from webapp.api.openapi import responses
from webapp.api.openapi import text
from webapp.api.pagination import DEFAULT_LIMIT
from webapp.api.pagination import MAX_LIMIT
from webapp.api.pagination import MAX_OFFSET
from webapp.api.statistics import MAX_WINDOW
from webapp.models_actions import LABELS

LIST_SHAPE = {"count": COUNT, "next": nullable(text()), "previous": nullable(text())}
GROUP_TEST = {
    "suite": text(),
    "name": text(),
    "test_key": text(),
    "case_id": ID,
    "suite_id": ID,
    "build_id": ID,
    "status": nullable(text()),
    "url": text(),
}
LABEL = obj(
    {
        "label": {"type": "string", "enum": list(LABELS)},
        "note": text(),
        "issue_url": text(),
        "updated_by": text(),
        "updated": TIME_OUT,
    },
    required=("label", "note", "issue_url", "updated_by", "updated"),
)
GROUP = {
    "signature": text(),
    "count": COUNT,
    "message": nullable(text()),
    "label": nullable(LABEL),
    "example": obj({**GROUP_TEST, "message": nullable(text())}, required=("case_id", "name", "suite")),
    "tests": {"type": "array", "items": obj(GROUP_TEST, required=("case_id", "name", "suite"))},
}
SPLIT = {"causes": COUNT, "failures": COUNT}
SEEN = obj({"id": ID, "number": INT}, required=("id", "number"))
RULE_VALUES = {
    "min_pass_rate": nullable({"type": "number", "minimum": 0, "maximum": 100}),
    "no_new_failures": {"type": "boolean"},
    "max_flaky": nullable({"type": "integer", "minimum": 0, "maximum": 10**9}),
    "max_duration_increase": nullable({"type": "number", "minimum": 0, "maximum": 10**6}),
}

SCHEMAS = {
    "BuildFailureGroups": obj(
        {
            **LIST_SHAPE,
            "build": BUILD_REF,
            "failures": COUNT,
            "new": obj(SPLIT, required=SPLIT),
            "known": obj(SPLIT, required=SPLIT),
            "results": {"type": "array", "items": obj(GROUP, required=GROUP)},
        },
        required=("count", "next", "previous", "build", "failures", "new", "known", "results"),
    ),
    "FailureCauses": obj(
        {
            **LIST_SHAPE,
            "builds": COUNT,
            "branch": nullable(text()),
            "results": {
                "type": "array",
                "items": obj(
                    {
                        **GROUP,
                        "builds_affected": COUNT,
                        "tests_affected": COUNT,
                        "first_seen": SEEN,
                        "last_seen": SEEN,
                    },
                    required=(*GROUP, "builds_affected", "tests_affected", "first_seen", "last_seen"),
                ),
            },
        },
        required=("count", "next", "previous", "builds", "branch", "results"),
    ),
    "FailureLabel": obj(
        {
            "signature": text(),
            "label": nullable(LABEL),
            "history": {
                "type": "array",
                "items": obj(
                    {
                        "label": nullable({"type": "string", "enum": list(LABELS)}),
                        "note": text(),
                        "issue_url": text(),
                        "by": text(),
                        "at": TIME_OUT,
                    },
                    required=("label", "note", "issue_url", "by", "at"),
                ),
            },
        },
        required=("signature", "label", "history"),
    ),
    "FailureLabelIn": obj(
        {
            "label": {"type": "string", "enum": list(LABELS)},
            "note": nullable(text(failures.NOTE_LIMIT)),
            "issue_url": nullable(
                {
                    "type": "string",
                    "maxLength": failures.ISSUE_URL_LIMIT,
                    "pattern": failures.ISSUE_URL_PATTERN,
                }
            ),
        },
        required=("label",),
    ),
    "QuarantineEntry": obj(
        {
            "id": ID,
            "suite": text(),
            "name": text(),
            "node_id": text(),
            "test_key": text(),
            "reason": text(),
            "owner": text(),
            "created_by": text(),
            "created": TIME_OUT,
            "expires": TIME_OUT,
            "active": {"type": "boolean"},
            "removed": TIME_OUT,
            "removed_by": nullable(text()),
        },
        required=("id", "suite", "name", "node_id", "reason", "owner", "created_by", "expires", "active"),
    ),
    "QuarantineIn": obj(
        {
            "suite": text(255, name=True),
            "name": text(512, name=True),
            "reason": text(quarantine.REASON_LIMIT, name=True),
            "owner": nullable(text(80)),
            "expires": {
                **TIME_IN,
                "description": "Default: 30 days from now; at most GREENBAR_QUARANTINE_MAX_DAYS (90) ahead. "
                + TIME_IN["description"],
            },
        },
        required=("suite", "name", "reason"),
    ),
    "GateRules": obj(RULE_VALUES, required=RULE_VALUES),
    "GateRulesIn": obj(RULE_VALUES),
    "GateVerdict": obj(
        {
            "passed": {"type": "boolean"},
            "rules": {
                "type": "array",
                "items": obj(
                    {"rule": text(), "passed": {"type": "boolean"}, "detail": text()},
                    required=("rule", "passed", "detail"),
                ),
            },
            "build": BUILD_REF,
            "base": nullable(BUILD_REF),
            "quarantined": COUNT,
        },
        required=("passed", "rules", "build", "base"),
    ),
    "Split": obj(
        {
            "shards": INT,
            "branch": nullable(text()),
            "builds": COUNT,
            "tests": COUNT,
            "results": {
                "type": "array",
                "items": obj(
                    {
                        "index": COUNT,
                        "expected_duration": NUMBER,
                        "tests": {
                            "type": "array",
                            "items": obj(
                                {
                                    "suite": text(),
                                    "name": text(),
                                    "node_id": text(),
                                    "expected_duration": nullable(NUMBER),
                                },
                                required=("suite", "name", "node_id", "expected_duration"),
                            ),
                        },
                    },
                    required=("index", "expected_duration", "tests"),
                ),
            },
        },
        required=("shards", "branch", "builds", "tests", "results"),
    ),
    "BadgeToken": obj(
        {"token": text(), "rotated": TIME_OUT, "urls": {"type": "object", "additionalProperties": text()}},
        required=("token", "rotated", "urls"),
    ),
}


def json_body(schema_name, required=True):
    """A JSON request body of one of :data:`SCHEMAS`."""
    return {"required": required, "content": {"application/json": {"schema": ref(schema_name)}}}


def paths(instance, build):
    """The acting-on-results paths under an instance's and a build's prefixes."""
    instance_ids, build_ids = path_ids("instance_id"), path_ids("instance_id", "build_id")
    paging = [
        query_int("limit", DEFAULT_LIMIT, 1, MAX_LIMIT, "Page size."),
        query_int("offset", 0, 0, MAX_OFFSET, "Items to skip."),
    ]
    branch = parameter("branch", "query", text(255), "Only builds of this branch.")
    signature = [*instance_ids, parameter("signature", "path", {"type": "string", "pattern": "^[^/]{16}$"})]
    label_path = f"{instance}failure-groups/{{signature}}/label/"
    text_list = {
        "description": "Success",
        "content": {
            "application/json": {
                "schema": obj(
                    {**LIST_SHAPE, "results": {"type": "array", "items": ref("QuarantineEntry")}},
                    required=("count", "next", "previous", "results"),
                )
            },
            "text/plain": {"schema": {"type": "string"}},
        },
    }
    quarantine_list = responses(200, ref("QuarantineEntry"), 400, 404)
    quarantine_list["200"] = text_list
    return {
        f"{build}failure-groups/": {
            "get": operation(
                "buildFailureGroups",
                "A build's failures grouped by signature, largest group first",
                responses(200, ref("BuildFailureGroups"), 400, 404),
                [*build_ids, *paging],
            )
        },
        f"{instance}failure-groups/": {
            "get": operation(
                "instanceFailureGroups",
                "The top failure causes over the newest builds, largest first",
                responses(200, ref("FailureCauses"), 400, 404),
                [
                    *instance_ids,
                    query_int("builds", 30, 1, MAX_WINDOW, "How many of the newest builds."),
                    branch,
                    *paging,
                ],
            )
        },
        label_path: {
            "get": operation(
                "readFailureLabel",
                "A failure signature's triage label and its history",
                responses(200, ref("FailureLabel"), 404),
                signature,
            ),
            "put": operation(
                "setFailureLabel",
                "Label a failure signature (maintainer)",
                responses(200, ref("FailureLabel"), 400, 403, 404),
                signature,
                json_body("FailureLabelIn"),
            ),
            "delete": operation(
                "deleteFailureLabel",
                "Remove a failure signature's label (maintainer)",
                responses(204, None, 403, 404),
                signature,
            ),
        },
        f"{instance}quarantine/": {
            "get": operation(
                "listQuarantine",
                "The quarantine entries that apply now; ?format=text gives suite::name lines",
                quarantine_list,
                [*instance_ids, parameter("format", "query", {"type": "string", "enum": ["json", "text"]})],
            ),
            "post": operation(
                "createQuarantine",
                "Quarantine a test (maintainer)",
                responses(201, ref("QuarantineEntry"), 400, 403, 404),
                instance_ids,
                json_body("QuarantineIn"),
            ),
        },
        f"{instance}quarantine/{{entry_id}}/": {
            "delete": operation(
                "deleteQuarantine",
                "End a quarantine entry now (maintainer)",
                responses(204, None, 403, 404),
                path_ids("instance_id", "entry_id"),
            )
        },
        f"{instance}gate/": {
            "get": operation(
                "readGateRules",
                "The instance's quality-gate rules",
                responses(200, ref("GateRules"), 404),
                instance_ids,
            ),
            "put": operation(
                "replaceGateRules",
                "Replace the quality-gate rules; a rule left out is off",
                responses(200, ref("GateRules"), 400, 403, 404),
                instance_ids,
                json_body("GateRulesIn", required=False),
            ),
        },
        f"{build}gate/": {
            "get": operation(
                "buildGate",
                "The quality gate's verdict on a finished build (409 while it runs)",
                responses(200, ref("GateVerdict"), 400, 404, 409),
                [
                    *build_ids,
                    query_int(
                        "wait",
                        0,
                        0,
                        60,
                        "Seconds to wait for the build to finish (the server may cap it lower).",
                    ),
                    parameter(
                        "base_branch", "query", text(255), "Compare with this branch's newest finished build."
                    ),
                ],
            )
        },
        f"{instance}split/": {
            "get": operation(
                "splitTests",
                "The tests in N shards balanced by median duration",
                responses(200, ref("Split"), 400, 404),
                [
                    *instance_ids,
                    parameter(
                        "shards",
                        "query",
                        {"type": "integer", "minimum": 1, "maximum": split.MAX_SHARDS},
                        "How many shards.",
                        True,
                    ),
                    branch,
                    query_int("builds", split.DEFAULT_WINDOW, 1, MAX_WINDOW, "The window of newest builds."),
                ],
            )
        },
        f"{instance}badge-token/": {
            "post": operation(
                "rotateBadgeToken",
                "Give the instance a new badge token (maintainer)",
                responses(200, ref("BadgeToken"), 403, 404),
                instance_ids,
            )
        },
    }
