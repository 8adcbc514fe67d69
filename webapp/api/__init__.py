"""The JSON REST API at ``/api/``: the seed's tree of instances, builds, suites and cases.

Every path is served in the seed's hyphenated spelling and, as an alias, in the
underscore spelling its first implementation used.
"""

import functools
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

from webapp.api import actions as act
from webapp.api import batch as bt
from webapp.api import client as cl
from webapp.api import imports as imp
from webapp.api import openapi
from webapp.api import resources as r
from webapp.api import statistics as st
from webapp.extensions import csrf
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


def add_route(rule, endpoint, view, methods):
    """Register ``rule`` in the hyphenated spelling and its underscore alias; writes retry lost races."""
    if methods != ["GET"]:
        view = r.retried(view)
    bp.add_url_rule(rule, endpoint, view, methods=methods)
    alias = rule.replace("test-", "test_")
    bp.add_url_rule(alias, endpoint + "_alias", view, methods=methods)


def add_item_routes(rule, name, read, update, delete):
    """Register GET, PUT, PATCH and DELETE of one item."""
    add_route(rule, name, read, ["GET"])
    add_route(rule, name + "_put", functools.partial(update, partial=False), ["PUT"])
    add_route(rule, name + "_patch", functools.partial(update, partial=True), ["PATCH"])
    add_route(rule, name + "_delete", delete, ["DELETE"])


def add_lifecycle_routes(rule, name, start, finish):
    """Register ``start/``, ``finish/`` and its alias ``stop/``."""
    add_route(rule + "start/", name + "_start", start, ["POST"])
    add_route(rule + "finish/", name + "_finish", finish, ["POST"])
    add_route(rule + "stop/", name + "_stop", finish, ["POST"])


add_route(INSTANCES, "instances", r.list_instances, ["GET"])
add_route(INSTANCES, "instances_create", r.create_instance, ["POST"])
add_item_routes(INSTANCE, "instance", r.read_instance, r.update_instance, r.delete_instance)
add_route(BUILDS, "builds", r.list_builds, ["GET"])
add_route(BUILDS, "builds_create", r.create_build, ["POST"])
add_item_routes(BUILD, "build", r.read_build, r.update_build, r.delete_build)
add_lifecycle_routes(BUILD, "build", r.start_build, r.finish_build)
add_route(SUITES, "suites", r.list_suites, ["GET"])
add_route(SUITES, "suites_create", r.create_suite, ["POST"])
add_item_routes(SUITE, "suite", r.read_suite, r.update_suite, r.delete_suite)
add_lifecycle_routes(SUITE, "suite", r.start_suite, r.finish_suite)
add_route(CASES, "cases", r.list_cases, ["GET"])
add_route(CASES, "cases_create", r.create_case, ["POST"])
add_item_routes(CASE, "case", r.read_case, r.update_case, r.delete_case)
add_lifecycle_routes(CASE, "case", r.start_case, r.finish_case)

# JUnit XML import and statistics (webapp/api/imports.py, webapp/api/statistics.py)
add_route(INSTANCE + "import/", "import_new_build", imp.import_new_build, ["POST"])
add_route(BUILD + "import/", "import_into_build", imp.import_into_build, ["POST"])
add_route(BUILD + "results/", "add_results", bt.add_results, ["POST"])
add_route(BUILD + "summary/", "build_summary", st.build_summary, ["GET"])
add_route(BUILD + "diff/", "build_diff", st.build_diff, ["GET"])
add_route(INSTANCE + "trend/", "trend", st.trend, ["GET"])
add_route(INSTANCE + "top-failing/", "top_failing", st.top_failing, ["GET"])
add_route(INSTANCE + "slowest/", "slowest", st.slowest, ["GET"])
add_route(INSTANCE + "flaky/", "flaky", st.flaky, ["GET"])
add_route(INSTANCE + "regressions/", "regressions", st.regressions, ["GET"])
add_route(INSTANCE + "test-history/", "find_test", st.find_test, ["GET"])
add_route(INSTANCE + "test-history/<string(length=32):test_key>/", "test_history", st.test_history, ["GET"])

# acting on results: failure groups and triage, quarantine, gate, split (webapp/api/actions.py)
SIGNATURE = INSTANCE + "failure-groups/<string(length=16):signature>/label/"
QUARANTINE = INSTANCE + "quarantine/"
add_route(BUILD + "failure-groups/", "build_failure_groups", act.build_failure_groups, ["GET"])
add_route(INSTANCE + "failure-groups/", "instance_failure_groups", act.instance_failure_groups, ["GET"])
add_route(SIGNATURE, "failure_label", act.read_label, ["GET"])
add_route(SIGNATURE, "failure_label_put", act.put_label, ["PUT"])
add_route(SIGNATURE, "failure_label_delete", act.delete_label, ["DELETE"])
add_route(QUARANTINE, "quarantine", act.list_quarantine, ["GET"])
add_route(QUARANTINE, "quarantine_create", act.create_quarantine, ["POST"])
add_route(QUARANTINE + ID.format("entry_id"), "quarantine_delete", act.delete_quarantine, ["DELETE"])
add_route(INSTANCE + "gate/", "gate_rules", act.read_rules, ["GET"])
add_route(INSTANCE + "gate/", "gate_rules_put", act.put_rules, ["PUT"])
add_route(BUILD + "gate/", "build_gate", act.build_gate, ["GET"])
add_route(INSTANCE + "split/", "split", act.split_tests, ["GET"])
add_route(INSTANCE + "badge-token/", "badge_token", act.rotate_badge_token, ["POST"])
# deletes that are a maintainer's everyday work, not an admin's clean-up
MAINTAINER_DELETES = frozenset(
    f"api.{name}{alias}" for name in ("failure_label_delete", "quarantine_delete") for alias in ("", "_alias")
)
# the client package for pip (webapp/api/client.py); any role may fetch it
bp.add_url_rule("/client/<filename>", "client_download", cl.download, methods=["GET"])

# the document of all of the above (webapp/api/openapi.py); it needs credentials like the rest
bp.add_url_rule("/openapi.json", "openapi", openapi.serve, methods=["GET"])


@bp.before_request
def authenticate():
    """Require a user with the role the method needs; browser sessions also need CSRF to write."""
    if request.method == "OPTIONS":
        return
    if request.method != "GET" and from_another_site(request.headers.get("Origin")):
        abort(403, description="writes from a page of another site are refused (see GREENBAR_CORS_ORIGINS)")
    g.prefetch = r.addressed(request.view_args or {})
    if not current_user.is_authenticated:
        abort(401, description=API_LOGIN_HINT)
    role = "maintainer" if request.endpoint in MAINTAINER_DELETES else write_role_for(request.method)
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
