"""``/metrics``: Greenbar's figures in Prometheus' text format, for a scraper with the token.

Only a caller with ``Authorization: Bearer <GREENBAR_METRICS_TOKEN>``, or one
whose address is in ``GREENBAR_METRICS_ALLOWED_ADDRESSES``, gets an answer:
the figures name endpoints and volumes, which is nobody else's business.
"""

import hmac
import ipaddress
import time

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import g
from flask import request
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import REGISTRY
from prometheus_client import CollectorRegistry
from prometheus_client import generate_latest
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily

from webapp import telemetry

bp = Blueprint("metrics", __name__)


class DepthCollector:
    """Queue and outbox depths, read from the database at each scrape (the same on every host)."""

    def collect(self):
        """Yield one gauge per probe figure."""
        for name, help_text, value in telemetry.depths():
            yield GaugeMetricFamily(name, help_text, value=value)


def allowed(headers, address):
    """Whether a scrape with these headers from this address may read the figures."""
    token = current_app.config["METRICS_TOKEN"]
    supplied = headers.get("Authorization", "")
    if token and hmac.compare_digest(supplied.encode(), f"Bearer {token}".encode()):
        return True
    try:
        caller = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(caller in network for network in current_app.config["METRICS_ALLOWED_NETWORKS"])


@bp.get("/metrics")
def metrics():
    """Every figure in Prometheus' text format: 401 without the token or an allowed address."""
    if not allowed(request.headers, request.remote_addr):
        return Response(
            "metrics need a bearer token (GREENBAR_METRICS_TOKEN) or an allowed address\n",
            401,
            {"WWW-Authenticate": 'Bearer realm="Greenbar metrics"', "Content-Type": "text/plain"},
        )
    registry = REGISTRY
    if telemetry.multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    text = generate_latest(registry)
    depth_registry = CollectorRegistry()
    depth_registry.register(DepthCollector())
    text += generate_latest(depth_registry)
    return Response(text, 200, {"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})


def endpoint_label():
    """The view that answered, one label for both URL spellings; unmatched paths share one."""
    endpoint = request.endpoint or "unmatched"
    return endpoint.removesuffix("_alias")


def start_timer():
    """Note when the request began."""
    g.metrics_started = time.perf_counter()


def record_request(response):
    """Count the answer and its latency."""
    started = g.pop("metrics_started", None)
    if started is not None and request.endpoint != "metrics.metrics":
        endpoint = endpoint_label()
        telemetry.REQUESTS.labels(endpoint, str(response.status_code)).inc()
        telemetry.LATENCY.labels(endpoint).observe(time.perf_counter() - started)
    return response


def init_app(app):
    """Serve ``/metrics`` and time every request."""
    app.register_blueprint(bp)
    app.before_request(start_timer)
    app.after_request(record_request)
