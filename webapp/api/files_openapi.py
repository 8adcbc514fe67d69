"""The OpenAPI paths and schemas of attachments and subscriptions (:mod:`webapp.api.files`).

:func:`webapp.api.openapi.document` adds them to the document, so the route
check and schemathesis in tests/test_openapi.py cover them like the rest.
"""

from webapp.api.openapi import COUNT
from webapp.api.openapi import ERROR_TEXT
from webapp.api.openapi import ID
from webapp.api.openapi import ISO_MS_Z
from webapp.api.openapi import nullable
from webapp.api.openapi import obj
from webapp.api.openapi import operation
from webapp.api.openapi import path_ids
from webapp.api.openapi import ref
from webapp.api.openapi import response
from webapp.api.openapi import responses
from webapp.api.openapi import text
from webapp.attachments import INLINE_TYPES
from webapp.models_messages import BUILD_WHEN
from webapp.models_messages import EVENTS
from webapp.notifications import ADDRESS_PATTERN
from webapp.notifications import MAX_ADDRESSES

CREATED = {"type": "string", "format": "date-time", "pattern": ISO_MS_Z}
SUBSCRIPTION_COMMON = {
    "event": {"type": "string", "enum": list(EVENTS)},
    "when": nullable({"type": "string", "enum": list(BUILD_WHEN)}),
}
SCHEMAS = {
    "Attachment": obj(
        {
            "id": ID,
            "case_id": ID,
            "name": text(255),
            "size": COUNT,
            "sha256": {"type": "string"},
            "content_type": text(127),
            "created": CREATED,
        },
        required=("id", "case_id", "name", "size", "sha256", "content_type", "created"),
    ),
    "Subscription": obj(
        {
            "id": ID,
            "instance_id": ID,
            "channel": {"type": "string", "enum": ["email", "webhook"]},
            **SUBSCRIPTION_COMMON,
            "addresses": {"type": "array", "items": {"type": "string"}},
            "url": {"type": "string"},
            "created": CREATED,
        },
        required=("id", "instance_id", "channel", "event", "when", "created"),
    ),
    "SubscriptionIn": {
        "description": (
            "An e-mail subscription (addresses) or a webhook (url and secret). `when` applies to "
            "build.finished: always (default), failing or new_failures. A webhook URL that resolves to "
            "an internal address is refused unless GREENBAR_WEBHOOK_ALLOWED_HOSTS lists its host."
        ),
        "oneOf": [
            obj(
                {
                    "channel": {"const": "email"},
                    **SUBSCRIPTION_COMMON,
                    "addresses": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": MAX_ADDRESSES,
                        "items": {"type": "string", "maxLength": 254, "pattern": ADDRESS_PATTERN},
                    },
                },
                required=("channel", "event", "addresses"),
            ),
            obj(
                {
                    "channel": {"const": "webhook"},
                    **SUBSCRIPTION_COMMON,
                    "url": {"type": "string", "maxLength": 2048, "pattern": "^https?://"},
                    "secret": {"type": "string", "minLength": 8, "maxLength": 255},
                },
                required=("channel", "event", "url", "secret"),
            ),
        ],
    },
}
for kind in ("Attachment", "Subscription"):
    SCHEMAS[kind + "List"] = obj(
        {"count": COUNT, "results": {"type": "array", "items": ref(kind)}}, required=("count", "results")
    )

CASE_IDS = ("instance_id", "build_id", "suite_id", "case_id")


def download_responses():
    """A download: the bytes (inline images, else opaque binary), or a redirect to S3."""
    types = {
        kind: {"schema": {"type": "string", "format": "binary"}}
        for kind in ["application/octet-stream", *sorted(INLINE_TYPES)]
    }
    answers = {
        "200": {"description": "The file (local storage)", "content": types},
        "302": {"description": "A presigned S3 URL, valid for 5 minutes"},
    }
    for code in (401, 404):
        answers[str(code)] = response(ERROR_TEXT[code], ref("Error"))
    return answers


def paths(cases, instances):
    """The attachment paths under ``cases`` and the subscription paths under ``instances``."""
    attachments = f"{cases}/{{case_id}}/attachments/"
    attachment = attachments + "{attachment_id}/"
    subscriptions = f"{instances}/{{instance_id}}/subscriptions/"
    upload = {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"type": "string", "format": "binary"},
                        }
                    },
                }
            }
        },
    }
    attachment_ids = path_ids(*CASE_IDS, "attachment_id")
    return {
        attachments: {
            "get": operation(
                "listAttachments",
                "List a case's attachments",
                responses(200, ref("AttachmentList"), 404),
                path_ids(*CASE_IDS),
            ),
            "post": operation(
                "uploadAttachments",
                "Attach files (multipart parts named file; each at most GREENBAR_MAX_ATTACHMENT_MB)",
                responses(201, ref("AttachmentList"), 400, 403, 404, 413),
                path_ids(*CASE_IDS),
                upload,
            ),
        },
        attachment: {
            "get": operation(
                "readAttachment",
                "An attachment's metadata",
                responses(200, ref("Attachment"), 404),
                attachment_ids,
            )
        },
        attachment + "download": {
            "get": operation(
                "downloadAttachment",
                "Download an attachment (only PNG, JPEG, GIF and WebP are shown inline)",
                download_responses(),
                attachment_ids,
            )
        },
        subscriptions: {
            "get": operation(
                "listSubscriptions",
                "List an instance's subscriptions (maintainer)",
                responses(200, ref("SubscriptionList"), 403, 404),
                path_ids("instance_id"),
            ),
            "post": operation(
                "createSubscription",
                "Subscribe to an instance's events (maintainer)",
                responses(201, ref("Subscription"), 400, 403, 404),
                path_ids("instance_id"),
                {"required": True, "content": {"application/json": {"schema": ref("SubscriptionIn")}}},
            ),
        },
        subscriptions + "{subscription_id}/": {
            "delete": operation(
                "deleteSubscription",
                "Unsubscribe (maintainer)",
                responses(204, None, 403, 404),
                path_ids("instance_id", "subscription_id"),
            )
        },
    }
