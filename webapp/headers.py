"""Security headers on every answer, set by the app itself.

They hold under ``make run`` and behind any proxy, not only behind the nginx
site Greenbar ships (which therefore no longer adds them to what the app
answers). The policy allows nothing inline: scripts and styles come from
``webapp/static/`` (and Bootstrap's own files, served from this site too), and
pages hand data to scripts in ``<script type="application/json">`` blocks,
which are data, not scripts.
"""

from flask import current_app
from flask import request


def content_security_policy(image_origin=None):
    """The policy; ``image_origin`` is where attachment thumbnails are redirected (S3), if anywhere."""
    # Bootstrap's stylesheet draws its checkboxes and select arrows as data: SVGs
    images = " ".join(("img-src 'self' data:", image_origin or "")).strip()
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            images,
            "font-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'self'",
        )
    )


def app_policy():
    """This app's policy, worked out once: thumbnails on S3 come from the bucket's presigned origin."""
    storage = current_app.extensions.get("greenbar_storage")
    cached = current_app.extensions.get("greenbar_csp")
    if cached is None or cached[0] is not storage:
        cached = storage, content_security_policy(getattr(storage, "image_origin", None))
        current_app.extensions["greenbar_csp"] = cached
    return cached[1]


HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # for browsers older than frame-ancestors
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
HSTS = "max-age=31536000"


def add_security_headers(response):
    """Add the headers a view has not set itself (the reset page sends no referrer at all)."""
    response.headers.setdefault("Content-Security-Policy", app_policy())
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    # over HTTPS only: the scheme comes from the proxy through ProxyFix
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    # API replies carry results and errors for one caller: no browser or proxy may keep them
    if request.path.startswith("/api/"):
        response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app):
    """Add the headers to every response."""
    app.after_request(add_security_headers)
