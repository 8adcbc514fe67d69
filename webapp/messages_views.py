"""Pages of files and messages: an instance's subscriptions and its webhook delivery log.

Maintainers only. Every change is a POST form with a CSRF token.
"""

from flask import Blueprint
from flask import flash
from flask import redirect
from flask import render_template
from flask import url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import PasswordField
from wtforms import SelectField
from wtforms import StringField

from webapp import audit
from webapp import notifications
from webapp import outbox
from webapp.extensions import db
from webapp.models_messages import BUILD_WHEN
from webapp.models_messages import EVENTS
from webapp.models_messages import OutboxMessage
from webapp.models_messages import Subscription
from webapp.models_messages import WebhookDelivery
from webapp.security import role_required
from webapp.views import get_instance_or_404
from webapp.views import get_or_404

bp = Blueprint("messages", __name__)

DELIVERIES_SHOWN = 100


class SubscriptionForm(FlaskForm):
    """A new subscription: a channel and its target, an event and, for builds, when."""

    channel = SelectField("Channel", choices=[("email", "E-mail"), ("webhook", "Webhook")])
    event = SelectField("Event", choices=[(event, event) for event in EVENTS])
    when = SelectField(
        "When (build.finished)", choices=[(when, when.replace("_", " ")) for when in BUILD_WHEN]
    )
    addresses = StringField("E-mail addresses (comma-separated)")
    url = StringField("Webhook URL")
    secret = PasswordField("Webhook secret")


class EmptyForm(FlaskForm):
    """A form that carries only the CSRF token (delete, redeliver)."""


def deliveries_of(instance_id):
    """The instance's latest webhook attempts, newest first, with their subscriptions."""
    return db.session.execute(
        select(WebhookDelivery, Subscription)
        .join(Subscription, Subscription.id == WebhookDelivery.subscription_id)
        .where(Subscription.instance_id == instance_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(DELIVERIES_SHOWN)
    ).all()


@bp.route("/instances/<int:instance_id>/subscriptions", methods=["GET", "POST"])
@role_required("maintainer")
def subscriptions(instance_id):
    """List an instance's subscriptions and add one."""
    instance = get_instance_or_404(instance_id)
    form = SubscriptionForm()
    if form.validate_on_submit():
        try:
            notifications.create_subscription(
                instance,
                form.channel.data,
                form.event.data,
                when=form.when.data,
                addresses=form.addresses.data,
                url=form.url.data,
                secret=form.secret.data,
            )
        except notifications.InvalidSubscription as error:
            db.session.rollback()
            for field, problem in error.fields.items():
                flash(f"{field}: {problem}", "danger")
        else:
            audit.record("createSubscription", instance.id)
            db.session.commit()
            flash("Subscribed.", "success")
            return redirect(url_for("messages.subscriptions", instance_id=instance.id))
    return render_template(
        "pages/subscriptions.html",
        instance=instance,
        form=form,
        action=EmptyForm(),
        subscriptions=notifications.subscriptions(instance.id),
    )


@bp.post("/instances/<int:instance_id>/subscriptions/<int:subscription_id>/delete")
@role_required("maintainer")
def delete_subscription(instance_id, subscription_id):
    """Remove a subscription."""
    subscription = get_or_404(Subscription, subscription_id, "subscription")
    if subscription.instance_id != instance_id or not EmptyForm().validate_on_submit():
        return redirect(url_for("messages.subscriptions", instance_id=instance_id))
    db.session.delete(subscription)
    audit.record("deleteSubscription", instance_id)
    db.session.commit()
    flash("Unsubscribed.", "success")
    return redirect(url_for("messages.subscriptions", instance_id=instance_id))


@bp.get("/instances/<int:instance_id>/deliveries")
@role_required("maintainer")
def deliveries(instance_id):
    """The webhook delivery log: status, response code and time of each attempt."""
    instance = get_instance_or_404(instance_id)
    return render_template(
        "pages/deliveries.html", instance=instance, rows=deliveries_of(instance.id), action=EmptyForm()
    )


@bp.post("/instances/<int:instance_id>/deliveries/<int:delivery_log_id>/redeliver")
@role_required("maintainer")
def redeliver(instance_id, delivery_log_id):
    """Queue a webhook delivery again, with its original delivery id."""
    log = get_or_404(WebhookDelivery, delivery_log_id, "delivery")
    subscription = db.session.get(Subscription, log.subscription_id)
    message = db.session.get(OutboxMessage, log.outbox_id) if log.outbox_id else None
    if subscription.instance_id != instance_id or message is None or not EmptyForm().validate_on_submit():
        flash("That delivery cannot be sent again.", "warning")
        return redirect(url_for("messages.deliveries", instance_id=instance_id))
    outbox.redeliver(message)
    db.session.commit()
    flash(f"Delivery {log.delivery_id} queued again.", "success")
    return redirect(url_for("messages.deliveries", instance_id=instance_id))


def init_app(app):
    """Register the pages."""
    app.register_blueprint(bp)
