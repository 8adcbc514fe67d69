"""API endpoints of files and messages: a case's attachments and an instance's subscriptions.

Declared with :func:`webapp.api.declare.operation` by :func:`declare_all`; what
they take and give is in :mod:`webapp.api.files_models`.
"""

from flask import abort
from flask import redirect
from flask import request
from flask import send_file

from webapp import attachments
from webapp import notifications
from webapp.api import files_models as fm
from webapp.api.declare import operation
from webapp.api.resources import get_case
from webapp.api.resources import get_instance
from webapp.attachments import INLINE_TYPES
from webapp.exceptions import ValidationError
from webapp.extensions import db
from webapp.models_messages import Subscription

# sent with every download: never sniffed into HTML, never a script context on our origin
DOWNLOAD_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; sandbox",
    "Cache-Control": "private, max-age=300",
}
# the fields each channel takes; the other channel's fields are refused, not ignored
CHANNEL_FIELDS = {"email": {"addresses"}, "webhook": {"url", "secret"}}
MAX_ID = 2**31 - 1
UPLOAD_DOCUMENT = {
    "requestBody": {
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
}
DOWNLOAD_DOCUMENT = {
    "responses": {
        "200": {
            "description": "The file (local storage): PNG, JPEG, GIF, WebP inline, the rest as a download",
            "content": {
                kind: {"schema": {"type": "string", "format": "binary"}}
                for kind in ["application/octet-stream", *sorted(INLINE_TYPES)]
            },
        },
        "302": {"description": "A presigned S3 URL, valid for 5 minutes"},
    }
}


def get_attachment(instance_id, build_id, suite_id, case_id, attachment_id):
    """The attachment of that case, or a 404."""
    get_case(instance_id, build_id, suite_id, case_id)
    attachment = attachments.find(case_id, attachment_id)
    if attachment is None:
        abort(404, description=f"attachment {attachment_id} does not exist in test case {case_id}")
    return attachment


def list_attachments(instance_id, build_id, suite_id, case_id):
    """List a case's attachments."""
    get_case(instance_id, build_id, suite_id, case_id)
    items = attachments.of_case(case_id)
    return {"count": len(items), "results": items}


def upload_attachments(instance_id, build_id, suite_id, case_id):
    """Store the multipart parts named ``file`` as the case's attachments; a 413 stores nothing."""
    case = get_case(instance_id, build_id, suite_id, case_id)
    files = request.files.getlist("file") if request.mimetype == "multipart/form-data" else []
    if not files:
        raise ValidationError(
            "send a multipart form with one or more parts named file", {"file": "attach one or more files"}
        )
    stored = attachments.upload(case, [(item.filename, item.stream) for item in files])
    return {"count": len(stored), "results": stored}


def read_attachment(instance_id, build_id, suite_id, case_id, attachment_id):
    """One attachment's metadata."""
    return get_attachment(instance_id, build_id, suite_id, case_id, attachment_id)


def download_attachment(instance_id, build_id, suite_id, case_id, attachment_id):
    """Redirect to a short-lived presigned URL (S3), or stream the file (local storage)."""
    attachment = get_attachment(instance_id, build_id, suite_id, case_id, attachment_id)
    url = attachments.download_url(attachment)
    if url is not None:
        response = redirect(url, 302)
    else:
        response = send_file(
            attachments.open_object(attachment),
            mimetype=attachments.served_type(attachment),
            as_attachment=not attachments.inline(attachment),
            download_name=attachment.name,
            etag=attachment.sha256,
            max_age=300,
        )
    response.headers.update(DOWNLOAD_HEADERS)
    return response


def list_subscriptions(instance_id):
    """List an instance's subscriptions (secrets are never shown)."""
    get_instance(instance_id)
    items = notifications.subscriptions(instance_id)
    return {"count": len(items), "results": items}


def create_subscription(instance_id, body):
    """Subscribe e-mail addresses or a webhook to one of the instance's events."""
    instance = get_instance(instance_id)
    foreign = set().union(*CHANNEL_FIELDS.values()) - CHANNEL_FIELDS[body["channel"]]
    if set(body) & foreign:
        raise ValidationError(
            "some fields are not valid", dict.fromkeys(sorted(set(body) & foreign), "not for this channel")
        )
    try:
        return notifications.create_subscription(instance, **body)
    except notifications.InvalidSubscription as error:
        raise ValidationError(str(error), error.fields) from None


def delete_subscription(instance_id, subscription_id):
    """Unsubscribe."""
    get_instance(instance_id)
    subscription = db.session.get(Subscription, subscription_id) if subscription_id <= MAX_ID else None
    if subscription is None or subscription.instance_id != instance_id:
        abort(
            404, description=f"subscription {subscription_id} does not exist in test instance {instance_id}"
        )
    db.session.delete(subscription)


def declare_all(bp, case_rule, instance_rule):
    """Declare the attachment operations under ``case_rule``, the subscription ones under ``instance_rule``.

    :return: the endpoints only maintainers may call (subscriptions hold people's addresses).
    """
    attachments_rule = case_rule + "attachments/"
    attachment_rule = attachments_rule + "<int:attachment_id>/"
    subscriptions_rule = instance_rule + "subscriptions/"
    declarations = [
        (
            attachments_rule,
            "GET",
            list_attachments,
            "listAttachments",
            "List a case's attachments",
            {"reply": fm.AttachmentList, "errors": (404,)},
        ),
        (
            attachments_rule,
            "POST",
            upload_attachments,
            "uploadAttachments",
            "Attach files (multipart parts named file, each at most GREENBAR_MAX_ATTACHMENT_MB)",
            {
                "reply": fm.AttachmentList,
                "status": 201,
                "errors": (400, 403, 404, 413),
                "document": UPLOAD_DOCUMENT,
            },
        ),
        (
            attachment_rule,
            "GET",
            read_attachment,
            "readAttachment",
            "An attachment's metadata",
            {"reply": fm.Attachment, "errors": (404,)},
        ),
        (
            attachment_rule + "download",
            "GET",
            download_attachment,
            "downloadAttachment",
            "Download an attachment (PNG, JPEG, GIF and WebP inline, anything else as a download)",
            {"errors": (404,), "document": DOWNLOAD_DOCUMENT},
        ),
        (
            subscriptions_rule,
            "GET",
            list_subscriptions,
            "listSubscriptions",
            "List an instance's subscriptions (maintainer)",
            {"reply": fm.SubscriptionList, "errors": (403, 404)},
        ),
        (
            subscriptions_rule,
            "POST",
            create_subscription,
            "createSubscription",
            "Subscribe to an instance's events (maintainer)",
            {
                "body": fm.SubscriptionIn,
                "reply": fm.Subscription,
                "status": 201,
                "errors": (400, 403, 404),
                "recorded": True,
            },
        ),
        (
            subscriptions_rule + "<int:subscription_id>/",
            "DELETE",
            delete_subscription,
            "deleteSubscription",
            "Unsubscribe (maintainer)",
            {"errors": (403, 404)},
        ),
    ]
    for rule, method, view, operation_id, summary, schemas in declarations:
        operation(bp, rule, method, view, operation_id=operation_id, summary=summary, **schemas)
    return {
        f"{bp.name}.{name}{alias}"
        for name in ("listSubscriptions", "createSubscription", "deleteSubscription")
        for alias in ("", "_alias")
    }
