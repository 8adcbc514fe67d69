"""Greenbar's own figures: requests, latency, cases stored, and the depth of its queues.

The metric objects live here, below the services, so a service can count what
it stored without knowing about HTTP. :mod:`webapp.metrics` serves them at
``/metrics``; :mod:`webapp.cloudwatch` sends the key ones to CloudWatch.

Under gunicorn the figures are per process; prometheus_client's multiprocess
mode (``PROMETHEUS_MULTIPROC_DIR``, set by the start-up unit before Python
starts, wiped before each start) adds them up across the workers.
"""

import os

from prometheus_client import Counter
from prometheus_client import Histogram
from sqlalchemy import event
from sqlalchemy.orm import Session

# the paths a case can take into the database
CASE_PATHS = ("api", "batch", "import")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "greenbar_http_requests", "HTTP requests answered, by endpoint and status.", ["endpoint", "status"]
)
LATENCY = Histogram(
    "greenbar_http_request_duration_seconds",
    "Time to answer a request, by endpoint.",
    ["endpoint"],
    buckets=LATENCY_BUCKETS,
)
CASES_STORED = Counter("greenbar_cases_stored", "Test cases stored, by the path they came in.", ["path"])

# callables that return [(name, help, value), ...] read live from the database at scrape time:
# queue and outbox depth, the age of the oldest job. Modules that own a queue append theirs.
DEPTH_PROBES = []

PENDING_CASES = "greenbar_pending_cases"


def multiprocess_dir():
    """The folder gunicorn's workers share their figures through, or None in a single process."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def count_cases(session, path, count):
    """Count ``count`` cases stored through ``path``, once ``session``'s transaction commits.

    Counting at commit means a rolled-back write (a lost race that is rerun, a
    refused report) never inflates the figure.
    """
    if count:
        pending = session.info.setdefault(PENDING_CASES, {})
        pending[path] = pending.get(path, 0) + count


@event.listens_for(Session, "after_commit")
def publish_counted_cases(session):
    """Add the cases a committed transaction stored to :data:`CASES_STORED`."""
    for path, count in session.info.pop(PENDING_CASES, {}).items():
        CASES_STORED.labels(path).inc(count)


@event.listens_for(Session, "after_rollback")
def forget_counted_cases(session):
    """A rolled-back transaction stored nothing."""
    session.info.pop(PENDING_CASES, None)


def depths():
    """Every probe's ``(name, help, value)`` figures, read now."""
    return [figure for probe in DEPTH_PROBES for figure in probe()]
