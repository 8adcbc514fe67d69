"""Results the plugin could not send, written as a JUnit XML report for ``greenbar upload``.

Each attempt is its own ``<testcase>``, in order, so the server's import
folds re-runs exactly as the live endpoint would have. The suite (the test
file) is the ``classname``, which Greenbar's import takes as the suite name.
"""

from xml.sax.saxutils import escape
from xml.sax.saxutils import quoteattr

ELEMENT = {"FAILED": "failure", "ERROR": "error", "SKIPPED": "skipped"}


def clean(text):
    """Text XML 1.0 can hold: control characters other than tab and newlines are dropped."""
    return "".join(c for c in text if c >= " " or c in "\t\n\r") if text else ""


def testcase(result):
    """One result as a ``<testcase>`` element."""
    attributes = (
        f"classname={quoteattr(clean(result['suite']))} name={quoteattr(clean(result['name']))}"
        f' time="{result.get("duration") or 0:.6f}"'
    )
    parts = []
    element = ELEMENT.get(result["result_status"])
    if element is not None:
        message = quoteattr(clean(result.get("message")))
        parts.append(f"<{element} message={message}>{escape(clean(result.get('details')))}</{element}>")
    for name in ("system_out", "system_err"):
        if result.get(name):
            tag = name.replace("_", "-")
            parts.append(f"<{tag}>{escape(clean(result[name]))}</{tag}>")
    return f"  <testcase {attributes}>{''.join(parts)}</testcase>\n"


def write(path, results):
    """Write the results (dicts as the batch endpoint takes them) as one JUnit XML report."""
    with open(path, "w", encoding="utf-8") as stream:
        stream.write('<?xml version="1.0" encoding="utf-8"?>\n<testsuite name="pytest">\n')
        for result in results:
            stream.write(testcase(result))
        stream.write("</testsuite>\n")
