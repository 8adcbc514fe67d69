"""Deterministic generator of large JUnit XML reports for tests and benchmarks.

Every 20th case (index % 20 == 7) fails with a Java-like stack trace and
every 50th (index % 50 == 3) is skipped; the two never coincide, so the
expected counts follow from the sizes alone (see ``expected_counts``).
"""

FAIL_EVERY = 20
FAIL_AT = 7
SKIP_EVERY = 50
SKIP_AT = 3

_TRACE_LINE = "\tat com.example.suite{s:02d}.Service{f:02d}.call(Service{f:02d}.java:{n})\n"


def case_status(index):
    """The status the generator gives case number ``index`` of a suite."""
    if index % FAIL_EVERY == FAIL_AT:
        return "FAILED"
    if index % SKIP_EVERY == SKIP_AT:
        return "SKIPPED"
    return "SUCCESS"


def expected_counts(suites, cases_per_suite):
    """Counts per status for a report made with these sizes."""
    counts = {"SUCCESS": 0, "FAILED": 0, "ERROR": 0, "SKIPPED": 0}
    for index in range(cases_per_suite):
        counts[case_status(index)] += suites
    return counts


def write_report(out, suites=20, cases_per_suite=5000, trace_lines=30):
    """Write a report to the binary file object ``out``; return bytes written."""
    written = out.write(b'<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="synthetic">\n')
    for s in range(suites):
        written += out.write(_suite(s, cases_per_suite, trace_lines).encode())
    written += out.write(b"</testsuites>\n")
    return written


def _suite(s, cases_per_suite, trace_lines):
    """One <testsuite> element as text."""
    cls = f"com.example.suite{s:02d}.Suite{s:02d}Test"
    parts = [
        f'  <testsuite name="{cls}" tests="{cases_per_suite}" time="{cases_per_suite * 0.004:.3f}"'
        f' timestamp="2026-01-{s % 28 + 1:02d}T10:00:00">\n'
        f'    <properties><property name="suite.index" value="{s}"/></properties>\n'
    ]
    for i in range(cases_per_suite):
        status = case_status(i)
        head = f'    <testcase classname="{cls}" name="test_case_{i:05d}" time="0.{i % 1000:03d}"'
        if status == "SUCCESS":
            parts.append(head + "/>\n")
        elif status == "SKIPPED":
            parts.append(head + '><skipped message="disabled on this platform"/></testcase>\n')
        else:
            trace = "".join(_TRACE_LINE.format(s=s, f=k % 7, n=100 + k) for k in range(trace_lines))
            parts.append(
                head + f'><failure message="expected:&lt;{i}&gt; but was:&lt;{i + 1}&gt;" '
                f'type="java.lang.AssertionError">java.lang.AssertionError: expected:&lt;{i}&gt; '
                f"but was:&lt;{i + 1}&gt;\n{trace}</failure></testcase>\n"
            )
    parts.append("  </testsuite>\n")
    return "".join(parts)
