"""The worker's import loop: claim a queued import, run it, settle its claim, repeat."""

from webapp import import_jobs
from webapp import import_queue
from webapp import worker
from webapp.extensions import db
from webapp.import_queue import Heartbeat


def run_one(app, queue):
    """Claim and run one job; return whether there was one."""
    lease = app.config["IMPORT_LEASE_SECONDS"]
    claim = queue.claim(lease)
    if claim is None:
        return False
    try:
        with Heartbeat(app, queue, claim, lease):
            import_jobs.run_job(claim.job_id, claim.token, app.config["MAX_REPORT_BYTES"])
    except import_jobs.Superseded:
        if import_jobs.settled(claim.job_id):
            queue.finish(claim)
        else:
            queue.release(claim)
        return True
    queue.finish(claim)
    return True


@worker.drainer("queued imports")
def drain(app):
    """Run queued imports until none is left; return how many ran (tests, ``flask worker --drain``)."""
    queue = import_queue.from_config(app.config)
    count = 0
    while run_one(app, queue):
        count += 1
        db.session.remove()
    return count


@worker.loop
def run_imports(app, stop):
    """Run queued imports until ``stop`` is set; an unexpected failure leaves the claim to run out."""
    with app.app_context():
        queue = import_queue.from_config(app.config)
    while not stop.is_set():
        with app.app_context():
            try:
                worked = run_one(app, queue)
            except Exception:
                db.session.rollback()
                app.logger.exception("queued import round failed")
                worked = False
            finally:
                db.session.remove()
        if not worked and not isinstance(queue, import_queue.SqsQueue):
            stop.wait(app.config["WORKER_POLL_SECONDS"])
