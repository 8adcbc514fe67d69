"""Jinja setup for the pages: Bootstrap served locally, filters and helpers for templates.

Times are rendered as UTC in ``<time datetime="…Z">`` elements; ``static/app.js``
rewrites them into the viewer's time zone and keeps the UTC value in ``title``.
"""

from urllib.parse import urlencode

from flask import current_app
from flask import request
from flask import url_for
from flask_bootstrap import Bootstrap5
from flask_login import current_user
from flask_login.utils import _user_context_processor
from sqlalchemy.exc import SQLAlchemyError

from webapp import import_jobs
from webapp.domain import in_words
from webapp.extensions import db
from webapp.extensions import login_manager
from webapp.glance import pass_level

bootstrap = Bootstrap5()

DASH = "—"


def iso_utc(value):
    """Format an aware or naive-UTC datetime as ``YYYY-MM-DDTHH:MM:SSZ``, or ``""``."""
    if value is None:
        return ""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_text(value):
    """Format a datetime for people as ``YYYY-MM-DD HH:MM UTC``, or a dash when unset."""
    if value is None:
        return DASH
    return value.strftime("%Y-%m-%d %H:%M UTC")


def duration(seconds):
    """Format seconds as ``850 ms``, ``12.3 s``, ``4 m 05 s`` or ``2 h 03 m``; a dash when unknown."""
    if seconds is None:
        return DASH
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} m {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} m"


def percent(rate):
    """Format a 0..1 rate as ``98.5 %``; a dash when there is no rate."""
    if rate is None:
        return DASH
    return f"{rate * 100:.1f} %"


def build_duration(build):
    """Wall-clock time of a build when both ends are known, else the sum of its case durations."""
    if build.started is not None and build.finished is not None and build.finished >= build.started:
        return (build.finished - build.started).total_seconds()
    return build.cases_duration or None


def sparkline_points(rates, width=120, height=28, pad=2):
    """SVG polyline points for a series of 0..1 rates (None skipped), left to right.

    The vertical scale runs from a little below the lowest rate to 100 %, at
    least ten points tall, so that 97 % against 99 % is visible at a glance.
    """
    known = [rate for rate in rates if rate is not None]
    if not known:
        return ""
    low = min(min(known) - 0.02, 0.9)
    points = []
    step = (width - 2 * pad) / max(len(rates) - 1, 1)
    for index, rate in enumerate(rates):
        if rate is not None:
            y = pad + (1 - rate) / (1 - low) * (height - 2 * pad)
            points.append(f"{pad + index * step:.1f},{y:.1f}")
    return " ".join(points)


def url_with(**changes):
    """The current page's URL with some query parameters replaced (None removes one)."""
    args = request.args.to_dict()
    for name, value in changes.items():
        if value is None:
            args.pop(name, None)
        else:
            args[name] = str(value)
    path = url_for(request.endpoint, **(request.view_args or {}))
    return f"{path}?{urlencode(sorted(args.items()))}" if args else path


def has_endpoint(name):
    """Whether an endpoint is registered, so links to optional parts never break a page."""
    return name in current_app.view_functions


def viewer():
    """The logged-in user, or None; never fails, so error pages render even when the DB is down."""
    try:
        return current_user if current_user.is_authenticated else None
    except SQLAlchemyError:
        db.session.rollback()
        return None


def safe_user_context():
    """``current_user`` for templates, anonymous when the user cannot be loaded."""
    return {"current_user": viewer() or login_manager.anonymous_user()}


def init_app(app):
    """Serve Bootstrap from this server and register the filters and helpers."""
    bootstrap.init_app(app)
    # Flask-Login's own processor loads the user eagerly for every template, so
    # with the database down even the 500 page failed; this one degrades instead
    processors = app.template_context_processors[None]
    processors[:] = [proc for proc in processors if proc is not _user_context_processor]
    app.context_processor(safe_user_context)
    app.jinja_env.filters.update(
        isotime=iso_utc,
        utctext=utc_text,
        duration=duration,
        percent=percent,
        build_duration=build_duration,
        in_words=in_words,
    )
    app.jinja_env.globals.update(
        url_with=url_with,
        has_endpoint=has_endpoint,
        viewer=viewer,
        sparkline_points=sparkline_points,
        pass_level=pass_level,
        pending_imports=import_jobs.pending_for_build,
    )
