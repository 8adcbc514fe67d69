"""The batch results endpoint: many case results into one build, in one transaction.

``POST /api/test-instance/{id}/test-build/{id}/results/`` takes
``{"results": [...]}``; :mod:`webapp.batch` stores them. The body is checked
by the declared pydantic model before the transaction starts (a few
microseconds per result), and a bad result is named by its place, such as
``results.3.name``. An ``Idempotency-Key`` makes the request exactly-once per
user, as for the JUnit import: the same key with another body is a 409.
"""

import hashlib
from typing import Annotated
from typing import NotRequired

from flask import current_app
from flask import request
from flask_login import current_user
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationError as PydanticError
from pydantic import with_config
from typing_extensions import TypedDict

from webapp import batch
from webapp import domain
from webapp import imports
from webapp.api.declare import record_operation
from webapp.api.declare import reply_json
from webapp.api.imports import IDEMPOTENCY_KEY_LIMIT
from webapp.api.imports import idempotency_key
from webapp.api.resources import get_build_key
from webapp.api.schema import Body
from webapp.api.schema import Count
from webapp.api.schema import Name
from webapp.api.schema import Ref
from webapp.api.schema import Reply
from webapp.api.schema import Seconds
from webapp.api.schema import Status
from webapp.api.schema import Text
from webapp.api.schema import Time
from webapp.api.schema import message
from webapp.exceptions import ValidationError

# a refused batch names this many bad fields at most: enough to fix a client, not a 1,000-line reply
MAX_REPORTED_ERRORS = 20
DOCUMENT = {
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "maxLength": IDEMPOTENCY_KEY_LIMIT},
            "description": "Store the batch at most once per key.",
        }
    ]
}


# A typed dict, not a model: checked as strictly and documented the same, but validated into plain
# dicts, which costs less than half of building up to 1,000 model instances a request (batch_bench).
@with_config(ConfigDict(extra="forbid"))
class BatchResult(TypedDict):
    """One case result: its suite and name, its status, and optionally times and texts."""

    suite: Name(domain.NAME_LIMIT)
    name: Name(domain.CASE_NAME_LIMIT)
    result_status: Status
    started: NotRequired[Time]
    finished: NotRequired[Time]
    duration: NotRequired[Seconds | None]
    message: NotRequired[Text() | None]
    details: NotRequired[Text() | None]
    system_out: NotRequired[Text() | None]
    system_err: NotRequired[Text() | None]


class BatchIn(Body):
    """Up to 1,000 case results into one build."""

    results: Annotated[list[BatchResult], Field(max_length=batch.MAX_RESULTS)]

    @classmethod
    def read(cls, data):
        """The checked batch itself (no copy into dicts: the service reads the results' attributes).

        :raise ValidationError: naming each bad field by its place, such as ``results.3.name``.
        """
        try:
            return cls.model_validate(data)
        except PydanticError as error:
            problems = error.errors(include_url=False, include_context=True)
            fields = {}
            for problem in problems[:MAX_REPORTED_ERRORS]:
                fields[".".join(map(str, problem["loc"])) or "body"] = message(problem)
            several = len(problems) > 1
            counted = f"{len(problems)} fields of the batch are" if several else "1 field of the batch is"
            raise ValidationError(f"{counted} not valid", fields) from None


class BatchCounts(Reply):
    """The cases stored, per status; ``merged`` were re-runs of stored cases."""

    total: Count
    SUCCESS: Count
    FAILED: Count
    ERROR: Count
    SKIPPED: Count
    flaky: Count
    merged: Count


class BatchReply(Reply):
    """What a batch stored."""

    build_id: Ref
    results: Count
    suites: Count
    suites_created: Count
    cases: BatchCounts


def fingerprint():
    """What one Idempotency-Key may be reused for: this path and this body."""
    return f"{request.path}#{hashlib.sha256(request.get_data(cache=True)).hexdigest()[:32]}"


def add_results(instance_id, build_id, body):
    """Store a batch of case results into a build; answer with what was stored per status."""
    key = idempotency_key()

    def produce():
        counts = batch.store(get_build_key(instance_id, build_id), body.results)
        record_operation("addResults", instance_id, build_id, counts.get("cases"))
        return 200, reply_json(BatchReply, counts)

    status, text, replayed = imports.idempotent(current_user.id, key, key and fingerprint(), produce)
    response = current_app.response_class(text, status, mimetype="application/json")
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response
