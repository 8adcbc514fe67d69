"""Attachments: upload, list, download, size limit, safe serving, deletes after commit, gc, JUnit references.

Local storage runs on both databases; S3 runs against a local moto server.
"""

import hashlib
import io
import urllib.request
from datetime import timedelta
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import boto3
import pytest
from sqlalchemy import func
from sqlalchemy import select

from tests.aws_local import aws_environment
from tests.conftest import ApiActions
from tests.factories import make_build
from tests.factories import make_case
from tests.factories import make_instance
from tests.factories import make_suite
from webapp import attachments
from webapp import results
from webapp import storage
from webapp.extensions import db
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models_messages import Attachment

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
BUCKET = "greenbar-attachments-test"


def case_path(case):
    """The API path of a case."""
    return (
        f"/api/test-instance/{case.instance_id}/test-build/{case.build_id}"
        f"/test-suite/{case.suite_id}/test-case/{case.id}/"
    )


@pytest.fixture
def case(app):
    """A failed case to attach files to; returns its API path."""
    with app.app_context():
        instance = make_instance()
        suite = make_suite(make_build(instance))
        return case_path(make_case(suite, "test_login", "FAILED"))


def upload(api, path, *files):
    """POST files as multipart parts named ``file``."""
    data = {"file": [(io.BytesIO(body), name) for name, body in files]}
    return api.post(path + "attachments/", data=data, content_type="multipart/form-data")


def stored_objects(app):
    """Every key in the app's storage."""
    with app.app_context():
        return sorted(key for key, _ in storage.get().list_objects())


def test_upload_list_read_and_download(app, api, case):
    """Does an upload store name, size, SHA-256 and a sniffed type, and stream back the same bytes?"""
    response = upload(api, case, ("screen.png", PNG), ("log.txt", b"line one\nline two\n"))
    assert response.status_code == 201, response.text
    png, log = response.get_json()["results"]
    assert (png["name"], png["size"], png["sha256"], png["content_type"]) == (
        "screen.png",
        len(PNG),
        hashlib.sha256(PNG).hexdigest(),
        "image/png",
    )
    assert (log["name"], log["content_type"]) == ("log.txt", "text/plain")
    listed = api.get(case + "attachments/").get_json()
    assert [item["id"] for item in listed["results"]] == [png["id"], log["id"]]
    assert api.get(case + f"attachments/{log['id']}/").get_json() == log
    download = api.get(case + f"attachments/{log['id']}/download")
    assert download.status_code == 200
    assert download.data == b"line one\nline two\n"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    image = api.get(case + f"attachments/{png['id']}/download")
    assert (image.headers["Content-Type"], image.headers["Content-Disposition"].split(";")[0]) == (
        "image/png",
        "inline",
    )


def test_html_uploaded_as_a_screenshot_is_never_served_inline(app, api, case):
    """Is an HTML file named like an image downloaded as opaque bytes, never rendered by the browser?"""
    sent = upload(api, case, ("screenshot.png", HTML)).get_json()["results"][0]
    assert sent["content_type"] == "text/html"
    download = api.get(case + f"attachments/{sent['id']}/download")
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in download.headers["Content-Security-Policy"]


def test_client_content_type_is_ignored(app, api, case):
    """Does a client claiming image/png for text get text/plain recorded?"""
    data = {"file": (io.BytesIO(b"just text"), "fake.png", "image/png")}
    response = api.post(case + "attachments/", data=data, content_type="multipart/form-data")
    assert response.get_json()["results"][0]["content_type"] == "text/plain"


def test_oversized_upload_is_413_with_nothing_stored(app, api, case):
    """Is an upload with one file over the limit refused whole, leaving no row and no object?"""
    app.config["MAX_ATTACHMENT_BYTES"] = 1024
    response = upload(api, case, ("small.txt", b"fits"), ("big.bin", b"x" * 1025))
    assert response.status_code == 413
    assert response.get_json()["error"]["status"] == 413
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
    assert stored_objects(app) == []


def test_viewer_cannot_upload(app, client, case, token_auth):
    """Is uploading a maintainer's right?"""
    headers = token_auth("viewer")
    data = {"file": (io.BytesIO(b"x"), "x.txt")}
    response = client.post(
        case + "attachments/", data=data, headers=headers, content_type="multipart/form-data"
    )
    assert response.status_code == 403


def test_upload_without_files_is_400(app, api, case):
    """Does a form without a part named file get a 400 naming the field?"""
    response = api.post(case + "attachments/", data={"other": "x"}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "file" in response.get_json()["error"]["fields"]


def test_unknown_attachment_is_404(app, api, case):
    """Is an attachment id of another case (or none) a 404?"""
    assert api.get(case + "attachments/999/").status_code == 404
    assert api.get(case + "attachments/999/download").status_code == 404


def test_case_page_shows_thumbnails_and_sizes(app, api, client, auth, case):
    """Does the case page show a lazy thumbnail for an image and a sized link for any file?"""
    upload(api, case, ("screen.png", PNG), ("trace.log", b"y" * 2048))
    auth.as_role("viewer")
    case_id = case.rstrip("/").rsplit("/", 1)[1]
    page = client.get(f"/cases/{case_id}").text
    assert 'loading="lazy"' in page and 'alt="screen.png"' in page
    assert "trace.log" in page and "2.0 kB" in page
    assert page.count("<img") == 1


def test_deleting_a_case_removes_its_objects_after_commit(app, api, case):
    """Are a deleted case's objects still there before the commit and gone after it?"""
    upload(api, case, ("a.txt", b"a"))
    assert len(stored_objects(app)) == 1
    with app.app_context():
        attachment = db.session.scalar(select(Attachment))
        results.delete_case(db.session.get(TestCase, attachment.case_id))
        assert len(stored_objects(app)) == 1
        db.session.rollback()
    assert len(stored_objects(app)) == 1
    api.as_role("admin")
    assert api.call("DELETE", case).status_code == 204
    assert stored_objects(app) == []


def test_junit_import_stores_referenced_attachments(app, api):
    """Does a JUnit upload carry the files its cases name as [[ATTACHMENT|path]]?"""
    with app.app_context():
        instance_id = make_instance().id
    report = b"""<testsuite name="ui"><testcase classname="ui" name="login">
      <failure message="boom"/><system-out>[[ATTACHMENT|shots/login.png]]</system-out></testcase>
      <testcase classname="ui" name="logout"/></testsuite>"""
    data = {
        "file": (io.BytesIO(report), "junit.xml"),
        "attachment": [(io.BytesIO(PNG), "shots/login.png"), (io.BytesIO(b"unused"), "other.txt")],
    }
    response = api.post(
        f"/api/test-instance/{instance_id}/import/", data=data, content_type="multipart/form-data"
    )
    assert response.status_code == 201, response.text
    assert response.get_json()["attachments"] == 1
    with app.app_context():
        stored = db.session.scalars(select(Attachment)).all()
        assert [(item.name, item.content_type) for item in stored] == [("login.png", "image/png")]


def test_storage_gc_lists_then_removes_orphans(app, api, case):
    """Does gc --dry-run list an orphan without deleting it, and gc delete it while keeping live ones?"""
    upload(api, case, ("kept.txt", b"kept"))
    with app.app_context():
        storage.get().put("attachments/9/9/orphan", io.BytesIO(b"lost"))
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["storage", "gc", "--dry-run", "--grace-minutes", "0"])
    assert dry.exit_code == 0
    assert "attachments/9/9/orphan" in dry.output and "dry run" in dry.output
    assert len(stored_objects(app)) == 2
    real = runner.invoke(args=["storage", "gc", "--grace-minutes", "0"])
    assert "deleted 1 orphaned objects" in real.output
    with app.app_context():
        live = db.session.scalar(select(Attachment.storage_key))
    assert stored_objects(app) == [live]


def test_gc_spares_young_orphans(app):
    """Is an object younger than the grace period (an upload about to commit) left alone?"""
    with app.app_context():
        storage.get().put("attachments/1/1/young", io.BytesIO(b"x"))
        assert attachments.orphans(timedelta(hours=1)) == []


# S3 through a local moto server


@pytest.fixture
def s3_app(mysql_app, moto_url, monkeypatch):
    """The MySQL app storing attachments in a fresh moto bucket under a prefix."""
    aws_environment(monkeypatch, moto_url)
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    mysql_app.extensions["greenbar_storage"] = storage.from_url(f"s3://{BUCKET}/greenbar", "")
    yield mysql_app
    for key in [item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]:
        client.delete_object(Bucket=BUCKET, Key=key)
    client.delete_bucket(Bucket=BUCKET)


def bucket_keys():
    """Every key in the test bucket."""
    return sorted(
        item["Key"] for item in boto3.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])
    )


def test_s3_deleted_build_objects_go_only_after_commit(s3_app):
    """Are a deleted build's S3 objects kept through the flush and a rollback, and gone after the commit?"""
    with s3_app.app_context():
        suite = make_suite(make_build(make_instance()))
        case = make_case(suite, "t", "FAILED")
        attachments.upload(case, [("a.png", io.BytesIO(PNG)), ("b.txt", io.BytesIO(b"b"))])
        db.session.commit()
        build_id = case.build_id
        keys = bucket_keys()
        assert len(keys) == 2 and all(key.startswith("greenbar/attachments/") for key in keys)
        results.delete_build(db.session.get(TestBuild, build_id))
        assert bucket_keys() == keys
        db.session.rollback()
        assert bucket_keys() == keys
        results.delete_build(db.session.get(TestBuild, build_id))
        db.session.flush()
        assert bucket_keys() == keys
        db.session.commit()
        assert bucket_keys() == []


def test_s3_rolled_back_upload_leaves_no_object(s3_app):
    """Is an object uploaded in a transaction that rolls back deleted again?"""
    with s3_app.app_context():
        case = make_case(make_suite(make_build(make_instance())), "t", "FAILED")
        attachments.upload(case, [("a.txt", io.BytesIO(b"a"))])
        assert len(bucket_keys()) == 1
        db.session.rollback()
        assert bucket_keys() == []


def test_s3_download_redirects_to_a_presigned_url_with_safe_headers(s3_app):
    """Does a download redirect to a short-lived presigned URL that forces download of HTML?"""
    api = ApiActions(s3_app, s3_app.test_client()).as_role("maintainer")
    with s3_app.app_context():
        path = case_path(make_case(make_suite(make_build(make_instance())), "t", "FAILED"))
    sent = upload(api, path, ("page.png", HTML)).get_json()["results"][0]
    response = api.get(path + f"attachments/{sent['id']}/download")
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["response-content-type"] == ["application/octet-stream"]
    assert query["response-content-disposition"][0].startswith("attachment;")
    assert query["X-Amz-Expires"] == ["300"]
    with urllib.request.urlopen(response.headers["Location"], timeout=5) as fetched:
        assert fetched.read() == HTML
        assert fetched.headers["Content-Disposition"].startswith("attachment;")


def test_thumbnails_on_s3_are_allowed_by_the_pages_policy(s3_app):
    """A thumbnail redirects to the bucket: the page's CSP lets images load from there, and only there."""
    policy = s3_app.test_client().get("/auth/login").headers["Content-Security-Policy"]
    [images] = [part for part in policy.split("; ") if part.startswith("img-src")]
    origin = s3_app.extensions["greenbar_storage"].image_origin
    assert origin.startswith("http://127.0.0.1:")
    assert images == f"img-src 'self' data: {origin}"
