"""Parse-speed benchmark of webapp.junit: prints cases per second.

Generates a 100,000-case report (20 suites, 5% failures with 30-line stack
traces, 2% skips) in memory, then alternates a few runs of ``iter_suites``
with runs of bare lxml ``iterparse`` over the same bytes (reading each
<testcase> and freeing it: the floor any lxml-based reader starts from) and
prints the best of each.  The box is shared, so CPU time is the steadier
figure and wall time what a caller sees.
Run: ``.venv/bin/python tests/benchmarks/junit_parse.py [runs]``.
Target (issue 4 parse layer): at least 200,000 cases/s.
"""

import io
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from lxml import etree  # noqa: E402

from tests.junit_corpus import synthetic  # noqa: E402
from webapp.junit import count_statuses  # noqa: E402
from webapp.junit import iter_suites  # noqa: E402

SUITES = 20
CASES_PER_SUITE = 5000


def timed(function, body):
    """Run ``function(body)``; return (wall seconds, CPU seconds, its result)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(body)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def parse_with_greenbar(body):
    """Parse with iter_suites; return the counts per status over all suites."""
    totals = {}
    for _suite, cases in iter_suites(io.BytesIO(body)):
        for key, value in count_statuses(cases).items():
            totals[key] = totals.get(key, 0) + value
    return totals


def parse_with_bare_iterparse(body):
    """Read each case's attributes with iterparse and free it; return the case count."""
    cases = 0
    for _event, elem in etree.iterparse(io.BytesIO(body), events=("end",), tag="testcase"):
        elem.get("name"), elem.get("classname"), elem.get("time")
        cases += 1
        elem.clear()
        while elem.getprevious() is not None:
            del elem.getparent()[0]
    return cases


def main():
    """Generate the report, alternate the two parsers ``runs`` times, print the figures."""
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    buffer = io.BytesIO()
    size = synthetic.write_report(buffer, suites=SUITES, cases_per_suite=CASES_PER_SUITE)
    body = buffer.getvalue()
    total = SUITES * CASES_PER_SUITE
    expected = synthetic.expected_counts(SUITES, CASES_PER_SUITE)
    best = {"greenbar": [float("inf")] * 2, "iterparse": [float("inf")] * 2}
    for _ in range(runs):
        wall, cpu, counts = timed(parse_with_greenbar, body)
        assert all(counts[key] == value for key, value in expected.items()), counts
        best["greenbar"] = [min(best["greenbar"][0], wall), min(best["greenbar"][1], cpu)]
        wall, cpu, cases = timed(parse_with_bare_iterparse, body)
        assert cases == total, cases
        best["iterparse"] = [min(best["iterparse"][0], wall), min(best["iterparse"][1], cpu)]
    print(f"report: {size / 1e6:.1f} MB, {total} cases, {expected}")
    for name, (wall, cpu) in best.items():
        print(f"{name:10} best of {runs}: wall {total / wall:9,.0f} cases/s  CPU {total / cpu:9,.0f} cases/s")
    ratio = best["iterparse"][1] / best["greenbar"][1]
    print(f"webapp.junit runs at {ratio:.0%} of the bare iterparse floor (CPU)")


if __name__ == "__main__":
    main()
