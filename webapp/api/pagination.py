"""Limit/offset pagination and allow-listed ordering for API lists."""

from urllib.parse import urlencode

from flask import request
from sqlalchemy import func
from sqlalchemy import select

from webapp.api.payload import ValidationError
from webapp.api.payload import query_int
from webapp.extensions import db

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
MAX_OFFSET = 10**9


def page_url(offset, limit):
    """The URL of this list at another offset, keeping the other query parameters."""
    args = request.args.to_dict()
    args.update(offset=str(offset), limit=str(limit))
    return f"{request.base_url}?{urlencode(sorted(args.items()))}"


def paginate(statement, serialize, total=None):
    """Run ``statement`` one page at a time: ``{count, next, previous, results}``.

    :param total: a known row count (from counters), to spare a ``COUNT(*)``.
    :raise ValidationError: for a limit outside 1..1000 or a negative offset.
    """
    limit = query_int("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = query_int("offset", 0, 0, MAX_OFFSET)
    if total is None:
        total = db.session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    rows = db.session.scalars(statement.limit(limit).offset(offset)).all()
    following = offset + limit
    return {
        "count": total,
        "next": page_url(following, limit) if following < total else None,
        "previous": page_url(max(offset - limit, 0), limit) if offset > 0 else None,
        "results": [serialize(row) for row in rows],
    }


def search_term():
    """The ``search`` query parameter, or None; at most 255 characters."""
    term = request.args.get("search", "")
    if len(term) > 255:
        raise ValidationError("search must be at most 255 characters", {"search": "too long"})
    return term.strip() or None
