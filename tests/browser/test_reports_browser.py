"""Reports at a glance (issue 13) in a real browser, each at desktop width (1280 px) and phone width (375 px).

Screenshots go to ``test-artifacts/browser/reports-*-<width>.png``.
"""

import re

import pytest

from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser

WIDTHS = {"desktop": 1280, "phone": 375}
# the widest right edge of the page and of any table, in CSS pixels
WIDEST = """() => Math.max(document.documentElement.scrollWidth,
    ...Array.from(document.querySelectorAll("table"))
    .map(t => Math.max(t.getBoundingClientRect().right, t.scrollWidth)))"""


def open_tab(browser, server, width, role):
    """A tab of a new browser context at ``width`` (its ``width``), logged in as the user of ``role``."""
    context = browser.new_context(
        base_url=server, viewport={"width": width, "height": 900}, is_mobile=width < 600
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.width = width
    log_in(page, role)
    return page


@pytest.fixture(params=list(WIDTHS))
def tab(request, browser, server):
    """A logged-in viewer's tab at desktop or phone width; its width is ``tab.width``."""
    page = open_tab(browser, server, WIDTHS[request.param], "viewer")
    yield page
    page.context.close()


def fits(tab):
    """At phone width nothing is wider than the screen; at desktop width nothing scrolls sideways."""
    assert tab.evaluate(WIDEST) <= tab.width + 1


def shot(tab, artifacts, name):
    """Save a full-page screenshot named after the item and the width."""
    tab.screenshot(path=artifacts / f"reports-{name}-{tab.width}.png", full_page=True)


def open_instance(tab, name="checkout-service"):
    """Open an instance's page from the list."""
    tab.goto("/")
    with tab.expect_navigation():
        tab.click(f"#instances-table a:text('{name}')")
    tab.wait_for_selector("#builds-table")


def test_health_at_a_glance(tab, artifacts):
    """Instance and build rows show a proportional bar, a coloured pass rate, the worst status, N new."""
    tab.goto("/")
    rows = tab.locator("#instances-table tbody tr")
    assert rows.count() == 3
    for index in range(3):
        assert rows.nth(index).locator("svg.gb-status-bar rect").count() >= 1
        assert rows.nth(index).locator(".gb-rate").get_attribute("class").split()[-1].startswith("gb-level-")
    # the data pipeline's newest build passes wholly: green, one bar segment, no worst-status alarm
    green_row = tab.locator("#instances-table tbody tr", has=tab.locator("a:text('data-pipeline')"))
    assert "gb-level-green" in green_row.locator(".gb-rate").get_attribute("class")
    assert green_row.locator("svg.gb-status-bar rect").count() == 1
    fits(tab)
    shot(tab, artifacts, "instances")
    open_instance(tab)
    builds = tab.locator("#builds-table tbody tr")
    assert builds.first.locator("svg.gb-status-bar").count() == 1
    assert tab.locator("#builds-table .gb-new").count() >= 1
    assert re.fullmatch(r"\d+ new", tab.locator("#builds-table .gb-new").first.inner_text())
    if tab.width >= 1280:
        assert tab.locator("#builds-table th:text('Flaky')").is_visible()
    fits(tab)
    shot(tab, artifacts, "instance")


def test_build_comparison_base_picker_and_bad_base(tab, artifacts):
    """A feature build compares with its own branch; the picker changes the base; a bad base is a 400."""
    open_instance(tab)
    tab.select_option("#branch-filter", "feature/faster-sync")
    with tab.expect_navigation():
        tab.click("#builds form button[type=submit]")
    feature_builds = tab.locator("#builds-table tbody tr a[href^='/builds/']")
    with tab.expect_navigation():
        feature_builds.first.click()
    tab.wait_for_selector("#changes[data-loaded=true]")
    reason = tab.locator("#base-reason").inner_text()
    assert "previous finished build on feature/faster-sync" in reason
    assert "feature/faster-sync" in tab.locator("#changes-heading").inner_text()
    fits(tab)
    shot(tab, artifacts, "build")
    # choose a release build through the picker: the branch select narrows the builds offered
    tab.select_option("#pick-branch", "release/2.4")
    offered = tab.locator("#pick-base option:not([disabled])")
    assert offered.count() >= 1
    assert all("release/2.4" in text for text in offered.all_inner_texts())
    tab.select_option("#pick-base", offered.first.get_attribute("value"))
    with tab.expect_navigation():
        tab.click("#base-picker button[type=submit]")
    assert "Compared with the build you chose." in tab.locator("#base-reason").inner_text()
    fits(tab)
    shot(tab, artifacts, "changes-chosen")
    response = tab.goto(tab.url.split("?")[0] + "?base=abc")
    assert response.status == 400
    assert "is not a build id" in tab.locator("main").inner_text()
    shot(tab, artifacts, "bad-base")


def test_failing_since_and_status_filter(tab, artifacts):
    """The newest build's failures say since when; the skipped filter lists skips, slowest first."""
    open_instance(tab)
    with tab.expect_navigation():
        tab.locator("#builds-table tbody tr a[href^='/builds/']").first.click()
    # the only build links in the table are the failing-since ones (hidden with their column on phones)
    assert tab.locator("#problems-table a[href^='/builds/']").count() >= 1
    if tab.width >= 1280:
        assert re.search(r"failing since #\d+ \(.*\d+ builds?\)", tab.locator("#problems-table").inner_text())
    else:
        assert re.search(r"since #\d+", tab.locator("#problems-table").inner_text())
    fits(tab)
    shot(tab, artifacts, "failing-since")
    with tab.expect_navigation():
        tab.click("#status-filter a:text-matches('^skipped')")
    assert "status=SKIPPED" in tab.url
    pills = tab.locator("#problems-table .gb-pill").all_inner_texts()
    assert pills and set(pills) == {"SKIPPED"}
    with tab.expect_navigation():
        tab.click("#problems-table th a:text-matches('Duration')")
    assert "sort=-duration" in tab.url
    fits(tab)
    shot(tab, artifacts, "status-filter")


@pytest.mark.parametrize("width", list(WIDTHS.values()), ids=list(WIDTHS))
def test_suite_page_and_failure_causes_fit(width, browser, server, artifacts):
    """An admin's build page (failure causes with their triage forms) and a suite page fit the screen."""
    tab = open_tab(browser, server, width, "admin")
    open_instance(tab)
    with tab.expect_navigation():
        tab.locator("#builds-table tbody tr a[href^='/builds/']").first.click()
    tab.wait_for_selector("#failure-groups-table .gb-triage-form button[type=submit]")
    button = tab.locator("#failure-groups-table .gb-triage-form button[type=submit]").first
    box = button.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width
    fits(tab)
    shot(tab, artifacts, "failure-causes")
    with tab.expect_navigation():
        tab.locator("#suites-table tbody tr a[href^='/suites/']").first.click()
    rows = tab.locator("#cases-table tbody tr")
    assert rows.count() > 0
    # the name and the status come first, whatever the width
    assert rows.first.locator("td").nth(1).locator(".gb-pill").count() == 1
    fits(tab)
    shot(tab, artifacts, "suite")
    tab.context.close()


def test_flaky_marks_in_the_history_strip(tab, artifacts):
    """A flaky test's history marks passes on retry and flips, with a legend."""
    tab.goto("/")
    open_instance(tab)
    with tab.expect_navigation():
        tab.click("#analysis-link")
    link = tab.locator("#flaky tbody tr a[href^='/cases/']").first
    with tab.expect_navigation():
        link.click()
    tab.wait_for_selector("#history")
    assert tab.locator(".gb-strip a.gb-retried").count() >= 1
    assert tab.locator(".gb-strip a.gb-flip").count() >= 1
    legend = tab.locator(".gb-legend").inner_text()
    assert "passed on a retry" in legend and "flip" in legend
    fits(tab)
    shot(tab, artifacts, "flaky-strip")


def test_analysis_page_windows_branches_charts(tab, artifacts):
    """Analysis: charts with a sensible floor, tooltips and units; window, dates and branch remembered."""
    open_instance(tab)
    with tab.expect_navigation():
        tab.click("#analysis-link")
    tab.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('chart-pass-rate'))")
    scales = tab.evaluate(
        "() => { const y = Chart.getChart(document.getElementById('chart-pass-rate')).options.scales.y;"
        " return [y.min, y.max, y.title.text]; }"
    )
    assert scales[1] == 100 and scales[0] <= 80 and scales[2] == "pass rate (%)"
    assert (
        tab.evaluate(
            "() => Chart.getChart(document.getElementById('chart-duration')).options.scales.y.title.text"
        )
        == "duration (s)"
    )
    title = tab.evaluate(
        "() => Chart.getChart(document.getElementById('chart-pass-rate'))"
        ".options.plugins.tooltip.callbacks.title([{dataIndex: 0}])"
    )
    assert re.fullmatch(r"Build #\d+ · [\w/.-]+ · \d{4}-\d\d-\d\d \d\d:\d\d UTC", title)
    for panel in ("top-failing", "slowest", "flaky", "regressions"):
        assert tab.locator(f"#{panel} tbody tr").count() > 0, panel
    fits(tab)
    shot(tab, artifacts, "analysis")
    with tab.expect_navigation():
        tab.click("#window-controls a:text('10')")
    tab.select_option("#window-branch", "main")
    with tab.expect_navigation():
        tab.click("#window-controls button[type=submit]")
    assert "n=10" in tab.url and "branch=main" in tab.url
    assert "on main" in tab.locator("#window-summary").inner_text()
    # back to the instance and into the analysis again: the window and branch come back, in the URL
    open_instance(tab)
    tab.goto(tab.url.split("?")[0] + "/statistics")
    assert "n=10" in tab.url and "branch=main" in tab.url
    tab.fill("#window-from", "2000-01-01")
    tab.fill("#window-to", "2000-01-31")
    with tab.expect_navigation():
        tab.click("#window-controls button[type=submit]")
    assert tab.locator("#window-summary").inner_text().startswith("0 builds started from 2000-01-01")
    shot(tab, artifacts, "analysis-dates")


def test_test_search(tab, artifacts):
    """A search by part of a name, in any letter case, lists tests with status and failure rate."""
    open_instance(tab)
    tab.fill("#test-search-box", "PAYMENT_00")
    with tab.expect_navigation():
        tab.click("#test-search button[type=submit]")
    rows = tab.locator("#search-table tbody tr")
    assert rows.count() == 10
    first = rows.first.inner_text()
    assert "test_payment_00" in first and re.search(r"\d+\.\d %", first)
    assert rows.first.locator(".gb-pill").count() == 1
    fits(tab)
    shot(tab, artifacts, "search")
    with tab.expect_navigation():
        rows.first.locator("a[href^='/cases/']").first.click()
    tab.wait_for_selector("#history")
