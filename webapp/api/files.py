"""API endpoints of files and messages: a case's attachments and an instance's subscriptions."""

from flask import abort
from flask import redirect
from flask import request
from flask import send_file

from webapp import attachments
from webapp import notifications
from webapp.api import payload as p
from webapp.api.resources import get_case
from webapp.api.resources import get_instance
from webapp.api.serializers import iso
from webapp.extensions import db
from webapp.models_messages import Subscription

# sent with every download: never sniffed into HTML, never a script context on our origin
DOWNLOAD_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; sandbox",
    "Cache-Control": "private, max-age=300",
}


def attachment_json(attachment):
    """An attachment as the API shows it."""
    return {
        "id": attachment.id,
        "case_id": attachment.case_id,
        "name": attachment.name,
        "size": attachment.size,
        "sha256": attachment.sha256,
        "content_type": attachment.content_type,
        "created": iso(attachment.created),
    }


def subscription_json(subscription):
    """A subscription as the API shows it; the webhook secret is never shown."""
    data = {
        "id": subscription.id,
        "instance_id": subscription.instance_id,
        "channel": subscription.channel,
        "event": subscription.event,
        "when": subscription.when,
    }
    if subscription.channel == "email":
        data["addresses"] = subscription.addresses
    else:
        data["url"] = subscription.target
    data["created"] = iso(subscription.created)
    return data


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
    items = [attachment_json(item) for item in attachments.of_case(case_id)]
    return {"count": len(items), "results": items}


def upload_attachments(instance_id, build_id, suite_id, case_id):
    """Store the multipart parts named ``file`` as the case's attachments; 413 stores nothing."""
    case = get_case(instance_id, build_id, suite_id, case_id)
    files = request.files.getlist("file") if request.mimetype == "multipart/form-data" else []
    if not files:
        raise p.ValidationError(
            "send a multipart form with one or more parts named file", {"file": "attach one or more files"}
        )
    stored = attachments.upload(case, [(item.filename, item.stream) for item in files])
    db.session.commit()
    return {"count": len(stored), "results": [attachment_json(item) for item in stored]}, 201


def read_attachment(instance_id, build_id, suite_id, case_id, attachment_id):
    """One attachment's metadata."""
    return attachment_json(get_attachment(instance_id, build_id, suite_id, case_id, attachment_id))


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
    items = [subscription_json(item) for item in notifications.subscriptions(instance_id)]
    return {"count": len(items), "results": items}


SUBSCRIPTION_FIELDS = {
    "channel": p.text(16, required=True),
    "event": p.text(32, required=True),
    "when": p.text(16),
    "url": p.text(2048),
    "secret": p.text(255),
}


# the fields each channel takes; the other channel's fields are refused, not ignored
CHANNEL_FIELDS = {"email": {"addresses"}, "webhook": {"url", "secret"}}


def create_subscription(instance_id):
    """Subscribe e-mail addresses or a webhook to one of the instance's events."""
    instance = get_instance(instance_id)
    body = p.read_json_object()
    addresses = body.pop("addresses", None)
    if addresses is not None and not (
        isinstance(addresses, list) and all(isinstance(a, str) for a in addresses)
    ):
        raise p.ValidationError("the subscription is not valid", {"addresses": "a list of e-mail addresses"})
    clean = p.validate(body, SUBSCRIPTION_FIELDS)
    given = set(body) | ({"addresses"} if addresses is not None else set())
    foreign = {name for fields in CHANNEL_FIELDS.values() for name in fields} - CHANNEL_FIELDS.get(
        clean["channel"], set()
    )
    if given & foreign:
        raise p.ValidationError(
            "the subscription is not valid", dict.fromkeys(sorted(given & foreign), "not for this channel")
        )
    try:
        subscription = notifications.create_subscription(instance, addresses=addresses, **clean)
    except notifications.InvalidSubscription as error:
        raise p.ValidationError(str(error), error.fields) from None
    db.session.commit()
    return subscription_json(subscription), 201


def delete_subscription(instance_id, subscription_id):
    """Unsubscribe."""
    get_instance(instance_id)
    subscription = db.session.get(Subscription, subscription_id) if subscription_id < 2**31 else None
    if subscription is None or subscription.instance_id != instance_id:
        abort(
            404, description=f"subscription {subscription_id} does not exist in test instance {instance_id}"
        )
    db.session.delete(subscription)
    db.session.commit()
    return "", 204
