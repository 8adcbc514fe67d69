"""Every page under the app's own Content-Security-Policy, in a real browser: no violation anywhere.

The app sends a strict policy (no inline script or style). A page that still
carried an inline ``<script>``, a ``style=`` attribute or a handler such as
``onclick`` would lose it silently in users' browsers; here each violation the
browser reports fails the test.

The crawl starts at the anonymous pages and at the home page as an admin and
follows every link on the site, one page per URL shape (ids replaced), so each
kind of page (instances, builds, suites, cases, admin lists and forms,
account pages) is loaded once with its charts and fragments.
"""

import re
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser

# Chromium fires this DOM event for every blocked resource, inline script or style
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", event => {
    window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`
        + ` at ${event.sourceFile || "?"}:${event.lineNumber}`);
});
"""
ANONYMOUS_PAGES = ["/auth/login", "/auth/reset", "/auth/reset/not-a-token"]
# links that end the session, leave the pages or download a file: never followed
SKIPPED = re.compile(r"^/(api|static|bootstrap)/|/logout$|/export/")
MOST_PAGES = 80


def shape(path):
    """The path with its ids replaced and no query: one visit per kind of page."""
    return re.sub(r"/\d+(?=/|$)", "/N", path.partition("?")[0])


def violations_on(tab, path):
    """Load ``path``, let its fragments arrive, and return the violations plus same-site links."""
    response = tab.goto(path, wait_until="networkidle")
    assert response is not None and response.status < 500, (path, response and response.status)
    assert "script-src 'self'" in response.headers["content-security-policy"], path
    found = tab.evaluate("window.__cspViolations")
    links = tab.eval_on_selector_all("a[href]", "anchors => anchors.map(a => a.href)")
    return found, links


def crawl(tab, start, origin):
    """Visit pages from ``start`` breadth first; return {path: violations} for every page seen."""
    queue, seen, report = list(start), set(), {}
    while queue and len(report) < MOST_PAGES:
        path = queue.pop(0)
        if shape(path) in seen:
            continue
        seen.add(shape(path))
        found, links = violations_on(tab, path)
        report[path] = found
        for link in links:
            parts = urlsplit(link)
            local = parts.path + (f"?{parts.query}" if parts.query else "")
            if f"{parts.scheme}://{parts.netloc}" == origin and not SKIPPED.search(parts.path):
                queue.append(local)
    return report


def test_anonymous_pages_have_no_csp_violation(page, server):
    """Do the login and password-reset pages run without a single CSP violation?"""
    page.context.add_init_script(RECORD_VIOLATIONS)
    report = {path: violations_on(page, path)[0] for path in ANONYMOUS_PAGES}
    assert {path: found for path, found in report.items() if found} == {}


def test_every_page_has_no_csp_violation(page, server):
    """Does every kind of page, admin panel included, run without a single CSP violation?"""
    page.context.add_init_script(RECORD_VIOLATIONS)
    log_in(page, "admin")
    report = crawl(page, ["/"], server)
    # the crawl reached the tree's pages and the admin panel, not just the front page
    kinds = {shape(path) for path in report}
    assert any(kind.startswith("/cases/") for kind in kinds), sorted(kinds)
    assert any(kind.startswith("/admin") for kind in kinds), sorted(kinds)
    assert {path: found for path, found in report.items() if found} == {}
