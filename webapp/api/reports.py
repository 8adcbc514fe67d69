"""JSON lists for finding things: tests of an instance by name, a build's cases by status.

Both answer the usual list shape (``count``, ``next``, ``previous``,
``results``) with ``limit``/``offset`` paging; the queries are in
:mod:`webapp.queries`.
"""

from urllib.parse import urlencode

from flask import request

from webapp import queries
from webapp.api import payload as p
from webapp.api.openapi import ORDERINGS
from webapp.api.pagination import DEFAULT_LIMIT
from webapp.api.pagination import MAX_LIMIT
from webapp.api.pagination import MAX_OFFSET
from webapp.api.pagination import paginate
from webapp.api.pagination import search_term
from webapp.api.resources import get_build
from webapp.api.resources import get_instance
from webapp.api.serializers import case_json
from webapp.api.statistics import case_url
from webapp.api.statistics import history_url
from webapp.models import STATUSES


def list_page(total, results, offset, limit):
    """The usual list shape around one slice of results."""

    def url(at):
        args = request.args.to_dict()
        args.update(offset=str(at), limit=str(limit))
        return f"{request.base_url}?{urlencode(sorted(args.items()))}"

    return {
        "count": total,
        "next": url(offset + limit) if offset + limit < total else None,
        "previous": url(max(offset - limit, 0)) if offset > 0 else None,
        "results": results,
    }


def search_tests(instance_id):
    """Tests of an instance whose case name contains ``search`` (any letter case), by suite and name.

    Each result has ``suite``, ``name``, ``test_key``, ``latest_status``,
    ``failure_rate`` (over the newest 50 builds), ``url`` (its newest case) and
    ``history_url``. The search covers the newest builds' cases (see
    :func:`queries.search_tests`).
    """
    get_instance(instance_id)
    term = search_term()
    limit = p.query_int("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = p.query_int("offset", 0, 0, MAX_OFFSET)
    matches = queries.test_matches(instance_id, term)
    total = queries.count_tests(matches)
    results = []
    for test in queries.found_tests(instance_id, matches, offset, limit):
        results.append(
            {
                "suite": test["suite"],
                "name": test["name"],
                "test_key": test["test_key"],
                "latest_status": test["latest_status"],
                "failure_rate": test["failure_rate"],
                "url": case_url(instance_id, test),
                "history_url": history_url(instance_id, test["test_key"]),
            }
        )
    return list_page(total, results, offset, limit)


def status_arg():
    """The ``result_status`` filter: a status, or all cases when absent."""
    value = request.args.get("result_status")
    if value is None:
        return queries.STATUS_ORDER
    if value not in STATUSES:
        message = f"must be one of {', '.join(STATUSES)}"
        raise p.ValidationError(f"result_status {message}", {"result_status": message})
    return value


def ordering_arg():
    """The ``ordering`` parameter: ``id`` (default), ``duration``, each with ``-`` for descending."""
    value = request.args.get("ordering", "id")
    if value not in ORDERINGS:
        message = f"must be one of {', '.join(ORDERINGS)}"
        raise p.ValidationError(f"ordering {message}", {"ordering": message})
    return value.lstrip("-"), value.startswith("-")


def build_cases(instance_id, build_id):
    """A build's cases across all its suites, optionally of one ``result_status``, ordered by ``ordering``."""
    build = get_build(instance_id, build_id)
    status = status_arg()
    key, descending = ordering_arg()
    total = build.cases_total if status == queries.STATUS_ORDER else queries.status_counts(build)[status]
    return paginate(queries.build_cases_statement(build, status, key, descending), case_json, total)
