"""The JSON REST API at ``/api/``: the seed's tree of instances, builds, suites and cases.

Every path is served in the seed's hyphenated spelling and, as an alias, in the
underscore spelling its first implementation used.
"""

from urllib.parse import urlsplit

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import g
from flask import request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError as CSRFValidationError

from webapp import models as rows
from webapp.api import actions as act
from webapp.api import batch as bt
from webapp.api import client as cl
from webapp.api import files
from webapp.api import import_jobs as jobs
from webapp.api import imports as imp
from webapp.api import models as m
from webapp.api import openapi
from webapp.api import reports as rp
from webapp.api import resources as r
from webapp.api import statistics as st
from webapp.api.declare import operation
from webapp.errors import error_response
from webapp.exceptions import Conflict
from webapp.extensions import csrf
from webapp.extensions import db
from webapp.security import API_LOGIN_HINT
from webapp.security import write_role_for

bp = Blueprint("api", __name__, url_prefix="/api")
csrf.exempt(bp)

ID = "<int:{}>/"
INSTANCES = "/test-instance/"
INSTANCE = INSTANCES + ID.format("instance_id")
BUILDS = INSTANCE + "test-build/"
BUILD = BUILDS + ID.format("build_id")
SUITES = BUILD + "test-suite/"
SUITE = SUITES + ID.format("suite_id")
CASES = SUITE + "test-case/"
CASE = CASES + ID.format("case_id")
# the error statuses a write may answer (401 goes with every operation)
WRITE_ERRORS = (400, 403, 404, 409, 413)
IMPORT_ERRORS = (400, 403, 404, 409, 413, 415)
ERRORS_OF = {
    "GET": (400, 404),
    "POST": WRITE_ERRORS,
    "PUT": WRITE_ERRORS,
    "PATCH": WRITE_ERRORS,
    "DELETE": (403, 404),
}


def declare_resource(rule, item_rule, names, views, bodies, reply, lifecycle=None):
    """Declare the list, create, read, replace, update and delete operations of one resource.

    :param names: (plural, singular), such as ("Builds", "Build"), for the operation ids.
    :param views: the module holding ``list_<plural>``, ``create_<singular>`` and so on.
    :param bodies: (create/replace body model, patch body model).
    :param lifecycle: (start body, finish body) models, for resources that start and finish.
    """
    plural, singular = names
    lower, item = plural.lower(), singular.lower()
    full, patch = bodies
    listed = getattr(m, reply.__name__ + "List")
    declare(
        rule,
        "GET",
        getattr(views, f"list_{lower}"),
        f"list{plural}",
        f"List {lower} (ordered by id)",
        query=m.ListQuery,
        reply=listed,
        errors=(400, 404),
    )
    declare(
        rule,
        "POST",
        getattr(views, f"create_{item}"),
        f"create{singular}",
        f"Create a {item}",
        body=full,
        reply=reply,
        status=201,
    )
    declare(
        item_rule,
        "GET",
        getattr(views, f"read_{item}"),
        f"read{singular}",
        f"Show a {item}",
        reply=reply,
        errors=(404,),
    )
    update = getattr(views, f"update_{item}")
    declare(item_rule, "PUT", update, f"replace{singular}", f"Change a {item}", body=full, reply=reply)
    declare(
        item_rule,
        "PATCH",
        update,
        f"update{singular}",
        f"Change some fields of a {item}",
        body=patch,
        reply=reply,
    )
    declare(
        item_rule,
        "DELETE",
        getattr(views, f"delete_{item}"),
        f"delete{singular}",
        f"Delete a {item} and all below it (admin)",
        errors=(403, 404),
    )
    if lifecycle:
        start, finish = lifecycle
        declare(
            item_rule + "start/",
            "POST",
            getattr(views, f"start_{item}"),
            f"start{singular}",
            f"Mark a {item} started (now, or the time given)",
            body=start,
            reply=reply,
        )
        for action, alias in (("finish", ""), ("stop", " (an alias of finish/, as the seed names it)")):
            declare(
                item_rule + f"{action}/",
                "POST",
                getattr(views, f"finish_{item}"),
                f"{action}{singular}",
                f"Mark a {item} finished{alias}",
                body=finish,
                reply=reply,
            )


def declare(rule, method, view, operation_id, summary, errors=None, **schemas):
    """Declare one operation of this blueprint; its errors default to those of its method."""
    operation(
        bp,
        rule,
        method,
        view,
        operation_id=operation_id,
        summary=summary,
        errors=ERRORS_OF[method] if errors is None else errors,
        **schemas,
    )


declare_resource(
    INSTANCES, INSTANCE, ("Instances", "Instance"), r, (m.TestInstanceIn, m.TestInstancePatch), m.TestInstance
)
declare_resource(
    BUILDS, BUILD, ("Builds", "Build"), r, (m.TestBuildIn, m.TestBuildIn), m.TestBuild, (m.Start, m.Finish)
)
declare_resource(
    SUITES, SUITE, ("Suites", "Suite"), r, (m.TestSuiteIn, m.TestSuitePatch), m.TestSuite, (m.Start, m.Finish)
)
declare_resource(
    CASES, CASE, ("Cases", "Case"), r, (m.TestCaseIn, m.TestCasePatch), m.TestCase, (m.Start, m.CaseFinish)
)

# JUnit XML import (webapp/api/imports.py): the body is XML, not JSON, so the views read it themselves
declare(
    INSTANCE + "import/",
    "POST",
    imp.import_new_build,
    "importNewBuild",
    "Create a build from a JUnit XML report",
    query=m.NewBuildQuery,
    reply=m.ImportReply,
    status=201,
    errors=IMPORT_ERRORS,
    document=imp.QUEUEABLE_DOCUMENT,
)
declare(
    BUILD + "import/",
    "POST",
    imp.import_into_build,
    "importIntoBuild",
    "Add a JUnit XML report to a build",
    query=m.ImportQuery,
    reply=m.ImportReply,
    errors=IMPORT_ERRORS,
    document=imp.QUEUEABLE_DOCUMENT,
)
# a queued import's state and progress (webapp/api/import_jobs.py)
declare(
    "/imports/<int:job_id>/",
    "GET",
    jobs.read_job,
    "importJob",
    "A queued import: its state, progress and, once done, what it stored",
    reply=m.ImportJob,
    errors=(404,),
)
# statistics (webapp/api/statistics.py): (path, view, operation id, summary, query, reply)
HISTORY = INSTANCE + "test-history/"
STATISTICS = [
    (
        BUILD + "summary/",
        st.build_summary,
        "buildSummary",
        "Counts per status, pass rate and durations of a build",
        None,
        m.BuildSummary,
    ),
    (
        BUILD + "diff/",
        st.build_diff,
        "buildDiff",
        "New failures, fixed, still failing, new and removed tests against another build",
        m.DiffQuery,
        m.BuildDiff,
    ),
    (
        INSTANCE + "trend/",
        st.trend,
        "trend",
        "Pass rate and duration of the newest builds, oldest first",
        m.TrendQuery,
        m.Trend,
    ),
    (
        INSTANCE + "top-failing/",
        st.top_failing,
        "topFailing",
        "Tests that failed most often",
        m.WindowQuery,
        m.Windowed,
    ),
    (
        INSTANCE + "slowest/",
        st.slowest,
        "slowest",
        "Tests with the highest median duration",
        m.WindowQuery,
        m.Windowed,
    ),
    (INSTANCE + "flaky/", st.flaky, "flaky", "Tests with the highest flaky score", m.WindowQuery, m.Windowed),
    (
        INSTANCE + "regressions/",
        st.regressions,
        "regressions",
        "Tests of a build markedly slower than their recent median",
        m.RegressionsQuery,
        m.Regressions,
    ),
    (
        HISTORY,
        st.find_test,
        "findTest",
        "A test's history found by suite and case name",
        m.FindTestQuery,
        m.TestHistory,
    ),
    (
        HISTORY + "<string(length=32):test_key>/",
        st.test_history,
        "testHistory",
        "A test's results across builds, newest first",
        m.HistoryQuery,
        m.TestHistory,
    ),
]
for path, view, operation_id, summary, query, reply in STATISTICS:
    # without a query string there is nothing to be a 400 about
    declare(
        path, "GET", view, operation_id, summary, query=query, reply=reply, errors=None if query else (404,)
    )

# finding things (webapp/api/reports.py): tests by name, a build's cases by status
declare(
    INSTANCE + "tests/",
    "GET",
    rp.search_tests,
    "searchTests",
    "Tests whose case name contains a text (any letter case), by suite and name",
    query=m.ListQuery,
    reply=m.FoundTestList,
)
declare(
    BUILD + "cases/",
    "GET",
    rp.build_cases,
    "buildCases",
    "A build's cases across its suites, optionally of one status, by id or duration",
    query=m.BuildCasesQuery,
    reply=m.TestCaseList,
)

# batch results, the server side of the pytest plugin's streaming (webapp/api/batch.py)
declare(
    BUILD + "results/",
    "POST",
    bt.add_results,
    "addResults",
    "Store up to 1,000 case results into a build (suites created on demand)",
    body=bt.BatchIn,
    reply=bt.BatchReply,
    document=bt.DOCUMENT,
)

# acting on results (webapp/api/actions.py): failure groups and triage, quarantine, gate, split, badges;
# maintainers remove labels and quarantine entries (an everyday DELETE, not an admin's clean-up)
ACTION_ENDPOINTS = act.declare_all(bp, INSTANCE, BUILD)
# the client package for pip (webapp/api/client.py); any role may fetch it
bp.add_url_rule("/client/<filename>", "client_download", cl.download, methods=["GET"])
# attachments and subscriptions (webapp/api/files.py); maintainers manage subscriptions, reading included
MAINTAINER_ENDPOINTS = files.declare_all(bp, CASE, INSTANCE) | ACTION_ENDPOINTS

# the document of all of the above (webapp/api/openapi.py); it needs credentials like the rest
bp.add_url_rule("/openapi.json", "openapi", openapi.serve, methods=["GET"])


@bp.errorhandler(Conflict)
def conflict(error):
    """A write that collides with stored state: 409, with the existing item if any."""
    db.session.rollback()
    extra = {}
    if error.existing is not None:
        reply = REPLY_OF[type(error.existing)]
        extra["existing"] = reply.model_validate(error.existing).model_dump(mode="json")
    return error_response(409, error.message, extra=extra)


REPLY_OF = {
    rows.TestInstance: m.TestInstance,
    rows.TestBuild: m.TestBuild,
    rows.TestSuite: m.TestSuite,
    rows.TestCase: m.TestCase,
}


@bp.before_request
def authenticate():
    """Require a user with the role the method needs; browser sessions also need CSRF to write."""
    if request.method == "OPTIONS":
        return
    if request.method != "GET" and from_another_site(request.headers.get("Origin")):
        abort(403, description="writes from a page of another site are refused (see GREENBAR_CORS_ORIGINS)")
    if not current_user.is_authenticated:
        abort(401, description=API_LOGIN_HINT)
    role = "maintainer" if request.endpoint in MAINTAINER_ENDPOINTS else write_role_for(request.method)
    if not current_user.has_role(role):
        abort(403, description=f"this needs the {role} role")
    if role != "viewer" and g.get("auth_method") != "basic":
        try:
            validate_csrf(request.headers.get("X-CSRFToken"))
        except (CSRFError, CSRFValidationError):
            abort(403, description="writes from a browser session need an X-CSRFToken header")


def from_another_site(origin):
    """Whether a browser sent this from a page of a site that is neither ours nor on the CORS list.

    A browser that once cached Basic credentials for our realm would send them
    with another site's form post, which needs no preflight; its ``Origin``
    header gives it away. CI clients send no ``Origin`` at all.
    """
    if origin is None:
        return False
    # the host alone: behind a TLS-ending balancer the app may see http for an https page
    return origin not in current_app.config["CORS_ORIGINS"] and urlsplit(origin).netloc != request.host


@bp.after_request
def allow_listed_origins(response):
    """Add CORS headers for origins listed in GREENBAR_CORS_ORIGINS, and no others."""
    origin = request.headers.get("Origin")
    if origin and origin in current_app.config["CORS_ORIGINS"]:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, Idempotency-Key"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
        response.vary.add("Origin")
    return response


def init_app(app):
    """Register the API blueprint."""
    app.register_blueprint(bp)
