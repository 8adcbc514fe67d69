"""Tests of webapp.junit: the corpus, unsafe and broken input, re-runs, odd values, limits, memory.

Expected numbers come from tests/junit_corpus/expected.json, worked out by
reading each report by hand (see the corpus README).
"""

import gc
import gzip
import io
import json
import subprocess
import sys
import tracemalloc
from datetime import datetime
from datetime import timezone
from pathlib import Path

import pytest

from tests.junit_corpus import synthetic
from webapp import junit
from webapp.junit import ReportError
from webapp.junit import ReportTooLarge
from webapp.junit import count_statuses
from webapp.junit import iter_suites

CORPUS = Path(__file__).parent / "junit_corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
ROOT = Path(__file__).resolve().parents[1]


def parse(body):
    """Parse a report given as bytes or str into a list of (suite, cases)."""
    if isinstance(body, str):
        body = body.encode()
    return list(iter_suites(io.BytesIO(body)))


def parse_file(name):
    """Parse one corpus file."""
    with open(CORPUS / name, "rb") as report:
        return list(iter_suites(report))


def cases_by_name(results):
    """All cases of a parse, keyed by (suite name, case name)."""
    return {(suite.name, case.name): case for suite, cases in results for case in cases}


def one_case(body):
    """Parse a report that must hold exactly one case and return it."""
    results = parse(body)
    assert len(results) == 1 and len(results[0][1]) == 1, results
    return results[0][1][0]


def summary(results):
    """Per suite: name, counts per status, flaky count and total attempts."""
    rows = []
    for suite, cases in results:
        row = count_statuses(cases)
        row["name"] = suite.name
        row["attempts"] = sum(case.attempts for case in cases)
        rows.append(row)
    return rows


# --- the corpus ---------------------------------------------------------------


def test_every_corpus_report_has_expectations():
    """Is each XML file of the corpus listed in expected.json, and the other way round?"""
    assert {path.name for path in CORPUS.glob("*.xml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(name for name, want in EXPECTED.items() if "suites" in want))
def test_corpus_report_parses_to_its_hand_counted_numbers(name):
    """Does each real report give the suites, statuses, flaky cases and attempts counted by hand?"""
    assert summary(parse_file(name)) == EXPECTED[name]["suites"]


@pytest.mark.parametrize("name", sorted(name for name, want in EXPECTED.items() if "error" in want))
def test_corpus_file_that_is_no_report_is_refused(name):
    """Is a file that is not a test report (failsafe-summary.xml) refused with a clear message?"""
    with pytest.raises(ReportError, match=EXPECTED[name]["error"]):
        parse_file(name)


def test_surefire_flaky_and_rerun_elements():
    """Do flakyFailure/flakyError pass with attempts, and rerunFailure/rerunError keep failing?"""
    cases = cases_by_name(parse_file("surefire-TEST-CalculatorTest.xml"))
    suite = "com.example.CalculatorTest"
    flaky = cases[suite, "flakyFailsOnce"]
    assert (flaky.status, flaky.flaky, flaky.attempts) == ("SUCCESS", True, 2)
    assert flaky.message == "first attempt fails ==> expected: <2> but was: <1>"
    assert flaky.error_type == "org.opentest4j.AssertionFailedError"
    assert flaky.details.startswith("org.opentest4j.AssertionFailedError: first attempt fails")
    failing = cases[suite, "alwaysFails"]
    assert (failing.status, failing.flaky, failing.attempts) == ("FAILED", False, 3)
    erroring = cases[suite, "alwaysErrors"]
    assert (erroring.status, erroring.attempts, erroring.message) == ("ERROR", 3, "boom <&>")
    assert cases[suite + "$WhenEmpty", "isEmpty"].status == "SUCCESS"


def test_failsafe_times_with_thousands_commas_and_repeated_flaky_errors():
    """Are "1,204.331" seconds read, and does a case with two flakyErrors count three attempts?"""
    [(suite, cases)] = parse_file("failsafe-TEST-com.example.it.CheckoutIT.xml")
    assert suite.duration == pytest.approx(1204.331)
    by_name = {case.name: case for case in cases}
    assert by_name["shippingLabel"].duration == pytest.approx(1150.0)
    assert by_name["shippingLabel"].system_err == "docker: pull rate limit reached\n"
    lock = by_name["inventoryLock"]
    assert (lock.status, lock.flaky, lock.attempts) == ("SUCCESS", True, 3)
    assert lock.message == "Deadlock found when trying to get lock"
    assert by_name["checkoutHappyPath"].system_out.startswith("[main] INFO Checkout")
    assert ("surefire.rerunFailingTestsCount", "2") in suite.properties


def test_pytest_rerunfailures_records_merge_into_one_case():
    """Does a test whose failed attempts were written as empty records come out flaky?"""
    cases = cases_by_name(parse_file("pytest-rerunfailures.xml"))
    flaky = cases["test_sample", "test_flaky_then_pass"]
    assert (flaky.status, flaky.flaky, flaky.attempts) == ("SUCCESS", True, 2)
    failing = cases["test_sample", "test_fail"]
    assert (failing.status, failing.flaky, failing.attempts) == ("FAILED", False, 3)
    assert failing.message.startswith("AssertionError: dicts differ")


def test_gotestsum_rerun_keeps_the_failure_of_the_flaky_attempt():
    """Does a flaky pass keep the message and details of the attempt that failed?"""
    cases = cases_by_name(parse_file("gotestsum-rerun-fails.xml"))
    flaky = cases["example.com/tiny/strutil", "TestFlaky"]
    assert (flaky.status, flaky.flaky, flaky.attempts, flaky.message) == ("SUCCESS", True, 2, "Failed")
    assert "first attempt fails" in flaky.details


def test_pytest_xfail_properties_output_and_timestamp():
    """Are xfail, record_property, record_testsuite_property, captured output and the timestamp kept?"""
    results = parse_file("pytest-xunit1.xml")
    suites = {suite.name: suite for suite, _cases in results}
    cases = cases_by_name(results)
    xfail = cases["test_sample", "test_xfail"]
    assert (xfail.status, xfail.error_type, xfail.message) == ("SKIPPED", "pytest.xfail", "known bug #12")
    assert cases["test_sample", "test_xpass_strict"].status == "FAILED"
    assert cases["test_sample", "test_pass"].properties == [("ticket", "GB-42")]
    assert suites["test_sample"].properties == [("python", "3.11"), ("ci", "local")]
    assert "hello on stdout" in cases["test_sample", "test_output"].system_out
    assert "oops on stderr" in cases["test_sample", "test_output"].system_err
    started = suites["test_sample"].started
    assert started.tzinfo is not None and started.utcoffset().total_seconds() == 0
    assert cases["test_sample", "test_double[3-7]"].details.endswith("AssertionError")
    assert cases["test_sample", "test_output_and_fail"].message == 'ValueError: bad value <&> "quoted"'


def test_robot_nested_suites_naive_timestamps_and_late_properties():
    """Are Robot's naive timestamps UTC and its properties (written after the cases) kept?"""
    results = parse_file("robot-xunit.xml")
    login = results[0][0]
    assert login.started == datetime(2026, 11, 23, 5, 1, 24, 435123, tzinfo=timezone.utc)
    assert ("Owner", "qa-team") in login.properties
    assert login.duration == pytest.approx(0.011)


def test_suite_level_output_and_messages_without_attribute():
    """Are suite system-out/err kept, and is a message taken from the text when none is given?"""
    [(ant, _cases)] = parse_file("ant-junit-TEST-CalculatorTest.xml")
    assert ant.system_out == "stdout line from CalculatorTest\n"
    assert ant.system_err == "stderr line from CalculatorTest\n"
    jest = parse_file("jest-junit-templates.xml")
    undefined = jest[2][0]
    assert undefined.name == "undefined" and "hello from jest" in undefined.system_out
    failing = cases_by_name(jest)["math", "subtracts wrongly"]
    assert failing.message == "Error: expect(received).toBe(expected) // Object.is equality"
    go = parse_file("go-junit-report.xml")
    assert go[0][0].system_out == "coverage: 71.3% of statements\nexit status 1"
    assert '"SPRING" & "VIP"' in cases_by_name(go)["example.com/shop/cart", "TestTotal/with_discount"].details


def test_ctest_status_attribute_and_skip_messages():
    """Is CTest's status="disabled" (no child) a skip, and its skip reason the message?"""
    cases = cases_by_name(parse_file("ctest-output-junit.xml"))
    assert cases["(empty)", "disabled"].status == "SKIPPED"
    assert cases["(empty)", "skips"].message == "SKIP_RETURN_CODE=77"
    assert cases["(empty)", "times_out"].duration == pytest.approx(1.00397)


def test_phpunit_data_provider_cases_join_their_class():
    """Do PHPUnit's nested data-provider suites land in their class's suite?"""
    results = parse_file("phpunit-nested.xml")
    cases = cases_by_name(results)
    wrong = cases["App.Tests.Unit.CalculatorTest", 'testAddProvider with data set "wrong"']
    assert wrong.status == "FAILED"
    assert wrong.error_type == "PHPUnit\\Framework\\ExpectationFailedException"
    assert cases["App.Tests.Unit.CalculatorTest", "testRisky"].system_out == "printed output"
    # the class suite's time covers only part of its cases here, so it is their sum.
    calculator = results[0][0]
    assert calculator.duration == pytest.approx(sum(case.duration for case in results[0][1]))


def test_edge_case_values():
    """Do the hand-written odd values of edge-cases.xml come out as documented?"""
    results = parse_file("edge-cases.xml")
    suites = {suite.name: suite for suite, _cases in results}
    cases = cases_by_name(results)
    inner = "Outer › Inner"
    durations = {name: case.duration for (suite, name), case in cases.items() if suite == inner}
    assert durations["empty time"] is None
    assert durations["thousands"] == 1234.5
    assert durations["decimal comma"] == 0.5
    assert durations["not a number"] is None
    assert durations["negative"] is None
    assert durations["infinite"] is None
    assert durations["no time attribute"] is None
    # "N/A" as suite time: the sum of the known case times instead.
    assert suites[inner].duration == pytest.approx(1234.5 + 0.5 + 0.3 + 0.001 + 0.01 + 0.01)
    assert suites[inner].started == datetime(2026, 3, 1, 12, 0, 5, tzinfo=timezone.utc)
    assert suites["Outer"].started == datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)
    assert suites[inner].properties == [
        ("build.branch", "main"),
        ("build.note", "set by a <property> text value"),
    ]
    assert suites[inner].system_out == "outer suite output"
    retried = cases[inner, "retried"]
    assert (retried.status, retried.flaky, retried.attempts) == ("SUCCESS", True, 2)
    assert retried.message == "first try"
    assert cases[inner, "message from text"].message == "Traceback (most recent call last):"
    both = cases[inner, "error beats failure"]
    assert (both.status, both.message, both.error_type) == ("ERROR", "e", "E")
    assert (inner, "ünïcödé & <markup>") in cases
    assert cases["edge cases", "loose case"].duration == 2.0
    assert "Empty" not in suites


# --- unsafe and broken input ----------------------------------------------------

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(f' <!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">\n' for i in range(1, 10))
    + ']>\n<testsuite name="&lol9;"><testcase name="x"/></testsuite>\n'
)


@pytest.mark.parametrize(
    "body",
    [
        '<?xml version="1.0"?>\n<!DOCTYPE t [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        '<testsuite name="a"><testcase name="&xxe;"/></testsuite>',
        '<?xml version="1.0"?>\n<!DOCTYPE testsuite SYSTEM "http://127.0.0.1:9/evil.dtd">\n'
        '<testsuite name="a"><testcase name="b"/></testsuite>',
        BILLION_LAUGHS,
        '<!DOCTYPE testsuite [<!ELEMENT testsuite ANY>]><testsuite name="a"><testcase name="b"/></testsuite>',
        '<?xml version="1.0"?><!-- note --><!DOCTYPE testsuites><testsuites/>',
    ],
    ids=["xxe-file-entity", "external-dtd", "billion-laughs", "internal-subset", "doctype-after-comment"],
)
def test_doctype_and_entity_declarations_are_refused(body):
    """Are XXE, external DTDs, entity bombs and any DOCTYPE refused, with the position?"""
    with pytest.raises(ReportError, match=r"DOCTYPE/DTD declarations are not allowed.*line \d+, column \d+"):
        parse(body)


def test_doctype_behind_a_long_prolog_is_still_refused():
    """Is a DOCTYPE past the early scan (behind 100 KB of comment) refused by the parser itself?"""
    body = "<!--" + "x" * 100_000 + '-->\n<!DOCTYPE t [<!ENTITY e "e">]><testsuite name="&e;"/>'
    with pytest.raises(ReportError, match="DOCTYPE/DTD declarations are not allowed"):
        parse(body)


def test_doctype_in_utf16_is_refused():
    """Is a DOCTYPE refused in an encoding the byte scan cannot read?"""
    body = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE t [<!ENTITY e "e">]><testsuite name="&e;"/>'
    with pytest.raises(ReportError, match="DOCTYPE/DTD declarations are not allowed"):
        parse(body.encode("utf-16"))


@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        (
            '<testsuite name="a">\n  <testcase name="b">\n  </testsuit>\n',
            r"invalid XML at line 3, column \d+: .*mismatch",
        ),
        ('<testsuite name="a">\n  <testcase name="b"/>\n  <testca', r"invalid XML at line 3, column \d+"),
        ('<testsuite name="a">\n  <testcase name="b"/>\n', r"invalid XML at line 3, column 1: Premature end"),
        (
            '<testsuite name="a">\n<testcase name="&nope;"/></testsuite>',
            r"invalid XML at line 2, column \d+: .*nope",
        ),
        ("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", r"invalid XML at line 1, column 1"),
        ("just some text", r"invalid XML at line 1, column 1"),
        ("", r"the report is empty"),
        ('<?xml version="1.0"?>', r"invalid XML at line 1, column 22: Start tag expected"),
        ("<html><body>Bad Gateway</body></html>", r"not a JUnit report: the root element is <html>"),
        ('<testcase name="alone"/>', r"not a JUnit report: the root element is <testcase>"),
    ],
    ids=[
        "mismatched-tag",
        "truncated-in-tag",
        "truncated-after-case",
        "undefined-entity",
        "binary",
        "plain-text",
        "empty",
        "declaration-only",
        "html",
        "testcase-root",
    ],
)
def test_broken_input_is_refused_with_a_clear_message(body, pattern):
    """Is invalid or non-JUnit input a ReportError that says where and what?"""
    with pytest.raises(ReportError, match=pattern):
        parse(body)


def test_deeply_nested_suites_are_refused():
    """Are suites nested past MAX_SUITE_DEPTH refused, and nesting up to it read?"""
    depth = junit.MAX_SUITE_DEPTH
    deep = '<testsuite name="n">' * (depth + 1) + '<testcase name="c"/>' + "</testsuite>" * (depth + 1)
    with pytest.raises(ReportError, match=f"nested more than {depth} levels deep"):
        parse(deep)
    fits = '<testsuite name="n">' * depth + '<testcase name="c"/>' + "</testsuite>" * depth
    [(suite, _cases)] = parse(fits)
    assert suite.name == " › ".join(["n"] * depth)


def test_size_cap_on_the_bytes_read():
    """Is a body over max_bytes refused with ReportTooLarge (a ReportError), and one under it read?"""
    body = b'<testsuite name="a">' + b'<testcase name="c"/>' * 10_000 + b"</testsuite>"
    with pytest.raises(ReportTooLarge, match="larger than 100000 bytes"):
        list(iter_suites(io.BytesIO(body), max_bytes=100_000))
    assert len(list(iter_suites(io.BytesIO(body), max_bytes=len(body)))[0][1]) == 1


def test_gzip_bodies_through_gzipfile():
    """Does a gzip body wrapped in GzipFile parse, and is a corrupt one a ReportError?"""
    body = (CORPUS / "go-junit-report.xml").read_bytes()
    packed = gzip.compress(body)
    with gzip.GzipFile(fileobj=io.BytesIO(packed)) as stream:
        assert summary(list(iter_suites(stream))) == EXPECTED["go-junit-report.xml"]["suites"]
    corrupt = gzip.GzipFile(fileobj=io.BytesIO(packed[:40] + b"\x00" * 40))
    with corrupt as stream, pytest.raises(ReportError, match="could not read the report"):
        list(iter_suites(stream))


# --- re-runs ------------------------------------------------------------------------


def report(*cases, suite="S"):
    """A one-suite report from case element strings."""
    return f'<testsuite name="{suite}">{"".join(cases)}</testsuite>'


def test_rerun_fail_fail_pass_is_flaky_with_the_last_failure():
    """Does fail, fail, pass give one flaky SUCCESS with three attempts and the last failure's message?"""
    case = one_case(
        report(
            '<testcase classname="k" name="t" time="1"><failure message="one">1</failure></testcase>',
            '<testcase classname="k" name="t" time="2"><error message="two" type="E">2</error></testcase>',
            '<testcase classname="k" name="t" time="3"/>',
        )
    )
    assert (case.status, case.flaky, case.attempts, case.duration) == ("SUCCESS", True, 3, 3.0)
    assert (case.message, case.error_type, case.details) == ("two", "E", "2")


@pytest.mark.parametrize(
    ("first", "last", "status", "flaky"),
    [
        ("<failure/>", "", "SUCCESS", True),
        ("", "<failure/>", "FAILED", False),
        ("<skipped/>", "", "SUCCESS", False),
        ("", "", "SUCCESS", True),
        ("<error/>", "<error/>", "ERROR", False),
        ("<failure/>", "<skipped/>", "SKIPPED", False),
    ],
    ids=["fail-pass", "pass-fail", "skip-pass", "empty-pass", "error-error", "fail-skip"],
)
def test_last_attempt_decides_and_flaky_needs_a_pass_after_a_non_skip(first, last, status, flaky):
    """Is the status the last record's, and flaky set only for a pass after a failed (or empty) try?"""
    case = one_case(report(f'<testcase name="t">{first}</testcase>', f'<testcase name="t">{last}</testcase>'))
    assert (case.status, case.flaky, case.attempts) == (status, flaky, 2)


def test_reruns_merge_across_nested_suite_elements_and_keep_first_order():
    """Are records of one test in two nested suite elements merged, in order of first appearance?"""
    body = (
        '<testsuites><testsuite name="top">'
        '<testsuite name="a"><testcase classname="m" name="x"><failure/></testcase>'
        '<testcase classname="m" name="y"/></testsuite>'
        '<testsuite name="b"><testcase classname="m" name="x"/><testcase classname="m" name="z"/></testsuite>'
        "</testsuite></testsuites>"
    )
    [(suite, cases)] = parse(body)
    assert suite.name == "m"
    assert [(c.name, c.status, c.flaky, c.attempts) for c in cases] == [
        ("x", "SUCCESS", True, 2),
        ("y", "SUCCESS", False, 1),
        ("z", "SUCCESS", False, 1),
    ]


def test_same_name_in_different_suites_is_not_a_rerun():
    """Are equal case names under different classnames kept as different tests?"""
    results = parse(
        report('<testcase classname="a" name="t"><failure/></testcase>', '<testcase classname="b" name="t"/>')
    )
    assert [(suite.name, [c.status for c in cases]) for suite, cases in results] == [
        ("a", ["FAILED"]),
        ("b", ["SUCCESS"]),
    ]


# --- suite names -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("classname", "name", "suite"),
    [
        ("tests.test_mod.TestX", "test_a", "tests.test_mod.TestX"),
        ("", "test_a", "Top › Leaf"),
        ("same", "same", "Top › Leaf"),
        ("describe it works", "it works", "Top › Leaf"),
        ("it works", "describe it works", "Top › Leaf"),
        ("tests.test_foo", "test_foo", "tests.test_foo"),
    ],
    ids=[
        "pytest-class",
        "no-classname",
        "classname-is-name",
        "jest-classname",
        "mocha-fulltitle",
        "dotted-suffix",
    ],
)
def test_suite_name_is_classname_unless_derived_from_the_title(classname, name, suite):
    """Is the classname the suite name only when it is a grouping key, else the suite path?"""
    case = f'<testcase classname="{classname}" name="{name}"/>'
    [(parsed, _cases)] = parse(f'<testsuite name="Top"><testsuite name="Leaf">{case}</testsuite></testsuite>')
    assert parsed.name == suite


def test_cases_straight_under_testsuites_around_a_suite():
    """Are cases outside any <testsuite> filed under the root's name, before and after a suite?"""
    body = (
        '<testsuites name="all"><system-out>root output</system-out>'
        '<testcase name="first"/><testsuite name="S"><testcase name="inside"/></testsuite>'
        '<testcase name="last"><failure/></testcase></testsuites>'
    )
    results = parse(body)
    assert [(suite.name, [case.name for case in cases]) for suite, cases in results] == [
        ("all", ["first"]),
        ("S", ["inside"]),
        ("all", ["last"]),
    ]
    assert results[0][0].system_out == "root output"
    assert results[2][0].system_out is None


def test_top_level_suites_are_yielded_while_the_body_is_still_being_read():
    """Is the first suite handed out long before the end of a large body is read?"""

    class Tracking(io.BytesIO):
        """BytesIO that remembers how far it has been read."""

        def read(self, size=-1):
            data = super().read(size)
            self.high = self.tell()
            return data

    buffer = io.BytesIO()
    size = synthetic.write_report(buffer, suites=20, cases_per_suite=1000)
    stream = Tracking(buffer.getvalue())
    suites = iter_suites(stream)
    next(suites)
    assert stream.high < size / 5
    assert sum(1 for _ in suites) == 19


def test_garbage_collector_runs_whenever_the_caller_has_control():
    """Is the cyclic GC on at each yield, after an early stop and after a refused report?"""
    body = (CORPUS / "gotestsum.xml").read_bytes()
    for _suite, _cases in iter_suites(io.BytesIO(body)):
        assert gc.isenabled()
    assert gc.isenabled()
    stopped = iter_suites(io.BytesIO(body))
    next(stopped)
    stopped.close()
    assert gc.isenabled()
    with pytest.raises(ReportError):
        parse("<testsuite><testcase></testsuite>")
    assert gc.isenabled()
    gc.disable()
    try:
        parse(body)
        assert not gc.isenabled()
    finally:
        gc.enable()


# --- limits -----------------------------------------------------------------------


def check_clipped(text, original, limit):
    """Assert ``text`` is ``original`` cut to ``limit`` around a marker counting the cut."""
    assert len(text) <= limit
    head, marker, tail = text.partition("\n[... ")
    assert marker, text[:80]
    cut = int(tail.split(" ", 1)[0])
    tail = tail.split(" characters truncated by Greenbar ...]\n", 1)[1]
    assert original.startswith(head) and original.endswith(tail)
    assert len(head) + cut + len(tail) == len(original)
    assert len(text) > limit - 100


@pytest.mark.parametrize("size", [junit.OUTPUT_LIMIT + 1, junit.OUTPUT_LIMIT * 3, 5_000_000])
def test_output_is_clipped_to_head_and_tail(size):
    """Is a long system-out cut to OUTPUT_LIMIT with its start and end kept, even when huge?"""
    original = "".join(f"line {i:07d}\n" for i in range(size // 13 + 1))[:size]
    case = one_case(report(f'<testcase name="t"><system-out><![CDATA[{original}]]></system-out></testcase>'))
    check_clipped(case.system_out, original, junit.OUTPUT_LIMIT)


def test_texts_at_their_limit_are_kept_whole():
    """Is a text exactly at a limit left as it is?"""
    out = "o" * junit.OUTPUT_LIMIT
    details = "d" * junit.DETAILS_LIMIT
    message = "m" * junit.MESSAGE_LIMIT
    case = one_case(
        report(
            f'<testcase name="t"><failure message="{message}">{details}</failure>'
            f"<system-out>{out}</system-out></testcase>"
        )
    )
    assert (case.system_out, case.details, case.message) == (out, details, message)


def test_details_message_and_properties_are_clipped():
    """Are details, messages, property values and the number of properties held to their limits?"""
    details = "trace line\n" * (junit.DETAILS_LIMIT // 5)
    message = "x" * (junit.MESSAGE_LIMIT * 2)
    value = "v" * (junit.PROPERTY_VALUE_LIMIT + 10)
    props = "".join(f'<property name="p{i}" value="{i}"/>' for i in range(junit.MAX_PROPERTIES + 5))
    body = (
        f'<testsuite name="S"><properties><property name="long" value="{value}"/>{props}</properties>'
        f'<testcase name="t"><error message="{message}">{details}</error></testcase></testsuite>'
    )
    [(suite, [case])] = parse(body)
    check_clipped(case.details, details, junit.DETAILS_LIMIT)
    check_clipped(case.message, message, junit.MESSAGE_LIMIT)
    assert len(suite.properties) == junit.MAX_PROPERTIES
    check_clipped(suite.properties[0][1], value, junit.PROPERTY_VALUE_LIMIT)


# --- memory -------------------------------------------------------------------------


def test_python_memory_stays_far_below_the_report_size():
    """Does the parse hold one suite's cases, not the report? (tracemalloc peak vs. file size)

    160 suites of 125 cases make a 4 MB report.  Keeping every parsed case
    takes about 8 MB of Python memory (twice the file); streaming holds one
    suite and one 64 KiB chunk at a time, well under an eighth of the file.
    """
    buffer = io.BytesIO()
    size = synthetic.write_report(buffer, suites=160, cases_per_suite=125)
    stream = io.BytesIO(buffer.getvalue())
    del buffer
    tracemalloc.start()
    try:
        cases = sum(len(suite_cases) for _suite, suite_cases in iter_suites(stream))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert cases == 160 * 125
    assert peak < size / 8, (peak, size)


PROBE = """
import resource, sys
from webapp.junit import iter_suites
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open(sys.argv[1], "rb") as report:
    cases = sum(len(c) for _s, c in iter_suites(report))
print(cases, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def test_process_memory_does_not_grow_with_the_file(tmp_path):
    """Does a 20 MB report raise the peak RSS of a fresh process by less than a quarter of its size?

    This counts libxml2's memory too, which tracemalloc cannot see: building
    the tree of this file takes about 120 MB, keeping its parsed cases 40 MB.
    """
    path = tmp_path / "big.xml"
    with open(path, "wb") as out:
        size = synthetic.write_report(out, suites=100, cases_per_suite=1000)
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    cases, growth_kib = map(int, result.stdout.split())
    assert cases == 100_000
    assert growth_kib * 1024 < size / 4, (growth_kib, size)
