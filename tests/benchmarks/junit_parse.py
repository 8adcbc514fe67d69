"""Parse-speed benchmark of webapp.junit: prints cases per second.

Generates a 100,000-case report (20 suites, 5% failures with stack traces,
2% skips) in memory, then parses it a few times and prints the best run.
Run: ``.venv/bin/python tests/benchmarks/junit_parse.py [runs]``.
Target (issue 4 parse layer): at least 200,000 cases/s on the 2-core box.
"""

import importlib.util
import io
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from webapp.junit import count_statuses  # noqa: E402
from webapp.junit import iter_suites  # noqa: E402


def load_synthetic():
    """Import tests/junit_corpus/synthetic.py by path (tests/ is not a package)."""
    path = ROOT / "tests" / "junit_corpus" / "synthetic.py"
    spec = importlib.util.spec_from_file_location("junit_synthetic", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_once(body):
    """Parse the report body once; return (wall seconds, CPU seconds, cases, counts)."""
    cases = 0
    totals = {}
    wall, cpu = time.perf_counter(), time.process_time()
    for _suite, suite_cases in iter_suites(io.BytesIO(body)):
        cases += len(suite_cases)
        for key, value in count_statuses(suite_cases).items():
            totals[key] = totals.get(key, 0) + value
    return time.perf_counter() - wall, time.process_time() - cpu, cases, totals


def main():
    """Generate the report, parse it ``runs`` times, print the figures."""
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    synthetic = load_synthetic()
    buffer = io.BytesIO()
    size = synthetic.write_report(buffer, suites=20, cases_per_suite=5000)
    body = buffer.getvalue()
    expected = synthetic.expected_counts(20, 5000)
    best_wall = best_cpu = float("inf")
    for _ in range(runs):
        wall, cpu, cases, counts = parse_once(body)
        assert cases == 100_000, cases
        assert all(counts[k] == v for k, v in expected.items()), counts
        best_wall, best_cpu = min(best_wall, wall), min(best_cpu, cpu)
    print(f"report: {size / 1e6:.1f} MB, 100000 cases, {expected}")
    # the box is shared: CPU time is the steadier figure, wall time what a caller sees.
    print(f"best of {runs}: wall {best_wall:.3f} s = {100_000 / best_wall:,.0f} cases/s")
    print(f"best of {runs}: CPU  {best_cpu:.3f} s = {100_000 / best_cpu:,.0f} cases/s")


if __name__ == "__main__":
    main()
