"""The batch results endpoint: many case results into one build, in one transaction.

``POST /api/test-instance/{id}/test-build/{id}/results/`` takes
``{"results": [...]}`` (see :mod:`webapp.batch`). The body is validated
before the transaction starts; an ``Idempotency-Key`` makes the request
exactly-once per user, as for the JUnit import.
"""

from flask import request

from webapp.api import payload as p
from webapp.api.imports import respond
from webapp.api.resources import get_build


def add_results(instance_id, build_id):
    """Store a batch of case results into a build; answer with what was stored per status."""
    # imported here: webapp.imports reaches this package through webapp.api.payload, and
    # webapp.batch builds on webapp.imports, so a module-level import would be circular
    from webapp import batch

    if request.args:
        raise p.ValidationError(
            "this endpoint takes no query parameters", dict.fromkeys(sorted(request.args), "unknown field")
        )
    results = batch.parse(request.get_data(cache=True))

    def produce():
        build = get_build(instance_id, build_id)
        return 200, batch.store(build, results)

    return respond(produce)
