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

from webapp.api.payload import ValidationError
from webapp.api.serializers import serialize
from webapp.attachments import TooLarge
from webapp.extensions import db
from webapp.results import Conflict

TITLES = {
    400: "Bad request",
    401: "Login required",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
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


def handle_http_exception(error):
    """Render werkzeug's HTTP errors (404, 405, 413, …) in our format."""
    response = render_error(error.code, error.description or TITLES.get(error.code, "Error"))
    if error.code == 405 and wants_json():
        response.headers["Allow"] = ", ".join(error.valid_methods or [])
    return response


def handle_validation_error(error):
    """Bad input: a 400 naming each bad field."""
    db.session.rollback()
    if wants_json():
        return error_response(400, error.message, error.fields)
    return render_error(400, error.message)


def handle_conflict(error):
    """A write that collides with stored state: 409, with the existing item if any."""
    db.session.rollback()
    if not wants_json():
        return render_error(409, error.message)
    extra = {} if error.existing is None else {"existing": serialize(error.existing)}
    return error_response(409, error.message, extra=extra)


def handle_integrity_error(error):
    """A uniqueness race lost to a parallel writer: the same 409 a plain duplicate gets."""
    return render_error(409, "this conflicts with something stored at the same moment; retry")


def handle_database_error(error):
    """A lost database connection is a 503 the client may retry; anything else is a bug."""
    if not error.connection_invalidated:
        return handle_unexpected(error)
    current_app.logger.warning("database connection lost: %s", error.orig)
    response = make_response(render_error(503, "the database cannot be reached right now; retry shortly"))
    response.headers["Retry-After"] = "1"
    return response


def handle_too_large(error):
    """An attachment over the size limit: 413, and nothing of the upload was stored."""
    return render_error(413, str(error))


def handle_unexpected(error):
    """Log the bug and answer a plain 500 without a traceback."""
    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    current_app.logger.exception("unhandled error", exc_info=error)
    return render_error(500, InternalServerError.description)


def init_app(app):
    """Register the error handlers."""
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(ValidationError, handle_validation_error)
    app.register_error_handler(Conflict, handle_conflict)
    app.register_error_handler(TooLarge, handle_too_large)
    app.register_error_handler(IntegrityError, handle_integrity_error)
    app.register_error_handler(DBAPIError, handle_database_error)
    app.register_error_handler(Exception, handle_unexpected)
