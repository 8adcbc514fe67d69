"""The worker's CloudWatch figures, read back from a local moto server."""

import urllib.request
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import boto3
import pytest

from tests.conftest import make_token_user
from tests.test_import import REPORT
from tests.test_import import XML
from webapp import cloudwatch
from webapp import telemetry

NAMESPACE = "GreenbarTest"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def stored_sum(client, name, dimensions):
    """The sum CloudWatch holds for one metric over the last hour."""
    now = datetime.now(timezone.utc)
    answer = client.get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=name,
        Dimensions=dimensions,
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(minutes=5),
        Period=3600,
        Statistics=["Sum"],
    )
    return sum(point["Sum"] for point in answer["Datapoints"])


@pytest.fixture
def cloudwatch_client(moto_url):
    """A CloudWatch client on moto, emptied first."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"))  # noqa: S310
    return boto3.client("cloudwatch")


def test_publisher_sends_what_grew_since_the_last_minute(sqlite_app, cloudwatch_client, monkeypatch):
    monkeypatch.setattr(telemetry, "DEPTH_PROBES", [lambda: [("greenbar_outbox_depth", "Rows.", 4)]])
    client = sqlite_app.test_client()
    clock = Clock()
    publisher = cloudwatch.Publisher(NAMESPACE, client=cloudwatch_client, clock=clock)
    assert not publisher.due()
    headers = make_token_user(sqlite_app, "maintainer")
    instance = client.post("/api/test-instance/", json={"name": "watched"}, headers=headers).json["id"]
    imported = client.post(f"/api/test-instance/{instance}/import/", data=REPORT, headers={**XML, **headers})
    assert imported.status_code == 201
    clock.now += cloudwatch.PUBLISH_SECONDS
    assert publisher.due()
    publisher.publish()
    assert stored_sum(cloudwatch_client, "CasesStored", [{"Name": "Path", "Value": "import"}]) == 5
    assert stored_sum(cloudwatch_client, "OutboxDepth", []) == 4
    # the next minute sends only what grew since: nothing more for imports
    publisher.publish()
    assert stored_sum(cloudwatch_client, "CasesStored", [{"Name": "Path", "Value": "import"}]) == 5


def test_a_restarted_process_counts_from_zero():
    grown = cloudwatch.increases({("CasesStored", "api"): 3}, {("CasesStored", "api"): 10})
    assert grown == {("CasesStored", "api"): 3}


def test_figures_go_out_in_batches_of_a_thousand(monkeypatch):
    calls = []

    class Recorder:
        def put_metric_data(self, Namespace, MetricData):  # noqa: N803 (boto3's spelling)
            calls.append(len(MetricData))

    monkeypatch.setattr(cloudwatch, "counter_totals", dict)
    probe = [(f"greenbar_depth_{n}", "n", n) for n in range(2500)]
    monkeypatch.setattr(telemetry, "DEPTH_PROBES", [lambda: probe])
    cloudwatch.Publisher(NAMESPACE, client=Recorder()).publish()
    assert calls == [1000, 1000, 500]
