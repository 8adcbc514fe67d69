"""``flask worker``: the one command that runs all of Greenbar's background work.

Two kinds of work exist:

- **outbox jobs** (:mod:`webapp.outbox`): rows claimed with ``FOR UPDATE SKIP
  LOCKED`` and handed to the handler registered for their ``kind`` with
  :func:`webapp.outbox.job` (mail, event fan-out, webhooks);
- **periodic tasks**, registered with :func:`every`, run by each worker on
  its own schedule (shipping logs, publishing metrics).

Adding a kind of work is one decorated function in its own module, listed in
:data:`JOB_MODULES` so that the worker imports it.

Several workers may run at once against MySQL (one per instance of the fleet);
on SQLite run one only.
"""

import importlib
import signal
import threading
import time
from dataclasses import dataclass
from dataclasses import field

import click
from flask import current_app
from flask.cli import with_appcontext

from webapp import outbox
from webapp.extensions import db

# modules whose import registers job handlers and periodic tasks
JOB_MODULES = (
    "webapp.mail",
    "webapp.notifications",
    "webapp.webhooks",
    "webapp.import_runner",
    "webapp.cloudwatch",
    "webapp.oplog_shipping",
)
BATCH = 10

PERIODIC = []
# long-running work with its own thread (queued imports), each ``function(app, stop)``
LOOPS = []
# what ``flask worker --drain`` runs besides the outbox, each ``function(app)`` returning a count
DRAINERS = {}


@dataclass
class Periodic:
    """A task the worker runs every ``seconds`` (its first run one period after start)."""

    seconds: float
    task: object
    due: float = field(default=0.0)


def every(seconds):
    """Register the decorated function as a periodic task of every worker.

    :param seconds: the period, or the name of the setting that holds it.
    """

    def register(task):
        PERIODIC.append(Periodic(seconds, task))
        return task

    return register


def loop(function):
    """Register ``function(app, stop)`` to run in a thread of its own while the worker runs."""
    LOOPS.append(function)
    return function


def drainer(name):
    """Register ``function(app)`` as what ``--drain`` runs for ``name`` (e.g. queued imports)."""

    def register(function):
        DRAINERS[name] = function
        return function

    return register


def load_jobs():
    """Import the modules that register job handlers and periodic tasks."""
    for name in JOB_MODULES:
        importlib.import_module(name)


def run_claimed(claimed):
    """Run one claimed row's job and record its outcome; never raise for the job's failure."""
    config = current_app.config
    handler = outbox.JOBS.get(claimed.kind)
    try:
        if handler is None:
            raise outbox.Retry(f"no handler for outbox kind {claimed.kind!r}")
        handler(claimed)
        outbox.complete(claimed)
    except outbox.Retry as error:
        outbox.reschedule(claimed, error, config["OUTBOX_BACKOFF_SECONDS"])
    except Exception as error:
        db.session.rollback()
        current_app.logger.exception("outbox job %s (%s) failed", claimed.id, claimed.kind)
        outbox.reschedule(claimed, f"{type(error).__name__}: {error}", config["OUTBOX_BACKOFF_SECONDS"])
    db.session.commit()


def run_once(batch=BATCH):
    """Claim and run one batch of due outbox rows; return how many were claimed."""
    claimed = outbox.claim(batch, current_app.config["OUTBOX_LEASE_SECONDS"])
    for item in claimed:
        run_claimed(item)
    return len(claimed)


def drain(batch=BATCH):
    """Run due outbox rows until none is left (tests and ``flask worker --drain``)."""
    load_jobs()
    total = 0
    while count := run_once(batch):
        total += count
    return total


def period(item):
    """A periodic task's period in seconds, read from the configuration when named there."""
    return current_app.config[item.seconds] if isinstance(item.seconds, str) else item.seconds


def run_periodic(now):
    """Run the periodic tasks that are due."""
    for item in PERIODIC:
        if item.due == 0.0:
            item.due = now + period(item)
        elif now >= item.due:
            item.due = now + period(item)
            try:
                item.task()
            except Exception:
                db.session.rollback()
                current_app.logger.exception("periodic task %s failed", item.task.__name__)


def serve(stop, batch=BATCH):
    """Work until ``stop`` is set: a full batch is followed at once by the next, else a short sleep."""
    poll = current_app.config["WORKER_POLL_SECONDS"]
    while not stop.is_set():
        run_periodic(time.monotonic())
        try:
            claimed = run_once(batch)
        except Exception:
            # a lost database connection must not end the worker: it tries again after a pause
            db.session.rollback()
            current_app.logger.exception("worker round failed")
            claimed = 0
        db.session.remove()
        if claimed < batch:
            stop.wait(poll)


@click.command("worker")
@click.option("--drain", "drain_only", is_flag=True, help="Run what is due now, then exit.")
@click.option("--batch", default=BATCH, show_default=True, help="Rows claimed per round.")
@with_appcontext
def worker_command(drain_only, batch):
    """Run background work (mail, webhooks, notifications) until stopped with SIGTERM or Ctrl-C."""
    if not current_app.config.get("EXTERNAL_URL"):
        # as gunicorn does: the links it mails would otherwise point at a guessed address
        raise click.ClickException(
            "GREENBAR_EXTERNAL_URL is not set: mailed links need the address users open "
            "(such as https://greenbar.example.com)"
        )
    load_jobs()
    if drain_only:
        app = current_app._get_current_object()
        extra = "".join(f", {drainer(app)} {name}" for name, drainer in DRAINERS.items())
        click.echo(f"ran {drain(batch)} outbox jobs{extra}")
        return
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    app = current_app._get_current_object()
    threads = [threading.Thread(target=work, args=(app, stop), name=work.__name__) for work in LOOPS]
    for thread in threads:
        thread.start()
    current_app.logger.info("worker started")
    serve(stop, batch)
    for thread in threads:
        thread.join()
    click.echo("worker stopped")


def init_app(app):
    """Register ``flask worker``."""
    app.cli.add_command(worker_command)
