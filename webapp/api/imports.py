"""JUnit XML import endpoints: a report creates a new build or adds to an existing one.

The body is the XML itself (``application/xml``, optionally ``Content-Encoding:
gzip``) or a multipart form with one or more report files. An
``Idempotency-Key`` header makes the request exactly-once per user.
"""

from flask import current_app
from flask import g
from flask import request
from flask_login import current_user

from webapp import attachments
from webapp import import_jobs
from webapp import import_queue
from webapp import imports
from webapp import results
from webapp.api import payload as p
from webapp.api.import_jobs import job_json
from webapp.api.resources import get_build
from webapp.api.resources import get_instance
from webapp.api.serializers import build_json

NEW_BUILD_QUERY = {
    "name": p.text(255),
    "branch": p.text(255),
    "revision": p.text(255),
    "ci_url": p.text(2048),
}


def new_build_fields():
    """The new build's fields from the query string: number, name, branch, revision, ci_url."""
    unknown = set(request.args) - set(NEW_BUILD_QUERY) - {"number", "async"}
    if unknown:
        raise p.ValidationError("unknown query parameters", dict.fromkeys(sorted(unknown), "unknown field"))
    fields = p.validate({name: request.args[name] for name in NEW_BUILD_QUERY if name in request.args},
                        NEW_BUILD_QUERY)
    fields["number"] = p.query_int("number", None, 1, 2**31 - 1)
    return fields


def max_report_bytes():
    """How large a report may be once decompressed."""
    return current_app.config.get("MAX_REPORT_BYTES", imports.DEFAULT_MAX_REPORT_BYTES)


def uploaded():
    """The request's report files, read from the client once per request."""
    if "import_files" not in g:
        g.import_files = imports.report_files(request)
        g.import_attachments = imports.attachment_files(request)
    return g.import_files


def store_attachments(build):
    """Store the upload's attachment parts for the cases that refer to them; return the count."""
    return attachments.attach_referenced(build, g.import_attachments)


def respond(produce):
    """Run an import exactly once per Idempotency-Key and answer with its (first) reply."""
    key = imports.idempotency_key(request)
    status, body, replayed = imports.idempotent(
        current_user.id, key, imports.request_fingerprint(request), produce
    )
    headers = {"Content-Type": "application/json"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    if status == 202:
        headers["Location"] = current_app.json.loads(body)["url"]
    return body, status, headers


def queued():
    """Whether this upload is imported later by the worker: ``?async=true``, or a large body."""
    flag = request.args.get("async", "false").lower()
    if flag not in ("true", "false", "1", "0"):
        raise p.ValidationError("async is true or false", {"async": "true or false"})
    large = (request.content_length or 0) > current_app.config["ASYNC_IMPORT_BYTES"]
    return flag in ("true", "1") or large


def queue_into(build, new_build=False):
    """Store the upload for the worker and answer 202 with the job (its URL also in ``Location``)."""
    if g.import_attachments:
        raise p.ValidationError(
            "a queued import cannot carry attachments; upload it without ?async (and below the size "
            "that queues an import)", {"attachment": "not taken by a queued import"})
    job = import_jobs.queue_import(build, uploaded(), current_user.id, g.get("request_id", ""), new_build)
    import_queue.from_config(current_app.config).enqueue(job)
    return 202, job_json(job)


def import_new_build(instance_id):
    """Create a build from a JUnit XML report (build fields as query parameters)."""
    fields = new_build_fields()
    uploaded()

    def produce():
        build = results.create_build(get_instance(instance_id), **fields)
        if queued():
            return queue_into(build, new_build=True)
        counts = imports.import_files(build, uploaded(), max_report_bytes(), new_build=True)
        counts["attachments"] = store_attachments(build)
        return 201, dict(build=build_json(build), **counts)

    return respond(produce)


def import_into_build(instance_id, build_id):
    """Add a JUnit XML report's suites and cases to an existing build."""
    unknown = set(request.args) - {"async"}
    if unknown:
        raise p.ValidationError("this import takes no query parameters but async",
                                dict.fromkeys(sorted(unknown), "unknown field"))
    uploaded()

    def produce():
        build = get_build(instance_id, build_id)
        if queued():
            return queue_into(build)
        counts = imports.import_files(build, uploaded(), max_report_bytes())
        counts["attachments"] = store_attachments(build)
        return 200, dict(build=build_json(build), **counts)

    return respond(produce)
