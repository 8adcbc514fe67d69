"""Talking to Greenbar's API with bounded retries: instances, builds, batches, report uploads.

Every call retries what a retry can fix (no connection, a timeout, 429, 502,
503, 504, and an Idempotency-Key whose first request is still running) with
exponential backoff until its time budget runs out, then raises
:class:`Unreachable`. Any other refusal raises :class:`Refused` with the
server's message. Writes that could be stored twice carry an Idempotency-Key,
so a retry after a lost reply stores nothing new.
"""

import random
import time

import requests

from greenbar_client import __version__

RETRY_STATUSES = frozenset({429, 502, 503, 504})
IN_FLIGHT = "still being processed"
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 300


class Unreachable(Exception):
    """Greenbar could not be reached (or kept answering "try later") within the time budget."""


class Refused(Exception):
    """Greenbar answered with an error; ``str()`` is its message."""

    def __init__(self, status, message):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def error_message(response):
    """The message of the API's ``{"error": {...}}`` envelope, or the start of the body."""
    try:
        error = response.json()["error"]
        fields = error.get("fields") or {}
        message = error["message"]
        # only what the message does not say already (a refused report's message repeats its field)
        details = "; ".join(
            f"{name}: {problem}" for name, problem in list(fields.items())[:5] if problem not in message
        )
        return message + (f" ({details})" if details else "")
    except (ValueError, KeyError, TypeError, AttributeError):
        return response.text[:300].strip() or response.reason


def retry_after(response, default):
    """Seconds a 429 or 503 asks to wait (capped), else ``default``."""
    value = response.headers.get("Retry-After", "") if response is not None else ""
    return min(float(value), 30.0) if value.isdigit() else default


class Greenbar:
    """A session with one Greenbar server, as one user.

    :param retry_seconds: how long one call keeps retrying before :class:`Unreachable`.
    """

    def __init__(self, settings, retry_seconds=60.0):
        self.url = settings.url
        self.retry_seconds = retry_seconds
        self.session = requests.Session()
        self.session.auth = (settings.user, settings.token)
        self.session.headers["User-Agent"] = f"greenbar-client/{__version__}"

    def call(self, method, path, accept=(200, 201), body=None, **kwargs):
        """Send a request, retrying for up to ``retry_seconds``; return the accepted response.

        :param body: a function returning the request body afresh for each attempt (a stream
            cannot be sent twice).
        """
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.25
        for attempt in range(1, 1_000_000):
            response = problem = None
            if body is not None:
                kwargs["data"] = body()
            try:
                response = self.session.request(
                    method, self.url + path, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), **kwargs
                )
            except requests.RequestException as error:
                problem = f"{type(error).__name__}: {error}"
            else:
                if response.status_code in accept:
                    return response
                message = error_message(response)
                in_flight = response.status_code == 409 and IN_FLIGHT in message
                if response.status_code not in RETRY_STATUSES and not in_flight:
                    raise Refused(response.status_code, message)
                problem = f"{response.status_code}: {message}"
            wait = retry_after(response, delay) * random.uniform(0.8, 1.2)
            if time.monotonic() + wait > deadline:
                raise Unreachable(f"{self.url} gave no answer after {attempt} attempts ({problem})")
            time.sleep(wait)
            delay = min(delay * 2, 8.0)
        raise AssertionError("unreachable")  # pragma: no cover

    def ensure_instance(self, name):
        """The id of the instance named ``name``, creating it when missing."""
        found = self.call("GET", "/api/test-instance/", params={"search": name, "limit": 100}).json()
        for instance in found["results"]:
            if instance["name"] == name:
                return instance["id"]
        response = self.call("POST", "/api/test-instance/", accept=(201, 409), json={"name": name})
        # 409: a parallel job created it first; the reply holds it
        reply = response.json()
        return reply["id"] if response.status_code == 201 else reply["error"]["existing"]["id"]

    def ensure_build(self, instance_id, fields):
        """The build with ``fields["number"]`` (created when missing), or a new build; its JSON."""
        response = self.call(
            "POST", f"/api/test-instance/{instance_id}/test-build/", accept=(201, 409), json=fields
        )
        reply = response.json()
        return reply if response.status_code == 201 else reply["error"]["existing"]

    def send_results(self, instance_id, build_id, results, key):
        """Store a batch of case results; the key makes a retried batch count once."""
        return self.call(
            "POST",
            f"/api/test-instance/{instance_id}/test-build/{build_id}/results/",
            json={"results": results},
            headers={"Idempotency-Key": key},
        ).json()

    def finish_build(self, instance_id, build_id):
        """Mark a build finished; one that already finished stays as it is."""
        self.call(
            "POST",
            f"/api/test-instance/{instance_id}/test-build/{build_id}/finish/",
            accept=(200, 409),
            json={},
        )

    def build_page(self, build_id):
        """The build's page for people."""
        return f"{self.url}/builds/{build_id}"
