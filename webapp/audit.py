"""The operation log entry of the current request: who (the logged-in user), the path and request id.

API writes, page forms and admin edits all record through :func:`record`, so
every entry names its request the same way (:mod:`webapp.oplog` keeps them).
"""

from flask import g
from flask import request
from flask_login import current_user

from webapp import oplog


def record(action, instance_id=None, build_id=None, counts=None):
    """Put this request's operation into the log, in the transaction the caller commits."""
    return oplog.record(
        action,
        user=current_user,
        instance_id=instance_id,
        build_id=build_id,
        target=request.path,
        counts=counts,
        request_id=g.get("request_id", ""),
    )
