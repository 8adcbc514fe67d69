"""The API's field types and base models (pydantic v2): each rule is declared once, here.

A resource is one pydantic model per direction (``webapp.api.models``). From it
come the check of a request (body or query string), the JSON of a reply, and
its part of the OpenAPI document (``webapp.api.openapi``). The limits come
from :mod:`webapp.domain`, which the model columns use too.

Where JSON Schema and pydantic's own checks would disagree (a pattern's ``$``,
7.0 as an integer, lone surrogates), a small validator here keeps the app true
to the document, since schemathesis holds it to every word of it.
"""

import math
import re
from datetime import datetime
from datetime import timezone
from typing import Annotated
from typing import Any
from typing import ClassVar
from typing import Literal

from pydantic import AfterValidator
from pydantic import BaseModel
from pydantic import BeforeValidator
from pydantic import ConfigDict
from pydantic import Field
from pydantic import PlainSerializer
from pydantic import PlainValidator
from pydantic import ValidationError as PydanticError
from pydantic import WithJsonSchema
from pydantic.json_schema import GenerateJsonSchema

from webapp import domain
from webapp.exceptions import ValidationError

# 32-bit columns (build numbers, counters) until the ids and numbers move to BIGINT
INT32 = 2**31 - 1
MAX_SECONDS = 10**9
# A name holds no control character (NUL included) and at least one other than a space.
# re.search is how JSON Schema validators apply it, and names are checked the same way here.
NAME_PATTERN = "^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
NAME_RE = re.compile(NAME_PATTERN)
# an optional label (a build's name, branch, revision): no control characters, may be empty
LABEL_PATTERN = "^[^\x00-\x1f\x7f-\x9f]*$"
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
NAME_BLANKS = " \t\n\r\f\v"
# plain ASCII digits only: int() alone would also take "1_000", " 7 " or Arabic-Indic digits
QUERY_INT = re.compile(r"-?[0-9]{1,20}")
ISO_MS_Z = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"


# checks pydantic's core has no exact equivalent for


def name_text(value):
    """A name: no control characters, not blank; the ends' blanks are dropped."""
    if not NAME_RE.search(value):
        if value.strip(NAME_BLANKS) and CONTROL.search(value):
            raise ValueError("must not hold control characters")
        raise ValueError("must not be empty")
    return value.strip(NAME_BLANKS)


def label_text(value):
    """A label: no control characters (the one trailing newline ``$`` lets through is dropped)."""
    if not re.search(LABEL_PATTERN, value):
        raise ValueError("must not hold control characters")
    return value.removesuffix("\n")


def no_text_or_bool(value):
    """A JSON number only: pydantic would read "7" or true as 7."""
    if isinstance(value, (str, bool, bytes)):
        raise ValueError("must be a number")
    return value


def parse_time(value):
    """Read an ISO 8601 string or Unix seconds as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("expected an ISO 8601 time or Unix seconds")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or not 0 <= value <= domain.MAX_EPOCH:
            raise ValueError("Unix seconds out of range")
        return datetime.fromtimestamp(value, timezone.utc)
    if isinstance(value, str):
        return domain.parse_iso(value)
    raise ValueError("expected an ISO 8601 time or Unix seconds")


def query_int(value):
    """An integer query parameter: ASCII digits, an optional minus."""
    if isinstance(value, str):
        if not QUERY_INT.fullmatch(value):
            raise ValueError("must be an integer")
        return int(value)
    return value


def query_number(value):
    """A number query parameter; "nan" and "inf" are not numbers here."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise ValueError("must be a number") from None
        if not math.isfinite(number):
            raise ValueError("must be a number")
        return number
    return value


def iso(value):
    """Format a time as ISO 8601 UTC with milliseconds, or None."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def nullable(schema):
    """A JSON schema that also allows null."""
    return {"anyOf": [schema, {"type": "null"}]}


# field types of request bodies and query strings


def Text(max_length=None):  # noqa: N802 - a type factory reads as a type
    """A string of at most ``max_length`` characters (None: any length, stored clipped)."""
    return Annotated[str, Field(max_length=max_length, strict=True)]


def Name(max_length):  # noqa: N802
    """A required name: no control characters, not blank, at most ``max_length`` characters."""
    return Annotated[
        str,
        Field(max_length=max_length, strict=True, json_schema_extra={"pattern": NAME_PATTERN}),
        AfterValidator(name_text),
    ]


def Label(max_length):  # noqa: N802
    """An optional label such as a branch: no control characters, at most ``max_length`` characters."""
    return Annotated[
        str,
        Field(max_length=max_length, strict=True, json_schema_extra={"pattern": LABEL_PATTERN}),
        AfterValidator(label_text),
    ]


def Int(minimum, maximum):  # noqa: N802
    """A whole number within bounds; 7.0 is 7, as JSON Schema counts it."""
    return Annotated[int, Field(ge=minimum, le=maximum), BeforeValidator(no_text_or_bool)]


Id = Int(1, domain.MAX_ID)
Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False), BeforeValidator(no_text_or_bool)]
Status = Literal[domain.STATUSES]
TIME_IN = {
    "description": (
        "RFC 3339 (years 1970-2999) or Unix seconds; null means none. "
        "A time without an offset is also accepted and read as UTC."
    ),
    "anyOf": [
        {"type": "string", "format": "date-time", "pattern": domain.RFC3339_PATTERN},
        {"type": "number", "minimum": 0, "maximum": domain.MAX_EPOCH},
        {"type": "null"},
    ],
}
Time = Annotated[datetime | None, PlainValidator(parse_time), WithJsonSchema(TIME_IN)]

# field types of query strings (each value arrives as text)


def QueryInt(minimum, maximum):  # noqa: N802
    """An integer query parameter within bounds."""
    return Annotated[int, Field(ge=minimum, le=maximum), BeforeValidator(query_int)]


def QueryNumber(minimum, maximum):  # noqa: N802
    """A number query parameter within bounds."""
    return Annotated[float, Field(ge=minimum, le=maximum), BeforeValidator(query_number)]


# field types of replies

TimeOut = Annotated[
    datetime | None,
    PlainSerializer(iso, return_type=str | None),
    WithJsonSchema(nullable({"type": "string", "format": "date-time", "pattern": ISO_MS_Z})),
]
Count = Annotated[int, Field(ge=0)]
Ref = Annotated[int, Field(ge=1, le=domain.MAX_ID)]


class Body(BaseModel):
    """A JSON request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")
    # fields a GET returns that a client may echo back in a PUT or PATCH; they are dropped
    echoed: ClassVar[frozenset] = frozenset()

    @classmethod
    def read(cls, data):
        """Check ``data`` (a dict) and return only the fields the client gave, cleaned.

        :raise ValidationError: naming every bad, missing or unknown field.
        """
        if cls.echoed:
            data = {name: value for name, value in data.items() if name not in cls.echoed}
        try:
            return cls.model_validate(data).model_dump(exclude_unset=True)
        except PydanticError as error:
            raise invalid(error, cls) from None


class Query(BaseModel):
    """A query string: unknown parameters are ignored, as they always were."""

    model_config = ConfigDict(extra="ignore")

    @classmethod
    def read(cls, args):
        """Check the query parameters (first value of each) and return the model."""
        try:
            return cls.model_validate(args)
        except PydanticError as error:
            raise invalid(error, cls) from None


class StrictQuery(Query):
    """A query string that refuses unknown parameters."""

    model_config = ConfigDict(extra="forbid")


class Reply(BaseModel):
    """A reply read from a model row's attributes (or a dict) and written as JSON."""

    model_config = ConfigDict(from_attributes=True)
    # a sparse reply writes only the fields its data has (see webapp.api.declare.reply_json)
    sparse: ClassVar[bool] = False


MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "unknown field",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "string_too_short": "must not be empty",
    "literal_error": "must be one of " + ", ".join(domain.STATUSES),
    # JSON escapes can smuggle in lone surrogates, which no database column can store
    "string_unicode": "must be valid Unicode (no lone surrogates)",
}


def message(error):
    """What is wrong with one field, in the API's words."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "string_type" and error["input"] is None:
        return "must not be null"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters"
    if kind in ("greater_than_equal", "less_than_equal"):
        bound = "at least" if kind == "greater_than_equal" else "at most"
        return f"must be {bound} {ctx['ge' if 'ge' in ctx else 'le']}"
    if kind == "value_error":
        return str(ctx["error"])
    return MESSAGES.get(kind, error["msg"])


def invalid(error, model):
    """Turn pydantic's error into ours: a 400 whose ``fields`` name each bad field once."""
    fields = {}
    for item in error.errors(include_url=False, include_context=True):
        name = str(item["loc"][0]) if item["loc"] else "body"
        fields.setdefault(name, message(item))
    if len(fields) == 1:
        name, text = next(iter(fields.items()))
        return ValidationError(f"{name} {text}", fields)
    return ValidationError("some fields are not valid", fields)


class DocumentSchema(GenerateJsonSchema):
    """JSON schemas for the document: no titles, and no ``default: null`` on a field that may not be null."""

    def field_title_should_be_set(self, schema):
        """Property titles repeat the property names."""
        return False

    def generate(self, schema, mode="validation"):
        """Drop the model titles too."""
        document = super().generate(schema, mode)
        strip_titles(document)
        return document


def strip_titles(schema):
    """Remove ``title`` and null ``default`` from a JSON schema, recursively."""
    if isinstance(schema, dict):
        if isinstance(schema.get("title"), str):
            del schema["title"]
        if "default" in schema and schema["default"] is None:
            del schema["default"]
        for value in schema.values():
            strip_titles(value)
    elif isinstance(schema, list):
        for value in schema:
            strip_titles(value)


Anything = Annotated[Any, WithJsonSchema({})]
