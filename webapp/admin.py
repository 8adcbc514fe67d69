"""The admin panel (Flask-Admin at ``/admin/``): only admins reach any of it, the index included.

Anonymous visitors are sent to the login page, other users get a 403. Writes
to instances, builds, suites and cases go through :mod:`webapp.results`, the
same code the API uses, so the aggregate counters stay exact; the counters
themselves are never in a form. Forms are Flask-WTF forms, so they carry the
app's CSRF token. Users get their password through a form field that is hashed
on save and never rendered back; a new API token is shown once, in a flash.
"""

import logging
from datetime import datetime
from datetime import timezone

from flask import abort
from flask import flash
from flask import g
from flask import redirect
from flask import request
from flask import url_for
from flask_admin import Admin
from flask_admin import AdminIndexView
from flask_admin import BaseView
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_admin.contrib.sqla.ajax import QueryAjaxModelLoader
from flask_admin.contrib.sqla.form import AdminModelConverter
from flask_admin.menu import MenuLink
from flask_admin.model.filters import convert as converts_filter
from flask_admin.model.form import converts
from flask_admin.theme import Bootstrap4Theme
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import func
from sqlalchemy import select
from wtforms import FloatField
from wtforms import IntegerField
from wtforms import PasswordField
from wtforms import SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length
from wtforms.validators import NumberRange
from wtforms.validators import Optional
from wtforms.validators import ValidationError

from webapp import limits
from webapp import oplog
from webapp import results
from webapp.domain import MAX_KEEP_DAYS
from webapp.domain import STATUSES
from webapp.exceptions import Conflict
from webapp.extensions import db
from webapp.extensions import login_manager
from webapp.forms import PASSWORD_MAX
from webapp.forms import PASSWORD_MIN
from webapp.models import MAX_BUILD_NUMBER
from webapp.models import ROLES
from webapp.models import ApiToken
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models import TestInstance
from webapp.models import TestSuite
from webapp.models import User
from webapp.models_oplog import OperationRecord
from webapp.security import issue_token
from webapp.security import revoke_token

log = logging.getLogger(__name__)

COUNTER_COLUMNS = ("cases_total", "passed", "failed", "errored", "skipped", "flaky", "cases_duration")
CASE_FIELDS = (
    "name",
    "result_status",
    "duration",
    "started",
    "finished",
    "message",
    "details",
    "system_out",
    "system_err",
    "attempts",
    "is_flaky",
)
SUITE_FIELDS = ("name", "started", "finished", "system_out", "system_err")
BUILD_FIELDS = ("number", "name", "branch", "revision", "ci_url", "started", "finished", "pinned")
# an instance's retention policy; empty keeps everything
POLICY_FIELDS = ("keep_days", "keep_builds")
# the landing page: label, view endpoint, model counted (None: too big to count), what it holds
OVERVIEW = (
    ("Instances", "admin_instances", TestInstance, "products under test"),
    ("Builds", "admin_builds", TestBuild, "runs of an instance's tests"),
    ("Suites", "admin_suites", TestSuite, "groups of cases in a build"),
    ("Cases", "admin_cases", None, "single results; filter by build id to find them"),
    ("Users", "admin_users", User, "accounts, roles and passwords"),
    ("API tokens", "admin_tokens", ApiToken, "credentials for CI jobs"),
    ("Login lockouts", "admin_lockouts", None, "failed passwords refused for now; lift them here"),
)
# a leading = + - @ makes a spreadsheet run the cell as a formula
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class AdminForm(FlaskForm):
    """Base of every admin form: Flask-WTF's CSRF token, checked like on every other form."""

    def __init__(self, formdata=None, obj=None, prefix="", **kwargs):
        # Flask-Admin's uniqueness check skips the record being edited by reading _obj
        self._obj = obj
        super().__init__(formdata=formdata, obj=obj, prefix=prefix, **kwargs)


def form_values(form, names):
    """The submitted values of the named fields: empty text as None, times as aware UTC."""
    values = {}
    for name in names:
        if name not in form:
            continue
        value = form[name].data
        if value == "":
            value = None
        elif isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        values[name] = value
    return values


def changed_values(model, form, names):
    """The submitted values that differ from what ``model`` holds."""
    return {name: value for name, value in form_values(form, names).items() if getattr(model, name) != value}


def given_values(form, names):
    """The submitted values that are set, so that unset ones take the model's defaults."""
    return {name: value for name, value in form_values(form, names).items() if value is not None}


def spreadsheet_safe(value):
    """Quote text that a spreadsheet would otherwise evaluate as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def build_label(build):
    """Name a build unambiguously: its instance and number."""
    return f"{build.instance.name} #{build.number}"


class ModelConverter(AdminModelConverter):
    """Flask-Admin's form fields, plus the models' UTC timestamps and SQLAlchemy 2.1's Float.

    SQLAlchemy 2.1's ``Float`` no longer derives from ``Numeric``, so Flask-Admin
    would silently leave float columns (a case's duration) out of its forms.
    """

    @converts("Float")
    def convert_float(self, field_args, **extra):
        """Edit a float as a float."""
        return FloatField(**field_args)

    @converts("UTCDateTime")
    def convert_utc_datetime(self, field_args, **extra):
        """Edit a UTC timestamp like any date-time (entered and shown in UTC)."""
        return self.convert_datetime(field_args, **extra)


class FilterConverter(sqla_filters.FilterConverter):
    """Flask-Admin's list filters, plus date-time filters for the UTC timestamp type."""

    @converts_filter("UTCDateTime")
    def conv_utc_datetime(self, column, name, **kwargs):
        """Filter a UTC timestamp like any date-time."""
        return self.conv_datetime(column, name, **kwargs)


class LabelledLoader(QueryAjaxModelLoader):
    """An AJAX picker whose choices say where they live, not only their own name."""

    def __init__(self, name, model, label, **options):
        super().__init__(name, db, model, **options)
        self.label = label

    def format(self, model):
        """Return ``(id, label)`` for the picker."""
        return None if model is None else (model.id, self.label(model))


def count_rows(model):
    """Count a table's rows."""
    return db.session.scalar(select(func.count()).select_from(model))


class AdminOnly:
    """Access rule shared by every admin view: admins only; others 403, anonymous to login."""

    def is_accessible(self):
        """Only a logged-in admin may see or do anything here."""
        return current_user.is_authenticated and current_user.has_role("admin")

    def inaccessible_callback(self, name, **kwargs):
        """Send anonymous users to log in (coming back afterwards); refuse everyone else."""
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        abort(403, description="The admin panel is for admins only.")


class HomeView(AdminOnly, AdminIndexView):
    """The admin landing page: what there is to manage, with counts."""

    @expose("/")
    def index(self):
        """Show each managed table with its row count (cases uncounted: the largest table)."""
        tables = [
            (label, endpoint + ".index_view", None if model is None else count_rows(model), hint)
            for label, endpoint, model, hint in OVERVIEW
        ]
        return self.render("admin/index.html", tables=tables)


class SecureModelView(AdminOnly, ModelView):
    """A model view for admins with CSRF-protected forms, search, filters and CSV export."""

    form_base_class = AdminForm
    model_form_converter = ModelConverter
    filter_converter = FilterConverter()
    can_export = True
    can_view_details = True
    export_max_rows = 50_000
    page_size = 50
    can_set_page_size = True
    column_display_pk = True
    column_default_sort = ("id", True)

    def handle_view_exception(self, exc):
        """Show a results-layer conflict (a taken name or number) as a message, not a failure."""
        if isinstance(exc, Conflict):
            flash(exc.message, "error")
            return True
        return super().handle_view_exception(exc)

    def run_write(self, write):
        """Run one write in its own transaction; on failure roll back, tell the admin, return False.

        The operation log records it in the same transaction: the view and the row's id.
        """
        try:
            outcome = write()
            view = (request.endpoint or "").removeprefix("admin_").replace("_view", "")
            item = request.args.get("id") or request.form.get("id") or ""
            oplog.record(
                f"admin.{view}",
                user=current_user,
                target=f"{self.model.__tablename__}:{item}",
                request_id=g.get("request_id", ""),
            )
            db.session.commit()
        except Exception as exc:
            db.session.rollback()
            if not self.handle_view_exception(exc):
                log.exception("admin write failed")
                flash(f"Saving failed: {exc}", "error")
            return False
        return True if outcome is None else outcome

    def get_export_value(self, model, name):
        """Export values as they are listed, with formula-like text defused."""
        return spreadsheet_safe(super().get_export_value(model, name))


class InstanceView(SecureModelView):
    """Test instances; created and deleted through the results layer."""

    column_list = ("id", "name", "description", "created", "pass_green", "pass_amber", *POLICY_FIELDS)
    column_searchable_list = ("name", "description")
    column_filters = ("name", "created")
    form_columns = ("name", "description", "pass_green", "pass_amber", *POLICY_FIELDS)
    column_labels = {
        "pass_green": "Green from (pass rate 0..1)",
        "pass_amber": "Amber from (pass rate 0..1)",
        "keep_days": "Keep cases of the last N days",
        "keep_builds": "Keep cases of the newest N builds",
    }
    column_descriptions = {
        "keep_days": "Retention (flask retention run): empty keeps every build's cases; counters stay",
        "keep_builds": "Retention: empty keeps every build's cases; pinned builds are always kept",
    }
    form_args = {
        "pass_green": {"validators": [NumberRange(0, 1)]},
        "pass_amber": {"validators": [NumberRange(0, 1)]},
        "keep_days": {"validators": [Optional(), NumberRange(1, MAX_KEEP_DAYS)]},
        "keep_builds": {"validators": [Optional(), NumberRange(1, MAX_BUILD_NUMBER)]},
    }

    def validate_form(self, form):
        """Refuse an amber threshold above the green one: the colours would overlap."""
        valid = super().validate_form(form)
        green, amber = getattr(form, "pass_green", None), getattr(form, "pass_amber", None)
        if (
            valid
            and green is not None
            and amber is not None
            and green.data is not None
            and amber.data is not None
            and amber.data > green.data
        ):
            amber.errors = [*amber.errors, "must not be above the green threshold"]
            return False
        return valid

    def create_model(self, form):
        """Create through :func:`results.create_instance`, which refuses a taken name."""

        def create():
            instance = results.create_instance(form.name.data, form.description.data or "")
            results.update_instance(
                instance, **given_values(form, ("pass_green", "pass_amber", *POLICY_FIELDS))
            )
            return instance

        return self.run_write(create)

    def update_model(self, form, model):
        """Rename, re-describe or re-colour through :func:`results.update_instance` (refuses a taken name)."""
        changes = changed_values(model, form, ("name", "description", *POLICY_FIELDS))
        changes.update(given_values(form, ("pass_green", "pass_amber")))
        return self.run_write(lambda: results.update_instance(model, **changes))

    def delete_model(self, model):
        """Delete with everything below it."""
        return self.run_write(lambda: results.delete_instance(model))


class BuildView(SecureModelView):
    """Builds; counters shown, never edited; numbering and deletion through the results layer."""

    column_list = ("id", "instance", "number", "name", "branch", "started", "finished", "suites_total")
    column_list += COUNTER_COLUMNS + ("pinned", "pruned")
    column_searchable_list = ("name", "branch", "revision")
    column_filters = ("instance_id", "instance.name", "number", "branch", "started", "failed", "errored")
    column_labels = {"instance.name": "Instance name", "instance_id": "Instance id"}
    form_columns = ("instance",) + BUILD_FIELDS
    form_extra_fields = {
        "number": IntegerField(
            "Number",
            validators=[Optional(), NumberRange(min=1)],
            description="Leave empty for the next free number.",
        )
    }

    def edit_form(self, obj=None):
        """A build stays in its instance: its cases repeat the instance id."""
        form = super().edit_form(obj)
        del form.instance
        return form

    def create_model(self, form):
        """Create through :func:`results.create_build`: the next free number unless one is given."""
        fields = given_values(form, BUILD_FIELDS)
        return self.run_write(lambda: results.create_build(form.instance.data, **fields))

    def update_model(self, form, model):
        """Change through :func:`results.update_build`, which refuses a taken number (empty keeps it)."""
        changes = changed_values(model, form, BUILD_FIELDS)
        return self.run_write(lambda: results.update_build(model, **changes))

    def delete_model(self, model):
        """Delete with its suites and cases."""
        return self.run_write(lambda: results.delete_build(model))


class SuiteView(SecureModelView):
    """Suites; renames re-key their cases and deletions move the build's counters."""

    column_list = ("id", "build", "name", "started", "finished") + COUNTER_COLUMNS
    column_formatters = {"build": lambda view, context, model, name: build_label(model.build)}
    column_formatters_export = column_formatters
    column_searchable_list = ("name",)
    column_filters = ("build_id", "name", "started", "failed", "errored")
    column_labels = {"build_id": "Build id"}
    form_columns = ("build",) + SUITE_FIELDS
    form_ajax_refs = {
        "build": LabelledLoader(
            "build", TestBuild, build_label, fields=("name", "branch", "number"), page_size=10
        )
    }

    def edit_form(self, obj=None):
        """A suite stays in its build: its cases repeat the build id."""
        form = super().edit_form(obj)
        del form.build
        return form

    def create_model(self, form):
        """Create through :func:`results.create_suite`, which counts it in its build."""
        fields = given_values(form, SUITE_FIELDS)
        name = fields.pop("name")
        return self.run_write(lambda: results.create_suite(form.build.data, name, **fields))

    def update_model(self, form, model):
        """Change through :func:`results.update_suite`: a rename re-keys cases; a taken name is refused."""
        changes = changed_values(model, form, SUITE_FIELDS)
        return self.run_write(lambda: results.update_suite(model, **changes))

    def delete_model(self, model):
        """Delete through :func:`results.delete_suite`, which takes its counts off the build."""
        return self.run_write(lambda: results.delete_suite(model))


def status_or_none(value):
    """Read a submitted status: the empty choice means "not finished"."""
    return value or None


class StatusField(SelectField):
    """A case's result as a plain select (four choices need no search box), empty for unfinished."""

    def __init__(self, label=None, validators=None, **kwargs):
        choices = [SelectChoice("", "— not finished —")] + [SelectChoice(status) for status in STATUSES]
        super().__init__(label, validators, coerce=status_or_none, choices=choices, **kwargs)


class CaseView(SecureModelView):
    """Cases; every change goes through the results layer so suite and build counters move with it."""

    column_list = (
        "id",
        "instance_id",
        "build_id",
        "suite",
        "name",
        "result_status",
        "duration",
        "started",
        "finished",
        "attempts",
        "is_flaky",
    )
    column_searchable_list = ("name",)
    column_filters = ("result_status", "instance_id", "build_id", "suite_id", "is_flaky", "started", "name")
    column_labels = {
        "result_status": "Status",
        "instance_id": "Instance id",
        "build_id": "Build id",
        "suite_id": "Suite id",
    }
    column_export_list = column_list + ("message",)
    # counting every case of every build for a page number would scan the largest table
    simple_list_pager = True
    export_max_rows = 20_000
    form_columns = ("suite",) + CASE_FIELDS
    form_overrides = {"result_status": StatusField}
    form_ajax_refs = {
        "suite": LabelledLoader(
            "suite",
            TestSuite,
            lambda suite: f"{build_label(suite.build)} › {suite.name}",
            fields=("name",),
            page_size=10,
        )
    }

    def edit_form(self, obj=None):
        """A case stays in its suite: its build and test identity come from there."""
        form = super().edit_form(obj)
        del form.suite
        return form

    def create_model(self, form):
        """Create through :func:`results.create_case`, which counts it in its suite and build."""
        suite = form.suite.data
        fields = given_values(form, CASE_FIELDS)
        name = fields.pop("name")
        return self.run_write(lambda: results.create_case(suite, suite.build, name, **fields))

    def update_model(self, form, model):
        """Change through :func:`results.update_case`, which moves the counts of a new status."""
        changes = changed_values(model, form, CASE_FIELDS)
        return self.run_write(lambda: results.update_case(model, **changes))

    def delete_model(self, model):
        """Delete through :func:`results.delete_case`, which takes its counts off."""
        return self.run_write(lambda: results.delete_case(model))


class NewPasswordField(PasswordField):
    """A password typed into the admin form: hashed by the view, never copied onto the model."""

    def populate_obj(self, obj, name):
        """Leave the model alone; :meth:`UserView.on_model_change` stores the hash."""


class UserView(SecureModelView):
    """Users: role, activity and a password that is only ever written."""

    column_list = ("id", "username", "email", "role", "active", "created")
    column_details_list = column_list
    column_export_list = column_list
    column_searchable_list = ("username", "email")
    column_filters = ("role", "active", "created")
    form_columns = ("username", "email", "role", "active", "password")
    form_choices = {"role": [(role, role) for role in ROLES]}
    form_extra_fields = {
        "password": NewPasswordField(
            "Password",
            validators=[Optional(), Length(min=PASSWORD_MIN, max=PASSWORD_MAX)],
            description="Leave empty to keep the current password.",
            render_kw={"autocomplete": "new-password"},
        )
    }

    def on_model_change(self, form, model, is_created):
        """Hash a new password; keep an admin from locking themselves out."""
        if form.password.data:
            model.set_password(form.password.data)
        elif is_created:
            raise ValidationError("Give the new user a password.")
        is_self = model.id is not None and model.id == current_user.id
        if is_self and not (model.active and model.role == "admin"):
            raise ValidationError("You cannot deactivate yourself or drop your own admin role.")

    def on_model_delete(self, model):
        """An admin cannot delete their own account."""
        if model.id == current_user.id:
            raise ValidationError("You cannot delete your own account.")


class OperationLogView(SecureModelView):
    """The operation log, read-only: who changed which results, when, with what counts."""

    can_create = False
    can_edit = False
    can_delete = False
    column_list = ("at", "action", "username", "instance_id", "build_id", "target", "counts", "request_id")
    column_details_list = ("id", "record_id", *column_list, "shipped")
    column_export_list = column_details_list
    column_searchable_list = ("action", "username", "target", "request_id")
    column_filters = ("at", "action", "username", "instance_id", "build_id", "shipped")
    column_default_sort = ("id", True)


class TokenView(SecureModelView):
    """API tokens: created here (the secret is shown once), revoked with immediate effect."""

    can_edit = False
    column_list = ("id", "user", "name", "hint", "created", "revoked")
    column_details_list = column_list
    column_export_list = column_list
    column_labels = {"hint": "Starts with", "user.username": "Username"}
    column_searchable_list = ("name", "hint")
    column_filters = ("user.username", "name", "created", "revoked")
    form_columns = ("user", "name")

    def create_model(self, form):
        """Issue a token and flash its secret; only its digest is stored."""
        user = form.user.data
        created = self.run_write(lambda: issue_token(user, form.name.data or "")[1])
        if not created:
            return False
        message = Markup(
            "New API token for {}: <code class='text-break user-select-all'>{}</code> "
            "(copy it now; it is not shown again)"
        )
        flash(message.format(user.username, created), "success")
        return True

    @action("revoke", "Revoke", "Revoke the selected tokens? API calls that use them stop working at once.")
    def action_revoke(self, ids):
        """Revoke the selected tokens."""
        wanted = [int(i) for i in ids if str(i).isdigit()]
        records = db.session.scalars(select(ApiToken).where(ApiToken.id.in_(wanted))).all()

        def write():
            for record in records:
                revoke_token(record)

        if self.run_write(write):
            flash(f"Revoked {len(records)} token(s).", "success")


class LockoutView(AdminOnly, BaseView):
    """Login lockouts in force (failed passwords for a name at an address, or from an address); lift one."""

    @expose("/")
    def index_view(self):
        """List the lockouts still in force, each with a button that lifts it."""
        return self.render("admin/lockouts.html", lockouts=limits.active_lockouts(), form=AdminForm())

    @expose("/<int:lockout_id>/lift", methods=["POST"])
    def lift(self, lockout_id):
        """Lift one lockout: its counter starts again from zero."""
        if not AdminForm().validate_on_submit():
            abort(400, description="The form expired; reload the page and try again.")
        if limits.lift_lockout(lockout_id):
            flash("Lockout lifted.", "success")
        else:
            flash("That lockout had already ended.", "info")
        return redirect(url_for(".index_view"))


def init_app(app):
    """Build this app's admin panel (views are bound to one app, so each app gets its own)."""
    admin = Admin(
        app,
        name="Greenbar admin",
        index_view=HomeView(name="Overview", url="/admin"),
        theme=Bootstrap4Theme(base_template="admin/greenbar_base.html", fluid=True),
    )
    views = (
        (InstanceView, TestInstance, "Instances", "instances", None),
        (BuildView, TestBuild, "Builds", "builds", None),
        (SuiteView, TestSuite, "Suites", "suites", None),
        (CaseView, TestCase, "Cases", "cases", None),
        (UserView, User, "Users", "users", "Access"),
        (TokenView, ApiToken, "API tokens", "tokens", "Access"),
        (OperationLogView, OperationRecord, "Operation log", "oplog", None),
    )
    for view, model, name, url, category in views:
        admin.add_view(view(model, db, name=name, endpoint=f"admin_{url}", url=url, category=category))
    admin.add_view(
        LockoutView(name="Login lockouts", endpoint="admin_lockouts", url="lockouts", category="Access")
    )
    admin.add_link(MenuLink(name="Back to Greenbar", url="/"))
