"""Public badge images: readable without logging in, only through the instance's badge token.

A wrong token, an unknown instance and an unknown kind all answer the same
plain 404, so the address tells a stranger nothing.
"""

from flask import Blueprint
from flask import Response
from flask import abort
from flask import request

from webapp import badges

bp = Blueprint("badges", __name__)
MAX_AGE = 60


@bp.get("/badges/<int:instance_id>/<token>/<kind>.svg")
def badge(instance_id, token, kind):
    """One badge of an instance's latest finished build, optionally ``?branch=``."""
    if kind not in badges.KINDS or instance_id > 2**31 - 1 or not badges.token_matches(instance_id, token):
        abort(404)
    branch = request.args.get("branch") or None
    if branch is not None and len(branch) > 255:
        abort(404)
    svg = badges.badge_svg(kind, instance_id, branch)
    response = Response(svg, mimetype="image/svg+xml")
    response.headers["Cache-Control"] = f"max-age={MAX_AGE}"
    response.set_etag(badges.etag(svg))
    return response.make_conditional(request)


def init_app(app):
    """Register the badge blueprint."""
    app.register_blueprint(bp)
