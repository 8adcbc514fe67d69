"""Subscriptions and the fan-out of events to them, by e-mail and by webhook.

Maintainers subscribe an instance's events (:data:`webapp.models_messages.EVENTS`)
through a channel: ``email`` (a list of addresses) or ``webhook`` (a URL and a
secret). The worker runs :func:`fan_out` for each ``event`` row of the outbox;
it works out what the event means (a build's new failures, its newly flaky
tests) and writes one outbox row per message, all in one transaction with the
event row's completion, so a retried fan-out never sends twice.

New failures are grouped by failure signature where the signatures exist:
:data:`SIGNATURES` is the hook a signature module fills in.
"""

import json
import re

from flask import current_app
from flask import url_for
from sqlalchemy import select

from webapp import events
from webapp import mail
from webapp import outbox
from webapp import stats
from webapp import webhooks
from webapp.extensions import db
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models import TestSuite
from webapp.models_messages import BUILD_WHEN
from webapp.models_messages import EVENTS
from webapp.models_messages import Subscription

# a message lists at most this many tests; the link leads to the rest
LISTED = 50
MAX_ADDRESSES = 20
# spelled out rather than \s, so that the API document's (ECMA) pattern means exactly the same
ADDRESS_PATTERN = r"^[^@ \t\n\r\f\v,]+@[^@ \t\n\r\f\v,]+\.[^@ \t\n\r\f\v,]+$"
ADDRESS = re.compile(ADDRESS_PATTERN)
FAILING = ("FAILED", "ERROR")
# case ids → signature, filled in by the failure-signature module when it exists
SIGNATURES = []


class InvalidSubscription(ValueError):
    """A subscription that cannot be saved; ``fields`` says why, per field."""

    def __init__(self, fields):
        super().__init__("the subscription is not valid")
        self.fields = fields


def subscriptions(instance_id):
    """An instance's subscriptions, oldest first."""
    return db.session.scalars(
        select(Subscription).where(Subscription.instance_id == instance_id).order_by(Subscription.id)
    ).all()


def parse_addresses(value):
    """A list of e-mail addresses: a list as given (the API), or split from a comma/space-separated text."""
    if isinstance(value, list):
        return value
    return [item for item in re.split(r"[\s,;]+", value or "") if item]


def create_subscription(instance, channel, event, when=None, addresses=None, url=None, secret=None):
    """Validate and add a subscription (the caller commits).

    :raise InvalidSubscription: naming each bad field.
    """
    fields = {}
    if event not in EVENTS:
        fields["event"] = f"one of {', '.join(EVENTS)}"
    if event == events.BUILD_FINISHED:
        when = when or "always"
        if when not in BUILD_WHEN:
            fields["when"] = f"one of {', '.join(BUILD_WHEN)}"
    else:
        when = None
    target = None
    if channel == "email":
        found = parse_addresses(addresses)
        bad = [item for item in found if not ADDRESS.fullmatch(item) or len(item) > 254]
        if not found or bad or len(found) > MAX_ADDRESSES:
            fields["addresses"] = f"1 to {MAX_ADDRESSES} valid e-mail addresses"
        target, secret = ",".join(found), None
    elif channel == "webhook":
        if not isinstance(url, str) or not url or len(url) > 2048:
            fields["url"] = "an http:// or https:// URL"
        else:
            try:
                webhooks.check_target(url)
            except webhooks.RefusedTarget as error:
                fields["url"] = str(error)
        if not isinstance(secret, str) or not 8 <= len(secret) <= 255:
            fields["secret"] = "8 to 255 characters, to sign each delivery"  # noqa: S105 (a hint)
        target = url
    else:
        fields["channel"] = "email or webhook"
    if fields:
        raise InvalidSubscription(fields)
    subscription = Subscription(
        instance_id=instance.id, channel=channel, target=target, secret=secret, event=event, when=when
    )
    db.session.add(subscription)
    db.session.flush()
    return subscription


def absolute_url(endpoint, **values):
    """An absolute link for a message, built on ``EXTERNAL_URL`` (the worker has no request)."""
    base = current_app.config.get("EXTERNAL_URL") or "http://localhost:5000"
    with current_app.test_request_context(base_url=base):
        return url_for(endpoint, _external=True, **values)


def failing_cases(build):
    """The failing cases of a build that has no earlier build to compare with."""
    rows = db.session.execute(
        select(TestSuite.name, TestCase.name, TestCase.test_key, TestCase.result_status, TestCase.id)
        .join(TestSuite, TestSuite.id == TestCase.suite_id)
        .where(TestCase.build_id == build.id, TestCase.result_status.in_(FAILING))
        .order_by(TestSuite.name, TestCase.name)
        .limit(LISTED)
    )
    return [
        {"suite": suite, "name": name, "test_key": key, "status": status, "case_id": case_id}
        for suite, name, key, status, case_id in rows
    ]


def signatures_of(case_ids):
    """``{case_id: signature}`` from the registered signature lookups (none until signatures exist)."""
    found = {}
    for lookup in SIGNATURES:
        found.update(lookup(case_ids))
    return found


def grouped(failures):
    """New failures as ``[{"signature": str|None, "tests": [...]}, ...]``, each with its case link."""
    signatures = signatures_of([item["case_id"] for item in failures])
    groups = {}
    for item in failures:
        item = dict(item, url=absolute_url("pages.case", case_id=item["case_id"]))
        groups.setdefault(signatures.get(item["case_id"]), []).append(item)
    return [{"signature": signature, "tests": tests} for signature, tests in groups.items()]


def newly_flaky(build, base):
    """Flaky cases of ``build`` whose test was not flaky in ``base``."""
    before = set()
    if base is not None:
        before = set(
            db.session.scalars(
                select(TestCase.test_key).where(TestCase.build_id == base.id, TestCase.is_flaky.is_(True))
            )
        )
    rows = db.session.execute(
        select(TestSuite.name, TestCase.name, TestCase.test_key, TestCase.id)
        .join(TestSuite, TestSuite.id == TestCase.suite_id)
        .where(TestCase.build_id == build.id, TestCase.is_flaky.is_(True))
        .order_by(TestSuite.name, TestCase.name)
    )
    return [
        {
            "suite": suite,
            "name": name,
            "test_key": key,
            "case_id": case_id,
            "url": absolute_url("pages.case", case_id=case_id),
        }
        for suite, name, key, case_id in rows
        if key not in before
    ][:LISTED]


def build_report(build):
    """What a build's messages say: the build, its new failures (grouped) and newly flaky tests."""
    base = stats.previous_build(build)
    if base is None:
        new_failures = failing_cases(build)
    else:
        new_failures = stats.compare_builds(build, base, limit=LISTED)["new_failures"]
    return {
        "instance": {"id": build.instance_id, "name": build.instance.name},
        "build": {
            "id": build.id,
            "number": build.number,
            "branch": build.branch,
            "status": build.status,
            "passed": build.passed,
            "failed": build.failed,
            "errored": build.errored,
            "skipped": build.skipped,
            "url": absolute_url("pages.build", build_id=build.id),
        },
        "new_failures": grouped(new_failures),
        "new_failure_count": len(new_failures),
        "newly_flaky": newly_flaky(build, base),
    }


def wanted(subscription, report):
    """Whether a subscription hears about this build, by its event and ``when``."""
    if subscription.event == events.TEST_FLAKY:
        return bool(report["newly_flaky"])
    if subscription.event != events.BUILD_FINISHED:
        return False
    if subscription.when == "failing":
        return bool(report["build"]["failed"] or report["build"]["errored"])
    if subscription.when == "new_failures":
        return bool(report["new_failure_count"])
    return True


def notify(subscription, event, report):
    """Queue one message of ``event`` to one subscription: a mail or a webhook delivery."""
    if subscription.channel == "webhook":
        body = json.dumps({"event": event, **report}, sort_keys=True)
        webhooks.enqueue(subscription, event, body)
        return
    name = event.replace(".", "_")
    subject = render_mail(f"mail/{name}_subject.txt", report).strip()
    mail.send(subscription.addresses, subject, render_mail(f"mail/{name}.txt", report))


def render_mail(template, context):
    """Render a plain-text mail template (the worker has no request, so no page context processors)."""
    return current_app.jinja_env.get_template(template).render(**context)


def on_build_finished(payload):
    """Fan a finished build out to the build.finished and test.flaky subscriptions."""
    build = db.session.get(TestBuild, payload["build_id"])
    if build is None:
        return  # deleted since
    chosen = [
        sub
        for sub in subscriptions(build.instance_id)
        if sub.event in (events.BUILD_FINISHED, events.TEST_FLAKY)
    ]
    if not chosen:
        return
    report = build_report(build)
    for subscription in chosen:
        if wanted(subscription, report):
            notify(subscription, subscription.event, report)


def on_gate_failed(payload):
    """Fan a failed quality gate out to the gate.failed subscriptions."""
    build = db.session.get(TestBuild, payload["build_id"])
    if build is None:
        return
    report = dict(build_report(build), reasons=payload.get("reasons", []))
    for subscription in subscriptions(build.instance_id):
        if subscription.event == events.GATE_FAILED:
            notify(subscription, events.GATE_FAILED, report)


HANDLERS = {events.BUILD_FINISHED: on_build_finished, events.GATE_FAILED: on_gate_failed}


@outbox.job("event")
def fan_out(claimed):
    """Turn one event into its messages (run by ``flask worker``)."""
    handler = HANDLERS.get(claimed.payload["event"])
    if handler is None:
        raise ValueError(f"unknown event {claimed.payload['event']!r}")
    handler(claimed.payload)
