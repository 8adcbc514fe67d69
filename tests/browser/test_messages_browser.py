"""The pages of files and messages in a real browser: subscriptions, and a case's attachments."""

import base64
import json
import struct
import urllib.request
import uuid
import zlib
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import USERS
from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser


def tiny_png(width=24, height=16):
    """A valid RGB PNG of one colour, built by hand (no imaging library needed)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x2e\x8b\x57" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def api_call(server, path, body=None, content_type=None):
    """Call the server's API as the seeded admin with HTTP Basic auth; return the JSON reply."""
    token = base64.b64encode(f"admin:{USERS['admin']}".encode()).decode()
    request = urllib.request.Request(server + path, data=body, headers={"Authorization": f"Basic {token}"})
    if content_type:
        request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def first_case(server):
    """The API path and page id of a case of the demo data."""
    instance = api_call(server, "/api/test-instance/")["results"][0]["id"]
    build = api_call(server, f"/api/test-instance/{instance}/test-build/")["results"][0]["id"]
    suites = f"/api/test-instance/{instance}/test-build/{build}/test-suite/"
    suite = api_call(server, suites)["results"][0]["id"]
    case = api_call(server, f"{suites}{suite}/test-case/")["results"][0]["id"]
    return f"{suites}{suite}/test-case/{case}/", case


def multipart(parts):
    """A multipart/form-data body of ``(field, file name, bytes)`` parts, and its content type."""
    boundary = uuid.uuid4().hex
    body = b""
    for field, name, data in parts:
        body += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_case_page_shows_a_lazy_thumbnail_and_file_links(page, server, artifacts):
    """Does an uploaded screenshot appear as a loaded thumbnail, and a log as a link with its size?"""
    path, case_id = first_case(server)
    body, content_type = multipart([("file", "screen.png", tiny_png()), ("file", "run.log", b"x" * 3000)])
    api_call(server, path + "attachments/", body, content_type)
    log_in(page, "viewer")
    page.goto(f"/cases/{case_id}")
    section = page.locator("#attachments")
    thumbnail = section.locator("img.gb-thumb")
    assert thumbnail.get_attribute("loading") == "lazy"
    thumbnail.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth === 24", arg=thumbnail.element_handle())
    assert "run.log" in section.inner_text() and "3.0 kB" in section.inner_text()
    section.screenshot(path=artifacts / "case-attachments.png")


def test_maintainer_subscribes_and_unsubscribes(page, artifacts):
    """Can an admin add an e-mail subscription on the page, see it listed, and remove it?"""
    log_in(page, "admin")
    page.click("#instances-table a:text('checkout-service')")
    page.click("a:text('Subscriptions')")
    page.wait_for_selector("#subscription-form")
    page.select_option("#event", "build.finished")
    page.select_option("#when", "new_failures")
    page.select_option("#channel", "email")
    page.fill("#addresses", "qa@example.com, lead@example.com")
    with page.expect_navigation():
        page.click("#subscription-form [type=submit]")
    row = page.locator("table tbody tr")
    assert row.count() == 1
    assert "qa@example.com, lead@example.com" in row.inner_text() and "new failures" in row.inner_text()
    page.screenshot(path=artifacts / "subscriptions.png", full_page=True)
    with page.expect_navigation():
        row.locator("button:text('Remove')").click()
    assert page.locator("table tbody tr").count() == 0
    assert "Nobody is subscribed yet." in page.inner_text("main")


def test_viewer_cannot_open_subscriptions(page):
    """Is the subscriptions page a maintainer's only?"""
    log_in(page, "viewer")
    page.click("#instances-table a:text('checkout-service')")
    assert page.locator("a:text('Subscriptions')").count() == 0
    response = page.goto(urlsplit(page.url).path + "/subscriptions")
    assert response.status == 403
