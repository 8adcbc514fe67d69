"""SVG badges in the flat style for an instance's latest finished build, and their secret tokens.

A badge is readable without logging in only through the instance's badge
token in its URL, so a README can embed it while the results stay private.
Text widths are measured with DejaVu Sans's advance widths at 11 px (the
first font the SVG asks for), and ``textLength`` holds every renderer to them,
so long labels never overflow their box.
"""

import hashlib
import hmac
import secrets
from html import escape

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import TestBuild
from webapp.models import utcnow
from webapp.models_actions import BadgeToken

KINDS = ("status", "tests", "flaky")
# DejaVu Sans advance widths at 11 px for ASCII 32..126, read from DejaVuSans.ttf's hmtx table
# fmt: off
ASCII_WIDTHS = (
    3.5, 4.41, 5.06, 9.22, 7.0, 10.45, 8.58, 3.02, 4.29, 4.29, 5.5, 9.22, 3.5, 3.97, 3.5, 3.71,
    7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 3.71, 3.71, 9.22, 9.22, 9.22, 5.84,
    11.0, 7.52, 7.55, 7.68, 8.47, 6.95, 6.33, 8.52, 8.27, 3.24, 3.24, 7.21, 6.13, 9.49, 8.23, 8.66,
    6.63, 8.66, 7.64, 6.98, 6.72, 8.05, 7.52, 10.88, 7.54, 6.72, 7.54, 4.29, 3.71, 4.29, 9.22, 5.5,
    5.5, 6.74, 6.98, 6.05, 6.98, 6.77, 3.87, 6.98, 6.97, 3.06, 3.06, 6.37, 3.06, 10.72, 6.97, 6.73,
    6.98, 6.98, 4.52, 5.73, 4.31, 6.97, 6.51, 9.0, 6.51, 6.51, 5.77, 7.0, 3.71, 7.0, 9.22,
)
# fmt: on
# other characters: as wide as a capital W, so that they never overflow
OTHER_WIDTH = 10.88
PADDING = 6
COLOURS = {"green": "#4c1", "yellow": "#dfb317", "red": "#e05d44", "grey": "#9f9f9f", "blue": "#007ec6"}
TEMPLATE = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" aria-label="{title}">'
    "<title>{title}</title>"
    '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
    '<stop offset="1" stop-opacity=".1"/></linearGradient>'
    '<clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath>'
    '<g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/>'
    '<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
    '<rect width="{width}" height="20" fill="url(#s)"/></g>'
    '<g fill="#fff" text-anchor="middle" font-family="DejaVu Sans,Verdana,Geneva,sans-serif" font-size="11">'
    '<text x="{label_x}" y="15" fill="#010101" fill-opacity=".3" textLength="{label_w}">{label}</text>'
    '<text x="{label_x}" y="14" textLength="{label_w}">{label}</text>'
    '<text x="{value_x}" y="15" fill="#010101" fill-opacity=".3" textLength="{value_w}">{value}</text>'
    '<text x="{value_x}" y="14" textLength="{value_w}">{value}</text></g></svg>'
)


def text_width(text):
    """The width of ``text`` in pixels at 11 px."""
    return round(
        sum(ASCII_WIDTHS[ord(char) - 32] if 32 <= ord(char) < 127 else OTHER_WIDTH for char in text), 2
    )


def render(label, value, colour):
    """A flat two-part badge."""
    label_w, value_w = text_width(label), text_width(value)
    left, right = round(label_w + 2 * PADDING), round(value_w + 2 * PADDING)
    return TEMPLATE.format(
        width=left + right,
        left=left,
        right=right,
        colour=COLOURS[colour],
        title=escape(f"{label}: {value}"),
        label=escape(label),
        value=escape(value),
        label_x=left / 2,
        value_x=left + right / 2,
        label_w=label_w,
        value_w=value_w,
    )


def latest_finished(instance_id, branch=None):
    """The newest finished build of an instance (on ``branch``), or None."""
    statement = select(TestBuild).where(TestBuild.instance_id == instance_id, TestBuild.finished.is_not(None))
    if branch is not None:
        statement = statement.where(TestBuild.branch == branch)
    return db.session.scalar(statement.order_by(TestBuild.number.desc()).limit(1))


def badge_for(kind, build):
    """The label, value and colour of one kind of badge for a build (None: no finished build yet)."""
    if build is None:
        return {"status": "build", "tests": "tests", "flaky": "flaky"}[kind], "no data", "grey"
    if kind == "tests":
        return "tests", str(build.cases_total), "blue"
    if kind == "flaky":
        return "flaky", str(build.flaky), "green" if build.flaky == 0 else "yellow"
    rate = build.pass_rate
    shown = "no tests ran" if rate is None else f"{rate * 100:.1f}%".replace(".0%", "%")
    if build.status in ("FAILED", "ERROR"):
        return "build", f"failing {shown}", "red"
    return "build", f"passing {shown}" if rate is not None else shown, "green"


def badge_svg(kind, instance_id, branch=None):
    """The SVG of one kind of badge for an instance's latest finished build."""
    return render(*badge_for(kind, latest_finished(instance_id, branch)))


def etag(svg):
    """A strong validator of a badge's bytes."""
    return hashlib.blake2b(svg.encode(), digest_size=12).hexdigest()


def token_for(instance_id):
    """The instance's badge token row, or None when badges have not been enabled yet."""
    return db.session.get(BadgeToken, instance_id)


def rotate_token(instance_id, user):
    """Give an instance a new badge token (the first, or instead of the old one) and return it."""
    stored = db.session.get(BadgeToken, instance_id, with_for_update=True)
    if stored is None:
        stored = BadgeToken(instance_id=instance_id)
        db.session.add(stored)
    stored.token = secrets.token_urlsafe(24)
    stored.rotated_by_name, stored.rotated = user.username, utcnow()
    db.session.flush()
    return stored


def token_matches(instance_id, token):
    """Whether ``token`` is the instance's badge token (compared in constant time)."""
    stored = token_for(instance_id)
    return stored is not None and hmac.compare_digest(stored.token.encode(), token.encode())
