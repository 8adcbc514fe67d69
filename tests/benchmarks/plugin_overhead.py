"""pytest plugin overhead: a generated suite of trivial tests, timed with and without the plugin.

Run from the repository root (MariaDB at TEST_DATABASE_URL, default root@127.0.0.1)::

    .venv/bin/python -m tests.benchmarks.plugin_overhead [--tests 10000] [--runs 2] [--no-pin]
        [--instructions 1000]

It starts gunicorn on a scratch database (the import benchmark's set-up),
generates ``--tests`` trivial tests (100 per file) and runs pytest on them in a
subprocess ``--runs`` times each way, alternating: plain, then with the
plugin streaming every result into a new build. It prints each run's wall
time, the best of each and their ratio; target: at most 5 % longer. It then
says how many results the last run sent. Wall time moves with the load of a shared
machine, so each run also prints the CPU seconds pytest used (the sender
thread's included): the CPU ratio is the load-independent cross-check.

The server (gunicorn and the local MariaDB) shares this 2-core machine with
pytest, which a CI runner does not: left to the scheduler, the server's work
on the results lands on pytest's core too and is counted as the plugin's. So
pytest runs on the first CPU and the server on the others (``--no-pin`` lets
them mix). Measured on 2026-12-04, best of four runs each way: pinned 1.008
(7.87 s without, 7.93 s with) in one run and 1.056 in another; unpinned
1.06-1.09. The runs of one invocation differ by up to 0.6 s among themselves.

``--instructions N`` also runs a suite of N tests once each way under
valgrind's callgrind and prints the instructions pytest executed: the same
count for the same run whatever else the machine does, so its ratio is what
the plugin itself costs (its start-up included, which weighs more in a small
suite).
"""

import argparse
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.import_bench import drop_database
from tests.benchmarks.import_bench import free_port
from tests.benchmarks.import_bench import prepare
from tests.benchmarks.import_bench import scratch_database
from tests.benchmarks.import_bench import start_gunicorn
from tests.benchmarks.processes import children
from tests.benchmarks.processes import database_pids
from tests.benchmarks.processes import pin
from tests.benchmarks.processes import unpin

PER_FILE = 100
CI_VARIABLES = ("GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL")


def generate(root, count):
    """Write ``count`` trivial tests, :data:`PER_FILE` to a file."""
    (root / "pytest.ini").write_text("[pytest]\n")
    for start in range(0, count, PER_FILE):
        tests = "".join(
            f"def test_{n}():\n    pass\n\n\n" for n in range(start, min(start + PER_FILE, count))
        )
        (root / f"test_gen_{start // PER_FILE:04d}.py").write_text(tests)


def children_cpu():
    """CPU seconds (user + system) used so far by this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_pytest(root, env, cpus=None):
    """Run pytest on the generated suite (on ``cpus`` only, when given); return its wall seconds,
    its CPU seconds and its output."""
    cpu = children_cpu()
    started = time.perf_counter()
    pinned = ["taskset", "-c", ",".join(map(str, sorted(cpus)))] if cpus else []
    done = subprocess.run(
        [*pinned, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"pytest failed ({done.returncode}): {done.stdout[-2000:]}")
    return elapsed, children_cpu() - cpu, done.stdout


def instructions(root, env):
    """The instructions one pytest run executes, counted by callgrind."""
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={scratch}/callgrind.out",
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-p",
                "no:randomly",
            ],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    counted = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or counted is None:
        raise SystemExit(f"callgrind run failed ({done.returncode}): {done.stderr[-2000:]}")
    return int(counted.group(1))


def count_instructions(tests, plain, plugged):
    """Print the instructions of a ``tests``-test suite without and with the plugin, and their ratio."""
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        generate(root, tests)
        without, with_plugin = instructions(root, plain), instructions(root, plugged)
    print(
        f"instructions ({tests} tests, callgrind): without {without:,}, with {with_plugin:,};"
        f" ratio {with_plugin / without:.3f}"
    )


def main():
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument(
        "--instructions",
        type=int,
        default=0,
        metavar="N",
        help="also count pytest's instructions on N tests under callgrind (slow: about 50 x)",
    )
    parser.add_argument("--no-pin", action="store_true", help="let pytest and the server share every CPU")
    args = parser.parse_args()
    url = scratch_database()
    master = None
    pinned = {}
    cpus = sorted(os.sched_getaffinity(0))
    tests_cpus, server_cpus = None, None
    if len(cpus) > 1 and not args.no_pin:
        tests_cpus, server_cpus = {cpus[0]}, set(cpus[1:])
    try:
        token, _ = prepare(url, 1)
        port = free_port()
        master = start_gunicorn(url, port)
        if server_cpus:
            pinned = pin([master.pid, *children(master.pid), *database_pids()], server_cpus)
            print(f"pytest on CPU {sorted(tests_cpus)}, gunicorn and MariaDB on CPU {sorted(server_cpus)}")
        plain = {
            k: v for k, v in os.environ.items() if not k.startswith("GREENBAR_") and k not in CI_VARIABLES
        }
        plugged = dict(
            plain,
            GREENBAR_URL=f"http://127.0.0.1:{port}",
            GREENBAR_USER="ci",
            GREENBAR_TOKEN=token,
            GREENBAR_INSTANCE="overhead",
        )
        with tempfile.TemporaryDirectory() as directory:
            root = Path(directory)
            generate(root, args.tests)
            without, with_plugin = [], []
            for run in range(1, args.runs + 1):
                without.append(run_pytest(root, plain, tests_cpus)[:2])
                seconds, cpu, output = run_pytest(root, plugged, tests_cpus)
                with_plugin.append((seconds, cpu))
                summary = [line for line in output.splitlines() if line.startswith("greenbar:")]
                print(
                    f"run {run}: without {without[-1][0]:.1f} s (CPU {without[-1][1]:.1f} s),"
                    f" with plugin {seconds:.1f} s (CPU {cpu:.1f} s); {summary[-1]}",
                    flush=True,
                )
        for index, what in ((0, "wall"), (1, "CPU")):
            best_without = min(run[index] for run in without)
            best_with = min(run[index] for run in with_plugin)
            print(
                f"best {what}: without {best_without:.1f} s, with {best_with:.1f} s;"
                f" ratio {best_with / best_without:.3f} (target <= 1.05)"
            )
        stored = summary[-1].split(" results sent")[0].removeprefix("greenbar: ")
        print(f"results sent in the last run: {stored} of {args.tests}")
        if args.instructions:
            count_instructions(args.instructions, plain, plugged)
    finally:
        unpin(pinned)
        if master is not None:
            master.send_signal(signal.SIGTERM)
            master.wait(timeout=60)
        drop_database(url)


if __name__ == "__main__":
    sys.exit(main())
