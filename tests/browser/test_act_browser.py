"""Acting on results in a real browser: failure causes and the gate, triage, quarantine, badges.

On the demo data, as the admin (who has the maintainer's rights). Screenshots go to
``test-artifacts/browser/``.
"""

import pytest

from tests.browser.conftest import log_in
from tests.browser.test_pages_browser import open_latest_build
from tests.browser.test_pages_browser import wait_for_fragment

pytestmark = pytest.mark.browser


def open_instance(tab, name="checkout-service"):
    """From the instances list, open an instance's page."""
    with tab.expect_navigation():
        tab.click(f"#instances-table a:text('{name}')")
    tab.wait_for_selector("#builds-table")


def test_build_page_shows_gate_and_causes_and_a_label_sticks(page, artifacts):
    """Does the build page show the gate and its causes, and does labelling one make it known?"""
    log_in(page, "admin")
    open_latest_build(page)
    wait_for_fragment(page, "failure-groups")
    assert page.locator("#gate-verdict").inner_text() in ("gate passed", "gate failed")
    rows = page.locator("#failure-groups-table tbody tr")
    assert rows.count() > 0
    page.locator("#failure-groups").screenshot(path=artifacts / "failure-groups.png")
    first = rows.first
    first.locator("select[name=label]").select_option("environment")
    first.locator("input[name=note]").fill("the staging database restarts at night")
    with page.expect_navigation():
        first.locator("button:text('Label')").click()
    wait_for_fragment(page, "failure-groups")
    assert "The cause is labelled" in page.locator(".alert").inner_text()
    assert page.locator("#failure-groups-table tbody tr .gb-label").first.inner_text() == "environment"
    assert "known (labelled)" in page.locator("#causes-split").inner_text()


def test_quarantine_a_test_from_its_page(page, artifacts):
    """Can a maintainer quarantine a failing test from its case page, and see it marked on the build?"""
    log_in(page, "admin")
    open_latest_build(page)
    build_url = page.url
    problem = page.locator("#problems-table tbody tr").first
    with page.expect_navigation():
        problem.locator("a[href^='/cases/']").first.click()
    wait_for_fragment(page, "case-quarantine")
    page.fill("#cq-reason", "fails when the payment sandbox is down")
    with page.expect_navigation():
        page.click("#case-quarantine-form button[type=submit]")
    wait_for_fragment(page, "case-quarantine")
    assert "quarantined" in page.locator("#quarantine-state").inner_text()
    page.screenshot(path=artifacts / "case-quarantined.png", full_page=True)
    page.goto(build_url)
    assert page.locator("#problems-table .gb-quarantined").count() >= 1


def test_instance_page_top_causes_gate_rules_and_badges(page, artifacts):
    """Do the top causes arrive, do the gate rules save, and do badge links work after creating them?"""
    log_in(page, "admin")
    open_instance(page)
    wait_for_fragment(page, "causes")
    assert page.locator("#causes-table tbody tr").count() > 0
    wait_for_fragment(page, "actions")
    page.fill("#g-rate", "80")
    with page.expect_navigation():
        page.click("#gate-form button[type=submit]")
    wait_for_fragment(page, "actions")
    assert page.input_value("#g-rate") == "80.0"
    with page.expect_navigation():
        page.click("#badge-form button[type=submit]")
    wait_for_fragment(page, "actions")
    badge = page.locator("#badges img").first
    badge.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=badge.element_handle())
    markdown = page.input_value("#badge-status")
    assert markdown.startswith("![status](http://127.0.0.1:") and markdown.endswith("/status.svg)")
    page.locator("#actions").screenshot(path=artifacts / "instance-actions.png")
