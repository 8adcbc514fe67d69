"""gunicorn settings for Greenbar, read by `gunicorn -c gunicorn.conf.py wsgi:app`.

The systemd unit from ansible/roles/app and tests/infra use this one file. Every
value a deployment (or a test running two instances side by side) may need to
change is read from a GREENBAR_GUNICORN_* environment variable.
"""

import json
import multiprocessing
import os
import sys

from dotenv import dotenv_values
from gunicorn import util
from prometheus_client import multiprocess

# the app reads this file too (webapp.create_app), so a setting there counts here
ENV_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".env")

# Mailed links (password resets) are built on this address alone, never on a
# request's Host header, which a client chooses; without it no link could be right.
if not (os.environ.get("GREENBAR_EXTERNAL_URL") or dotenv_values(ENV_FILE).get("GREENBAR_EXTERNAL_URL")):
    sys.exit(
        "greenbar: GREENBAR_EXTERNAL_URL is not set: set it to the address users open "
        "(e.g. https://greenbar.example.com); mailed links are built on it, never on a request's Host"
    )


def _env_int(name, default):
    """Return the integer in environment variable ``name``, or ``default``."""
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


# nginx talks to gunicorn over this socket; nothing else can reach the app.
bind = os.environ.get("GREENBAR_GUNICORN_BIND", "unix:/run/greenbar/gunicorn.sock")
# group (www-data) may connect, others may not.
umask = 0o007

# the classic (2 x cores) + 1; threads let a worker overlap database waits.
# "sync" (one request per process) measured the same on the live-API benchmark
workers = _env_int("GREENBAR_GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1)
worker_class = os.environ.get("GREENBAR_GUNICORN_WORKER_CLASS", "gthread")
threads = _env_int("GREENBAR_GUNICORN_THREADS", 4)
keepalive = 5
# gunicorn's control interface (gunicornc) is unused here: systemd and signals run the server,
# and its default socket in the user's home would be shared by two servers on one host
control_socket_disable = True

# gthread's timeout watches the worker's main loop, not single requests, so a
# long JUnit import is not killed; nginx's proxy_read_timeout bounds those.
timeout = _env_int("GREENBAR_GUNICORN_TIMEOUT", 60)
# on SIGTERM (deploy, scale-in) requests in flight get this long to finish.
graceful_timeout = _env_int("GREENBAR_GUNICORN_GRACEFUL_TIMEOUT", 30)

# recycle workers now and then to bound slow leaks; jitter keeps them from all
# restarting at the same moment.
# high enough that recycling a worker (and re-paying its slow password hashes) is rare:
# at 1,000 the live-API benchmark fell from 246 to 142 requests/s
max_requests = _env_int("GREENBAR_GUNICORN_MAX_REQUESTS", 20000)
max_requests_jitter = _env_int("GREENBAR_GUNICORN_MAX_REQUESTS_JITTER", 2000)

# gunicorn's own caps (its largest) sit above nginx's (nginx_max_header_kb, 8 KB), so behind
# nginx an oversized request line or header is refused there, in the API's JSON under /api/.
limit_request_line = 8190
limit_request_field_size = 8190
limit_request_fields = 100


def write_json_error(sock, status, reason, message):
    """Answer a request gunicorn itself refused (too long, malformed) in the API's error envelope.

    gunicorn writes these answers before the app sees the request, as HTML;
    when it refuses a request line it never learned the path, so every such
    answer is JSON: the clients that send them are programs, not browsers.
    """
    body = json.dumps({"error": {"status": status, "message": f"{reason}: {message}", "fields": {}}}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


# the workers call util.write_error for these answers; there is no setting for their format
util.write_error = write_json_error

accesslog = os.environ.get("GREENBAR_GUNICORN_ACCESS_LOG", "-")
errorlog = os.environ.get("GREENBAR_GUNICORN_ERROR_LOG", "-")
loglevel = os.environ.get("GREENBAR_GUNICORN_LOG_LEVEL", "info")
# the request id from nginx ties this line to nginx's log and the app's response.
access_log_format = (
    '%({x-forwarded-for}i)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s '
    '"%(f)s" "%(a)s" %(M)sms rid=%({x-request-id}i)s'
)

pidfile = os.environ.get("GREENBAR_GUNICORN_PIDFILE") or None
proc_name = os.environ.get("GREENBAR_GUNICORN_NAME", "greenbar")


def child_exit(server, worker):
    """Drop an exited worker's live gauges from /metrics (prometheus_client's multiprocess mode).

    Its counters stay, so the totals never go backwards; PROMETHEUS_MULTIPROC_DIR
    sits under /run, which a reboot empties.
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
