"""What a person does in a real browser: log in, browse, read the charts, edit as admin, log out.

Each main page is saved as a screenshot under ``test-artifacts/browser/``.
"""

import re

import pytest

from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser

# how many of a canvas's pixels are painted; Chart.js leaves an empty canvas fully transparent
PAINTED_PIXELS = """canvas => {
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0;
    for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) painted++; }
    return painted;
}"""
# the number of non-empty data points in each of a chart's datasets
CHART_POINTS = "c => Chart.getChart(c).data.datasets.map(d => d.data.filter(v => v !== null).length)"

LATEST_TIME = "#instances-table time"


def assert_chart_drawn(tab, canvas_id):
    """The canvas holds a Chart.js chart with data points, and pixels are painted."""
    canvas = tab.locator(f"#{canvas_id}")
    tab.wait_for_function("id => window.Chart && Chart.getChart(document.getElementById(id))", arg=canvas_id)
    points = canvas.evaluate(CHART_POINTS)
    assert points and all(count > 0 for count in points), (canvas_id, points)
    assert canvas.evaluate(PAINTED_PIXELS) > 500, canvas_id


def wait_for_fragment(tab, section_id):
    """Wait until a panel the page loads afterwards has arrived."""
    tab.wait_for_selector(f"#{section_id}[data-loaded=true]")


def open_latest_build(tab):
    """From the instances list, open checkout-service's newest build."""
    row = tab.locator("#instances-table tbody tr", has=tab.locator("a:text('checkout-service')"))
    with tab.expect_navigation():
        row.locator("a[href^='/builds/']").click()
    tab.wait_for_selector("#summary")


def counts_on(tab):
    """The passed and failed counts in the build page's summary."""
    return int(tab.inner_text("#count-passed")), int(tab.inner_text("#count-failed"))


def test_log_in_and_browse_down_to_a_case(page, artifacts):
    """Can a viewer log in and walk instance → build → suite → case, with charts drawn on the way?"""
    page.goto("/")
    assert "/auth/login" in page.url
    log_in(page, "viewer")
    assert page.url.endswith("/")
    assert page.locator("#instances-table tbody tr").count() == 3
    page.screenshot(path=artifacts / "instances.png", full_page=True)

    page.click("#instances-table a:text('checkout-service')")
    page.wait_for_selector("#builds-table")
    for canvas_id in ("chart-pass-rate", "chart-duration", "chart-status"):
        assert_chart_drawn(page, canvas_id)
    page.screenshot(path=artifacts / "instance.png", full_page=True)

    page.click("#builds-table tbody tr:first-child a[href^='/builds/']")
    page.wait_for_selector("#summary")
    wait_for_fragment(page, "changes")
    assert page.locator("#changes-heading").inner_text().startswith("Since build #")
    page.screenshot(path=artifacts / "build.png", full_page=True)

    page.click("#suites-table tbody tr:first-child a")
    page.wait_for_selector("#cases-table")
    crumbs = page.locator(".breadcrumb-item").all_inner_texts()
    assert crumbs[0] == "Instances" and crumbs[1] == "checkout-service" and crumbs[2].startswith("Build #")
    page.screenshot(path=artifacts / "suite.png", full_page=True)

    page.click("#cases-table tbody tr:first-child a[href^='/cases/']")
    page.wait_for_selector("#history")
    assert_chart_drawn(page, "chart-case-duration")
    assert page.locator(".gb-strip a").count() > 1
    page.screenshot(path=artifacts / "case.png", full_page=True)


def test_instance_statistics_panel_arrives(page, artifacts):
    """Do the failing, slowest and flaky panels load into the instance page after it opens?"""
    log_in(page, "viewer")
    page.click("#instances-table a:text('checkout-service')")
    wait_for_fragment(page, "statistics")
    for panel in ("top-failing", "slowest", "flaky"):
        assert page.locator(f"#{panel} tbody tr").count() > 0, panel
    page.locator("#statistics").screenshot(path=artifacts / "instance-statistics.png")


def test_times_show_in_the_viewers_zone(page):
    """Is a time shown in the browser's zone (New York here), with the UTC value on hover?"""
    log_in(page, "viewer")
    page.wait_for_function(f"() => !document.querySelector('{LATEST_TIME}').textContent.includes('UTC')")
    stamp = page.locator(LATEST_TIME).first
    utc_hour = int(re.search(r" (\d\d):\d\d:\d\d UTC$", stamp.get_attribute("title")).group(1))
    shown = stamp.inner_text()
    local_hour = int(re.search(r"(\d\d):\d\d", shown).group(1)) % 12
    assert local_hour in {(utc_hour - 4) % 12, (utc_hour - 5) % 12}


def test_admin_fixes_a_case_and_the_build_counts_follow(page, artifacts):
    """When an admin changes a FAILED case to SUCCESS in the admin panel, do the build's counts move?"""
    log_in(page, "admin")
    open_latest_build(page)
    build_url = page.url
    passed, failed = counts_on(page)
    assert failed > 0
    failed_row = page.locator("#problems-table tbody tr", has=page.locator(".gb-pill-failed")).first
    failed_row.locator("a[href^='/cases/']").first.click()
    page.click("text=Edit in admin")
    page.wait_for_selector("#result_status")
    page.select_option("#result_status", "SUCCESS")
    page.screenshot(path=artifacts / "admin-case-edit.png", full_page=True)
    with page.expect_navigation():
        page.click("input[type=submit][value='Save']")
    page.goto(build_url)
    assert counts_on(page) == (passed + 1, failed - 1)


def test_viewer_is_refused_the_admin_panel(page, artifacts):
    """Does a viewer get a 403 page in the app's style at /admin/?"""
    log_in(page, "viewer")
    response = page.goto("/admin/")
    assert response.status == 403
    assert page.locator("h1").inner_text() == "Not allowed"
    page.screenshot(path=artifacts / "admin-refused.png", full_page=True)


def test_log_out(page):
    """Does logging out from the user menu end the session?"""
    log_in(page, "viewer")
    page.click("#gb-user-menu")
    with page.expect_navigation():
        page.click("button:text('Log out')")
    page.goto("/")
    assert "/auth/login" in page.url


def test_build_page_at_phone_width(browser, server, artifacts):
    """At 375 px, does the build page fit the screen (tables scroll inside), and is it keyboard-usable?"""
    context = browser.new_context(base_url=server, viewport={"width": 375, "height": 812}, is_mobile=True)
    tab = context.new_page()
    try:
        log_in(tab, "viewer")
        tab.screenshot(path=artifacts / "instances-375.png", full_page=True)
        open_latest_build(tab)
        wait_for_fragment(tab, "changes")
        assert tab.evaluate("document.documentElement.scrollWidth") <= 375
        tab.screenshot(path=artifacts / "build-375.png", full_page=True)
        tab.keyboard.press("Tab")
        assert tab.evaluate("document.activeElement.textContent.trim()") == "Skip to content"
    finally:
        context.close()
