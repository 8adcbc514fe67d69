"""Greenbar's key figures in CloudWatch: one batched PutMetricData a minute from the worker.

With ``GREENBAR_CLOUDWATCH_NAMESPACE`` set, each host's worker reads the
figures its gunicorn workers share (prometheus_client's multiprocess folder),
turns the counters into per-minute amounts, adds the queue depths, and sends
them without a host dimension, so CloudWatch sums the fleet and the alarms
watch one series each.
"""

import time

import boto3
from flask import current_app
from prometheus_client import REGISTRY
from prometheus_client import CollectorRegistry
from prometheus_client import multiprocess

from webapp import telemetry
from webapp import worker

PUBLISH_SECONDS = 60
# PutMetricData takes at most 1,000 figures per call
BATCH_SIZE = 1000


def counter_totals():
    """``{(metric, label value): total}`` of the counters CloudWatch gets, summed over processes."""
    registry = REGISTRY
    if telemetry.multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    totals = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == "greenbar_cases_stored_total":
                key = ("CasesStored", sample.labels["path"])
            elif sample.name == "greenbar_http_requests_total":
                key = ("Requests", sample.labels["status"][0] + "xx")
            else:
                continue
            totals[key] = totals.get(key, 0) + sample.value
    return totals


def increases(totals, previous):
    """What each counter grew by since ``previous``; a restart (a smaller total) counts from zero."""
    grown = {}
    for key, total in totals.items():
        before = previous.get(key, 0)
        grown[key] = total - before if total >= before else total
    return grown


def metric_data(grown, depths):
    """PutMetricData entries: the counters' growth (with their label as a dimension) and the depths."""
    entries = []
    for (name, label), amount in sorted(grown.items()):
        dimension = "Path" if name == "CasesStored" else "StatusClass"
        entries.append(
            {
                "MetricName": name,
                "Dimensions": [{"Name": dimension, "Value": label}],
                "Value": amount,
                "Unit": "Count",
            }
        )
    for name, _help, value in depths:
        entries.append({"MetricName": cloudwatch_name(name), "Value": value, "Unit": "None"})
    return entries


def cloudwatch_name(prometheus_name):
    """``greenbar_outbox_depth`` becomes ``OutboxDepth``."""
    return "".join(part.capitalize() for part in prometheus_name.removeprefix("greenbar_").split("_"))


class Publisher:
    """Sends the figures to CloudWatch at most once per :data:`PUBLISH_SECONDS`."""

    def __init__(self, namespace, client=None, clock=time.monotonic):
        self.namespace = namespace
        self.client = client or boto3.client("cloudwatch")
        self.clock = clock
        self.previous = counter_totals()
        self.last = clock()

    def due(self):
        """Whether a minute has passed since the last publication."""
        return self.clock() - self.last >= PUBLISH_SECONDS

    def publish(self):
        """Send what changed since the last call, plus the depths; return the number of figures sent."""
        totals = counter_totals()
        entries = metric_data(increases(totals, self.previous), telemetry.depths())
        for start in range(0, len(entries), BATCH_SIZE):
            self.client.put_metric_data(
                Namespace=self.namespace, MetricData=entries[start : start + BATCH_SIZE]
            )
        self.previous = totals
        self.last = self.clock()
        return len(entries)


PUBLISHERS = {}


@worker.every(PUBLISH_SECONDS)
def publish_figures():
    """The worker's minutely task: publish when ``GREENBAR_CLOUDWATCH_NAMESPACE`` is set."""
    namespace = current_app.config.get("CLOUDWATCH_NAMESPACE")
    if namespace:
        if namespace not in PUBLISHERS:
            PUBLISHERS[namespace] = Publisher(namespace)
        PUBLISHERS[namespace].publish()
