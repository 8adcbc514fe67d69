"""The OpenAPI 3.1 document of the API, served at ``GET /api/openapi.json``.

It is written next to the views and checked against them: tests/test_openapi.py
fails when a route is missing from it (or it names a route that does not
exist) and runs schemathesis, which fails on any answer the document does not
describe. The schemas say what the views accept: a body the document allows
is never a 400, and one it forbids is (the one leniency: times may also come
without an offset, as Python's isoformat() writes them, and are then UTC).

Like every /api/ path it needs credentials (any role), so it tells no
stranger what the server offers.
"""

import copy

from webapp.api import payload as p
from webapp.api import resources as r
from webapp.api.pagination import DEFAULT_LIMIT
from webapp.api.pagination import MAX_LIMIT
from webapp.api.pagination import MAX_OFFSET
from webapp.models import STATUSES

INT32 = 2**31 - 1
ISO_MS_Z = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"
ROLE_NOTE = "Any role reads; maintainer and admin write; only admin deletes."


def nullable(schema):
    """Allow null besides ``schema``."""
    return {"anyOf": [schema, {"type": "null"}]}


def ref(name):
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties, required=(), extra=False):
    """An object schema with exactly these properties (unless ``extra``)."""
    schema = {"type": "object", "properties": properties, "additionalProperties": extra}
    if required:
        schema["required"] = list(required)
    return schema


def text(max_length=None, name=False):
    """A string; a name must hold a character other than whitespace."""
    schema = {"type": "string"}
    if max_length is not None:
        schema["maxLength"] = max_length
    if name:
        schema["pattern"] = p.NAME_PATTERN
    return schema


INT = {"type": "integer"}
ID = {"type": "integer", "minimum": 1, "maximum": INT32}
COUNT = {"type": "integer", "minimum": 0}
NUMBER = {"type": "number"}
TIME_OUT = nullable({"type": "string", "format": "date-time", "pattern": ISO_MS_Z})
TIME_IN = {
    "description": (
        "RFC 3339 (years 1970-2999) or Unix seconds; null means none. "
        "A time without an offset is also accepted and read as UTC."
    ),
    "anyOf": [
        {"type": "string", "format": "date-time", "pattern": p.RFC3339_PATTERN},
        {"type": "number", "minimum": 0, "maximum": p.MAX_EPOCH},
        {"type": "null"},
    ],
}
STATUS = {"type": "string", "enum": list(STATUSES)}
SECONDS = {"type": "number", "minimum": 0, "maximum": p.MAX_SECONDS}
# fields a GET returns that a PUT or PATCH may echo back; they are ignored
ECHOED = {name: {} for name in sorted(r.READ_ONLY)}

COUNTERS = {
    "cases_total": COUNT, "passed": COUNT, "failed": COUNT, "errored": COUNT, "skipped": COUNT,
    "flaky": COUNT, "cases_duration": NUMBER,
    "pass_rate": nullable({"type": "number", "minimum": 0, "maximum": 1}),
    "status": nullable(STATUS),
}


def item(fields):
    """An item as the API returns it: id, pk (the same), its fields."""
    properties = {"id": ID, "pk": ID, **fields}
    return obj(properties, required=properties)


INSTANCE_IN = {"name": text(255, name=True), "description": nullable(text(r.DESCRIPTION_LIMIT))}
BUILD_IN = {
    "number": nullable(ID), "name": nullable(text(255)), "branch": nullable(text(255)),
    "revision": nullable(text(255)), "ci_url": nullable(text(2048)), "started": TIME_IN, "finished": TIME_IN,
}
SUITE_IN = {"name": text(255, name=True), "started": TIME_IN, "finished": TIME_IN}
CASE_IN = {
    "name": text(512, name=True), "started": TIME_IN, "finished": TIME_IN, "result_status": nullable(STATUS),
    "duration": nullable(SECONDS), "message": nullable(text()), "details": nullable(text()),
}
# a case's finished time needs its result: null until finished, set once finished
FINISHED_NEEDS_RESULT = {
    "if": {"required": ["finished"], "properties": {"finished": {"not": {"type": "null"}}}},
    "then": {"required": ["result_status"], "properties": {"result_status": STATUS}},
}
CASE_FINISH_IN = {
    "result_status": STATUS, "finished": TIME_IN, "time": TIME_IN, "duration": nullable(SECONDS),
    "message": nullable(text()), "details": nullable(text()),
}

BUILD_REF = obj(
    {"id": ID, "number": INT, "name": nullable(text()), "branch": nullable(text()),
     "revision": nullable(text()), "started": TIME_OUT, "finished": TIME_OUT},
    required=("id", "number", "name", "branch", "revision", "started", "finished"),
)
TEST_LINKS = {"url": text(), "history_url": text()}
TEST_REF = {
    "suite": text(), "name": text(), "test_key": text(), "case_id": ID, "suite_id": ID, "build_id": ID,
}
OPTIONAL_NUMBER = nullable(NUMBER)

SCHEMAS = {
    "Error": obj(
        {"error": obj(
            {"status": INT, "message": text(), "fields": {"type": "object", "additionalProperties": text()},
             "existing": {"type": "object"}},
            required=("status", "message", "fields"),
        )},
        required=("error",),
    ),
    "TestInstance": item({"name": text(), "description": text(), "created": TIME_OUT}),
    "TestBuild": item({
        "instance_id": ID, "number": INT, "name": nullable(text()), "branch": nullable(text()),
        "revision": nullable(text()), "ci_url": nullable(text()), "started": TIME_OUT, "finished": TIME_OUT,
        "suites_total": COUNT, **COUNTERS,
    }),
    "TestSuite": item(
        {"build_id": ID, "name": text(), "started": TIME_OUT, "finished": TIME_OUT, **COUNTERS}
    ),
    "TestCase": item({
        "suite_id": ID, "build_id": ID, "name": text(), "started": TIME_OUT, "finished": TIME_OUT,
        "result_status": nullable(STATUS), "duration": OPTIONAL_NUMBER, "message": nullable(text()),
        "details": nullable(text()), "attempts": {"type": "integer", "minimum": 1},
        "is_flaky": {"type": "boolean"},
    }),
    "TestInstanceIn": obj({**INSTANCE_IN, **ECHOED}, required=("name",)),
    "TestInstancePatch": obj({**INSTANCE_IN, **ECHOED}),
    "TestBuildIn": obj({**BUILD_IN, **ECHOED}),
    "TestSuiteIn": obj({**SUITE_IN, **ECHOED}, required=("name",)),
    "TestSuitePatch": obj({**SUITE_IN, **ECHOED}),
    "TestCaseIn": {**obj({**CASE_IN, **ECHOED}, required=("name",)), **FINISHED_NEEDS_RESULT},
    "TestCasePatch": {**obj({**CASE_IN, **ECHOED}), **FINISHED_NEEDS_RESULT},
    "Start": obj({"started": TIME_IN, "time": TIME_IN}),
    "Finish": obj({"finished": TIME_IN, "time": TIME_IN}),
    "CaseFinish": obj(CASE_FINISH_IN, required=("result_status",)),
    "BuildSummary": obj(
        {**BUILD_REF["properties"],
         "counts": obj(dict.fromkeys(STATUSES, COUNT), required=STATUSES),
         "cases_total": COUNT, "pending": COUNT, "flaky": COUNT,
         "pass_rate": OPTIONAL_NUMBER, "duration": OPTIONAL_NUMBER, "elapsed": OPTIONAL_NUMBER,
         "suites_total": COUNT, "status": nullable(STATUS)},
        required=("id", "number", "counts", "cases_total", "pass_rate", "status"),
    ),
    "DiffItem": obj(
        {**TEST_REF, **TEST_LINKS, "status": nullable(STATUS), "base_status": nullable(STATUS),
         "base_case_id": nullable(ID)},
        required=("suite", "name", "test_key", "case_id", "status", "url", "history_url"),
    ),
    "TrendPoint": obj(
        {**BUILD_REF["properties"], "pass_rate": OPTIONAL_NUMBER, "duration": OPTIONAL_NUMBER,
         "elapsed": OPTIONAL_NUMBER,
         **dict.fromkeys(("cases_total", "passed", "failed", "errored", "skipped", "flaky"), COUNT),
         "status": nullable(STATUS)},
        required=("id", "number", "pass_rate", "cases_total"),
    ),
    "TestFigures": obj(
        {**TEST_REF, **TEST_LINKS, "last_status": nullable(STATUS), **dict.fromkeys(
            ("failures", "runs", "failure_rate", "last_failed", "median", "p95", "latest", "flips",
             "retried", "score", "duration", "increase", "ratio"),
            OPTIONAL_NUMBER,
        )},
        required=("suite", "name", "test_key", "url", "history_url"),
    ),
    "TestHistory": obj(
        {"suite": text(), "name": text(), "test_key": text(), "runs": COUNT, "failures": COUNT,
         "failure_rate": OPTIONAL_NUMBER,
         "flakiness": obj({"runs": COUNT, "flips": COUNT, "retried": COUNT, "score": OPTIONAL_NUMBER}),
         "history": {"type": "array", "items": obj(
             {"build_id": ID, "build_number": INT, "branch": nullable(text()), "case_id": ID, "suite_id": ID,
              "status": nullable(STATUS), "duration": OPTIONAL_NUMBER, "started": TIME_OUT,
              "attempts": INT, "is_flaky": {"type": "boolean"}, "message": nullable(text()), "url": text()},
             required=("build_id", "build_number", "case_id", "status", "url"),
         )}},
        required=("suite", "name", "test_key", "runs", "history"),
    ),
    "ImportReply": obj(
        {"build": ref("TestBuild"), "suites": COUNT, "suites_created": COUNT, "files": COUNT,
         "cases": obj({"total": COUNT, **dict.fromkeys(STATUSES, COUNT), "flaky": COUNT,
                       "merged": COUNT}, required=("total", *STATUSES))},
        required=("build", "suites", "cases", "files"),
    ),
    "BatchResult": obj(
        {"suite": text(255, name=True), "name": text(512, name=True), "result_status": STATUS,
         "started": TIME_IN, "finished": TIME_IN, "duration": nullable(SECONDS),
         **dict.fromkeys(("message", "details", "system_out", "system_err"), nullable(text()))},
        required=("suite", "name", "result_status"),
    ),
    "BatchIn": obj({"results": {"type": "array", "maxItems": 1000, "items": ref("BatchResult")}},
                   required=("results",)),
    "BatchReply": obj(
        {"build_id": ID, "results": COUNT, "suites": COUNT, "suites_created": COUNT,
         "cases": obj({"total": COUNT, **dict.fromkeys(STATUSES, COUNT), "flaky": COUNT,
                       "merged": COUNT}, required=("total", *STATUSES))},
        required=("build_id", "results", "suites", "cases"),
    ),
}
for kind in ("TestInstance", "TestBuild", "TestSuite", "TestCase"):
    SCHEMAS[kind + "List"] = obj(
        {"count": COUNT, "next": nullable(text()), "previous": nullable(text()),
         "results": {"type": "array", "items": ref(kind)}},
        required=("count", "next", "previous", "results"),
    )

ERROR_TEXT = {
    400: "The input is not valid; `fields` says what is wrong with each field.",
    401: "No valid credentials. Carries `WWW-Authenticate: Basic realm=\"Greenbar\"`.",
    403: "The role is too low (or a browser session wrote without X-CSRFToken).",
    404: "No such item under these parents.",
    409: "The write contradicts stored state; a duplicate's body holds the `existing` item.",
    413: "The request body is larger than the configured limit.",
    415: "The Content-Encoding is not gzip or identity.",
}


WRITE_ERRORS = (400, 403, 404, 409, 413)


def response(description, schema=None):
    """One response object (JSON unless it has no body)."""
    answer = {"description": description}
    if schema is not None:
        answer["content"] = {"application/json": {"schema": schema}}
    return answer


def responses(status, schema, *errors):
    """The success response and the error responses an operation can give."""
    answers = {str(status): response("Success" if schema else "Deleted", schema)}
    for code in (401, *errors):
        answers[str(code)] = response(ERROR_TEXT[code], ref("Error"))
    return answers


def parameter(name, where, schema, description="", required=None):
    """A path or query parameter."""
    answer = {"name": name, "in": where, "schema": schema, "required": where == "path" or bool(required)}
    if description:
        answer["description"] = description
    return answer


def path_ids(*names):
    """The id parameters of a path."""
    return [parameter(name, "path", ID) for name in names]


def query_int(name, default, minimum, maximum, description=""):
    """An integer query parameter within bounds."""
    schema = {"type": "integer", "minimum": minimum, "maximum": maximum}
    if default is not None:
        schema["default"] = default
    return parameter(name, "query", schema, description)


LIST_PARAMETERS = [
    query_int("limit", DEFAULT_LIMIT, 1, MAX_LIMIT, "Page size."),
    query_int("offset", 0, 0, MAX_OFFSET, "Items to skip."),
    parameter("search", "query", text(255), "Case-insensitive substring of the name."),
]
WINDOW_PARAMETERS = [
    query_int("builds", None, 1, 500, "How many of the newest builds to look at."),
    parameter("branch", "query", text(255), "Only builds of this branch."),
    query_int("top", 10, 1, 100, "How many tests to list."),
]


def body(schema_name):
    """A JSON request body; it may be left out when ``{}`` would do (an empty body reads as ``{}``)."""
    required = bool(SCHEMAS[schema_name].get("required"))
    return {"required": required, "content": {"application/json": {"schema": ref(schema_name)}}}


def operation(operation_id, summary, answers, parameters=(), request_body=None):
    """One operation object."""
    answer = {"operationId": operation_id, "summary": summary, "responses": answers}
    if parameters:
        answer["parameters"] = list(parameters)
    if request_body is not None:
        answer["requestBody"] = request_body
    return answer


def resource_paths(prefix, ids, kind, names, writable, lifecycle):
    """Collection, item and lifecycle paths of one resource kind.

    :param names: (plural, singular) for operation ids, such as ("Builds", "Build").
    :param writable: (create body, replace body, patch body) schema names.
    """
    plural, singular = names
    create, replace, patch = writable
    item_ids = (*ids, f"{singular.lower()}_id")
    collection = f"{prefix}/"
    member = f"{prefix}/{{{item_ids[-1]}}}/"
    written = responses(200, ref(kind), *WRITE_ERRORS)
    paths = {
        collection: {
            "get": operation(f"list{plural}", f"List {plural.lower()} (ordered by id)",
                             responses(200, ref(kind + "List"), 400, 404),
                             [*path_ids(*ids), *LIST_PARAMETERS]),
            "post": operation(f"create{singular}", f"Create a {singular.lower()}",
                              responses(201, ref(kind), *WRITE_ERRORS), path_ids(*ids), body(create)),
        },
        member: {
            "get": operation(f"read{singular}", f"Show a {singular.lower()}", responses(200, ref(kind), 404),
                             path_ids(*item_ids)),
            "put": operation(f"replace{singular}", f"Change a {singular.lower()}", written,
                             path_ids(*item_ids), body(replace)),
            "patch": operation(f"update{singular}", f"Change some fields of a {singular.lower()}", written,
                               path_ids(*item_ids), body(patch)),
            "delete": operation(f"delete{singular}", f"Delete a {singular.lower()} and all below it (admin)",
                                responses(204, None, 403, 404), path_ids(*item_ids)),
        },
    }
    if lifecycle:
        start_body, finish_body = lifecycle
        answers = written
        paths[member + "start/"] = {"post": operation(
            f"start{singular}", f"Mark a {singular.lower()} started (now, or the time given)", answers,
            path_ids(*item_ids), body(start_body))}
        for action in ("finish", "stop"):
            alias = " (an alias of finish/, as the seed names it)" if action == "stop" else ""
            paths[member + f"{action}/"] = {"post": operation(
                f"{action}{singular}", f"Mark a {singular.lower()} finished{alias}", answers,
                path_ids(*item_ids), body(finish_body))}
    return paths


def statistics_paths(instance, build):
    """The statistics and import paths of an instance and a build."""
    window = [*path_ids("instance_id"), *WINDOW_PARAMETERS]
    figures = {"type": "array", "items": ref("TestFigures")}
    windowed = obj({"limit_builds": INT, "branch": nullable(text()), "top": INT, "results": figures},
                   required=("limit_builds", "branch", "top", "results"))
    xml = {"schema": {"type": "string"}}
    upload = {"required": True, "content": {
        "application/xml": xml, "text/xml": xml,
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "file": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
    }}
    idempotency = parameter("Idempotency-Key", "header", text(255), "Store the report at most once per key.")
    build_fields = [parameter(name, "query", text(limit)) for name, limit in
                    (("name", 255), ("branch", 255), ("revision", 255), ("ci_url", 2048))]
    import_errors = (400, 403, 404, 409, 413, 415)
    diff_lists = {name: {"type": "array", "items": ref("DiffItem")}
                  for name in ("new_failures", "fixed", "still_failing", "new_tests", "removed_tests")}
    return {
        f"{instance}import/": {"post": operation(
            "importNewBuild", "Create a build from a JUnit XML report", responses(201, ref("ImportReply"),
                                                                                  *import_errors),
            [*path_ids("instance_id"), query_int("number", None, 1, INT32), *build_fields, idempotency],
            upload)},
        f"{build}import/": {"post": operation(
            "importIntoBuild", "Add a JUnit XML report to a build",
            responses(200, ref("ImportReply"), *import_errors),
            [*path_ids("instance_id", "build_id"), idempotency], upload)},
        f"{build}results/": {"post": operation(
            "addResults", "Store up to 1,000 case results into a build (suites created on demand)",
            responses(200, ref("BatchReply"), 400, 403, 404, 409, 413),
            [*path_ids("instance_id", "build_id"),
             parameter("Idempotency-Key", "header", text(255), "Store the batch at most once per key.")],
            body("BatchIn"))},
        f"{build}summary/": {"get": operation(
            "buildSummary", "Counts per status, pass rate and durations of a build",
            responses(200, ref("BuildSummary"), 404), path_ids("instance_id", "build_id"))},
        f"{build}diff/": {"get": operation(
            "buildDiff", "New failures, fixed, still failing, new and removed tests against another build",
            responses(200, obj({"build": BUILD_REF, "base": nullable(BUILD_REF), **diff_lists},
                               required=("build", "base", *diff_lists)), 400, 404),
            [*path_ids("instance_id", "build_id"),
             query_int("base", None, 1, INT32, "Default: the previous build."),
             query_int("limit", 1000, 1, 10000)])},
        f"{instance}trend/": {"get": operation(
            "trend", "Pass rate and duration of the newest builds, oldest first",
            responses(200, obj({"limit": INT, "branch": nullable(text()),
                                "results": {"type": "array", "items": ref("TrendPoint")}},
                               required=("limit", "branch", "results")), 400, 404),
            [*path_ids("instance_id"), query_int("limit", 30, 1, 1000), WINDOW_PARAMETERS[1]])},
        f"{instance}top-failing/": {"get": operation(
            "topFailing", "Tests that failed most often", responses(200, windowed, 400, 404), window)},
        f"{instance}slowest/": {"get": operation(
            "slowest", "Tests with the highest median duration", responses(200, windowed, 400, 404), window)},
        f"{instance}flaky/": {"get": operation(
            "flaky", "Tests with the highest flaky score", responses(200, windowed, 400, 404), window)},
        f"{instance}regressions/": {"get": operation(
            "regressions", "Tests of a build markedly slower than their recent median",
            responses(200, obj({**windowed["properties"], "build": nullable(BUILD_REF),
                                "baseline_builds": COUNT}, required=("results", "build")), 400, 404),
            [*window, query_int("build", None, 1, INT32, "Default: the newest."),
             parameter("factor", "query", {"type": "number", "minimum": 1, "maximum": 1000}),
             parameter("min_increase", "query", {"type": "number", "minimum": 0, "maximum": 86400}),
             query_int("min_runs", None, 1, 500)])},
        f"{instance}test-history/": {"get": operation(
            "findTest", "A test's history found by suite and case name",
            responses(200, ref("TestHistory"), 400, 404),
            [*path_ids("instance_id"), parameter("suite", "query", {"type": "string", "minLength": 1}, "",
                                                 True),
             parameter("name", "query", {"type": "string", "minLength": 1}, "", True),
             query_int("limit", 50, 1, 1000)])},
        f"{instance}test-history/{{test_key}}/": {"get": operation(
            "testHistory", "A test's results across builds, newest first",
            responses(200, ref("TestHistory"), 400, 404),
            [*path_ids("instance_id"),
             parameter("test_key", "path", {"type": "string", "pattern": "^[^/]{32}$"}),
             query_int("limit", 50, 1, 1000)])},
    }


def core_paths():
    """The seed's tree in its hyphenated spelling, with the statistics and import paths."""
    instances = "/api/test-instance"
    builds = instances + "/{instance_id}/test-build"
    suites = builds + "/{build_id}/test-suite"
    cases = suites + "/{suite_id}/test-case"
    paths = {}
    paths.update(resource_paths(instances, (), "TestInstance", ("Instances", "Instance"),
                                ("TestInstanceIn", "TestInstanceIn", "TestInstancePatch"), None))
    paths.update(resource_paths(builds, ("instance_id",), "TestBuild", ("Builds", "Build"),
                                ("TestBuildIn", "TestBuildIn", "TestBuildIn"), ("Start", "Finish")))
    paths.update(resource_paths(suites, ("instance_id", "build_id"), "TestSuite", ("Suites", "Suite"),
                                ("TestSuiteIn", "TestSuiteIn", "TestSuitePatch"), ("Start", "Finish")))
    paths.update(resource_paths(cases, ("instance_id", "build_id", "suite_id"), "TestCase", ("Cases", "Case"),
                                ("TestCaseIn", "TestCaseIn", "TestCasePatch"), ("Start", "CaseFinish")))
    paths.update(statistics_paths(instances + "/{instance_id}/", builds + "/{build_id}/"))
    return paths


def with_aliases(paths):
    """Add the underscore spelling of every path, as its own operations."""
    every = dict(paths)
    for path, methods in paths.items():
        alias = copy.deepcopy(methods)
        for spec in alias.values():
            spec["operationId"] += "Underscore"
            spec["summary"] += " (underscore spelling)"
        every[path.replace("test-", "test_")] = alias
    return every


def document():
    """Build the whole OpenAPI document."""
    # imported here: that module builds on this one's helpers
    from webapp.api import openapi_actions

    paths = core_paths()
    paths.update(openapi_actions.paths("/api/test-instance/{instance_id}/",
                                       "/api/test-instance/{instance_id}/test-build/{build_id}/"))
    paths = with_aliases(paths)
    wheel = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    paths["/api/client/{filename}"] = {"get": operation(
        "clientDownload", "The greenbar-client wheel, for pip (see the Connect your CI page)",
        {**responses(200, None, 404), "200": {"description": "The wheel", "content": wheel}},
        [parameter("filename", "path", {"type": "string"})])}
    paths["/api/openapi.json"] = {"get": operation(
        "openapi", "This document", responses(200, {"type": "object"}))}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Greenbar",
            "version": "1",
            "description": (
                "Automated-test results: test instances (products) hold numbered builds, builds hold "
                "suites, suites hold cases. Every path also works with underscores (`/api/test_instance/`). "
                + ROLE_NOTE + " Times are ISO 8601 UTC with milliseconds."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"basic": []}],
        "paths": paths,
        "components": {
            "schemas": {**SCHEMAS, **openapi_actions.SCHEMAS},
            "securitySchemes": {"basic": {
                "type": "http", "scheme": "basic",
                "description": "Username with the password or one of the user's API tokens.",
            }},
        },
    }


DOCUMENT = document()


def serve():
    """The OpenAPI document of this API."""
    return DOCUMENT
