"""``greenbar upload`` for real: the JUnit corpus, a gzip'd report above 50 MB, re-runs, exit statuses."""

import base64
import gzip
import json
import os
import re
from pathlib import Path

import pytest

from tests.clients.conftest import greenbar

CORPUS = Path(__file__).resolve().parents[1] / "junit_corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())
# failsafe-summary.xml is no test report: a folder upload leaves it out, and by name it is refused
REPORTS = sorted(name for name in EXPECTED if "suites" in EXPECTED[name])
PAGE = re.compile(r"^greenbar: (http\S+/builds/\d+)$", re.M)


def build_counts(server, instance, number=None):
    """(cases_total, passed, failed, errored, skipped, flaky) of a build (the only one when no number)."""
    rows = server.query(
        "SELECT b.number, b.cases_total, b.passed, b.failed, b.errored, b.skipped, b.flaky FROM test_builds b"
        " JOIN test_instances i ON i.id = b.instance_id WHERE i.name = %s ORDER BY b.number",
        instance,
    )
    if number is None:
        assert len(rows) == 1, rows
        return rows[0][1:]
    return next(row[1:] for row in rows if row[0] == number)


def expected_counts(names):
    """What the corpus's expected.json says the reports hold."""
    suites = [suite for name in names for suite in EXPECTED[name]["suites"]]
    counts = [
        sum(suite[key] for suite in suites) for key in ("SUCCESS", "FAILED", "ERROR", "SKIPPED", "flaky")
    ]
    return (sum(counts[:4]), *counts)


def test_corpus_report_by_report(server):
    """Each report of the corpus, uploaded into a build of its own, stores exactly what it holds."""
    for number, name in enumerate(REPORTS, start=1):
        run = greenbar("upload", CORPUS / name, env=server.client_env("corpus", build_number=number))
        assert run.returncode == 0, (name, run.stderr)
        assert PAGE.search(run.stdout), run.stdout
        assert build_counts(server, "corpus", number) == expected_counts([name]), name


def test_folder_and_glob_into_one_new_build_then_rerun(server):
    """A folder and a glob make one new build; running the same step again stores nothing new."""
    env = server.client_env("corpus-folder")
    args = ("upload", CORPUS, str(CORPUS / "pytest-*.xml"))
    first = greenbar(*args, env=env)
    assert first.returncode == 0, first.stderr
    assert f"greenbar: {len(REPORTS)} report(s)" in first.stdout
    counts = build_counts(server, "corpus-folder")
    again = greenbar(*args, env=env)
    assert again.returncode == 0, again.stderr
    assert "had been uploaded before: nothing new was stored" in again.stdout
    assert PAGE.findall(again.stdout) == PAGE.findall(first.stdout)
    assert build_counts(server, "corpus-folder") == counts


def test_build_number_is_created_then_added_to(server):
    """With a build number the reports go into that build, made when missing; a rerun adds nothing."""
    env = server.client_env("numbered", build_number=41, branch="main", revision="abc123")
    first = greenbar("upload", CORPUS / "gradle-TEST-CalculatorTest.xml", env=env)
    second = greenbar("upload", CORPUS / "gradle-TEST-OrderTest.xml", env=env)
    repeat = greenbar("upload", CORPUS / "gradle-TEST-OrderTest.xml", env=env)
    assert (first.returncode, second.returncode, repeat.returncode) == (0, 0, 0), second.stderr
    assert build_counts(server, "numbered", 41) == expected_counts(
        ["gradle-TEST-CalculatorTest.xml", "gradle-TEST-OrderTest.xml"]
    )
    assert server.query(
        "SELECT b.branch, b.revision FROM test_builds b JOIN test_instances i ON i.id = b.instance_id"
        " WHERE i.name = 'numbered'"
    ) == (("main", "abc123"),)


def write_big_report(path, cases=800, output_bytes=68_000):
    """A gzip'd JUnit report above 50 MB: each case carries random (incompressible) output."""
    with gzip.open(path, "wt", compresslevel=1) as stream:
        stream.write('<?xml version="1.0"?>\n<testsuite name="big">\n')
        for index in range(cases):
            noise = base64.b64encode(os.urandom(output_bytes)).decode()
            failure = '<failure message="boom">trace</failure>' if index % 10 == 0 else ""
            stream.write(
                f'<testcase classname="big.Suite" name="test_{index}" time="0.01">{failure}'
                f"<system-out>{noise}</system-out></testcase>\n"
            )
        stream.write("</testsuite>\n")


def test_gzip_report_above_50_mb(server, tmp_path):
    """A 50+ MB gzip'd report streams through, with plain progress lines in a CI log."""
    report = tmp_path / "big.xml.gz"
    write_big_report(report)
    assert report.stat().st_size > 50 * 1024 * 1024
    run = greenbar("upload", report, env=server.client_env("big", build_number=1), timeout=600)
    assert run.returncode == 0, run.stderr
    progress = [line for line in run.stderr.splitlines() if line.startswith("greenbar: sent")]
    assert progress and progress[-1].endswith("(100%)"), run.stderr
    assert build_counts(server, "big", 1) == (800, 720, 80, 0, 0, 0)


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("no files", 2, "greenbar: no report file matches"),
        ("no url", 2, "greenbar: GREENBAR_URL is not set"),
        ("bad number", 2, "greenbar: GREENBAR_BUILD_NUMBER must be a whole number"),
        ("wrong token", 3, "greenbar: Greenbar refused: 401"),
        ("bad report", 3, "greenbar: Greenbar refused: 400: body: invalid XML"),
        ("not a report", 3, "greenbar: Greenbar refused: 400: body: not a JUnit report"),
        ("down", 4, "greenbar: http://127.0.0.1:9 gave no answer after"),
    ],
)
def test_exit_statuses(server, tmp_path, case, status, message):
    """Usage and settings 2, refusals 3 with the server's message, unreachable 4; one line, no traceback."""
    env = server.client_env("exits")
    path = CORPUS / "gotestsum.xml"
    if case == "no files":
        path = tmp_path / "missing-*.xml"
    elif case == "no url":
        del env["GREENBAR_URL"]
    elif case == "bad number":
        env["GREENBAR_BUILD_NUMBER"] = "0"
    elif case == "wrong token":
        env["GREENBAR_TOKEN"] = "gb_wrong"
    elif case == "bad report":
        path = tmp_path / "bad.xml"
        path.write_text("<testsuite><testcase name='a'></testsuite>")
    elif case == "not a report":
        path = CORPUS / "failsafe-summary.xml"
    elif case == "down":
        env["GREENBAR_URL"] = "http://127.0.0.1:9"
    run = greenbar("upload", path, "--retry-seconds", "1", env=env)
    assert run.returncode == status
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), run.stderr
