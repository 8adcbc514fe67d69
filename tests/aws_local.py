"""A local moto server for tests of S3 and SES, started the way the infrastructure tests start it."""

import contextlib
import json
import subprocess
import sys
import urllib.request

from tests.infra.conftest import REPO
from tests.infra.conftest import free_port
from tests.infra.conftest import moto_answers
from tests.infra.conftest import stop_process
from tests.infra.conftest import wait_until

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@contextlib.contextmanager
def moto_server(log_path):
    """Run ``tests/infra/moto_server.py`` on 127.0.0.1; yield its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, str(REPO / "tests/infra/moto_server.py"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(lambda: moto_answers(url), 30, "moto_server")
            yield url
        finally:
            stop_process(process)


def aws_environment(monkeypatch, url):
    """Point boto3 (in this process and its children) at the moto server, with fake credentials."""
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)


def reset(url):
    """Forget everything moto holds."""
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=5).close()


def sent_emails(url):
    """The messages moto's SES has accepted: ``[{"source", "destinations", "subject", "body"}, ...]``."""
    with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=5) as response:
        data = json.load(response)
    return data.get("ses", {}).get("Message", [])
