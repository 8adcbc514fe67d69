"""JSON lists for finding things: tests of an instance by name, a build's cases by status.

Both answer the usual list shape (``count``, ``next``, ``previous``,
``results``) with ``limit``/``offset`` paging; the queries are in
:mod:`webapp.queries`, the query strings and replies in :mod:`webapp.api.models`.
"""

from webapp import queries
from webapp.api.resources import get_build
from webapp.api.resources import get_instance
from webapp.api.resources import page_url
from webapp.api.resources import paginate
from webapp.api.resources import search_term
from webapp.api.statistics import linked


def search_tests(instance_id, query):
    """Tests of an instance whose case name contains ``search`` (any letter case), by suite and name.

    Each result has ``suite``, ``name``, ``test_key``, ``latest_status``,
    ``failure_rate`` (over the newest 50 builds), ``url`` (its newest case) and
    ``history_url``. The search covers the newest builds' cases (see
    :func:`queries.search_tests`); without ``search`` it lists every test there.
    """
    get_instance(instance_id)
    matches = queries.test_matches(instance_id, search_term(query))
    limit, offset = query.limit, query.offset
    found, total = queries.found_tests(instance_id, matches, offset, limit)
    return {
        "count": total,
        "next": page_url(offset + limit, limit) if offset + limit < total else None,
        "previous": page_url(max(offset - limit, 0), limit) if offset > 0 else None,
        "results": linked(instance_id, found),
    }


def build_cases(instance_id, build_id, query):
    """A build's cases across all its suites, optionally of one ``result_status``, sorted by ``ordering``."""
    build = get_build(instance_id, build_id)
    status = query.result_status if query.result_status is not None else queries.STATUS_ORDER
    total = build.cases_total if query.result_status is None else queries.status_counts(build)[status]
    if build.pruned is not None:
        total = None  # the counters outlive the pruned case rows: count the rows
    key, descending = query.ordering.lstrip("-"), query.ordering.startswith("-")
    return paginate(queries.build_cases_statement(build, status, key, descending), query, total)
