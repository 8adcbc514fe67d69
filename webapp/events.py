"""Events that subscribers hear about, recorded in the transaction of the write that caused them.

An event is one ``event`` row in the outbox; the worker fans it out to the
instance's subscriptions (:mod:`webapp.notifications`), so the request that
caused it never waits for mail or webhooks, and a rolled-back write notifies
nobody.
"""

from webapp import outbox

BUILD_FINISHED = "build.finished"
TEST_FLAKY = "test.flaky"
# the quality gate (a later issue) calls emit(GATE_FAILED, build_id=..., reasons=[...])
GATE_FAILED = "gate.failed"


def emit(event, **details):
    """Record ``event`` with its ids and details in the caller's transaction (the caller commits)."""
    return outbox.enqueue("event", {"event": event, **details})


def build_finished(build):
    """Record that ``build`` finished; new failures and newly flaky tests are worked out by the worker."""
    return emit(BUILD_FINISHED, build_id=build.id)
