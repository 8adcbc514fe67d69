"""The seed's CRUD and lifecycle views for instances, builds, suites and cases.

Each view gets its path ids and, as ``body`` or ``query``, the clean values of
the models its declaration names (``webapp.api.__init__``); it returns the row
that the declared reply model writes. The write rules live in
:mod:`webapp.results`.
"""

import dataclasses
import functools
from urllib.parse import urlencode

from flask import abort
from flask import request
from sqlalchemy import String
from sqlalchemy import bindparam
from sqlalchemy import cast
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select

from webapp import domain
from webapp import results
from webapp.api.models import TestCase as TestCaseReply
from webapp.exceptions import Conflict
from webapp.exceptions import ValidationError
from webapp.extensions import db
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models import TestInstance
from webapp.models import TestSuite

# the fields of a case's reply: what a start or finish reads of it
CASE_REPLY = frozenset(TestCaseReply.model_fields)


def contains(column, term):
    """Case-insensitive substring match, with ``%`` and ``_`` taken literally."""
    return func.lower(column).contains(term.lower(), autoescape=True)


def stored(model, item_id):
    """The row with this id, or None.

    An id beyond the accepted range is simply not found. The URL converter
    cannot refuse it: werkzeug then answers some methods with a 405 instead of a 404.
    """
    return db.session.get(model, item_id) if item_id <= domain.MAX_ID else None


def get_instance(instance_id):
    """Return the instance or abort 404."""
    instance = stored(TestInstance, instance_id)
    if instance is None:
        abort(404, description=f"test instance {instance_id} does not exist")
    return instance


def get_build(instance_id, build_id):
    """Return the build of that instance or abort 404."""
    build = stored(TestBuild, build_id)
    if build is None or build.instance_id != instance_id:
        abort(404, description=f"test build {build_id} does not exist in test instance {instance_id}")
    return build


@functools.cache
def build_key_query():
    """A build's id and instance, built once."""
    return select(TestBuild.id, TestBuild.instance_id).where(TestBuild.id == bindparam("build_id"))


def get_build_key(instance_id, build_id):
    """The build's id and instance as a row, for a writer that needs no more, or abort 404.

    Cheaper than the record: two columns, no object for the session to track.
    """
    row = None
    if build_id <= domain.MAX_ID:
        row = results.run(build_key_query(), {"build_id": build_id}).first()
    if row is None or row.instance_id != instance_id:
        abort(404, description=f"test build {build_id} does not exist in test instance {instance_id}")
    return row


@functools.cache
def build_and_suite_query():
    """A suite with its build in one round trip (a case is created under both), built once."""
    return (
        select(TestBuild, TestSuite)
        .join(TestSuite, TestSuite.build_id == TestBuild.id)
        .where(TestBuild.id == bindparam("build_id"), TestSuite.id == bindparam("suite_id"))
    )


def get_suite(instance_id, build_id, suite_id):
    """Return the build and the suite under that instance or abort 404."""
    row = None
    if max(build_id, suite_id) <= domain.MAX_ID:
        ids = {"build_id": build_id, "suite_id": suite_id}
        row = db.session.execute(build_and_suite_query(), ids).first()
    if row is None or row[0].instance_id != instance_id:
        suite_not_found(instance_id, build_id, suite_id)
    return row[0], row[1]


def suite_not_found(instance_id, build_id, suite_id):
    """Abort 404 for a suite not found under that build and instance, naming what is missing."""
    get_build(instance_id, build_id)  # the build's own 404 when it is the build that is missing
    abort(404, description=f"test suite {suite_id} does not exist in test build {build_id}")


@functools.cache
def case_record_query():
    """A case's instance and the columns of its reply, built once."""
    table = TestCase.__table__
    reply = [table.c[name] for name in CASE_REPLY if name in table.c and name != "instance_id"]
    return select(table.c.instance_id, *reply).where(table.c.id == bindparam("case_id"))


def get_case_record(instance_id, build_id, suite_id, case_id):
    """The case as a :class:`results.CaseRecord` of its reply's columns, or abort 404.

    Cheaper than :func:`get_case` for a start or finish: no large texts it does
    not answer with (output, signature), no object for the session to track.
    """
    row = None
    if case_id <= domain.MAX_ID:
        row = results.run(case_record_query(), {"case_id": case_id}).first()
    check_case_place(row, instance_id, build_id, suite_id, case_id)
    return results.CaseRecord(**row._asdict())


def get_case(instance_id, build_id, suite_id, case_id):
    """Return the case under that suite, build and instance or abort 404."""
    case = stored(TestCase, case_id)
    check_case_place(case, instance_id, build_id, suite_id, case_id)
    return case


def check_case_place(case, instance_id, build_id, suite_id, case_id):
    """Abort 404 unless ``case`` (a row, an entity or None) is under that suite, build and instance."""
    if case is None or (case.suite_id, case.build_id, case.instance_id) != (suite_id, build_id, instance_id):
        abort(404, description=f"test case {case_id} does not exist in test suite {suite_id}")


@functools.cache
def suite_key_query():
    """A suite's id and name with its build's id and instance, in one round trip, built once."""
    return (
        select(TestBuild.id, TestBuild.instance_id, TestSuite.id.label("suite_id"), TestSuite.name)
        .join(TestSuite, TestSuite.build_id == TestBuild.id)
        .where(TestBuild.id == bindparam("build_id"), TestSuite.id == bindparam("suite_id"))
    )


@dataclasses.dataclass(frozen=True, slots=True)
class SuiteKey:
    """What a case is created under needs of its suite: the id and the name (for its test key)."""

    id: int
    name: str


def get_suite_key(instance_id, build_id, suite_id):
    """The build's key row and the suite's key, for creating a case under them, or abort 404.

    Cheaper than :func:`get_suite`: four columns, no objects for the session to track.
    """
    row = None
    if max(build_id, suite_id) <= domain.MAX_ID:
        row = results.run(suite_key_query(), {"build_id": build_id, "suite_id": suite_id}).first()
    if row is None or row.instance_id != instance_id:
        suite_not_found(instance_id, build_id, suite_id)
    return row, SuiteKey(row.suite_id, row.name)


def when(body, field):
    """The time a start/finish body gives (``started``/``finished`` or ``time``), or None."""
    return body.get(field) or body.get("time")


def check_result(body):
    """Refuse a body giving a finished time without a result: ``result_status`` is null until finished."""
    if body.get("finished") is not None and body.get("result_status") is None:
        raise ValidationError(
            "a finished case needs a result", {"result_status": "is required when finished is given"}
        )


def page_url(offset, limit):
    """The URL of this list at another offset, keeping the other query parameters."""
    args = request.args.to_dict()
    args.update(offset=str(offset), limit=str(limit))
    return f"{request.base_url}?{urlencode(sorted(args.items()))}"


def paginate(statement, query, total=None):
    """One page of ``statement``'s rows: ``{count, next, previous, results}``.

    :param total: a known row count (from counters), to spare a ``COUNT(*)``.
    """
    limit, offset = query.limit, query.offset
    if total is None:
        total = db.session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    following = offset + limit
    return {
        "count": total,
        "next": page_url(following, limit) if following < total else None,
        "previous": page_url(max(offset - limit, 0), limit) if offset > 0 else None,
        "results": db.session.scalars(statement.limit(limit).offset(offset)).all(),
    }


def search_term(query):
    """The ``search`` parameter without its blanks, or None."""
    return (query.search or "").strip() or None


# instances


def list_instances(query):
    """List test instances, optionally filtered by a name substring."""
    statement = select(TestInstance).order_by(TestInstance.id)
    term = search_term(query)
    if term:
        statement = statement.where(contains(TestInstance.name, term))
    return paginate(statement, query)


def create_instance(body):
    """Create a test instance."""
    return results.create_instance(**body)


def read_instance(instance_id):
    """Show one test instance."""
    return get_instance(instance_id)


def update_instance(instance_id, body):
    """Change a test instance's name or description."""
    return results.update_instance(get_instance(instance_id), **body)


def delete_instance(instance_id):
    """Delete a test instance and everything recorded under it."""
    results.delete_instance(get_instance(instance_id))


# builds


def list_builds(instance_id, query):
    """List an instance's builds, optionally filtered by name, number or branch."""
    get_instance(instance_id)
    statement = select(TestBuild).where(TestBuild.instance_id == instance_id).order_by(TestBuild.id)
    term = search_term(query)
    if term:
        statement = statement.where(
            or_(contains(TestBuild.name, term), cast(TestBuild.number, String) == term)
        )
    return paginate(statement, query)


def create_build(instance_id, body):
    """Create a build; without a ``number`` it gets the next one."""
    return results.create_build(get_instance(instance_id), **body)


def read_build(instance_id, build_id):
    """Show one build with its counters."""
    return get_build(instance_id, build_id)


def update_build(instance_id, build_id, body):
    """Change a build's number, name or CI metadata."""
    return results.update_build(get_build(instance_id, build_id), **body)


def delete_build(instance_id, build_id):
    """Delete a build and its suites and cases."""
    results.delete_build(get_build(instance_id, build_id))


def start_build(instance_id, build_id, body):
    """Mark a build as started."""
    build = get_build(instance_id, build_id)
    results.start(build, when(body, "started"))
    return build


def finish_build(instance_id, build_id, body):
    """Mark a build as finished."""
    build = get_build(instance_id, build_id)
    results.finish(build, when(body, "finished"))
    return build


# suites


def list_suites(instance_id, build_id, query):
    """List a build's suites, optionally filtered by a name substring."""
    build = get_build(instance_id, build_id)
    statement = select(TestSuite).where(TestSuite.build_id == build.id).order_by(TestSuite.id)
    term = search_term(query)
    total = build.suites_total
    if term:
        statement = statement.where(contains(TestSuite.name, term))
        total = None
    return paginate(statement, query, total)


def create_suite(instance_id, build_id, body):
    """Create a suite in a build."""
    return results.create_suite(get_build(instance_id, build_id), **body)


def read_suite(instance_id, build_id, suite_id):
    """Show one suite with its counters."""
    return get_suite(instance_id, build_id, suite_id)[1]


def update_suite(instance_id, build_id, suite_id, body):
    """Change a suite's name or times."""
    return results.update_suite(get_suite(instance_id, build_id, suite_id)[1], **body)


def delete_suite(instance_id, build_id, suite_id):
    """Delete a suite and its cases."""
    results.delete_suite(get_suite(instance_id, build_id, suite_id)[1])


def start_suite(instance_id, build_id, suite_id, body):
    """Mark a suite as started."""
    suite = get_suite(instance_id, build_id, suite_id)[1]
    results.start(suite, when(body, "started"))
    return suite


def finish_suite(instance_id, build_id, suite_id, body):
    """Mark a suite as finished."""
    suite = get_suite(instance_id, build_id, suite_id)[1]
    results.finish(suite, when(body, "finished"))
    return suite


# cases


def list_cases(instance_id, build_id, suite_id, query):
    """List a suite's cases, optionally filtered by a name substring."""
    suite = get_suite(instance_id, build_id, suite_id)[1]
    statement = select(TestCase).where(TestCase.suite_id == suite.id).order_by(TestCase.id)
    term = search_term(query)
    # a pruned build's suites keep their counters but not their case rows: count the rows there
    total = suite.cases_total if suite.build.pruned is None else None
    if term:
        statement = statement.where(contains(TestCase.name, term))
        total = None
    return paginate(statement, query, total)


def create_case(instance_id, build_id, suite_id, body):
    """Create a case in a suite, optionally already finished with a status."""
    build, suite = get_suite_key(instance_id, build_id, suite_id)
    check_result(body)
    return results.insert_case(suite, build, **body)


def read_case(instance_id, build_id, suite_id, case_id):
    """Show one case."""
    return get_case(instance_id, build_id, suite_id, case_id)


def update_case(instance_id, build_id, suite_id, case_id, body):
    """Change a case; a new status moves its counts."""
    case = get_case(instance_id, build_id, suite_id, case_id)
    check_result(body)
    status = body.get("result_status", case.result_status)
    if status is not None and "finished" in body and body["finished"] is None:
        # a case with a result has finished: null means "keep its time" (or now, if it had none)
        del body["finished"]
    return results.update_case(case, **body)


def delete_case(instance_id, build_id, suite_id, case_id):
    """Delete a case and take it off the counters."""
    results.delete_case(get_case(instance_id, build_id, suite_id, case_id))


def start_case(instance_id, build_id, suite_id, case_id, body):
    """Mark a case as started."""
    case = get_case_record(instance_id, build_id, suite_id, case_id)
    results.start(case, when(body, "started"))
    return case


def finish_case(instance_id, build_id, suite_id, case_id, body):
    """Record a case's result: ``result_status`` and optionally message, details, duration."""
    case = get_case_record(instance_id, build_id, suite_id, case_id)
    if case.finished is not None:
        raise Conflict(f"test case {case_id} has already finished")
    finished = body.pop("finished", None) or body.pop("time", None)
    body.pop("time", None)
    results.finish_case(case, body.pop("result_status"), finished, **body)
    return case
