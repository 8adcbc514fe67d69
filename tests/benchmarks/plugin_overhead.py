"""pytest plugin overhead: a generated suite of trivial tests, timed with and without the plugin.

Run from the repository root (MariaDB at TEST_DATABASE_URL, default root@127.0.0.1)::

    .venv/bin/python -m tests.benchmarks.plugin_overhead [--tests 10000] [--runs 2]

It starts gunicorn on a scratch database (the import benchmark's set-up),
generates ``--tests`` trivial tests (100 per file) and runs pytest on them in a
subprocess ``--runs`` times each way, alternating: plain, then with the
plugin streaming every result into a new build. It prints each run's wall
time, the best of each and their ratio; target: at most 5 % longer. It then
checks that the last build holds every test.
"""

import argparse
import os
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


def run_pytest(root, env):
    """Run pytest on the generated suite; return its wall seconds."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"pytest failed ({done.returncode}): {done.stdout[-2000:]}")
    return elapsed, done.stdout


def main():
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    url = scratch_database()
    master = None
    try:
        token, _ = prepare(url, 1)
        port = free_port()
        master = start_gunicorn(url, port)
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
                without.append(run_pytest(root, plain)[0])
                seconds, output = run_pytest(root, plugged)
                with_plugin.append(seconds)
                summary = [line for line in output.splitlines() if line.startswith("greenbar:")]
                print(
                    f"run {run}: without {without[-1]:.1f} s, with plugin {seconds:.1f} s ({summary[-1]})",
                    flush=True,
                )
        best_without, best_with = min(without), min(with_plugin)
        print(f"best without: {best_without:.1f} s; best with: {best_with:.1f} s")
        print(f"ratio with/without: {best_with / best_without:.3f} (target <= 1.05)")
        stored = summary[-1].split(" results sent")[0].removeprefix("greenbar: ")
        print(f"results sent in the last run: {stored} of {args.tests}")
    finally:
        if master is not None:
            master.send_signal(signal.SIGTERM)
            master.wait(timeout=60)
        drop_database(url)


if __name__ == "__main__":
    sys.exit(main())
