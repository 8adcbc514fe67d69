"""JUnit XML import views: a report creates a new build or adds to an existing one.

The body is the XML itself (``application/xml``, optionally ``Content-Encoding:
gzip``) or a multipart form with one or more report files; this module reads
it from the request and hands :mod:`webapp.imports` plain file objects. An
``Idempotency-Key`` header makes the request exactly-once per user: the same
key with another path, query string or body is a 409.
"""

import hashlib
import tempfile

from flask import current_app
from flask import g
from flask import request
from flask_login import current_user

from webapp import attachments
from webapp import import_jobs
from webapp import import_queue
from webapp import imports
from webapp import results
from webapp.api import models as m
from webapp.api.declare import record_operation
from webapp.api.declare import reply_json
from webapp.api.import_jobs import job_json
from webapp.api.resources import get_build
from webapp.api.resources import get_instance
from webapp.exceptions import UnsupportedEncoding
from webapp.exceptions import ValidationError

IDEMPOTENCY_KEY_LIMIT = 255
ATTACHMENT_PART = "attachment"
SPOOL_MEMORY = 8 * 1024 * 1024
SPOOL_CHUNK = 1024 * 1024
HASH_CHUNK = 1024 * 1024
XML = {"schema": {"type": "string"}}
# the parts of the document a JSON schema cannot say: the XML body and the Idempotency-Key header
DOCUMENT = {
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "maxLength": IDEMPOTENCY_KEY_LIMIT},
            "description": "Store the report at most once per key.",
        }
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/xml": XML,
            "text/xml": XML,
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "array", "items": {"type": "string", "format": "binary"}}
                    },
                }
            },
        },
    },
}

# an import may be queued (?async=true, or a large body): then it answers 202 with the job
QUEUEABLE_DOCUMENT = {
    **DOCUMENT,
    "also": {202: ("Queued: the worker imports it; the job's URL is also in Location", m.ImportJob)},
}


def max_report_bytes():
    """How large a report may be once decompressed."""
    return current_app.config.get("MAX_REPORT_BYTES", imports.DEFAULT_MAX_REPORT_BYTES)


def spooled_body():
    """The raw request body, read once into a temporary file (on disk beyond a few MB).

    Reading the upload before the transaction starts keeps a slow client from
    holding database locks, and lets a rerun after a lost race read it again.
    """
    # it lives as long as the request, which may rerun the import, and is deleted when collected
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115
    while chunk := request.stream.read(SPOOL_CHUNK):
        spool.write(chunk)
    spool.seek(0)
    return spool


def report_files():
    """The request's report files, unread: ``(label, file object, compressed)`` each.

    :raise UnsupportedEncoding: for a content encoding other than gzip or identity.
    :raise ValidationError: for a multipart form without files.
    """
    encoding = (request.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip"):
        raise UnsupportedEncoding(f"Content-Encoding {encoding!r} is not supported; send gzip or plain XML")
    if request.mimetype != "multipart/form-data":
        return [("body", spooled_body(), encoding != "identity" or None)]
    if encoding != "identity":
        raise UnsupportedEncoding("a multipart upload cannot be gzip-encoded as a whole; compress each file")
    # parts named "attachment" are files the reports refer to as [[ATTACHMENT|path]]
    files = [upload for name, upload in request.files.items(multi=True) if name != ATTACHMENT_PART]
    if not files:
        raise ValidationError("the multipart form holds no files", {"file": "attach one or more reports"})
    return [(upload.filename or upload.name or "file", upload.stream, None) for upload in files]


def uploaded():
    """The request's report files, read from the client once per request (a lost race reruns the view)."""
    if "import_files" not in g:
        g.import_files = report_files()
        g.import_attachments = attachment_files()
    return g.import_files


def attachment_files():
    """The multipart upload's attachment parts as ``{file name: stream}`` (none for a plain body)."""
    if request.mimetype != "multipart/form-data":
        return {}
    return {upload.filename or "file": upload.stream for upload in request.files.getlist(ATTACHMENT_PART)}


def store_attachments(build):
    """Store the upload's attachment parts for the cases that refer to them; return the count."""
    return attachments.attach_referenced(build, g.import_attachments)


def fingerprint():
    """What one Idempotency-Key may be reused for: this path, query string and body, as a digest.

    The same key sent with a different body is another request, not a retry (a 409).
    """
    digest = hashlib.sha256(request.query_string)
    for _, stream, _ in uploaded():
        while chunk := stream.read(HASH_CHUNK):
            digest.update(chunk)
        stream.seek(0)
        digest.update(b"\0")
    return f"{request.path}#{digest.hexdigest()[:32]}"


def idempotency_key():
    """The request's Idempotency-Key, or None; too long is a 400."""
    key = (request.headers.get("Idempotency-Key") or "").strip()
    if len(key) > IDEMPOTENCY_KEY_LIMIT:
        raise ValidationError(
            f"Idempotency-Key must be at most {IDEMPOTENCY_KEY_LIMIT} characters",
            {"Idempotency-Key": "too long"},
        )
    return key or None


def respond(produce):
    """Run an import exactly once per Idempotency-Key and answer with its (first) reply."""
    key = idempotency_key()
    status, body, replayed = imports.idempotent(current_user.id, key, key and fingerprint(), produce)
    response = current_app.response_class(body, status, mimetype="application/json")
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    if status == 202:
        response.headers["Location"] = current_app.json.loads(body)["url"]
    return response


def queued(query):
    """Whether the worker imports this upload later: ``?async=true``, or a body above the size."""
    return query.queued or (request.content_length or 0) > current_app.config["ASYNC_IMPORT_BYTES"]


def queue_into(build, new_build=False):
    """Store the upload for the worker; the reply is the job (its URL also in ``Location``)."""
    if g.import_attachments:
        raise ValidationError(
            "a queued import cannot carry attachments; upload it without ?async (and below the size "
            "that queues an import)",
            {"attachment": "not taken by a queued import"},
        )
    for label, stream, _ in uploaded():
        if not stream.read(1):
            raise ValidationError(f"{label}: the report is empty", {"report": "empty"})
        stream.seek(0)
    job = import_jobs.queue_import(build, uploaded(), current_user.id, g.get("request_id", ""), new_build)
    import_queue.from_config(current_app.config).enqueue(job)
    record_operation("queueImport", build.instance_id, build.id)
    return 202, reply_json(m.ImportJob, job_json(job))


def import_new_build(instance_id, query):
    """Create a build from a JUnit XML report (build fields as query parameters)."""
    fields = query.model_dump(exclude={"queued"})
    uploaded()

    def produce():
        build = results.create_build(get_instance(instance_id), **fields)
        if queued(query):
            return queue_into(build, new_build=True)
        counts = imports.import_files(build, uploaded(), max_report_bytes(), new_build=True)
        counts["attachments"] = store_attachments(build)
        record_operation("importNewBuild", instance_id, build.id, counts["cases"])
        return 201, reply_json(m.ImportReply, dict(build=build, **counts))

    return respond(produce)


def import_into_build(instance_id, build_id, query):
    """Add a JUnit XML report's suites and cases to an existing build."""
    uploaded()

    def produce():
        build = get_build(instance_id, build_id)
        if queued(query):
            return queue_into(build)
        counts = imports.import_files(build, uploaded(), max_report_bytes())
        counts["attachments"] = store_attachments(build)
        record_operation("importIntoBuild", instance_id, build_id, counts["cases"])
        return 200, reply_json(m.ImportReply, dict(build=build, **counts))

    return respond(produce)
