"""Error answers: JSON under ``/api/``, friendly pages elsewhere; never a traceback."""

from flask import current_app
from flask import jsonify
from flask import make_response
from flask import render_template
from flask import request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import InternalServerError
from werkzeug.exceptions import NotFound

from webapp import pool
from webapp.exceptions import GreenbarError
from webapp.exceptions import ValidationError
from webapp.extensions import db
from webapp.mysql_writes import unreachable

TITLES = {
    400: "Bad request",
    401: "Login required",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    415: "Unsupported encoding",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "Unavailable",
}


def wants_json():
    """API paths answer in JSON; pages answer in HTML."""
    return request.path.startswith("/api/")


def error_response(status, message, fields=None, extra=None):
    """Build the API's error body ``{"error": {"status", "message", "fields"}}``."""
    error = {"status": status, "message": message, "fields": fields or {}}
    error.update(extra or {})
    response = jsonify({"error": error})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="Greenbar"'
    return response


def render_error(status, message):
    """Answer in the caller's format with a status and a human message."""
    db.session.rollback()
    if wants_json():
        return error_response(status, message)
    title = TITLES.get(status, "Error")
    return render_template("errors/error.html", status=status, title=title, message=message), status


def no_route_message():
    """What a 404 for an address no route matches says, instead of werkzeug's generic text."""
    if wants_json():
        return (
            f"there is no API path {request.path}: paths name instances, builds, suites and cases "
            "by their numeric ids (see /api/openapi.json)"
        )
    return "There is no page at this address."


def handle_http_exception(error):
    """Render werkzeug's HTTP errors (404, 405, 413, 429, …) in our format."""
    message = error.description or TITLES.get(error.code, "Error")
    if isinstance(error, NotFound) and error.description == NotFound.description:
        message = no_route_message()
    response = make_response(render_error(error.code, message))
    if error.code == 405 and wants_json():
        response.headers["Allow"] = ", ".join(error.valid_methods or [])
    # the rate limits' 429s (webapp.limits.RetryLater) say when to come back
    if getattr(error, "retry_after", None) is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def handle_refused(error):
    """A service refused the request (``webapp.exceptions``): its status, and for bad input each bad field.

    The API answers a conflict with the existing item itself (``webapp.api.conflict``).
    """
    db.session.rollback()
    if wants_json():
        fields = error.fields if isinstance(error, ValidationError) else None
        return error_response(error.status, error.message, fields)
    return render_error(error.status, error.message)


def handle_integrity_error(error):
    """A uniqueness race lost to a parallel writer: the same 409 a plain duplicate gets."""
    return render_error(409, "this conflicts with something stored at the same moment; retry")


def handle_database_error(error):
    """A lost or refused database connection is a 503 the client may retry; anything else is a bug.

    A read that committed nothing is first run once more on a fresh connection
    (:mod:`webapp.pool`); what stops that second run (the database is down, say)
    is the same 503.
    """
    if not (error.connection_invalidated or pool.ran_again() or unreachable(error)):
        return handle_unexpected(error)
    if error.connection_invalidated and pool.may_run_again():
        current_app.logger.warning("database connection lost, running this read once more: %s", error.orig)
        raise pool.RunAgain from error
    current_app.logger.warning("database connection lost: %s", error.orig)
    response = make_response(render_error(503, "the database cannot be reached right now; retry shortly"))
    response.headers["Retry-After"] = "1"
    return response


def handle_unexpected(error):
    """Log the bug and answer a plain 500 without a traceback."""
    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    current_app.logger.exception("unhandled error", exc_info=error)
    return render_error(500, InternalServerError.description)


def init_app(app):
    """Register the error handlers."""
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(GreenbarError, handle_refused)
    app.register_error_handler(IntegrityError, handle_integrity_error)
    app.register_error_handler(DBAPIError, handle_database_error)
    app.register_error_handler(Exception, handle_unexpected)
