"""The API's resources, each declared once: what a client may send and what it gets back.

Every class is a pydantic model. A body or query model checks a request; a
reply model writes a row as JSON; both appear under their class name in
``components/schemas`` of the OpenAPI document. Limits come from
:mod:`webapp.domain`, as the model columns' do.
"""

from typing import Annotated
from typing import ClassVar
from typing import Literal

from pydantic import BeforeValidator
from pydantic import Field
from pydantic import StrictBool
from pydantic import create_model
from pydantic import field_serializer

from webapp import domain
from webapp.api.schema import Anything
from webapp.api.schema import Body
from webapp.api.schema import Count
from webapp.api.schema import Int
from webapp.api.schema import Label
from webapp.api.schema import Name
from webapp.api.schema import Query
from webapp.api.schema import QueryInt
from webapp.api.schema import QueryNumber
from webapp.api.schema import Ref
from webapp.api.schema import Reply
from webapp.api.schema import Seconds
from webapp.api.schema import Status
from webapp.api.schema import StrictQuery
from webapp.api.schema import Text
from webapp.api.schema import Time
from webapp.api.schema import TimeOut
from webapp.models import MAX_BUILD_NUMBER

# window and list sizes of the statistics
MAX_WINDOW = 500
MAX_TOP = 100
MAX_HISTORY = 1000
MAX_LIST = 10000
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
MAX_OFFSET = 10**9
# what clients may echo back from a GET in a PUT/PATCH body without being refused
READ_ONLY = frozenset(
    {
        "id",
        "pk",
        "instance_id",
        "build_id",
        "suite_id",
        "created",
        "suites_total",
        "attempts",
        "is_flaky",
        "properties",
        "pass_rate",
        "status",
        "pruned",
        *domain.COUNTERS,
    }
)


def echoing(schema):
    """Document the read-only fields a client may echo back (any value; they are dropped)."""
    schema["properties"].update({name: {} for name in sorted(READ_ONLY)})


class Writable(Body):
    """A body that may carry what a GET returned: the read-only fields are dropped."""

    model_config = {"json_schema_extra": echoing}
    echoed: ClassVar = READ_ONLY


def patch_of(model):
    """The PATCH form of a body: the same fields, none required (a name still may not be null)."""
    fields = {}
    for name, field in model.model_fields.items():
        optional = field._copy()  # noqa: SLF001 - pydantic's documented way to derive a field
        optional.default = None
        fields[name] = (field.annotation, optional)
    return create_model(model.__name__.removesuffix("In") + "Patch", __base__=model, **fields)


# request bodies


class TestInstanceIn(Writable):
    """A test instance: a product whose builds are recorded."""

    name: Name(domain.NAME_LIMIT)
    description: Text(domain.DESCRIPTION_LIMIT) | None = None
    keep_days: Int(1, domain.MAX_KEEP_DAYS) | None = Field(
        None, description="retention: keep case rows of builds from the last N days (null: no limit by age)"
    )
    keep_builds: Int(1, MAX_BUILD_NUMBER) | None = Field(
        None, description="retention: keep case rows of the newest N builds (null: no limit by count)"
    )


class TestBuildIn(Writable):
    """A build: a numbered run of an instance's tests, with its CI metadata."""

    number: Int(1, MAX_BUILD_NUMBER) | None = None
    name: Label(domain.NAME_LIMIT) | None = None
    branch: Label(domain.NAME_LIMIT) | None = None
    revision: Label(domain.NAME_LIMIT) | None = None
    ci_url: Text(domain.URL_LIMIT) | None = None
    started: Time = None
    finished: Time = None
    pinned: StrictBool | None = Field(None, description="a pinned build is never pruned by retention")


class TestSuiteIn(Writable):
    """A suite of a build."""

    name: Name(domain.NAME_LIMIT)
    started: Time = None
    finished: Time = None


# a case's finished time needs its result: null until finished, set once finished
FINISHED_NEEDS_RESULT = {
    "if": {"required": ["finished"], "properties": {"finished": {"not": {"type": "null"}}}},
    "then": {"required": ["result_status"], "properties": {"result_status": {"enum": list(domain.STATUSES)}}},
}


def case_rules(schema):
    """Document the echoed fields and that a finished time needs a result."""
    echoing(schema)
    schema.update(FINISHED_NEEDS_RESULT)


class TestCaseIn(Writable):
    """A case of a suite, optionally already finished with a result."""

    model_config = {"json_schema_extra": case_rules}

    name: Name(domain.CASE_NAME_LIMIT)
    started: Time = None
    finished: Time = None
    result_status: Status | None = None
    duration: Seconds | None = None
    message: Text() | None = None
    details: Text() | None = None


TestInstancePatch = patch_of(TestInstanceIn)
TestSuitePatch = patch_of(TestSuiteIn)
TestCasePatch = patch_of(TestCaseIn)


class Start(Body):
    """When a build, suite or case started (default: now)."""

    started: Time = None
    time: Time = None


class Finish(Body):
    """When a build or suite finished (default: now)."""

    finished: Time = None
    time: Time = None


class CaseFinish(Body):
    """A case's result."""

    result_status: Status
    finished: Time = None
    time: Time = None
    duration: Seconds | None = None
    message: Text() | None = None
    details: Text() | None = None


# query strings


class ListQuery(Query):
    """A page of a list, optionally filtered by a substring of the name."""

    limit: QueryInt(1, MAX_LIMIT) = Field(DEFAULT_LIMIT, description="Page size.")
    offset: QueryInt(0, MAX_OFFSET) = Field(0, description="Items to skip.")
    search: Text(domain.NAME_LIMIT) | None = Field(
        None, description="Case-insensitive substring of the name."
    )


# replies


class Item(Reply):
    """What every item has: its id, and ``pk``, the same id under the seed's name."""

    id: Ref
    pk: Ref = Field(validation_alias="id")

    @field_serializer("cases_duration", check_fields=False)
    def rounded(self, value):
        """Sums of floats carry noise in the last digits."""
        return round(value or 0.0, 6)


# the aggregate counters of a build or suite, with pass rate and overall status; written last
COUNTERS = {
    **{name: (Count, ...) for name in domain.COUNTERS if name != "cases_duration"},
    "cases_duration": (float | None, ...),
    "pass_rate": (float | None, Field(ge=0, le=1)),
    "status": (Status | None, ...),
}


def counted(name, model):
    """``model`` with the counters after its own fields, named ``name``."""
    return create_model(name, __base__=model, __doc__=model.__doc__, **COUNTERS)


class Property(Reply):
    """One ``<property>`` of a JUnit report: the tags and parameters of a suite or case."""

    name: str
    value: str


def property_objects(pairs):
    """The stored ``(name, value)`` pairs as objects; none stored is null."""
    return [{"name": name, "value": value} for name, value in pairs] if pairs else None


Properties = Annotated[
    list[Property] | None,
    BeforeValidator(property_objects),
    Field(description="The report's <properties>, in order (names may repeat); null when none."),
]


class TestInstance(Item):
    """A test instance."""

    name: str
    description: str
    created: TimeOut
    keep_days: int | None
    keep_builds: int | None


class BuildFields(Item):
    """A test build with its counters."""

    instance_id: Ref
    number: int
    name: str | None
    branch: str | None
    revision: str | None
    ci_url: str | None
    started: TimeOut
    finished: TimeOut
    suites_total: Count
    pinned: bool
    pruned: TimeOut = Field(description="when retention deleted the case rows (counters remain), else null")


class SuiteFields(Item):
    """A test suite with its counters."""

    build_id: Ref
    name: str
    started: TimeOut
    finished: TimeOut
    properties: Properties


TestBuild = counted("TestBuild", BuildFields)
TestSuite = counted("TestSuite", SuiteFields)


class TestCase(Item):
    """A test case."""

    suite_id: Ref
    build_id: Ref
    name: str
    started: TimeOut
    finished: TimeOut
    result_status: Status | None
    duration: float | None
    message: str | None
    details: str | None
    attempts: int = Field(ge=1)
    is_flaky: bool
    properties: Properties


class Page(Reply):
    """A page of a list: ``{count, next, previous, results}``."""

    count: Count
    next: str | None
    previous: str | None
    results: list[Anything]


def page_of(item):
    """The page model of a list of ``item``."""
    return create_model(item.__name__ + "List", __base__=Page, results=(list[item], ...))


TestInstanceList = page_of(TestInstance)
TestBuildList = page_of(TestBuild)
TestSuiteList = page_of(TestSuite)
TestCaseList = page_of(TestCase)


# statistics and imports: replies built from the plain data of webapp.stats and webapp.imports


class Sparse(Reply):
    """A reply whose optional fields appear only when the statistic has them."""

    sparse: ClassVar[bool] = True


Number = float | None


class BuildRef(Sparse):
    """The build a statistic is about."""

    id: Ref
    number: int
    name: str | None
    branch: str | None
    revision: str | None
    started: TimeOut
    finished: TimeOut


StatusCounts = create_model("StatusCounts", __base__=Reply, **dict.fromkeys(domain.STATUSES, (Count, ...)))


class BuildFigures(Sparse):
    """A build with its pass rate and durations, as the statistics give it."""

    id: Ref
    number: int
    name: str | None = None
    branch: str | None = None
    revision: str | None = None
    started: TimeOut = None
    finished: TimeOut = None
    pass_rate: Number
    duration: Number = None
    elapsed: Number = None


class BuildSummary(BuildFigures):
    """Counts per status, pass rate, durations and suite count of a build."""

    counts: StatusCounts
    cases_total: Count
    pending: Count | None = None
    flaky: Count | None = None
    suites_total: Count | None = None
    status: Status | None


class TestRef(Sparse):
    """A test of a statistic, with links to its case and its history."""

    suite: str
    name: str
    test_key: str
    case_id: Ref | None = None
    suite_id: Ref | None = None
    build_id: Ref | None = None
    url: str
    history_url: str


class DiffItem(TestRef):
    """A test that changed between two builds."""

    case_id: Ref
    status: Status | None
    base_status: Status | None = None
    base_case_id: Ref | None = None


class FoundTest(Reply):
    """A test found by name: its newest status and its failure rate over the newest 50 builds."""

    suite: str
    name: str
    test_key: str
    latest_status: Status | None
    failure_rate: Number
    url: str
    history_url: str


FoundTestList = page_of(FoundTest)


class BuildDiff(Sparse):
    """New failures, fixed, still failing, new and removed tests against another build."""

    build: BuildRef
    base: BuildRef | None
    base_reason: Literal["chosen", "same_branch", "other_branch", "unfinished"] | None = Field(
        description="How the base was chosen: asked for, the previous finished build on the same branch, "
        "on another branch, or the previous build (none has finished); null without a base."
    )
    new_failures: list[DiffItem]
    fixed: list[DiffItem]
    still_failing: list[DiffItem]
    new_tests: list[DiffItem]
    removed_tests: list[DiffItem]


class TrendPoint(BuildFigures):
    """One build of a trend."""

    cases_total: Count
    passed: Count | None = None
    failed: Count | None = None
    errored: Count | None = None
    skipped: Count | None = None
    flaky: Count | None = None
    status: Status | None = None


class Trend(Sparse):
    """Pass rate, duration and counts of the newest builds, oldest first."""

    limit: int
    branch: str | None
    results: list[TrendPoint]


FIGURES = (
    "failures",
    "runs",
    "failure_rate",
    "last_failed",
    "median",
    "p95",
    "latest",
    "flips",
    "retried",
    "score",
    "duration",
    "increase",
    "ratio",
)
TestFigures = create_model(
    "TestFigures",
    __base__=TestRef,
    last_status=(Status | None, None),
    **dict.fromkeys(FIGURES, (Number, None)),
)


class Windowed(Sparse):
    """Tests ranked over a window of the newest builds, with the window's parameters."""

    limit_builds: int
    branch: str | None
    top: int
    results: list[TestFigures]


class Regressions(Windowed):
    """Tests of a build markedly slower than their recent median."""

    limit_builds: int | None = None
    branch: str | None = None
    top: int | None = None
    build: BuildRef | None
    baseline_builds: Count | None = None


class HistoryEntry(Sparse):
    """One run of a test."""

    build_id: Ref
    build_number: int
    branch: str | None = None
    case_id: Ref | None = None
    suite_id: Ref | None = None
    status: Status | None
    duration: Number = None
    started: TimeOut = None
    attempts: int | None = None
    is_flaky: bool | None = None
    message: str | None = None
    pruned: bool | None = Field(None, description="true for a run of a pruned build: no case remains")
    url: str


class Flakiness(Sparse):
    """How often a test's status flipped or needed a rerun."""

    runs: Count | None = None
    flips: Count | None = None
    retried: Count | None = None
    score: Number = None


class TestHistory(Sparse):
    """A test's results across builds, newest first, with failure rate and flakiness."""

    suite: str
    name: str
    test_key: str
    runs: Count
    failures: Count | None = None
    failure_rate: Number = None
    flakiness: Flakiness | None = None
    history: list[HistoryEntry]


ImportCounts = create_model(
    "ImportCounts",
    __base__=Sparse,
    total=(Count, ...),
    flaky=(Count | None, None),
    merged=(Count | None, None),
    **dict.fromkeys(domain.STATUSES, (Count, ...)),
)


class ImportReply(Sparse):
    """What an import stored."""

    build: TestBuild
    suites: Count
    suites_created: Count | None = None
    files: Count
    cases: ImportCounts
    warnings: list[str] | None = Field(
        None, description="What the import left out, such as an impossible timestamp; absent when nothing."
    )
    attachments: Count | None = None


class ImportJob(Sparse):
    """A queued import: its state and progress; once done the import's reply, once failed its error."""

    id: Ref
    url: str
    state: Literal["queued", "running", "done", "failed"]
    instance_id: Ref
    build_id: Ref | None
    bytes_total: Count
    bytes_read: Count
    cases_stored: Count
    created: TimeOut
    started: TimeOut
    finished: TimeOut
    build: TestBuild | None = None
    suites: Count | None = None
    suites_created: Count | None = None
    files: Count | None = None
    cases: ImportCounts | None = None
    warnings: list[str] | None = None
    error: dict | None = Field(None, description="The error a synchronous import would have answered.")


# statistics and import query strings


class WindowQuery(Query):
    """The window of the instance statistics."""

    builds: QueryInt(1, MAX_WINDOW) | None = Field(
        None, description="How many of the newest builds to look at."
    )
    branch: Text(domain.NAME_LIMIT) | None = Field(None, description="Only builds of this branch.")
    top: QueryInt(1, MAX_TOP) = Field(10, description="How many tests to list.")


class RegressionsQuery(WindowQuery):
    """The window, the build to look at and how much slower counts."""

    build: QueryInt(1, domain.MAX_ID) | None = Field(None, description="Default: the newest.")
    factor: QueryNumber(1, 1000) | None = None
    min_increase: QueryNumber(0, 86400) | None = None
    min_runs: QueryInt(1, MAX_WINDOW) | None = None


class TrendQuery(Query):
    """How many of the newest builds, of which branch."""

    limit: QueryInt(1, MAX_HISTORY) | None = None
    branch: Text(domain.NAME_LIMIT) | None = Field(None, description="Only builds of this branch.")


class BuildCasesQuery(Query):
    """A page of a build's cases, optionally of one status, in an order."""

    limit: QueryInt(1, MAX_LIMIT) = Field(DEFAULT_LIMIT, description="Page size.")
    offset: QueryInt(0, MAX_OFFSET) = Field(0, description="Items to skip.")
    result_status: Status | None = Field(None, description="Only cases with this status.")
    ordering: Literal["id", "-id", "duration", "-duration"] = Field(
        "id", description="Sort key; a leading - sorts descending. Unknown durations come last."
    )


class DiffQuery(Query):
    """The build to compare with, and how many tests to list."""

    base: QueryInt(1, domain.MAX_ID) | None = Field(
        None,
        description="A build of this instance. Default: the previous finished build on the same branch, "
        "else on any branch, else the previous build.",
    )
    limit: QueryInt(1, MAX_LIST) = 1000


class HistoryQuery(Query):
    """How many runs to list."""

    limit: QueryInt(1, MAX_HISTORY) = 50


class FindTestQuery(HistoryQuery):
    """A test named by its suite and case name."""

    suite: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)]


def query_flag(value):
    """``true``/``1`` or ``false``/``0`` from a query string."""
    flags = {"true": True, "1": True, "false": False, "0": False}
    if not isinstance(value, str) or value.lower() not in flags:
        raise ValueError("true or false")
    return flags[value.lower()]


# ?async=true queues an import for the worker (a Python keyword, so the field has another name)
QueuedFlag = Annotated[bool, BeforeValidator(query_flag), Field(False, alias="async")]


class ImportQuery(StrictQuery):
    """An import into an existing build takes only ``async``."""

    queued: QueuedFlag


class NewBuildQuery(ImportQuery):
    """The fields of the build an import creates, and ``async``."""

    number: QueryInt(1, MAX_BUILD_NUMBER) | None = None
    name: Label(domain.NAME_LIMIT) | None = None
    branch: Label(domain.NAME_LIMIT) | None = None
    revision: Label(domain.NAME_LIMIT) | None = None
    ci_url: Text(domain.URL_LIMIT) | None = None


class NoQuery(StrictQuery):
    """No query parameters at all."""
