"""Pages for acting on results: failure groups and triage, the gate, quarantine, badges.

Each panel is a fragment that the instance, build and case pages load after
they open (``?partial=1``), and a page of its own without script. Changes are
plain form posts (CSRF-checked by Flask-WTF) that need the maintainer role,
checked here on the server, and send the browser back where it came from.
"""

from flask import Blueprint
from flask import abort
from flask import flash
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_login import current_user
from flask_login import login_required

from webapp import audit
from webapp import badges
from webapp import failures
from webapp import gate
from webapp import quarantine
from webapp.accounts import safe_next
from webapp.extensions import db
from webapp.models_actions import LABEL_NAMES
from webapp.views import fragment_or_page
from webapp.views import get_build_or_404
from webapp.views import get_case_or_404
from webapp.views import get_instance_or_404
from webapp.views import text_arg
from webapp.views import trend_size_arg

bp = Blueprint("act", __name__)

GROUPS_SHOWN = 25
CAUSES_SHOWN = 10


def quarantined(instance_id):
    """The keys of an instance's quarantined tests, read once per request (templates mark them)."""
    cache = g.setdefault("quarantined_keys", {})
    if instance_id not in cache:
        cache[instance_id] = quarantine.quarantined_keys(instance_id)
    return cache[instance_id]


def require_maintainer():
    """Refuse a change from anyone below the maintainer role.

    :raise 403: for viewers.
    """
    if not current_user.has_role("maintainer"):
        abort(403, description="Only maintainers may change this.")


def back(default):
    """Redirect to the page the form was on (a local path), else ``default``."""
    return redirect(safe_next(request.form.get("next")) or default)


@bp.get("/builds/<int:build_id>/failures")
@login_required
def build_failures(build_id):
    """A build's gate outcome and its failures grouped by cause, largest first."""
    build = get_build_or_404(build_id)
    groups = failures.build_failure_groups(build, 0, GROUPS_SHOWN)
    verdict = gate.evaluate(build) if build.finished is not None else None
    return render_template(
        fragment_or_page("pages/_failure_groups.html", "pages/failure_groups.html"),
        build=build,
        instance=build.instance,
        groups=groups,
        verdict=verdict,
        labels=LABEL_NAMES,
        groups_shown=GROUPS_SHOWN,
    )


@bp.get("/instances/<int:instance_id>/causes")
@login_required
def instance_causes(instance_id):
    """The instance's top failure causes over its last builds (optionally one branch)."""
    instance = get_instance_or_404(instance_id)
    branch = text_arg("branch")
    size = trend_size_arg()
    causes = failures.top_causes(instance.id, size, branch, limit=CAUSES_SHOWN)
    return render_template(
        fragment_or_page("pages/_causes.html", "pages/causes.html"),
        instance=instance,
        branch=branch,
        causes=causes,
        labels=LABEL_NAMES,
    )


@bp.get("/instances/<int:instance_id>/actions")
@login_required
def instance_actions(instance_id):
    """The instance's quarantine, gate rules and badges."""
    instance = get_instance_or_404(instance_id)
    token = badges.token_for(instance.id)
    urls = {}
    if token is not None:
        urls = {
            kind: url_for(
                "badges.badge", instance_id=instance.id, token=token.token, kind=kind, _external=True
            )
            for kind in badges.KINDS
        }
    return render_template(
        fragment_or_page("pages/_instance_actions.html", "pages/instance_actions.html"),
        instance=instance,
        entries=quarantine.active_entries(instance.id),
        rules=gate.rules_for(instance.id),
        token=token,
        badge_urls=urls,
        max_days=quarantine.max_days(),
    )


@bp.get("/cases/<int:case_id>/quarantine")
@login_required
def case_quarantine(case_id):
    """Whether this case's test is quarantined, with the form to change that."""
    case = get_case_or_404(case_id)
    return render_template(
        fragment_or_page("pages/_case_quarantine.html", "pages/case_quarantine.html"),
        case=case,
        suite=case.suite,
        build=case.suite.build,
        instance=case.suite.build.instance,
        entry=quarantine.entry_for(case.instance_id, case.test_key),
        max_days=quarantine.max_days(),
    )


@bp.post("/instances/<int:instance_id>/quarantine")
@login_required
def add_quarantine(instance_id):
    """Quarantine a test from a form: suite, name, reason, optional owner and expiry date."""
    require_maintainer()
    instance = get_instance_or_404(instance_id)
    form = request.form
    owner = None
    try:
        if form.get("owner", "").strip():
            owner = quarantine.user_named(form["owner"].strip())
            if owner is None:
                raise quarantine.QuarantineError(
                    f"There is no active user named {form['owner'].strip()!r}.", "owner"
                )
        expires = quarantine.parse_expiry(form.get("expires"))
        suite, name, reason = (form.get(field, "").strip() for field in ("suite", "name", "reason"))
        entry = quarantine.add_entry(instance.id, suite, name, reason, current_user, owner, expires)
    except quarantine.QuarantineError as error:
        db.session.rollback()
        flash(f"The test was not quarantined: {error.message}", "danger")
    else:
        audit.record("createQuarantine", instance.id)
        db.session.commit()
        flash(f"{quarantine.node_id(entry)} is quarantined until {entry.expires:%Y-%m-%d}.", "success")
    return back(url_for("pages.instance", instance_id=instance.id))


@bp.post("/instances/<int:instance_id>/quarantine/<int:entry_id>/remove")
@login_required
def remove_quarantine(instance_id, entry_id):
    """End a quarantine entry now."""
    require_maintainer()
    instance = get_instance_or_404(instance_id)
    entry = quarantine.get_entry(instance.id, entry_id)
    if entry is None:
        abort(404, description=f"There is no quarantine entry {entry_id} in this instance.")
    quarantine.remove_entry(entry, current_user)
    audit.record("deleteQuarantine", instance.id)
    db.session.commit()
    flash(f"{quarantine.node_id(entry)} is out of quarantine.", "success")
    return back(url_for("pages.instance", instance_id=instance.id))


def optional_number(name, kind=float):
    """A form number, or None when blank.

    :raise gate.GateError: when it is not a number.
    """
    raw = request.form.get(name, "").strip()
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        raise gate.GateError(f"{name.replace('_', ' ')} must be a number", name) from None


@bp.post("/instances/<int:instance_id>/gate")
@login_required
def save_gate(instance_id):
    """Store the instance's gate rules from the form."""
    require_maintainer()
    instance = get_instance_or_404(instance_id)
    try:
        gate.save_rules(
            instance.id,
            current_user,
            min_pass_rate=optional_number("min_pass_rate"),
            no_new_failures=bool(request.form.get("no_new_failures")),
            max_flaky=optional_number("max_flaky", int),
            max_duration_increase=optional_number("max_duration_increase"),
        )
    except gate.GateError as error:
        db.session.rollback()
        flash(f"The rules were not saved: {error.message}.", "danger")
    else:
        db.session.commit()
        flash("The quality gate rules are saved.", "success")
    return back(url_for("pages.instance", instance_id=instance.id))


@bp.post("/builds/<int:build_id>/pin")
@login_required
def pin_build(build_id):
    """Pin a build (``pinned=1``), so retention never prunes it, or unpin it (``pinned=0``)."""
    require_maintainer()
    build = get_build_or_404(build_id)
    build.pinned = request.form.get("pinned") == "1"
    audit.record("pinBuild" if build.pinned else "unpinBuild", build.instance_id, build.id)
    db.session.commit()
    if build.pinned:
        flash(f"Build #{build.number} is pinned: retention keeps its cases.", "success")
    else:
        flash(f"Build #{build.number} is unpinned: retention may prune its cases.", "success")
    return back(url_for("pages.build", build_id=build.id))


@bp.post("/instances/<int:instance_id>/badge-token")
@login_required
def rotate_badge(instance_id):
    """Give the instance a new badge token; published badge links stop working."""
    require_maintainer()
    instance = get_instance_or_404(instance_id)
    badges.rotate_token(instance.id, current_user)
    db.session.commit()
    flash("The badge token is new: update the badge links you published.", "success")
    return back(url_for("pages.instance", instance_id=instance.id))


@bp.post("/instances/<int:instance_id>/failure-groups/<string(length=16):signature>/label")
@login_required
def label_group(instance_id, signature):
    """Label a failure cause (or remove its label when the form says so)."""
    require_maintainer()
    instance = get_instance_or_404(instance_id)
    form = request.form
    if form.get("remove"):
        failures.remove_label(instance.id, signature, current_user)
        audit.record("deleteFailureLabel", instance.id)
        db.session.commit()
        flash("The label is removed.", "success")
        return back(url_for("pages.instance", instance_id=instance.id))
    try:
        failures.set_label(
            instance.id,
            signature,
            form.get("label"),
            current_user,
            form.get("note", "").strip(),
            form.get("issue_url", "").strip(),
        )
    except failures.TriageError as error:
        db.session.rollback()
        flash(f"The label was not saved: {error}.", "danger")
    else:
        audit.record("setFailureLabel", instance.id)
        db.session.commit()
        flash(f"The cause is labelled “{LABEL_NAMES[form.get('label')]}”.", "success")
    return back(url_for("pages.instance", instance_id=instance.id))


def init_app(app):
    """Register the pages and the template helper that marks quarantined tests."""
    app.register_blueprint(bp)
    app.jinja_env.globals["quarantined"] = quarantined
