"""The "Connect your CI" page of an instance: copy-paste set-up for GitHub Actions, GitLab CI and Jenkins.

The snippets install the client from this server (``/api/client/…whl``), so a
CI job needs only Greenbar's address and a maintainer's token.
"""

from urllib.parse import urlsplit

from flask import Blueprint
from flask import current_app
from flask import render_template
from flask import request
from flask_login import login_required

from webapp import client_dist
from webapp.views import get_instance_or_404

bp = Blueprint("connect", __name__)


def server_address():
    """Greenbar's address as CI jobs should use it: the configured external URL, else this request's."""
    return (current_app.config.get("EXTERNAL_URL") or request.host_url).rstrip("/")


@bp.get("/instances/<int:instance_id>/connect")
@login_required
def connect_ci(instance_id):
    """Show how to send an instance's results from CI, with the client's download address."""
    instance = get_instance_or_404(instance_id)
    address = server_address()
    parts = urlsplit(address)
    wheel_path = f"{parts.path}/api/client/{client_dist.filename()}"
    return render_template(
        "pages/connect.html",
        instance=instance,
        address=address,
        # pip sends the credentials in the URL as Basic auth; the shell fills them in from the CI's secrets
        pip_url=f"{parts.scheme}://$GREENBAR_USER:$GREENBAR_TOKEN@{parts.netloc}{wheel_path}",
        wheel_url=address + f"/api/client/{client_dist.filename()}",
    )


def init_app(app):
    """Register the page."""
    app.register_blueprint(bp)
