"""Writing test results: the one place that changes cases and keeps counters exact.

The API, the admin panel and the JUnit import all go through these functions.
Counter changes are atomic ``UPDATE … SET n = n + :delta`` statements issued in
the caller's transaction, so parallel CI workers never lose counts.

Locks: a suite is always locked before its build. InnoDB takes a shared lock
on the parent rows whenever a case row's foreign-key index entries are written
(an INSERT, or a new ``result_status`` in the (build_id, result_status) index);
if the counters were bumped after that, two writers holding shared locks on the
same build would each wait for the other's exclusive lock: a deadlock. So every
case write locks its suite and build before it writes the case's row (on MySQL
a finish locks case, suite and build in one statement before changing any of
them). Creating a build locks its instance's row and nothing else, so it never
waits while holding that lock. The one exception is a batch of results on
MySQL: its rows go in with foreign-key checks off, so they lock no parent, and
the counters follow (see ``mysql_writes.InsertPipe``).

The functions flush but never commit: the caller owns the transaction, so a
failed request stores nothing.
"""

import functools
import types

from sqlalchemy import bindparam
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from webapp import events
from webapp import mysql_writes
from webapp import telemetry
from webapp.domain import CASE_TEXT_LIMITS
from webapp.domain import COUNTERS
from webapp.domain import STATUS_COUNTER
from webapp.domain import clip
from webapp.domain import clip_case_text
from webapp.domain import elapsed
from webapp.exceptions import Conflict
from webapp.extensions import db
from webapp.models import MAX_BUILD_NUMBER
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models import TestInstance
from webapp.models import TestSuite
from webapp.models import test_key
from webapp.models import utcnow
from webapp.signatures import FAILING
from webapp.signatures import signed

CASE_COLUMNS = tuple(column.key for column in TestCase.__table__.columns if column.key != "id")
# one case row with every column as a parameter: compiled once, whatever the values
CASE_INSERT = insert(TestCase.__table__)
# an instance's retention policy: null is a value here (keep everything), not an empty text
NULLABLE_POLICY = frozenset({"keep_days", "keep_builds"})


def case_contribution(status, duration, is_flaky):
    """Return what one finished case adds to its suite's and build's counters."""
    contribution = dict.fromkeys(COUNTERS, 0)
    if status is not None:
        contribution[STATUS_COUNTER[status]] = 1
        contribution["cases_duration"] = duration or 0.0
        contribution["flaky"] = 1 if is_flaky else 0
    return contribution


def difference(after, before):
    """Subtract two counter mappings, dropping the zeros."""
    return {name: after[name] - before[name] for name in COUNTERS if after[name] != before[name]}


def run(statement, parameters):
    """Run a Core statement built once on the session's connection, in its transaction.

    The hot writes (counters, lifecycle times, case rows) need nothing from the
    ORM's statement handling: going to the connection directly skips it, which
    is a good part of a live API call's CPU. On MySQL they skip the Core's
    execution too (:class:`mysql_writes.Prepared`).
    """
    connection = db.session.connection()
    if connection.dialect.name == "mysql":
        columns = tuple(parameters) if statement.is_insert else None
        return mysql_writes.prepared(statement, connection.dialect, columns).run(connection, parameters)
    return connection.execute(statement, parameters)


def delta_parameters(deltas):
    """The bound parameters of :func:`counter_values`."""
    return {f"d_{name}": delta for name, delta in deltas.items()}


# Statements are built once per shape and then only run with new parameters:
# building an UPDATE and its cache key costs more than running it.


@functools.cache
def counter_update(model, names):
    """One UPDATE of one suite's or build's counters."""
    return (
        update(model)
        .where(model.id == bindparam("row_id"))
        .values(
            {
                name: getattr(model, name) + bindparam(f"d_{name}", type_=getattr(model, name).type)
                for name in names
            }
        )
        .execution_options(synchronize_session=False)
    )


def bump_counters(suite_id, build_id, deltas):
    """Atomically add ``deltas`` to a suite's and its build's counters (locking both rows).

    Return whether both rows were found (a parallel delete may have removed them).

    MySQL does both rows in one multi-table UPDATE (one round trip); the build
    is found through the suite, so the suite is always read and locked first.
    Other databases get one UPDATE per row, suite first.
    """
    if not deltas:
        return True
    names = tuple(sorted(deltas))
    if mysql_writes.on_mysql():
        found = run(mysql_writes.counters_update(names), {"suite_id": suite_id, **delta_parameters(deltas)})
        return found.rowcount > 0
    found = [
        run(counter_update(model, names), {"row_id": row_id, **delta_parameters(deltas)}).rowcount
        for model, row_id in ((TestSuite, suite_id), (TestBuild, build_id))
    ]
    return all(found)


def lock_parents(suite_id, build_id):
    """Lock a suite's and its build's rows, in that order, before changing one of their cases."""
    for model, row_id in ((TestSuite, suite_id), (TestBuild, build_id)):
        db.session.execute(select(model.id).where(model.id == row_id).with_for_update())


def lock_instance(instance_id):
    """Lock an instance's row: build numbering within it then happens one request at a time."""
    db.session.execute(select(TestInstance.id).where(TestInstance.id == instance_id).with_for_update())


def next_build_number(instance_id):
    """Return the number after the instance's highest build number.

    A locking read sees builds committed after this transaction's snapshot was
    taken; it reads only the (instance_id, number) index, so it never waits
    for the build rows that case writers hold.
    """
    highest = db.session.scalar(
        select(TestBuild.number)
        .where(TestBuild.instance_id == instance_id)
        .order_by(TestBuild.number.desc())
        .limit(1)
        .with_for_update(read=True)
    )
    number = (highest or 0) + 1
    if number > MAX_BUILD_NUMBER:
        raise Conflict(
            f"this instance's build numbers are used up to {MAX_BUILD_NUMBER:,}: "
            "give the new build a free number below that"
        )
    return number


def create_instance(name, description="", keep_days=None, keep_builds=None):
    """Create a test instance, or raise :class:`Conflict` if the name is taken."""
    existing = db.session.scalar(select(TestInstance).where(TestInstance.name == name))
    if existing is not None:
        raise Conflict(f"a test instance named {name!r} already exists", existing)
    instance = TestInstance(
        name=name, description=description or "", keep_days=keep_days, keep_builds=keep_builds
    )
    db.session.add(instance)
    db.session.flush()
    return instance


def create_build(instance, **fields):
    """Create a build of ``instance``; its number is the next free one unless given."""
    fields["pinned"] = bool(fields.get("pinned"))
    lock_instance(instance.id)
    number = fields.pop("number", None)
    if number is None:
        number = next_build_number(instance.id)
    else:
        existing = db.session.scalar(
            select(TestBuild).where(TestBuild.instance_id == instance.id, TestBuild.number == number)
        )
        if existing is not None:
            raise Conflict(f"build number {number} already exists in this instance", existing)
    build = TestBuild(instance_id=instance.id, number=number, **fields)
    for name in COUNTERS:
        setattr(build, name, 0)
    build.suites_total = 0
    db.session.add(build)
    db.session.flush()
    return build


def create_suite(build, name, **fields):
    """Create a suite in ``build``, or raise :class:`Conflict` if the name is taken."""
    existing = db.session.scalar(
        select(TestSuite).where(TestSuite.build_id == build.id, TestSuite.name == name)
    )
    if existing is not None:
        raise Conflict(f"a suite named {name!r} already exists in this build", existing)
    # the build's row first: the INSERT below takes a shared lock on it (see the module doc)
    db.session.execute(
        update(TestBuild)
        .where(TestBuild.id == build.id)
        .values(suites_total=TestBuild.suites_total + 1)
        .execution_options(synchronize_session=False)
    )
    suite = TestSuite(build_id=build.id, name=name, **fields)
    for counter in COUNTERS:
        setattr(suite, counter, 0)
    db.session.add(suite)
    db.session.flush()
    return suite


def create_case(suite, build, name, **fields):
    """Create a case in ``suite`` (see :func:`insert_case`); return it as an object of the session."""
    return persistent(TestCase(**insert_case(suite, build, name, **fields)))


def insert_case(suite, build, name, **fields):
    """Create a case in ``suite``; it may arrive already finished with a status. Return its row's values.

    The INSERT itself finds a taken name (the unique key): no lookup first. A
    failed statement leaves the transaction usable, so the stored case can then
    be read with a locking read, which sees it even if it was committed after
    this transaction began.
    """
    fields = signed(clip_case_text(fields))
    if fields.get("result_status") and fields.get("finished") is None:
        fields["finished"] = utcnow()
    if fields.get("duration") is None:
        fields["duration"] = elapsed(fields.get("started"), fields.get("finished"))
    deltas = case_contribution(fields.get("result_status"), fields["duration"], fields.get("is_flaky"))
    deltas["cases_total"] = 1
    bump_counters(suite.id, build.id, difference(deltas, dict.fromkeys(COUNTERS, 0)))
    telemetry.count_cases(db.session, "api", 1)
    row = dict.fromkeys(CASE_COLUMNS)
    row.update(attempts=1, is_flaky=False)
    row.update(
        fields,
        suite_id=suite.id,
        build_id=build.id,
        instance_id=build.instance_id,
        test_key=test_key(suite.name, name),
        name=name,
    )
    try:
        row["id"] = run(CASE_INSERT, row).inserted_primary_key[0]
    except IntegrityError:
        existing = db.session.scalar(
            select(TestCase)
            .where(TestCase.suite_id == suite.id, TestCase.name == name)
            .with_for_update(read=True)
        )
        if existing is None:
            raise
        raise Conflict(f"a case named {name!r} already exists in this suite", existing) from None
    return row


def persistent(item):
    """Put an object whose row was just written, with every column set, into the session without SQL."""
    make_transient_to_detached(item)
    db.session.add(item)
    return item


@functools.cache
def time_update(model, field):
    """Set an unfinished item's ``started`` (if not set yet) or ``finished``: the row changes at most once."""
    conditions = [model.id == bindparam("item_id"), model.finished.is_(None)]
    if field == "started":
        conditions.append(model.started.is_(None))
    return (
        update(model)
        .where(*conditions)
        .values({field: bindparam("when", type_=getattr(model, field).type)})
        .execution_options(synchronize_session=False)
    )


class CaseRecord(types.SimpleNamespace):
    """A case read as plain values (the columns of its reply), for a start or finish.

    The live API's start and finish need no ORM object: reading a few columns
    into a record costs a fraction of loading and tracking an entity.
    """


def model_of(item):
    """The model whose table holds ``item``."""
    return TestCase if isinstance(item, CaseRecord) else type(item)


def remember(item, values):
    """Note that ``item``'s row now holds ``values`` (no need to read them back)."""
    if isinstance(item, CaseRecord):
        vars(item).update(values)
        return
    for name, value in values.items():
        set_committed_value(item, name, value)


def read_times_again(item):
    """Read ``item``'s start and finish times again, as a parallel writer left them."""
    if not isinstance(item, CaseRecord):
        db.session.refresh(item)
        return
    times = run(case_times_query(), {"case_id": item.id}).one()
    remember(item, times._asdict())


@functools.cache
def case_times_query():
    """A case's start and finish times, built once."""
    return select(TestCase.started, TestCase.finished).where(TestCase.id == bindparam("case_id"))


def start(item, when=None):
    """Mark a build, suite or case (an entity or a :class:`CaseRecord`) as started.

    Starting again before it finishes keeps the first time, so a client that
    retries after a timeout gets the same answer.
    """
    if item.finished is not None:
        raise Conflict(f"{kind_of(item)} {item.id} has already finished; it cannot start again")
    if item.started is None:
        started = when or utcnow()
        result = run(time_update(model_of(item), "started"), {"item_id": item.id, "when": started})
        if result.rowcount == 1:
            remember(item, {"started": started})
        else:
            # a parallel request started or finished it first: answer from the stored row
            read_times_again(item)
            if item.finished is not None:
                raise Conflict(f"{kind_of(item)} {item.id} has already finished; it cannot start again")
    return item


def finish(item, when=None):
    """Mark a build or suite as finished; of two racing finishes, the second is a :class:`Conflict`."""
    finished = when or utcnow()
    result = run(time_update(type(item), "finished"), {"item_id": item.id, "when": finished})
    if result.rowcount != 1:
        raise Conflict(f"{kind_of(item)} {item.id} has already finished")
    set_committed_value(item, "finished", finished)
    if isinstance(item, TestBuild):
        events.build_finished(item)
    return item


def finish_case(case, result_status, when=None, **fields):
    """Record a case's result (an entity or a :class:`CaseRecord`) and add it to the counters.

    The conditional ``UPDATE … WHERE finished IS NULL`` makes two racing
    finishes of the same case count once: the loser gets a :class:`Conflict`.
    """
    finished = when or utcnow()
    fields = clip_case_text(fields)
    if fields.get("duration") is None:
        fields["duration"] = elapsed(case.started, finished)
    values = signed(dict(fields, result_status=result_status, finished=finished), case)
    deltas = difference(
        case_contribution(result_status, values["duration"], fields.get("is_flaky", False)),
        dict.fromkeys(COUNTERS, 0),
    )
    if mysql_writes.on_mysql():
        finished_once = finish_case_and_count(case, values, deltas)
    else:
        bump_counters(case.suite_id, case.build_id, deltas)
        finished_once = finish_case_row(case, values)
        if not finished_once:
            # take the counts back, so a caller that goes on after the conflict stays exact
            bump_counters(case.suite_id, case.build_id, {name: -delta for name, delta in deltas.items()})
    if not finished_once:
        raise Conflict(f"test case {case.id} has already finished")
    remember(case, values)
    return case


def finish_case_row(case, values):
    """Write a case's result if it has not finished yet; return whether it was written."""
    result = db.session.execute(
        update(TestCase)
        .where(TestCase.id == case.id, TestCase.finished.is_(None))
        .values(values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def finish_case_and_count(case, values, deltas):
    """MySQL: write a case's result and its counts in one multi-table UPDATE; return whether it ran.

    MySQL reads and locks the three rows (primary-key lookups, each found
    through the one before: case, suite, build) before changing any of them, so
    the build is already locked when the case's new status reaches its
    (build_id, result_status) index (see the module doc). A case that has
    finished matches nothing, and nothing changes.
    """
    statement = mysql_writes.finish_and_count_update(tuple(sorted(values)), tuple(sorted(deltas)))
    parameters = {f"v_{name}": value for name, value in values.items()}
    result = run(statement, {"case_id": case.id, **parameters, **delta_parameters(deltas)})
    return result.rowcount > 0


def update_instance(instance, **fields):
    """Change an instance's name, description, thresholds or retention policy.

    A name another instance has is a :class:`Conflict`; a null policy field keeps everything.
    """
    name = fields.get("name")
    if name is not None and name != instance.name:
        taken = db.session.scalar(select(TestInstance).where(TestInstance.name == name))
        if taken is not None:
            raise Conflict(f"a test instance named {name!r} already exists", taken)
    for field, value in fields.items():
        setattr(instance, field, value if value is not None or field in NULLABLE_POLICY else "")
    db.session.flush()
    return instance


def update_build(build, **fields):
    """Change a build's number, name, CI metadata, times or pin; a taken number is a :class:`Conflict`.

    A null number keeps the build's number, a null ``pinned`` its pin.
    """
    if fields.get("pinned", False) is None:
        del fields["pinned"]
    number = fields.pop("number", None)
    if number is not None and number != build.number:
        taken = db.session.scalar(
            select(TestBuild).where(TestBuild.instance_id == build.instance_id, TestBuild.number == number)
        )
        if taken is not None:
            raise Conflict(f"build number {number} already exists in this instance", taken)
        build.number = number
    for field, value in fields.items():
        setattr(build, field, value)
    db.session.flush()
    return build


def update_suite(suite, **fields):
    """Change a suite's name or times; a name another suite of its build has is a :class:`Conflict`."""
    name = fields.pop("name", None)
    if name is not None and name != suite.name:
        taken = db.session.scalar(
            select(TestSuite).where(TestSuite.build_id == suite.build_id, TestSuite.name == name)
        )
        if taken is not None:
            raise Conflict(f"a suite named {name!r} already exists in this build", taken)
        rename_suite(suite, name)
    for field, value in fields.items():
        setattr(suite, field, value)
    db.session.flush()
    return suite


def update_case(case, **fields):
    """Change a case's fields, moving its counts if its status, duration or flakiness change.

    Clearing ``result_status`` clears ``finished`` too: a case without a result has not finished.
    A name another case of its suite has is a :class:`Conflict`.
    """
    name = fields.get("name")
    if name is not None and name != case.name:
        taken = db.session.scalar(
            select(TestCase).where(TestCase.suite_id == case.suite_id, TestCase.name == name)
        )
        if taken is not None:
            raise Conflict(f"a case named {name!r} already exists in this suite", taken)
    lock_parents(case.suite_id, case.build_id)
    db.session.refresh(case, with_for_update=True)
    if "result_status" in fields and fields["result_status"] is None:
        fields.setdefault("finished", None)
    before = case_contribution(case.result_status, case.duration, case.is_flaky)
    fields = clip_case_text(fields)
    if fields.get("result_status") and case.finished is None and "finished" not in fields:
        fields["finished"] = utcnow()
    if fields.keys() & {"result_status", "message", "details"}:
        fields = signed(fields, case)
    for name, value in fields.items():
        setattr(case, name, value)
    if "name" in fields:
        case.test_key = test_key(case.suite.name, case.name)
    db.session.flush()
    after = case_contribution(case.result_status, case.duration, case.is_flaky)
    bump_counters(case.suite_id, case.build_id, difference(after, before))
    return case


def rename_suite(suite, name):
    """Rename a suite and re-key its cases, since a test's identity includes its suite name."""
    suite.name = name
    db.session.flush()
    for case in db.session.scalars(select(TestCase).where(TestCase.suite_id == suite.id)):
        case.test_key = test_key(name, case.name)
    db.session.flush()


def delete_case(case):
    """Delete a case and take its counts off its suite and build."""
    lock_parents(case.suite_id, case.build_id)
    db.session.refresh(case, with_for_update=True)
    contribution = case_contribution(case.result_status, case.duration, case.is_flaky)
    contribution["cases_total"] = 1
    bump_counters(case.suite_id, case.build_id, {k: -v for k, v in contribution.items() if v})
    db.session.delete(case)
    db.session.flush()


def delete_suite(suite):
    """Delete a suite with its cases and take their counts off the build."""
    db.session.refresh(suite, with_for_update=True)
    counts = {name: -getattr(suite, name) for name in COUNTERS if getattr(suite, name)}
    values = {name: getattr(TestBuild, name) + delta for name, delta in counts.items()}
    values["suites_total"] = TestBuild.suites_total - 1
    db.session.execute(update(TestBuild).where(TestBuild.id == suite.build_id).values(values))
    db.session.delete(suite)
    db.session.flush()


def lock_suites(build_ids):
    """Lock the builds' suite rows in id order, so a cascading delete locks suite → build → case."""
    if build_ids:
        db.session.execute(
            select(TestSuite.id)
            .where(TestSuite.build_id.in_(build_ids))
            .order_by(TestSuite.id)
            .with_for_update()
        )


def delete_build(build):
    """Delete a build with everything below it (nothing above keeps counts)."""
    lock_suites([build.id])
    db.session.delete(build)
    db.session.flush()


def delete_instance(instance):
    """Delete an instance with everything below it."""
    lock_suites(db.session.scalars(select(TestBuild.id).where(TestBuild.instance_id == instance.id)).all())
    db.session.delete(instance)
    db.session.flush()


def kind_of(item):
    """Name an item's kind for messages: test build, test suite or test case."""
    return {
        TestBuild: "test build",
        TestSuite: "test suite",
        TestCase: "test case",
        TestInstance: "test instance",
        CaseRecord: "test case",
    }[type(item)]


CASE_ROW_FIELDS = (
    "name",
    "started",
    "finished",
    "result_status",
    "duration",
    "message",
    "details",
    "system_out",
    "system_err",
    "attempts",
    "is_flaky",
    "properties",
    "signature",
    "signature_text",
)
# what a case row holds when the INSERT leaves a field out (the rest default to NULL)
ROW_DEFAULTS = {"attempts": 1, "is_flaky": False}


def batch_fields(cases):
    """The case fields some case of a batch sets; the rest take NULL or the server default.

    Leaving them out of the INSERT spares the driver escaping a NULL per row and column.
    """
    return [
        field
        for field in CASE_ROW_FIELDS
        if field == "name" or any(case.get(field) not in (None, ROW_DEFAULTS.get(field)) for case in cases)
    ]


def add_cases(suite, build, cases, pipe=None):
    """Insert many finished or pending cases into ``suite`` with multi-row INSERTs.

    Counters move by the sum of the cases' contributions, in the same
    transaction, exactly as if each case had been created on its own; they are
    bumped first, like every case write (see the module doc).

    :param cases: mappings with ``name`` and any of :data:`CASE_ROW_FIELDS`; failing
        ones get their failure signature added.
    :param pipe: an :class:`webapp.mysql_writes.InsertPipe` that sends the INSERT while
        the caller goes on; it is drained before the counters are bumped, so the
        connection is never used by two threads at once.
    """
    if not cases:
        return
    for case in cases:
        if case.get("result_status") in FAILING:
            signed(case)
    fields = batch_fields(cases)
    shared = shared_times(cases, fields)
    fields = [field for field in fields if field not in shared]
    limits = [
        (index, CASE_TEXT_LIMITS[name]) for index, name in enumerate(fields) if name in CASE_TEXT_LIMITS
    ]
    defaults = [(index, ROW_DEFAULTS[field]) for index, field in enumerate(fields) if field in ROW_DEFAULTS]
    totals = dict.fromkeys(COUNTERS, 0)
    rows = []
    for case in cases:
        row = [case.get(field) for field in fields]
        for index, limit in limits:
            if row[index] is not None and len(row[index]) > limit:
                row[index] = clip(row[index], limit)
        for index, default in defaults:
            row[index] = type(default)(row[index] or default)
        row.append(test_key(suite.name, row[0]))
        rows.append(row)
        status = case.get("result_status")
        if status is not None:
            totals[STATUS_COUNTER[status]] += 1
            totals["cases_duration"] += case.get("duration") or 0.0
            totals["flaky"] += bool(case.get("is_flaky"))
    totals["cases_total"] = len(rows)
    shared.update(suite_id=suite.id, build_id=build.id, instance_id=build.instance_id)
    statement, rows, tail = case_insert(shared, [*fields, "test_key"], rows)
    if pipe is None:
        bump_counters(suite.id, build.id, {k: v for k, v in totals.items() if v})
        db.session.connection().exec_driver_sql(statement, [row + tail for row in rows])
        return
    prepared = pipe.prepare(statement, rows, tail)
    pipe.drain()
    deltas = {k: v for k, v in totals.items() if v}
    if pipe.counts_after:
        pipe.start(prepared)
        if not bump_counters(suite.id, build.id, deltas):
            raise Conflict("the suite or its build was deleted while these cases were being stored")
        return
    bump_counters(suite.id, build.id, deltas)
    pipe.start(prepared)


def shared_times(cases, fields):
    """The start or finish times that every case of a batch shares (an import's ``finished``)."""
    shared = {}
    for field in ("started", "finished"):
        if field in fields:
            values = {case.get(field) for case in cases}
            if len(values) == 1 and None not in values:
                shared[field] = values.pop()
    return shared


def case_insert(shared, columns, rows):
    """The INSERT of case rows for the driver's executemany, the rows as driver-ready tuples, and the tail.

    Going to the driver directly skips SQLAlchemy's per-row parameter building
    (a third of an import's time); PyMySQL turns the executemany into multi-row
    INSERTs. Values are converted only where the column type needs it, and
    ``shared`` values (equal in every row) once: they are the ``tail`` tuple
    that ends every row's parameters.
    """
    dialect = db.session.get_bind().dialect
    table = TestCase.__table__

    def processor(name):
        return table.c[name].type.dialect_impl(dialect).bind_processor(dialect)

    tail = []
    for name, value in shared.items():
        convert = processor(name)
        tail.append(convert(value) if convert is not None and value is not None else value)
    converters = [(index, convert) for index, name in enumerate(columns) if (convert := processor(name))]
    for row in rows:
        for index, convert in converters:
            if row[index] is not None:
                row[index] = convert(row[index])
    names = [*columns, *shared]
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    statement = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join([mark] * len(names))})"
    return statement, [tuple(row) for row in rows], tuple(tail)
