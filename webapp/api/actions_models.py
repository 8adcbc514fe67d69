"""What the acting-on-results endpoints take and give (:mod:`webapp.api.actions`).

Failure groups and their triage labels, quarantine entries, quality-gate rules
and verdicts, test splits and badge tokens. Limits come from the services
(:mod:`webapp.failures`, :mod:`webapp.quarantine`, :mod:`webapp.split`) and
:mod:`webapp.domain`.
"""

import re
from typing import Annotated
from typing import Literal

from pydantic import AfterValidator
from pydantic import BeforeValidator
from pydantic import Field

from webapp import domain
from webapp import failures
from webapp import quarantine
from webapp import split
from webapp import stats
from webapp.api.models import DEFAULT_LIMIT
from webapp.api.models import MAX_LIMIT
from webapp.api.models import MAX_OFFSET
from webapp.api.models import MAX_WINDOW
from webapp.api.models import BuildRef
from webapp.api.models import Page
from webapp.api.models import page_of
from webapp.api.schema import TIME_IN
from webapp.api.schema import Body
from webapp.api.schema import Count
from webapp.api.schema import Int
from webapp.api.schema import Name
from webapp.api.schema import Query
from webapp.api.schema import QueryInt
from webapp.api.schema import Ref
from webapp.api.schema import Reply
from webapp.api.schema import Status
from webapp.api.schema import Text
from webapp.api.schema import Time
from webapp.api.schema import TimeOut
from webapp.api.schema import no_text_or_bool
from webapp.models import MAX_BUILD_NUMBER
from webapp.models_actions import LABELS

# a build's gate may wait this long for the build to finish (a server may cap it lower: GATE_MAX_WAIT)
MAX_WAIT = 60
MAX_FLAKY = 10**9
MAX_INCREASE = 10**6


def issue_link(value):
    """An issue link: empty or an http(s) address (the one trailing newline ``$`` lets through is dropped)."""
    if not re.search(failures.ISSUE_URL_PATTERN, value):
        raise ValueError("must be an http(s) address")
    return value.removesuffix("\n")


def Number(minimum, maximum):  # noqa: N802 - a type factory reads as a type
    """A JSON number within bounds."""
    return Annotated[
        float, Field(ge=minimum, le=maximum, allow_inf_nan=False), BeforeValidator(no_text_or_bool)
    ]


Flag = Annotated[bool, Field(strict=True)]
Triage = Literal[LABELS]
IssueLink = Annotated[
    str,
    Field(
        max_length=failures.ISSUE_URL_LIMIT,
        strict=True,
        json_schema_extra={"pattern": failures.ISSUE_URL_PATTERN},
    ),
    AfterValidator(issue_link),
]


# query strings


class PageQuery(Query):
    """A page of a computed list."""

    limit: QueryInt(1, MAX_LIMIT) = Field(DEFAULT_LIMIT, description="Page size.")
    offset: QueryInt(0, MAX_OFFSET) = Field(0, description="Items to skip.")


class CausesQuery(PageQuery):
    """The window of the top failure causes, and the page."""

    builds: QueryInt(1, MAX_WINDOW) = Field(
        stats.DEFAULT_WINDOW, description="How many of the newest builds."
    )
    branch: Text(domain.NAME_LIMIT) | None = Field(None, description="Only builds of this branch.")


class QuarantineQuery(Query):
    """JSON, or ``text``: one ``suite::name`` line per test, for CI."""

    format: Literal["json", "text"] | None = Field(None, description="text: suite::name lines.")


class GateQuery(Query):
    """How long to wait for the build, and which branch to compare with."""

    wait: QueryInt(0, MAX_WAIT) = Field(
        0, description="Seconds to wait for the build to finish (the server may cap it lower)."
    )
    base_branch: Text(domain.NAME_LIMIT) | None = Field(
        None, description="Compare with this branch's newest finished build."
    )


class SplitQuery(Query):
    """How many shards, over which builds."""

    shards: QueryInt(1, split.MAX_SHARDS) = Field(description="How many shards.")
    branch: Text(domain.NAME_LIMIT) | None = Field(None, description="Only builds of this branch.")
    builds: QueryInt(1, MAX_WINDOW) = Field(split.DEFAULT_WINDOW, description="The window of newest builds.")
    before: QueryInt(1, MAX_BUILD_NUMBER) | None = Field(
        None, description="Only builds numbered below this: the build the shards run as, which they share."
    )


# request bodies


class FailureLabelIn(Body):
    """A triage label for a failure signature, with an optional note and issue link."""

    label: Triage
    note: Text(failures.NOTE_LIMIT) | None = None
    issue_url: IssueLink | None = None


class QuarantineIn(Body):
    """One test of the instance to quarantine; ``owner`` (a username) defaults to the caller."""

    suite: Name(domain.NAME_LIMIT)
    name: Name(domain.CASE_NAME_LIMIT)
    reason: Name(quarantine.REASON_LIMIT)
    owner: Text(domain.USERNAME_LIMIT) | None = None
    expires: Time = Field(
        None,
        description="Default: 30 days from now; at most GREENBAR_QUARANTINE_MAX_DAYS (90) ahead. "
        + TIME_IN["description"],
    )


class GateRulesIn(Body):
    """The quality-gate rules; a rule left out or null is off."""

    min_pass_rate: Number(0, 100) | None = None
    no_new_failures: Flag = False
    max_flaky: Int(0, MAX_FLAKY) | None = None
    max_duration_increase: Number(0, MAX_INCREASE) | None = None


# replies


class GroupTest(Reply):
    """A test of a failure group and the case of it that failed."""

    suite: str
    name: str
    test_key: str
    case_id: Ref
    suite_id: Ref
    build_id: Ref
    status: Status | None
    url: str


class GroupExample(GroupTest):
    """A group's example case, with its raw message."""

    message: str | None


class TriageLabel(Reply):
    """A signature's label: who set it and when."""

    label: Triage
    note: str
    issue_url: str
    updated_by: str
    updated: TimeOut


class FailureGroup(Reply):
    """Failures with one signature: the normalised message, an example and the tests."""

    signature: str
    count: Count
    message: str | None
    label: TriageLabel | None
    example: GroupExample
    tests: list[GroupTest]


class CausesSplit(Reply):
    """How many causes and failures."""

    causes: Count
    failures: Count


class BuildFailureGroups(Page):
    """A build's failure groups, largest first, with how many are new causes and how many known."""

    build: BuildRef
    failures: Count
    new: CausesSplit
    known: CausesSplit
    results: list[FailureGroup]


class Seen(Reply):
    """A build a cause was seen in."""

    id: Ref
    number: int


class FailureCause(FailureGroup):
    """A failure cause over a window of builds."""

    builds_affected: Count
    tests_affected: Count
    first_seen: Seen
    last_seen: Seen


class FailureCauses(Page):
    """The top failure causes over the newest builds, largest first."""

    builds: Count
    branch: str | None
    results: list[FailureCause]


class LabelEvent(Reply):
    """One change of a signature's label (null: removed)."""

    label: Triage | None
    note: str
    issue_url: str
    by: str
    at: TimeOut


class FailureLabel(Reply):
    """A signature's label (null when none) and its changes, newest first."""

    signature: str
    label: TriageLabel | None
    history: list[LabelEvent]


class QuarantineEntry(Reply):
    """A quarantined test of an instance."""

    id: Ref
    suite: str
    name: str
    node_id: str
    test_key: str
    reason: str
    owner: str
    created_by: str
    created: TimeOut
    expires: TimeOut
    active: bool
    removed: TimeOut
    removed_by: str | None


QuarantineEntryList = page_of(QuarantineEntry)


class GateRules(Reply):
    """An instance's quality-gate rules (null: off)."""

    min_pass_rate: float | None
    no_new_failures: bool
    max_flaky: int | None
    max_duration_increase: float | None


class RuleOutcome(Reply):
    """One rule's outcome."""

    rule: str
    passed: bool
    detail: str


class GateVerdict(Reply):
    """The gate's verdict on a finished build."""

    passed: bool
    rules: list[RuleOutcome]
    build: BuildRef
    base: BuildRef | None
    quarantined: Count


class ShardTest(Reply):
    """A test of a shard, with its median duration (null without history)."""

    suite: str
    name: str
    node_id: str
    expected_duration: float | None


class Shard(Reply):
    """One shard's tests and expected duration."""

    index: Count
    expected_duration: float
    tests: list[ShardTest]


class Split(Reply):
    """The instance's tests in balanced shards."""

    shards: int
    branch: str | None
    builds: Count
    tests: Count
    results: list[Shard]


class BadgeToken(Reply):
    """An instance's new badge token and the badge addresses that use it."""

    token: str
    rotated: TimeOut
    urls: dict[str, str]
