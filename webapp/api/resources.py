"""The seed's CRUD and lifecycle endpoints for instances, builds, suites and cases."""

import functools
import random
import time

from flask import abort
from flask import current_app
from flask import request
from sqlalchemy import String
from sqlalchemy import bindparam
from sqlalchemy import cast
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import OperationalError

from webapp import results
from webapp.api import payload as p
from webapp.api.pagination import paginate
from webapp.api.pagination import search_term
from webapp.api.serializers import build_json
from webapp.api.serializers import case_json
from webapp.api.serializers import instance_json
from webapp.api.serializers import suite_json
from webapp.extensions import db
from webapp.models import MAX_BUILD_NUMBER
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models import TestInstance
from webapp.models import TestSuite

# a MySQL TEXT column holds 64 KB of UTF-8: 16,000 characters fit even at 4 bytes each
DESCRIPTION_LIMIT = 16000
INSTANCE_FIELDS = {"name": p.text(255, required=True), "description": p.text(DESCRIPTION_LIMIT)}
BUILD_FIELDS = {
    "number": p.integer(minimum=1, maximum=MAX_BUILD_NUMBER),
    "name": p.text(255),
    "branch": p.text(255),
    "revision": p.text(255),
    "ci_url": p.text(2048),
    "started": p.timestamp(),
    "finished": p.timestamp(),
}
SUITE_FIELDS = {"name": p.text(255, required=True), "started": p.timestamp(), "finished": p.timestamp()}
CASE_FIELDS = {
    "name": p.text(512, required=True),
    "started": p.timestamp(),
    "finished": p.timestamp(),
    "result_status": p.status(),
    "duration": p.seconds(),
    "message": p.text(),
    "details": p.text(),
}
CASE_FINISH_FIELDS = {
    "result_status": p.status(required=True),
    "finished": p.timestamp(),
    "time": p.timestamp(),
    "duration": p.seconds(),
    "message": p.text(),
    "details": p.text(),
}
# what clients may echo back from a GET in a PUT/PATCH body without being refused
READ_ONLY = frozenset(
    {"id", "pk", "instance_id", "build_id", "suite_id", "created", "suites_total", "attempts",
     "is_flaky", "pass_rate", "status", *results.COUNTERS}
)
MAX_ID = 2**31 - 1
# a write that lost a race (a duplicate key, an InnoDB deadlock) is run again this many times
ATTEMPTS = 10
MYSQL_DEADLOCK = 1213


def lost_race(error):
    """Whether a database error means a parallel writer got there first, so a rerun can succeed."""
    if isinstance(error, IntegrityError):
        return True
    return bool(error.orig.args) and error.orig.args[0] == MYSQL_DEADLOCK


def retried(view):
    """Rerun a write view in a fresh transaction when it lost a race to a parallel writer.

    Each write view is one transaction, so a rerun is safe. In the fresh
    transaction the winner's row is visible: a duplicate name becomes a proper
    409 with the existing item, and an auto-numbered build takes the next number.
    """

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return view(*args, **kwargs)
            except (IntegrityError, OperationalError) as error:
                if attempt == ATTEMPTS or not lost_race(error):
                    raise
                db.session.rollback()
                current_app.logger.info("rerunning %s after a lost race: %s", request.path, error.orig)
                # a little jitter keeps racing clients from colliding again in lockstep
                time.sleep(random.uniform(0, 0.002 * attempt))

    return wrapped


def contains(column, term):
    """Case-insensitive substring match, with ``%`` and ``_`` taken literally."""
    return func.lower(column).contains(term.lower(), autoescape=True)


def stored(model, item_id):
    """The row with this id, or None.

    Ids are 32-bit columns; a larger one is simply not found (SQLite would
    overflow on it). The URL converter cannot refuse it: werkzeug then answers
    some methods with a 405 instead of a 404.
    """
    return db.session.get(model, item_id) if item_id <= MAX_ID else None


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
    if max(build_id, suite_id) <= MAX_ID:
        ids = {"build_id": build_id, "suite_id": suite_id}
        row = db.session.execute(build_and_suite_query(), ids).first()
    if row is None or row[0].instance_id != instance_id:
        get_build(instance_id, build_id)  # the build's own 404 when it is the build that is missing
        abort(404, description=f"test suite {suite_id} does not exist in test build {build_id}")
    return row[0], row[1]


def get_case(instance_id, build_id, suite_id, case_id):
    """Return the case under that suite, build and instance or abort 404."""
    case = stored(TestCase, case_id)
    if case is None or (case.suite_id, case.build_id, case.instance_id) != (
        suite_id,
        build_id,
        instance_id,
    ):
        abort(404, description=f"test case {case_id} does not exist in test suite {suite_id}")
    return case


def lifecycle_time(body, field):
    """The time a start/finish body gives (``started``/``finished`` or ``time``), or None."""
    extra = {"time": p.timestamp(), field: p.timestamp()}
    clean = p.validate(body, extra)
    return clean.get(field) or clean.get("time")


def saved(item, serialize, status=200):
    """Commit the transaction and answer with the stored item.

    The item is serialized before the commit, while its attributes are still
    loaded: afterwards the session would expire them and read the row again.
    """
    body = serialize(item)
    db.session.commit()
    return body, status


def check_result(clean):
    """Refuse a body giving a finished time without a result: ``result_status`` is null until finished."""
    if clean.get("finished") is not None and clean.get("result_status") is None:
        raise p.ValidationError(
            "a finished case needs a result", {"result_status": "is required when finished is given"}
        )


# instances


def list_instances():
    """List test instances, optionally filtered by a name substring."""
    statement = select(TestInstance).order_by(TestInstance.id)
    term = search_term()
    if term:
        statement = statement.where(contains(TestInstance.name, term))
    return paginate(statement, instance_json)


def create_instance():
    """Create a test instance."""
    clean = p.validate(p.read_json_object(), INSTANCE_FIELDS, ignored=READ_ONLY)
    return saved(results.create_instance(**clean), instance_json, 201)


def read_instance(instance_id):
    """Show one test instance."""
    return instance_json(get_instance(instance_id))


def update_instance(instance_id, partial):
    """Change a test instance's name or description."""
    instance = get_instance(instance_id)
    clean = p.validate(p.read_json_object(), INSTANCE_FIELDS, partial=partial, ignored=READ_ONLY)
    if "name" in clean and clean["name"] != instance.name:
        taken = db.session.scalar(select(TestInstance).where(TestInstance.name == clean["name"]))
        if taken is not None:
            raise results.Conflict(f"a test instance named {clean['name']!r} already exists", taken)
    for name, value in clean.items():
        setattr(instance, name, value if value is not None else "")
    return saved(instance, instance_json)


def delete_instance(instance_id):
    """Delete a test instance and everything recorded under it."""
    results.delete_instance(get_instance(instance_id))
    db.session.commit()
    return "", 204


# builds


def list_builds(instance_id):
    """List an instance's builds, optionally filtered by name, number or branch."""
    get_instance(instance_id)
    statement = select(TestBuild).where(TestBuild.instance_id == instance_id).order_by(TestBuild.id)
    term = search_term()
    if term:
        statement = statement.where(
            or_(contains(TestBuild.name, term), cast(TestBuild.number, String) == term)
        )
    return paginate(statement, build_json)


def create_build(instance_id):
    """Create a build; without a ``number`` it gets the next one."""
    instance = get_instance(instance_id)
    clean = p.validate(p.read_json_object(), BUILD_FIELDS, ignored=READ_ONLY)
    return saved(results.create_build(instance, **clean), build_json, 201)


def read_build(instance_id, build_id):
    """Show one build with its counters."""
    return build_json(get_build(instance_id, build_id))


def update_build(instance_id, build_id, partial):
    """Change a build's number, name or CI metadata."""
    build = get_build(instance_id, build_id)
    clean = p.validate(p.read_json_object(), BUILD_FIELDS, partial=partial, ignored=READ_ONLY)
    number = clean.get("number")
    if number is not None and number != build.number:
        taken = db.session.scalar(
            select(TestBuild).where(TestBuild.instance_id == instance_id, TestBuild.number == number)
        )
        if taken is not None:
            raise results.Conflict(f"build number {number} already exists in this instance", taken)
    for name, value in clean.items():
        if name != "number" or value is not None:
            setattr(build, name, value)
    return saved(build, build_json)


def delete_build(instance_id, build_id):
    """Delete a build and its suites and cases."""
    results.delete_build(get_build(instance_id, build_id))
    db.session.commit()
    return "", 204


def start_build(instance_id, build_id):
    """Mark a build as started."""
    build = get_build(instance_id, build_id)
    results.start(build, lifecycle_time(p.read_json_object(), "started"))
    return saved(build, build_json)


def finish_build(instance_id, build_id):
    """Mark a build as finished."""
    build = get_build(instance_id, build_id)
    results.finish(build, lifecycle_time(p.read_json_object(), "finished"))
    return saved(build, build_json)


# suites


def list_suites(instance_id, build_id):
    """List a build's suites, optionally filtered by a name substring."""
    build = get_build(instance_id, build_id)
    statement = select(TestSuite).where(TestSuite.build_id == build.id).order_by(TestSuite.id)
    term = search_term()
    total = build.suites_total
    if term:
        statement = statement.where(contains(TestSuite.name, term))
        total = None
    return paginate(statement, suite_json, total)


def create_suite(instance_id, build_id):
    """Create a suite in a build."""
    build = get_build(instance_id, build_id)
    clean = p.validate(p.read_json_object(), SUITE_FIELDS, ignored=READ_ONLY)
    return saved(results.create_suite(build, **clean), suite_json, 201)


def read_suite(instance_id, build_id, suite_id):
    """Show one suite with its counters."""
    return suite_json(get_suite(instance_id, build_id, suite_id)[1])


def update_suite(instance_id, build_id, suite_id, partial):
    """Change a suite's name or times."""
    build, suite = get_suite(instance_id, build_id, suite_id)
    clean = p.validate(p.read_json_object(), SUITE_FIELDS, partial=partial, ignored=READ_ONLY)
    name = clean.pop("name", suite.name)
    if name != suite.name:
        taken = db.session.scalar(
            select(TestSuite).where(TestSuite.build_id == build.id, TestSuite.name == name)
        )
        if taken is not None:
            raise results.Conflict(f"a suite named {name!r} already exists in this build", taken)
        results.rename_suite(suite, name)
    for field, value in clean.items():
        setattr(suite, field, value)
    return saved(suite, suite_json)


def delete_suite(instance_id, build_id, suite_id):
    """Delete a suite and its cases."""
    results.delete_suite(get_suite(instance_id, build_id, suite_id)[1])
    db.session.commit()
    return "", 204


def start_suite(instance_id, build_id, suite_id):
    """Mark a suite as started."""
    suite = get_suite(instance_id, build_id, suite_id)[1]
    results.start(suite, lifecycle_time(p.read_json_object(), "started"))
    return saved(suite, suite_json)


def finish_suite(instance_id, build_id, suite_id):
    """Mark a suite as finished."""
    suite = get_suite(instance_id, build_id, suite_id)[1]
    results.finish(suite, lifecycle_time(p.read_json_object(), "finished"))
    return saved(suite, suite_json)


# cases


def list_cases(instance_id, build_id, suite_id):
    """List a suite's cases, optionally filtered by a name substring."""
    suite = get_suite(instance_id, build_id, suite_id)[1]
    statement = select(TestCase).where(TestCase.suite_id == suite.id).order_by(TestCase.id)
    term = search_term()
    total = suite.cases_total
    if term:
        statement = statement.where(contains(TestCase.name, term))
        total = None
    return paginate(statement, case_json, total)


def create_case(instance_id, build_id, suite_id):
    """Create a case in a suite, optionally already finished with a status."""
    build, suite = get_suite(instance_id, build_id, suite_id)
    clean = p.validate(p.read_json_object(), CASE_FIELDS, ignored=READ_ONLY)
    check_result(clean)
    return saved(results.create_case(suite, build, **clean), case_json, 201)


def read_case(instance_id, build_id, suite_id, case_id):
    """Show one case."""
    return case_json(get_case(instance_id, build_id, suite_id, case_id))


def update_case(instance_id, build_id, suite_id, case_id, partial):
    """Change a case; a new status moves its counts."""
    case = get_case(instance_id, build_id, suite_id, case_id)
    clean = p.validate(p.read_json_object(), CASE_FIELDS, partial=partial, ignored=READ_ONLY)
    check_result(clean)
    status = clean.get("result_status", case.result_status)
    if status is not None and "finished" in clean and clean["finished"] is None:
        # a case with a result has finished: null means "keep its time" (or now, if it had none)
        del clean["finished"]
    name = clean.get("name")
    if name is not None and name != case.name:
        taken = db.session.scalar(
            select(TestCase).where(TestCase.suite_id == case.suite_id, TestCase.name == name)
        )
        if taken is not None:
            raise results.Conflict(f"a case named {name!r} already exists in this suite", taken)
    return saved(results.update_case(case, **clean), case_json)


def delete_case(instance_id, build_id, suite_id, case_id):
    """Delete a case and take it off the counters."""
    results.delete_case(get_case(instance_id, build_id, suite_id, case_id))
    db.session.commit()
    return "", 204


def start_case(instance_id, build_id, suite_id, case_id):
    """Mark a case as started."""
    case = get_case(instance_id, build_id, suite_id, case_id)
    results.start(case, lifecycle_time(p.read_json_object(), "started"))
    return saved(case, case_json)


def finish_case(instance_id, build_id, suite_id, case_id):
    """Record a case's result: ``result_status`` and optionally message, details, duration."""
    case = get_case(instance_id, build_id, suite_id, case_id)
    if case.finished is not None:
        raise results.Conflict(f"test case {case_id} has already finished")
    clean = p.validate(p.read_json_object(), CASE_FINISH_FIELDS)
    when = clean.pop("finished", None) or clean.pop("time", None)
    clean.pop("time", None)
    results.finish_case(case, clean.pop("result_status"), when, **clean)
    return saved(case, case_json)
