"""Batch results benchmark: 100,000 results in batches of 500 from 4 parallel clients, against the import.

Run from the repository root (MariaDB at TEST_DATABASE_URL, default root@127.0.0.1)::

    .venv/bin/python -m tests.benchmarks.batch_bench [--runs 1] [--workers N] [--suites 20] [--cases 5000]

It makes a scratch database, starts gunicorn on 127.0.0.1 (the import
benchmark's set-up) with the production config's number of workers for this
machine (2 x cores + 1; ``--workers 1`` measures one), generates the corpus's synthetic report (20
suites x 5,000 cases: 5 % failures with 30-line stack traces, 2 % skips) and,
``--runs`` times, the two in turns first:

- posts the report to ``/api/test-instance/{id}/import/``: the JUnit import rate
  (one request: one worker parses it, whatever their number);
- posts the same cases (read from the report by Greenbar's own parser) to
  ``.../test-build/{id}/results/`` in batches of 500, from 4 threads sharing
  one queue of batches, into one build, as pytest-xdist workers would.

Each run goes into instances of its own. Bodies are encoded before the clock
starts: the figures are the server's. It prints both rates (cases/s) and
their ratio; target: the batch rate at least 0.9 x the import rate. It then
checks that every batch build's counters add up to the report.
"""

import argparse
import base64
import http.client
import io
import json
import os
import queue
import signal
import sys
import threading
import time

import requests
import sqlalchemy as sa

from tests.benchmarks.import_bench import drop_database
from tests.benchmarks.import_bench import free_port
from tests.benchmarks.import_bench import load_synthetic
from tests.benchmarks.import_bench import post_report
from tests.benchmarks.import_bench import prepare
from tests.benchmarks.import_bench import scratch_database
from tests.benchmarks.import_bench import start_gunicorn
from webapp import junit
from webapp.models import TestBuild

BATCH = 500
CLIENTS = 4


def batches_of(body):
    """The report's cases as encoded batch bodies of :data:`BATCH` results."""
    results = []
    for parsed, cases in junit.iter_suites(io.BytesIO(body)):
        for case in cases:
            results.append(
                {
                    "suite": parsed.name,
                    "name": case.name,
                    "result_status": case.status,
                    "duration": case.duration,
                    "message": case.message,
                    "details": case.details,
                }
            )
    return [
        json.dumps({"results": results[start : start + BATCH]}).encode()
        for start in range(0, len(results), BATCH)
    ], len(results)


def post_import(port, token, instance_id, body):
    """The JUnit import of the whole report into a new build; return its seconds."""
    started = time.perf_counter()
    post_report(port, token, instance_id, body)
    return time.perf_counter() - started


def post_batches(base, auth, instance_id, batches):
    """Create a build, then send every batch from :data:`CLIENTS` threads; return the seconds.

    Each client holds one keep-alive connection (http.client, as api_bench's do): the
    figure is the server's, so the clients spend as little of the shared CPU as they can.
    """
    build = requests.post(
        f"{base}/api/test-instance/{instance_id}/test-build/", json={}, auth=auth, timeout=60
    ).json()
    path = f"/api/test-instance/{instance_id}/test-build/{build['id']}/results/"
    port = int(base.rsplit(":", 1)[1])
    credentials = base64.b64encode(":".join(auth).encode()).decode()
    work = queue.SimpleQueue()
    for index, body in enumerate(batches):
        work.put((index, body))
    failures = []

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        headers = {"Authorization": f"Basic {credentials}", "Content-Type": "application/json"}
        try:
            while True:
                try:
                    index, body = work.get_nowait()
                except queue.Empty:
                    return
                key = {"Idempotency-Key": f"bench-{build['id']}-{index}"}
                connection.request("POST", path, body=body, headers=headers | key)
                response = connection.getresponse()
                text = response.read()
                if response.status != 200:
                    failures.append(f"{response.status} {text[:300]}")
        finally:
            connection.close()

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} batches failed, first: {failures[0]}")
    return elapsed


def main():
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--suites", type=int, default=20)
    parser.add_argument("--cases", type=int, default=5000, help="cases per suite")
    parser.add_argument(
        "--workers",
        type=int,
        default=2 * os.cpu_count() + 1,
        help="gunicorn workers (default: the production config's 2 x cores + 1)",
    )
    args = parser.parse_args()
    synthetic = load_synthetic()
    out = io.BytesIO()
    synthetic.write_report(out, suites=args.suites, cases_per_suite=args.cases)
    body = out.getvalue()
    batches, total = batches_of(body)
    url = scratch_database()
    master = None
    try:
        token, instance_ids = prepare(url, 2 * args.runs)
        auth = ("ci", token)
        port = free_port()
        master = start_gunicorn(url, port, args.workers)
        base = f"http://127.0.0.1:{port}"
        post_import(
            port, token, instance_ids[0], b'<testsuite name="warmup"><testcase name="a"/></testsuite>'
        )
        print(
            f"report: {len(body) / 1e6:.1f} MB, {total} cases; {len(batches)} batches of {BATCH}"
            f" from {CLIENTS} clients; {args.workers} gunicorn workers"
        )
        imports, streams = [], []
        for run in range(args.runs):
            import_instance, batch_instance = instance_ids[2 * run], instance_ids[2 * run + 1]
            if run % 2:
                streams.append(post_batches(base, auth, batch_instance, batches))
            imports.append(post_import(port, token, import_instance, body))
            if not run % 2:
                streams.append(post_batches(base, auth, batch_instance, batches))
            print(
                f"run {run + 1}: import {total / imports[-1]:,.0f} cases/s ({imports[-1]:.1f} s),"
                f" batches {total / streams[-1]:,.0f} cases/s ({streams[-1]:.1f} s)",
                flush=True,
            )
        best_import, best_batches = total / min(imports), total / min(streams)
        print(f"best import:  {best_import:,.0f} cases/s")
        print(f"best batches: {best_batches:,.0f} cases/s")
        print(f"ratio batches/import: {best_batches / best_import:.2f} (target >= 0.90)")
        verify(url, total)
    finally:
        if master is not None:
            master.send_signal(signal.SIGTERM)
            master.wait(timeout=60)
        drop_database(url)


def verify(url, total):
    """Every build holding the report (imported or batched) counts exactly its cases."""
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        totals = connection.execute(
            sa.select(TestBuild.cases_total).where(TestBuild.cases_total > 1)
        ).scalars()
        totals = list(totals)
    engine.dispose()
    print(f"builds: {len(totals)}, counters exact: {all(count == total for count in totals)}")


if __name__ == "__main__":
    sys.exit(main())
