"""Reading and validating JSON request bodies and query parameters for the API.

Validation failures raise :class:`ValidationError`, which the error handlers
turn into a 400 whose ``fields`` say what was wrong with each field.
"""

import math
import re
from datetime import datetime
from datetime import timezone

from flask import request
from werkzeug.exceptions import BadRequest

from webapp.models import STATUSES

# the latest time we accept, as Unix seconds (year 3000): beyond it is a client bug
MAX_EPOCH = 32503680000
MAX_SECONDS = 10**9
# ISO 8601 times: years 1970-2999 (MySQL's DATETIME cannot hold year 1), up to microseconds.
# The OpenAPI document states RFC 3339 (a "T" and an offset); a space for the "T" and no
# offset (meaning UTC) are accepted too, since that is what Python's isoformat() writes.
ISO_DATE = r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
ISO_CLOCK = r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
ISO_OFFSET = r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
ISO_PATTERN = f"{ISO_DATE}[T ]{ISO_CLOCK}{ISO_OFFSET}?$"
RFC3339_PATTERN = f"{ISO_DATE}T{ISO_CLOCK}{ISO_OFFSET}$"
# a name holds at least one character other than these (the same rule as the document's pattern)
NAME_PATTERN = "[^ \t\n\r\f\v]"
NAME_BLANKS = " \t\n\r\f\v"
# plain ASCII digits only: int() alone would also take "1_000", " 7 " or Arabic-Indic digits
QUERY_INT = re.compile(r"-?[0-9]{1,20}")


class ValidationError(Exception):
    """Bad input; ``fields`` maps each bad field to what is wrong with it."""

    def __init__(self, message, fields=None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


def read_json_object():
    """Return the request body as a JSON object; an empty body is an empty object."""
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


def parse_time(value):
    """Parse an ISO 8601 string or Unix epoch seconds into an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("expected an ISO 8601 time or Unix seconds")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or not 0 <= value <= MAX_EPOCH:
            raise ValueError("Unix seconds out of range")
        return datetime.fromtimestamp(value, timezone.utc)
    if isinstance(value, str):
        return parse_iso(value)
    raise ValueError("expected an ISO 8601 time or Unix seconds")


def parse_iso(value):
    """Parse an ISO 8601 string of :data:`ISO_PATTERN` (naive means UTC) into aware UTC.

    ``re.search`` is how JSON Schema validators apply a pattern, so this accepts
    exactly what the document allows (its ``$`` lets one trailing newline through).
    """
    if not re.search(ISO_PATTERN, value):
        raise ValueError("expected an ISO 8601 time from 1970 to 2999, such as 2021-12-24T18:58:07.123Z")
    try:
        parsed = datetime.fromisoformat(value.removesuffix("\n"))
    except ValueError:
        raise ValueError("not a real date or time (such as 30 February)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def text(max_length=None, required=False):
    """A string field; ``max_length`` None means any length (stored truncated).

    A required field (a name) may not be null or blank either.
    """

    def check(value):
        if value is None:
            if required:
                raise ValueError("must not be null")
            return None
        if not isinstance(value, str):
            raise ValueError("must be a string")
        if required and not re.search(NAME_PATTERN, value):
            raise ValueError("must not be empty")
        if max_length is not None and len(value) > max_length:
            raise ValueError(f"must be at most {max_length} characters")
        try:
            value.encode()
        except UnicodeEncodeError:
            # JSON escapes can smuggle in lone surrogates, which no database column can store
            raise ValueError("must be valid Unicode (no lone surrogates)") from None
        return value.strip(NAME_BLANKS) if required else value

    check.required = required
    return check


def integer(minimum=None, maximum=2**31 - 1, required=False):
    """A whole-number field within bounds; 7.0 is 7, as JSON Schema counts it."""

    def check(value):
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be an integer")
        if (minimum is not None and value < minimum) or value > maximum:
            raise ValueError(f"must be between {minimum} and {maximum}")
        return value

    check.required = required
    return check


def seconds():
    """A non-negative duration in seconds."""

    def check(value):
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("must be a number of seconds")
        if not math.isfinite(value) or not 0 <= value <= MAX_SECONDS:
            raise ValueError(f"must be between 0 and {MAX_SECONDS} seconds")
        return float(value)

    check.required = False
    return check


def timestamp():
    """A time field: ISO 8601 or Unix seconds."""

    def check(value):
        return parse_time(value)

    check.required = False
    return check


def status(required=False):
    """A result status: one of SUCCESS, FAILED, ERROR or SKIPPED."""

    def check(value):
        if value is None and not required:
            return None
        if value not in STATUSES:
            raise ValueError("must be one of " + ", ".join(STATUSES))
        return value

    check.required = required
    return check


def validate(body, spec, partial=False, ignored=()):
    """Check ``body`` against ``spec`` (field name → checker) and return clean values.

    :param partial: when true, required fields may be left out (PATCH).
    :param ignored: read-only fields a client may echo back; they are dropped.
    :raise ValidationError: listing every bad, missing or unknown field.
    """
    errors = {}
    clean = {}
    for name, value in body.items():
        if name in ignored:
            continue
        if name not in spec:
            errors[name] = "unknown field"
            continue
        try:
            clean[name] = spec[name](value)
        except ValueError as error:
            errors[name] = str(error)
    if not partial:
        for name, check in spec.items():
            if check.required and name not in body:
                errors[name] = "is required"
    if errors:
        raise ValidationError("some fields are not valid", errors)
    return clean


def query_int(name, default, minimum, maximum):
    """Read an integer query parameter within bounds, or raise :class:`ValidationError`."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not QUERY_INT.fullmatch(raw):
        raise ValidationError(f"{name} must be an integer", {name: "must be an integer"})
    value = int(raw)
    if not minimum <= value <= maximum:
        message = f"must be between {minimum} and {maximum}"
        raise ValidationError(f"{name} {message}", {name: message})
    return value
