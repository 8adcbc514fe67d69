"""Flask-WTF forms for logging in and managing one's own account; each carries a CSRF token."""

from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms import EmailField
from wtforms import HiddenField
from wtforms import PasswordField
from wtforms import StringField
from wtforms import SubmitField
from wtforms.validators import DataRequired
from wtforms.validators import EqualTo
from wtforms.validators import Length
from wtforms.validators import Optional
from wtforms.validators import Regexp

PASSWORD_MIN = 8
# scrypt work grows with input; a cap keeps a huge "password" from costing more than a login
PASSWORD_MAX = 256
PASSWORD_LENGTH_MESSAGE = f"Use {PASSWORD_MIN} to {PASSWORD_MAX} characters."
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$"
# a shape check only: whether mail arrives is learnt by sending it
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def new_password_fields(label="New password"):
    """A password field and its confirmation, with the length rules every new password follows."""
    password = PasswordField(
        label,
        validators=[
            DataRequired(),
            Length(min=PASSWORD_MIN, max=PASSWORD_MAX, message=PASSWORD_LENGTH_MESSAGE),
        ],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "Repeat the password",
        validators=[DataRequired(), EqualTo("password", message="The two passwords differ.")],
        render_kw={"autocomplete": "new-password"},
    )
    return password, confirm


class LoginForm(FlaskForm):
    """Username and password, with "remember me" for a long-lived login cookie."""

    username = StringField(
        "Username", validators=[DataRequired(), Length(max=80)], render_kw={"autocomplete": "username"}
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired(), Length(max=PASSWORD_MAX)],
        render_kw={"autocomplete": "current-password"},
    )
    remember = BooleanField("Remember me on this device")
    next = HiddenField()
    submit = SubmitField("Log in")


class ChangePasswordForm(FlaskForm):
    """The current password, then the new one twice."""

    current = PasswordField(
        "Current password",
        validators=[DataRequired(), Length(max=PASSWORD_MAX)],
        render_kw={"autocomplete": "current-password"},
    )
    password, confirm = new_password_fields()
    submit = SubmitField("Change password")


class ResetRequestForm(FlaskForm):
    """Who forgot their password: a username or an e-mail address."""

    login = StringField("Username or e-mail", validators=[DataRequired(), Length(max=255)])
    submit = SubmitField("Send reset link")


class ResetPasswordForm(FlaskForm):
    """The new password chosen through a reset link."""

    password, confirm = new_password_fields()
    submit = SubmitField("Set new password")


class RegistrationForm(FlaskForm):
    """A new viewer account."""

    username = StringField(
        "Username",
        validators=[
            DataRequired(),
            Length(max=80),
            Regexp(USERNAME_PATTERN, message="Use letters, digits and . _ @ + - only."),
        ],
        render_kw={"autocomplete": "username"},
    )
    email = EmailField(
        "E-mail (for password resets)",
        validators=[
            Optional(),
            Length(max=255),
            Regexp(EMAIL_PATTERN, message="That is not an e-mail address."),
        ],
    )
    password, confirm = new_password_fields("Password")
    submit = SubmitField("Create account")
