"""Queued import benchmark: N queued 100,000-case imports drained by W workers, against a synchronous one.

Run from the repository root (MariaDB at TEST_DATABASE_URL, default root@127.0.0.1)::

    .venv/bin/python -m tests.benchmarks.queued_import_bench [--imports 20] [--cases 100000] [--workers 2]

It makes a scratch database, migrates it, starts one gunicorn worker on
127.0.0.1 (as :mod:`tests.benchmarks.import_bench` does, whose report
generator and helpers it uses) and generates one report of 20 suites
(``--cases`` cases in all; 5 % failures with 30-line stack traces, 2 % skips).
Then:

- the synchronous import: the report posted ``--runs`` times to
  ``/api/test-instance/{id}/import/``, each into an instance of its own; the
  best run's cases/s; and as many times again after the queue has drained,
  into the database the queue filled, so that the queue is not compared
  with imports into a smaller database only;
- the queue: the same report posted ``--imports`` times with ``?async=true``
  (each into an instance of its own), then ``--workers`` ``flask worker``
  processes started on the database queue (the default backend), and the job
  URLs polled until every job is ``done``. Timed from the first post to the
  last job done, so the uploads and the workers' start are in it: total
  cases/s of the queue.

It prints both rates and their ratio (the queue's over the best synchronous
import's: what the workers add over one upload at a time; and over the best
synchronous import after the queue, in a database as big), the workers' peak
memory (VmHWM) and CPU seconds, and checks that nothing was stored twice: the
queued builds' ``cases_total`` add up to imports x cases, and so do their
case rows. The scratch database and the stored uploads are dropped at the end.
"""

import argparse
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import sqlalchemy as sa

from tests.benchmarks.import_bench import ROOT
from tests.benchmarks.import_bench import database_pid
from tests.benchmarks.import_bench import drop_database
from tests.benchmarks.import_bench import free_port
from tests.benchmarks.import_bench import load_synthetic
from tests.benchmarks.import_bench import post_report
from tests.benchmarks.import_bench import prepare
from tests.benchmarks.import_bench import scratch_database
from tests.benchmarks.import_bench import start_gunicorn
from tests.benchmarks.import_bench import timed
from tests.benchmarks.import_bench import worker_pid
from tests.benchmarks.processes import cpu_seconds
from tests.benchmarks.processes import load_average
from tests.benchmarks.processes import peak_rss_mb

SUITES = 20
FLASK = str(Path(sys.executable).parent / "flask")
POLL_SECONDS = 0.5


def post_queued(port, token, instance_id, body):
    """Post the report with ``?async=true``; return the job's URL."""
    reply = post_report(port, token, instance_id, body, query="?async=true", expected=202)
    return f"http://127.0.0.1:{port}{reply['url']}"


def start_workers(url, port, count, log):
    """Start ``count`` ``flask worker`` processes on the database queue, sharing gunicorn's storage."""
    env = dict(
        os.environ,
        DATABASE_URL=url.render_as_string(hide_password=False),
        SECRET_KEY="bench",
        GREENBAR_EXTERNAL_URL=f"http://127.0.0.1:{port}",
        GREENBAR_WORKER_POLL_SECONDS="0.2",
    )
    env.pop("GREENBAR_IMPORT_QUEUE_URL", None)
    return [
        subprocess.Popen([FLASK, "--app", "wsgi", "worker"], cwd=ROOT, env=env, stdout=log, stderr=log)
        for _ in range(count)
    ]


def wait_done(token, job_urls, timeout):
    """Poll every job until all are done; return when the last was seen done. Fail on a failed job."""
    pending = set(job_urls)
    deadline = time.monotonic() + timeout
    while pending:
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(pending)} jobs not done after {timeout} s")
        for job_url in sorted(pending):
            job = requests.get(job_url, auth=("ci", token), timeout=60).json()
            if job["state"] == "failed":
                raise SystemExit(f"job failed: {job}")
            if job["state"] == "done":
                pending.discard(job_url)
        if pending:
            time.sleep(POLL_SECONDS)
    return time.perf_counter()


def stored_counts(url, instance_ids):
    """(builds, sum of their cases_total, case rows) of the given instances."""
    engine = sa.create_engine(url)
    params = {"ids": list(instance_ids)}
    with engine.connect() as connection:
        builds, total = connection.execute(
            sa.text(
                "SELECT COUNT(*), SUM(cases_total) FROM test_builds WHERE instance_id IN :ids"
            ).bindparams(sa.bindparam("ids", expanding=True)),
            params,
        ).one()
        rows = connection.execute(
            sa.text("SELECT COUNT(*) FROM test_cases WHERE instance_id IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)
            ),
            params,
        ).scalar()
    engine.dispose()
    return builds, int(total or 0), rows


def synchronous(port, token, instance_ids, body, cases, worker, db_pid):
    """Post the report once into each instance; return each run's (wall, app CPU, database CPU)."""
    figures = []
    for run, instance_id in enumerate(instance_ids, start=1):
        measured, reply = timed(worker, db_pid, post_report, port, token, instance_id, body)
        assert reply["cases"]["total"] == cases, reply["cases"]
        figures.append(measured)
        wall, app_cpu, db_cpu = measured
        print(
            f"sync run {run}: {cases / wall:,.0f} cases/s"
            f" ({wall:.2f} s; CPU {app_cpu:.2f} s + db {db_cpu:.2f} s)",
            flush=True,
        )
    return figures


def queued(url, port, token, instance_ids, body, workers, timeout, log, db_pid):
    """Post every import queued, start the workers, wait for the last job.

    :return: (seconds from the first post to the last job done, seconds posting,
        peak MB of each worker, CPU seconds of the workers, CPU seconds of the database).
    """
    db_cpu = cpu_seconds(db_pid)
    started = time.perf_counter()
    job_urls = [post_queued(port, token, instance_id, body) for instance_id in instance_ids]
    posted = time.perf_counter() - started
    processes = start_workers(url, port, workers, log)
    try:
        finished = wait_done(token, job_urls, timeout)
        peaks = [peak_rss_mb(process.pid) for process in processes]
        cpu = sum(cpu_seconds(process.pid) for process in processes)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
    return finished - started, posted, peaks, cpu, cpu_seconds(db_pid) - db_cpu


def main():
    """Run the synchronous imports, then the queued ones, and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imports", type=int, default=20, help="queued imports")
    parser.add_argument("--cases", type=int, default=100_000, help="cases per report (20 suites)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--runs", type=int, default=3, help="synchronous imports before the queue, and as many after"
    )
    parser.add_argument("--timeout", type=int, default=3600, help="seconds to wait for the queue")
    args = parser.parse_args()
    if args.cases % SUITES:
        parser.error(f"--cases must be a multiple of {SUITES}")
    synthetic = load_synthetic()
    out = io.BytesIO()
    synthetic.write_report(out, suites=SUITES, cases_per_suite=args.cases // SUITES)
    body = out.getvalue()
    url = scratch_database()
    folder = Path(tempfile.mkdtemp(prefix="greenbar-queued-"))
    # gunicorn and the workers share the uploads' folder; no upload is queued for its size alone
    os.environ.update(
        GREENBAR_STORAGE_URL=f"file://{folder / 'storage'}",
        GREENBAR_INSTANCE_PATH=str(folder),
        GREENBAR_ASYNC_IMPORT_MB=str(len(body) // 2**20 + 100),
    )
    master = None
    log = (folder / "workers.log").open("w")
    try:
        token, instance_ids = prepare(url, 2 * args.runs + args.imports)
        sync_ids, after_ids = instance_ids[: args.runs], instance_ids[args.runs : 2 * args.runs]
        queued_ids = instance_ids[2 * args.runs :]
        port = free_port()
        master = start_gunicorn(url, port)
        worker = worker_pid(master)
        post_report(port, token, sync_ids[0], b'<testsuite name="warmup"><testcase name="a"/></testsuite>')
        db_pid = database_pid(url)
        print(f"report: {len(body) / 1e6:.1f} MB, {args.cases:,} cases; {load_average()}", flush=True)
        sync_runs = synchronous(port, token, sync_ids, body, args.cases, worker, db_pid)
        print(f"queueing {args.imports} imports for {args.workers} workers; {load_average()}", flush=True)
        seconds, posted, peaks, worker_cpu, db_cpu = queued(
            url, port, token, queued_ids, body, args.workers, args.timeout, log, db_pid
        )
        print(f"synchronous again, into the database the queue filled; {load_average()}", flush=True)
        after_runs = synchronous(port, token, after_ids, body, args.cases, worker, db_pid)
        total = args.imports * args.cases
        best_before = args.cases / min(wall for wall, _, _ in sync_runs)
        best_after = args.cases / min(wall for wall, _, _ in after_runs)
        best_sync = max(best_before, best_after)
        queue_rate = total / seconds
        print(
            f"queue: {total:,} cases in {seconds:.1f} s ({posted:.1f} s of it posting):"
            f" {queue_rate:,.0f} cases/s (workers' CPU {worker_cpu:.1f} s, db {db_cpu:.1f} s)"
        )
        print(
            f"sync, best of {args.runs} before the queue: {best_before:,.0f} cases/s;"
            f" best of {args.runs} after: {best_after:,.0f} cases/s"
        )
        print(
            f"ratio queue/sync: {queue_rate / best_sync:.2f} (against the best sync run);"
            f" {queue_rate / best_after:.2f} against the best after the queue"
        )
        print("worker peak RSS: " + ", ".join(f"{peak:.0f} MB" for peak in peaks))
        builds, counted, rows = stored_counts(url, queued_ids)
        exact = builds == args.imports and counted == rows == total
        print(
            f"queued builds: {builds}, cases_total sum {counted:,}, case rows {rows:,}"
            f" (expected {total:,}): {'stored once' if exact else 'WRONG'}"
        )
        print(load_average())
        if not exact:
            return 1
    finally:
        log.close()
        if master is not None:
            master.send_signal(signal.SIGTERM)
            master.wait(timeout=30)
        drop_database(url)
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
