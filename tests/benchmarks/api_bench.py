"""Live API benchmark: CI clients recording a build case by case against gunicorn on MariaDB.

Run from the repository root (MariaDB at TEST_DATABASE_URL, default root@127.0.0.1)::

    .venv/bin/python -m tests.benchmarks.api_bench [--workers 3] [--threads 4] [--clients 8]

It makes a scratch database, migrates it, starts gunicorn (the production
gunicorn.conf.py: gthread workers; bound to 127.0.0.1 on a free port) and
then, with ``--clients`` client processes each holding one keep-alive
connection (http.client):

1. reads: GET of one build for ``--seconds`` each (after a warm-up half as
   long), first with an API token as the Basic password, then with the user's
   password. Passwords need a slow hash; the password memory should make the
   second nearly as fast as the first;
2. the live run (issue 4): builds with ``--suites`` suites x ``--cases`` cases in
   all, over ``--rounds`` rounds (a new build each), every case created, started
   and finished by its own request with token auth (the clients take the cases
   round robin, so all of them write into every suite at once), then the suites
   and the build are finished. Counters are checked against the expected totals
   and against the case rows;
3. the floor (``live_floor.py`` beside this file, a bare WSGI app doing the same
   writes with PyMySQL and no framework) records the same cases under the same
   gunicorn settings, taking turns with Greenbar round by round, so both meet
   the same load from the rest of the machine.

It prints requests per second, p50/p99 latency and CPU per request for each,
and Greenbar's rate over the floor's. Target (issue 12): at least 0.7 x the
floor with p99 under 50 ms, on this 2-core machine where the clients and
MariaDB share the cores. The scratch databases are dropped at the end.
"""

import argparse
import base64
import http.client
import json
import multiprocessing
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from flask_migrate import upgrade

from tests.benchmarks import live_floor
from tests.benchmarks.processes import children
from tests.benchmarks.processes import cpu_seconds
from tests.benchmarks.processes import database_pids
from webapp import create_app
from webapp import results
from webapp.domain import STATUSES
from webapp.extensions import db
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models import TestSuite
from webapp.models import User
from webapp.security import issue_token

ROOT = Path(__file__).resolve().parents[2]
FLOOR = Path(__file__).resolve().parent
SERVER = os.environ.get("TEST_DATABASE_URL", "mysql+pymysql://root@127.0.0.1:3306/")
COUNTED = ("cases_total", "passed", "failed", "errored", "skipped")


def scratch_database():
    """Create an empty utf8mb4 database; return its SQLAlchemy URL."""
    url = sa.make_url(SERVER)
    name = f"greenbar_bench_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(url.set(database=None))
    with engine.begin() as connection:
        connection.execute(
            sa.text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        )
    engine.dispose()
    return url.set(database=name, query={"charset": "utf8mb4"})


def drop_database(url):
    """Drop the scratch database."""
    engine = sa.create_engine(url.set(database=None, query={}))
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS {url.database}"))
    engine.dispose()


def prepare(url):
    """Migrate, and make a maintainer with a password and a token, and an instance."""
    database_url = url.render_as_string(hide_password=False)
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "x"})
    with app.app_context():
        upgrade()
        user = User(username="ci", role="maintainer", active=True)
        user.set_password("ci-password")
        db.session.add(user)
        db.session.flush()
        token = issue_token(user, "bench")[1]
        instance = results.create_instance("benchmarked product")
        db.session.commit()
        ids = {"instance": instance.id}
        db.engine.dispose()
    return token, ids


def free_port():
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(app, cwd, port, args, **environment):
    """Start gunicorn (the production config) serving ``app`` on 127.0.0.1:port; return the master."""
    settings = {
        "GREENBAR_GUNICORN_WORKERS": str(args.workers),
        "GREENBAR_GUNICORN_THREADS": str(args.threads),
        "GREENBAR_GUNICORN_WORKER_CLASS": args.worker_class,
    }
    if args.max_requests is not None:
        settings["GREENBAR_GUNICORN_MAX_REQUESTS"] = str(args.max_requests)
    env = dict(
        os.environ,
        GREENBAR_EXTERNAL_URL=f"http://127.0.0.1:{port}",
        GREENBAR_GUNICORN_BIND=f"127.0.0.1:{port}",
        GREENBAR_GUNICORN_ACCESS_LOG="/dev/null",
        **settings,
        **environment,
    )
    master = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), app],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            # any answer will do: the floor has no /healthz and says 401
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            return master
        except OSError:
            time.sleep(0.2)
    master.terminate()
    raise SystemExit(f"gunicorn did not start {app}: " + master.stderr.read().decode()[-2000:])


def start_gunicorn(url, port, args):
    """Start Greenbar on 127.0.0.1:port; return the master process."""
    return serve(
        "wsgi:app",
        ROOT,
        port,
        args,
        DATABASE_URL=url.render_as_string(hide_password=False),
        SECRET_KEY="bench",
        GREENBAR_INSTANCE_PATH=str(Path(os.environ.get("TMPDIR", "/tmp")) / f"greenbar-bench-{port}"),
    )


def start_floor(port, args):
    """Make the floor's scratch database and serve the floor on 127.0.0.1:port; return (master, token)."""
    token = live_floor.setup()
    return serve("live_floor:app", FLOOR, port, args, DATABASE=live_floor.DB["database"]), token


class Client:
    """One keep-alive connection that sends JSON with Basic auth and times each request."""

    def __init__(self, port, username, password):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {credentials}", "Content-Type": "application/json"}
        self.latencies = []
        self.unexpected = []

    def send(self, method, path, payload):
        """Send one request and return the response."""
        self.connection.request(method, path, body=payload, headers=self.headers)
        return self.connection.getresponse()

    def call(self, method, path, body=None, expected=200):
        """Send one request; remember its latency, and its status if unexpected; return the JSON."""
        payload = None if body is None else json.dumps(body)
        started = time.perf_counter()
        try:
            response = self.send(method, path, payload)
        except (http.client.RemoteDisconnected, ConnectionError):
            # gunicorn closes a connection idle for 5 s (keepalive); such a request never arrived
            self.connection.close()
            response = self.send(method, path, payload)
        data = response.read()
        self.latencies.append(time.perf_counter() - started)
        if response.status != expected:
            self.unexpected.append((method, path, response.status, data[:200]))
        return json.loads(data) if data else None


def read_for(job):
    """A client process: GET one URL for a number of seconds; return latencies and failures."""
    port, username, password, path, seconds = job
    client = Client(port, username, password)
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        client.call("GET", path)
    return client.latencies, client.unexpected


def record_cases(job):
    """A client process: create, start and finish its share of the cases; return latencies and failures."""
    port, token, cases = job
    client = Client(port, "ci", token)
    for suite_url, name, status, duration in cases:
        case = client.call("POST", suite_url + "test-case/", {"name": name}, expected=201)
        case_url = f"{suite_url}test-case/{case['id']}/"
        client.call("POST", case_url + "start/")
        client.call("POST", case_url + "finish/", {"result_status": status, "duration": duration})
    return client.latencies, client.unexpected


class CpuMeter:
    """CPU seconds spent by the app's workers, the database and the client processes during a phase.

    On a shared machine requests per second move with the load; CPU per
    request moves less (it still grows when the cores are crowded), so it is
    the better figure to compare between runs.
    """

    def __init__(self, master_pid):
        self.workers, self.database = children(master_pid), database_pids()
        self.before = self.read()

    def read(self):
        """(app, database, clients) CPU seconds so far."""
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (
            sum(cpu_seconds(pid) for pid in self.workers),
            sum(cpu_seconds(pid) for pid in self.database),
            children.ru_utime + children.ru_stime,
        )

    def per_request(self, requests):
        """Milliseconds of CPU per request since the meter started: app, database, clients."""
        after = self.read()
        return [1000 * (end - start) / requests for start, end in zip(self.before, after, strict=True)]


def run_clients(function, jobs, master_pid=None):
    """Run the jobs in parallel processes; return (requests, seconds, latencies, failures, CPU)."""
    meter = CpuMeter(master_pid) if master_pid else None
    with multiprocessing.Pool(len(jobs)) as pool:
        started = time.perf_counter()
        answers = pool.map(function, jobs)
        elapsed = time.perf_counter() - started
    latencies = [latency for answer in answers for latency in answer[0]]
    failures = [failure for answer in answers for failure in answer[1]]
    cpu = meter.per_request(len(latencies)) if meter else None
    return len(latencies), elapsed, latencies, failures, cpu


def describe(label, requests, elapsed, latencies, failures, cpu=None):
    """Print one line of figures, and the CPU each request cost, if measured."""
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
    print(
        f"{label:34s} {requests:7d} requests in {elapsed:6.1f} s = {requests / elapsed:7.0f} req/s  "
        f"p50 {p50:5.1f} ms  p99 {p99:6.1f} ms  unexpected {len(failures)}"
    )
    if cpu is not None:
        print(
            f"{'':34s} CPU per request: app {cpu[0]:.2f} ms, database {cpu[1]:.2f} ms, "
            f"clients {cpu[2]:.2f} ms; total {sum(cpu):.2f} ms "
            f"(2 cores: at most {2000 / sum(cpu):.0f} req/s on a quiet machine)"
        )
    for failure in failures[:5]:
        print("    ", failure)
    return requests / elapsed, p99


def status_of(index):
    """A realistic spread of results: about 90 % pass, 5 % fail, 3 % skip, 2 % error."""
    if index % 50 == 7:
        return "ERROR"
    if index % 20 == 3:
        return "FAILED"
    if index % 33 == 5:
        return "SKIPPED"
    return "SUCCESS"


def live_run(port, token, ids, args, master_pid):
    """Record a build of one round's cases from the clients; return the figures and the expected counters."""
    setup = Client(port, "ci", token)
    base = f"/api/test-instance/{ids['instance']}/test-build/"
    build = setup.call("POST", base, {"branch": "main", "name": "live benchmark"}, expected=201)
    build_url = f"{base}{build['id']}/"
    setup.call("POST", build_url + "start/")
    suite_urls = []
    for number in range(args.suites):
        suite = setup.call("POST", build_url + "test-suite/", {"name": f"suite {number:02d}"}, expected=201)
        suite_urls.append(f"{build_url}test-suite/{suite['id']}/")
        setup.call("POST", suite_urls[-1] + "start/")
    cases = [
        (suite_urls[n % args.suites], f"test_case_{n:06d}", status_of(n), round(0.001 * (n % 97), 3))
        for n in range(args.suites * args.cases // args.rounds)
    ]
    jobs = [(port, token, cases[client :: args.clients]) for client in range(args.clients)]
    figures = run_clients(record_cases, jobs, master_pid)
    for suite_url in suite_urls:
        setup.call("POST", suite_url + "finish/")
    setup.call("POST", build_url + "finish/")
    expected = {"cases_total": len(cases), "duration": round(sum(case[3] for case in cases), 3)}
    for status, counter in results.STATUS_COUNTER.items():
        expected[counter] = sum(1 for case in cases if case[2] == status)
    stored = setup.call("GET", build_url)
    return figures, expected, stored, setup.unexpected


def floor_run(port, token, args, master_pid):
    """The same round of cases recorded through the floor (its setup calls are not timed)."""
    setup = Client(port, "floor", token)
    instance = setup.call("POST", "/api/test-instance/", {"name": f"floor {uuid.uuid4().hex}"}, expected=201)
    build = setup.call("POST", f"/api/test-instance/{instance['id']}/test-build/", {}, expected=201)
    build_url = f"/api/test-instance/{instance['id']}/test-build/{build['id']}/"
    suite_urls = []
    for number in range(args.suites):
        suite = setup.call("POST", build_url + "test-suite/", {"name": f"suite {number:02d}"}, expected=201)
        suite_urls.append(f"{build_url}test-suite/{suite['id']}/")
    cases = [
        (suite_urls[n % args.suites], f"test_case_{n:06d}", status_of(n), round(0.001 * (n % 97), 3))
        for n in range(args.suites * args.cases // args.rounds)
    ]
    jobs = [(port, token, cases[client :: args.clients]) for client in range(args.clients)]
    return run_clients(record_cases, jobs, master_pid)


def combined(rounds):
    """One (requests, seconds, latencies, failures, CPU) from several rounds; CPU weighted by requests."""
    requests = sum(figures[0] for figures in rounds)
    cpu = [sum(figures[4][n] * figures[0] for figures in rounds) / requests for n in range(3)]
    return (
        requests,
        sum(figures[1] for figures in rounds),
        [x for figures in rounds for x in figures[2]],
        [x for figures in rounds for x in figures[3]],
        cpu,
    )


def check_counts(url, stored, expected, setup_failures):
    """Print whether a build's counters match its cases; False when they do not."""
    counts = {name: stored[name] for name in COUNTED}
    build_counts, suite_sums, row_counts = counted_rows(url, stored["id"])
    exact = (
        counts == {name: expected[name] for name in COUNTED}
        and build_counts == suite_sums == row_counts
        and not setup_failures
    )
    print(
        f"counts: {counts}; build {build_counts} = suites {suite_sums} = rows {row_counts}: "
        f"{'exact' if exact else 'WRONG'}"
    )
    # the counter is a DOUBLE: any drift beyond float rounding would be a lost or doubled addition
    drift = round(stored["cases_duration"] - expected["duration"], 6)
    print(
        f"total duration: stored {stored['cases_duration']} s, "
        f"sum of the cases {expected['duration']} s, drift {drift} s"
    )
    return exact


def counted_rows(url, build_id):
    """The build's counters, and the same numbers counted from its suites' counters and its case rows."""
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        build = connection.execute(sa.select(TestBuild.__table__).where(TestBuild.id == build_id)).one()
        suites = connection.execute(
            sa.select(*[sa.func.sum(getattr(TestSuite, name)) for name in COUNTED]).where(
                TestSuite.build_id == build_id
            )
        ).one()
        rows = dict(
            connection.execute(
                sa.select(TestCase.result_status, sa.func.count())
                .where(TestCase.build_id == build_id)
                .group_by(TestCase.result_status)
            ).all()
        )
    engine.dispose()
    from_rows = [sum(rows.values()), *[rows.get(status, 0) for status in STATUSES]]
    return [getattr(build, name) for name in COUNTED], [int(value) for value in suites], from_rows


def main():
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--worker-class", default="gthread", choices=["gthread", "sync"])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each read phase")
    parser.add_argument("--suites", type=int, default=20)
    parser.add_argument("--cases", type=int, default=500, help="cases per suite, over all rounds")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="live rounds; Greenbar and the floor take turns, each round a new build",
    )
    parser.add_argument(
        "--max-requests",
        type=int,
        default=None,
        help="gunicorn's worker recycling (default: gunicorn.conf.py's); 0 turns it off",
    )
    args = parser.parse_args()
    url = scratch_database()
    live_floor.DB["database"] = f"greenbar_floor_{uuid.uuid4().hex[:8]}"
    master = floor_master = None
    try:
        token, ids = prepare(url)
        port, floor_port = free_port(), free_port()
        master = start_gunicorn(url, port, args)
        floor_master, floor_token = start_floor(floor_port, args)
        recycling = "as gunicorn.conf.py" if args.max_requests is None else args.max_requests
        print(
            f"gunicorn: {args.workers} {args.worker_class} workers x {args.threads} threads "
            f"on 127.0.0.1:{port}, "
            f"max_requests {recycling}; {args.clients} client processes with keep-alive connections; "
            f"MariaDB {url.database}"
        )
        warm = Client(port, "ci", token)
        build = warm.call("POST", f"/api/test-instance/{ids['instance']}/test-build/", {"name": "read"}, 201)
        read_path = f"/api/test-instance/{ids['instance']}/test-build/{build['id']}/"
        for label, password in (("GET with a token", token), ("GET with the password", "ci-password")):
            # a first pass warms every worker (and its password memory) up; the second is measured
            for seconds in (args.seconds / 2, args.seconds):
                figures = run_clients(
                    read_for, [(port, "ci", password, read_path, seconds)] * args.clients, master.pid
                )
            describe(label, *figures)
        # the live run and the floor take turns, so both meet the same load from the rest of the machine
        greenbar_rounds, floor_rounds, exact = [], [], True
        for _ in range(args.rounds):
            figures, expected, stored, setup_failures = live_run(port, token, ids, args, master.pid)
            greenbar_rounds.append(figures)
            exact = check_counts(url, stored, expected, setup_failures) and exact
            floor_rounds.append(floor_run(floor_port, floor_token, args, floor_master.pid))
        rate, p99 = describe("live run: create/start/finish", *combined(greenbar_rounds))
        floor_rate, _ = describe("floor (bare WSGI + PyMySQL)", *combined(floor_rounds))
        print(
            f"Greenbar / floor = {rate / floor_rate:.2f} "
            f"(target 0.7: {'met' if rate >= 0.7 * floor_rate else 'MISSED'}); "
            f"p99 < 50 ms ({'met' if p99 < 50 else 'MISSED'}); "
            f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
        )
        if not exact:
            sys.exit(1)
    finally:
        for process in (master, floor_master):
            if process is not None:
                process.terminate()
                process.wait(timeout=60)
        drop_database(url)
        live_floor.drop()


if __name__ == "__main__":
    main()
