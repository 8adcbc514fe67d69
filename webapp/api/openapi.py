"""The OpenAPI 3.1 document of the API, served at ``GET /api/openapi.json``.

It is built from the declarations (``webapp.api.declare.OPERATIONS``): each
operation's path, its pydantic body, query and reply models, and its error
statuses. tests/test_openapi.py checks that it names exactly the app's routes
and runs schemathesis, which fails on any answer the document does not
describe. The one leniency: times may also come without an offset, as
Python's isoformat() writes them, and are then UTC.

Like every /api/ path it needs credentials (any role), so it tells no
stranger what the server offers.
"""

import functools
import re

from pydantic.json_schema import models_json_schema

from webapp.api.declare import OPERATIONS
from webapp.api.schema import DocumentSchema
from webapp.api.schema import strip_titles

ROLE_NOTE = (
    "Any role reads; maintainer and admin write; only admin deletes instances, builds, suites and cases. "
    "Subscriptions, triage labels and quarantine entries are a maintainer's to manage."
)
REF = "#/components/schemas/{model}"
# werkzeug's <int:x> and <string(length=32):x> become OpenAPI's {x}
CONVERTER = re.compile(r"<(?:([a-z]+)(?:\(length=([0-9]+)\))?:)?([a-z_]+)>")
ERROR_TEXT = {
    400: "The input is not valid; `fields` says what is wrong with each field.",
    401: 'No valid credentials. Carries `WWW-Authenticate: Basic realm="Greenbar"`.',
    403: "The role is too low (or a browser session wrote without X-CSRFToken).",
    404: "No such item under these parents.",
    409: "The write contradicts stored state; a duplicate's body holds the `existing` item.",
    413: "The request body is larger than the configured limit.",
    415: "The Content-Encoding is not gzip or identity.",
}
ERROR = {
    "type": "object",
    "additionalProperties": False,
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "additionalProperties": False,
            "required": ["status", "message", "fields"],
            "properties": {
                "status": {"type": "integer"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                "existing": {"type": "object"},
            },
        }
    },
}


def ref(model):
    """A reference to a model's component schema."""
    return {"$ref": REF.format(model=model.__name__)}


def json_content(schema):
    """A JSON media type."""
    return {"application/json": {"schema": schema}}


def components():
    """The component schemas of every declared model: bodies as read, replies as written."""
    models = set()
    for declared in OPERATIONS:
        models.update((model, "validation") for model in (declared.body,) if model is not None)
        if declared.reply is not None:
            models.add((declared.reply, "serialization"))
    _, schemas = models_json_schema(
        sorted(models, key=lambda pair: pair[0].__name__), ref_template=REF, schema_generator=DocumentSchema
    )
    schemas = schemas.get("$defs", {})
    strip_titles(schemas)
    schemas["Error"] = ERROR
    return dict(sorted(schemas.items()))


def path_of(rule, id_schema):
    """The OpenAPI path of a werkzeug rule and its path parameters."""
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            # a string of the rule's length (a test key, a failure signature)
            "schema": id_schema if kind == "int" else {"type": "string", "pattern": f"^[^/]{{{length}}}$"},
        }
        for kind, length, name in CONVERTER.findall(rule)
    ]
    return "/api" + CONVERTER.sub(r"{\3}", rule), parameters


def query_parameters(model):
    """One query parameter per field of a query model."""
    schema = model.model_json_schema(schema_generator=DocumentSchema)
    strip_titles(schema)
    required = set(schema.get("required", ()))
    parameters = []
    for name, field in schema["properties"].items():
        parameter = {"name": name, "in": "query", "required": name in required}
        if "description" in field:
            parameter["description"] = field.pop("description")
        if "anyOf" in field and {"type": "null"} in field["anyOf"]:
            # a parameter left out is the null; the query string cannot spell a null
            field = {
                **next(option for option in field["anyOf"] if option != {"type": "null"}),
                **{key: value for key, value in field.items() if key != "anyOf"},
            }
        parameter["schema"] = field
        parameters.append(parameter)
    return parameters


def operation_object(declared, id_schema):
    """The operation object of one declaration, and its path."""
    path, parameters = path_of(declared.rule, id_schema)
    if declared.query is not None:
        parameters += query_parameters(declared.query)
    parameters += declared.document.get("parameters", [])
    success = {"description": "Success" if declared.reply else "Deleted"}
    if declared.reply is not None:
        success["content"] = json_content(ref(declared.reply))
    # a view that answers with something other than JSON (a download) documents its own answers
    default = {str(declared.status if declared.reply else 204): success}
    answers = dict(declared.document.get("responses") or default)
    # a second success an operation may answer, such as a queued import's 202 with the job
    for code, (description, model) in declared.document.get("also", {}).items():
        answers[str(code)] = {"description": description, "content": json_content(ref(model))}
    for code in (401, *declared.errors):
        answers[str(code)] = {
            "description": ERROR_TEXT[code],
            "content": json_content({"$ref": REF.format(model="Error")}),
        }
    spec = {"operationId": declared.operation_id, "summary": declared.summary, "responses": answers}
    if parameters:
        spec["parameters"] = parameters
    if declared.body is not None:
        # an empty body reads as {}, so it may be left out when {} would do
        required = bool(declared.body.model_json_schema().get("required"))
        spec["requestBody"] = {"required": required, "content": json_content(ref(declared.body))}
    if "requestBody" in declared.document:
        spec["requestBody"] = declared.document["requestBody"]
    return path, spec


def underscored(path, spec):
    """The same operation under the underscore spelling, as its own operation."""
    alias = {
        **spec,
        "operationId": spec["operationId"] + "Underscore",
        "summary": spec["summary"] + " (underscore spelling)",
    }
    return path.replace("test-", "test_"), alias


@functools.cache
def document():
    """Build the whole OpenAPI document (once: the declarations are made at import)."""
    schemas = components()
    id_schema = schemas["TestInstance"]["properties"]["id"]
    paths = {}
    for declared in OPERATIONS:
        path, spec = operation_object(declared, id_schema)
        for where, operation in (path, spec), underscored(path, spec):
            paths.setdefault(where, {})[declared.method.lower()] = operation
    # the client wheel for pip (webapp/api/client.py): a file, not a declared JSON operation
    paths["/api/client/{filename}"] = {
        "get": {
            "operationId": "clientDownload",
            "summary": "The greenbar-client wheel, for pip (see an instance's Connect your CI page)",
            "parameters": [
                {"name": "filename", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {
                "200": {
                    "description": "The wheel",
                    "content": {
                        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                    },
                },
                **{
                    str(code): {
                        "description": ERROR_TEXT[code],
                        "content": json_content({"$ref": REF.format(model="Error")}),
                    }
                    for code in (401, 404)
                },
            },
        }
    }
    paths["/api/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "responses": {
                "200": {"description": "Success", "content": json_content({"type": "object"})},
                "401": {
                    "description": ERROR_TEXT[401],
                    "content": json_content({"$ref": REF.format(model="Error")}),
                },
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Greenbar",
            "version": "1",
            "description": (
                "Automated-test results: test instances (products) hold numbered builds, builds hold "
                "suites, suites hold cases. Every path also works with underscores (`/api/test_instance/`). "
                + ROLE_NOTE
                + " Times are ISO 8601 UTC with milliseconds."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"basic": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "basic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "Username with the password or one of the user's API tokens.",
                }
            },
        },
    }


def serve():
    """The OpenAPI document of this API."""
    return document()
