"""JSON shapes of the API's items: the seed's fields plus ids, links and counters."""

from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models import TestInstance
from webapp.models import TestSuite
from webapp.results import COUNTERS


def iso(value):
    """Format a time as ISO 8601 UTC with milliseconds, or None."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def counters(item):
    """The aggregate counters of a build or suite, with pass rate and overall status."""
    data = {name: getattr(item, name) for name in COUNTERS}
    data["cases_duration"] = round(data["cases_duration"] or 0.0, 6)
    data["pass_rate"] = item.pass_rate
    data["status"] = item.status
    return data


def instance_json(instance):
    """A test instance."""
    return {
        "id": instance.id,
        "pk": instance.id,
        "name": instance.name,
        "description": instance.description,
        "created": iso(instance.created),
    }


def build_json(build):
    """A test build with its counters."""
    data = {
        "id": build.id,
        "pk": build.id,
        "instance_id": build.instance_id,
        "number": build.number,
        "name": build.name,
        "branch": build.branch,
        "revision": build.revision,
        "ci_url": build.ci_url,
        "started": iso(build.started),
        "finished": iso(build.finished),
        "suites_total": build.suites_total,
    }
    data.update(counters(build))
    return data


def suite_json(suite):
    """A test suite with its counters."""
    data = {
        "id": suite.id,
        "pk": suite.id,
        "build_id": suite.build_id,
        "name": suite.name,
        "started": iso(suite.started),
        "finished": iso(suite.finished),
    }
    data.update(counters(suite))
    return data


def case_json(case):
    """A test case."""
    return {
        "id": case.id,
        "pk": case.id,
        "suite_id": case.suite_id,
        "build_id": case.build_id,
        "name": case.name,
        "started": iso(case.started),
        "finished": iso(case.finished),
        "result_status": case.result_status,
        "duration": case.duration,
        "message": case.message,
        "details": case.details,
        "attempts": case.attempts,
        "is_flaky": case.is_flaky,
    }



def serialize(item):
    """Serialize any instance, build, suite or case."""
    return {
        TestInstance: instance_json,
        TestBuild: build_json,
        TestSuite: suite_json,
        TestCase: case_json,
    }[type(item)](item)
