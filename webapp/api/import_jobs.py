"""``GET /api/imports/{id}/``: a queued import's state, progress and, once done, its build."""

import json

from flask import abort
from flask import url_for

from webapp import domain
from webapp.extensions import db
from webapp.models import TestBuild
from webapp.models_imports import DONE
from webapp.models_imports import FAILED
from webapp.models_imports import ImportJob


def job_json(job):
    """A job as the API shows it: the reply of a synchronous import once done, its error once failed."""
    answer = {
        "id": job.id,
        "url": url_for("api.importJob", job_id=job.id),
        "state": job.state,
        "instance_id": job.instance_id,
        "build_id": job.build_id,
        "bytes_total": job.bytes_total,
        "bytes_read": job.bytes_read,
        "cases_stored": job.cases_stored,
        "created": job.created,
        "started": job.started,
        "finished": job.finished,
    }
    if job.state == DONE:
        answer.update(json.loads(job.reply), build=db.session.get(TestBuild, job.build_id))
    if job.state == FAILED:
        answer["error"] = json.loads(job.error)
    return answer


def read_job(job_id):
    """One queued import; 404 when there is no such job."""
    job = db.session.get(ImportJob, job_id) if job_id <= domain.MAX_ID else None
    if job is None:
        abort(404, description=f"no import job {job_id}")
    return job_json(job)
