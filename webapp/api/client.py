"""The client package for download: ``pip install`` straight from Greenbar, with the CI's token.

It lives under ``/api/`` so that pip's Basic credentials (a token in the URL)
are accepted, as for every other API call.
"""

import io

from flask import abort
from flask import send_file

from webapp import client_dist


def download(filename):
    """The greenbar-client wheel; pip needs its real file name at the end of the URL."""
    if filename != client_dist.filename():
        abort(404, description=f"no such file; the client is {client_dist.filename()}")
    return send_file(
        io.BytesIO(client_dist.wheel()),
        mimetype="application/octet-stream",
        as_attachment=True,
        download_name=filename,
    )
