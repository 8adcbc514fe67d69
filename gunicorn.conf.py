"""gunicorn settings for Greenbar, read by `gunicorn -c gunicorn.conf.py wsgi:app`.

The systemd unit from ansible/roles/app and tests/infra use this one file. Every
value a deployment (or a test running two instances side by side) may need to
change is read from a GREENBAR_GUNICORN_* environment variable.
"""

import multiprocessing
import os

from prometheus_client import multiprocess


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
