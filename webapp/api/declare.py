"""Declaring an API operation once: its route in both spellings, its checks, its reply, its document.

:func:`operation` registers a view under the hyphenated path and its
underscore alias, and records what it takes and gives. The handler it
installs reads the JSON body and the query string through the declared
pydantic models, calls the view with the clean values, writes the view's
result through the reply model, and commits a write after writing the reply
(while the row's attributes are still loaded). ``webapp.api.openapi`` builds
the document from the same records.
"""

import dataclasses
import functools
import random
import time

from flask import Response
from flask import current_app
from flask import request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import BadRequest

from webapp import audit
from webapp.exceptions import ValidationError
from webapp.extensions import db
from webapp.mysql_writes import MYSQL_DEADLOCK

# a write that lost a race (a duplicate key, an InnoDB deadlock) is run again this many times
ATTEMPTS = 10


@dataclasses.dataclass(frozen=True)
class Operation:
    """One method of one path, as declared.

    :param body: the pydantic model of the JSON body (its ``read`` gives the view ``body``).
    :param query: the model of the query string (the view gets ``query``).
    :param reply: the model the view's result is written through; None for a 204.
    :param errors: the error statuses it may answer besides 401.
    :param document: extra OpenAPI operation fields (parameters, a non-JSON request body).
    :param recorded: whether a successful call goes into the operation log (every DELETE does).
    """

    rule: str
    method: str
    operation_id: str
    summary: str
    body: type | None
    query: type | None
    reply: type | None
    status: int
    errors: tuple
    document: dict
    recorded: bool = False


OPERATIONS = []


def operation(
    bp,
    rule,
    method,
    view,
    *,
    operation_id,
    summary,
    body=None,
    query=None,
    reply=None,
    status=200,
    errors=(),
    document=None,
    recorded=False,
):
    """Declare ``view`` as ``method rule`` (and its underscore alias) on blueprint ``bp``."""
    declared = Operation(
        rule,
        method,
        operation_id,
        summary,
        body,
        query,
        reply,
        status,
        tuple(errors),
        document or {},
        recorded or method == "DELETE",
    )
    handler = handle(declared, view)
    if method != "GET":
        handler = retried(handler)
    bp.add_url_rule(rule, operation_id, handler, methods=[method])
    bp.add_url_rule(rule.replace("test-", "test_"), operation_id + "_alias", handler, methods=[method])
    OPERATIONS.append(declared)


def handle(declared, view):
    """The Flask view that checks the input, calls ``view`` and writes its reply."""

    @functools.wraps(view)
    def handler(**path):
        if declared.body is not None:
            path["body"] = declared.body.read(read_json_object())
        if declared.query is not None:
            path["query"] = declared.query.read(request.args.to_dict())
        result = view(**path)
        if isinstance(result, Response):
            return result
        if declared.reply is None:
            answer = Response(status=204)
        else:
            answer = Response(
                reply_json(declared.reply, result), declared.status, mimetype="application/json"
            )
        if declared.recorded:
            record_operation(declared.operation_id, path.get("instance_id"), path.get("build_id"))
        if declared.method != "GET":
            commit_written()
        return answer

    return handler


def commit_written():
    """Commit a write whose reply is already written.

    Nothing reads the request's objects after this, so the commit need not
    expire them (a fresh session serves the next request).
    """
    session = db.session()
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = True


def record_operation(action, instance_id=None, build_id=None, counts=None):
    """Put this call into the operation log, in the transaction it is about to commit."""
    audit.record(action, instance_id, build_id, counts)


def reply_json(model, result):
    """The JSON text of ``result`` (a row, a dict or a model instance) as ``model`` describes it."""
    if not isinstance(result, model):
        result = model.model_validate(result)
    return result.model_dump_json(exclude_unset=model.sparse)


def read_json_object():
    """The request body as a JSON object; an empty body is an empty object."""
    if not request.get_data(cache=True):
        return {}
    try:
        body = request.get_json(force=True)
    except BadRequest:
        raise ValidationError("the request body is not valid JSON (UTF-8)") from None
    except RecursionError:
        raise ValidationError("the request body is nested too deeply") from None
    if not isinstance(body, dict):
        raise ValidationError("the request body must be a JSON object")
    return body


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
