"""Command-line commands: ``flask users``, ``flask tokens``, ``flask demo-data``, ``flask bootstrap``."""

import secrets

import click
from flask import current_app
from sqlalchemy import func
from sqlalchemy import select

from webapp import demo
from webapp.extensions import db
from webapp.models import ROLES
from webapp.models import ApiToken
from webapp.models import TestInstance
from webapp.models import User
from webapp.security import issue_token
from webapp.security import revoke_token

users = click.Group("users", help="Manage user accounts.")
tokens = click.Group("tokens", help="Manage API tokens.")


def find_user(username):
    """Return the user or stop with a clear message."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.ClickException(f"no user named {username!r}")
    return user


@users.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True)
@click.option("--email", default=None)
@click.password_option("--password", help="Asked twice at the prompt when not given.")
def create_user(username, role, email, password):
    """Create a user with a role and a password."""
    if db.session.scalar(select(User).where(User.username == username)) is not None:
        raise click.ClickException(f"a user named {username!r} already exists")
    user = User(username=username, role=role, email=email, active=True)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    click.echo(f"created {role} {username}")


@users.command("set-password")
@click.argument("username")
@click.password_option("--password")
def set_password(username, password):
    """Set a user's password."""
    user = find_user(username)
    user.set_password(password)
    db.session.commit()
    click.echo(f"password changed for {username}")


@tokens.command("create")
@click.argument("username")
@click.option("--name", default="", help="A label such as the CI job's name.")
def create_token(username, name):
    """Create an API token for a user and print it once."""
    record, secret = issue_token(find_user(username), name)
    db.session.commit()
    click.echo(f"token {record.id} for {username} (shown once, store it now):")
    click.echo(secret)


@tokens.command("revoke")
@click.argument("token_id", type=int)
def revoke(token_id):
    """Revoke an API token by its id."""
    record = db.session.get(ApiToken, token_id)
    if record is None:
        raise click.ClickException(f"no token with id {token_id}")
    revoke_token(record)
    db.session.commit()
    click.echo(f"revoked token {token_id}")


@tokens.command("list")
@click.argument("username")
def list_tokens(username):
    """List a user's tokens (never their secrets)."""
    for record in find_user(username).tokens:
        state = "revoked" if record.revoked else "active"
        click.echo(f"{record.id}\t{record.hint}…\t{state}\t{record.name}")


@click.command("demo-data")
@click.option("--seed", default=7, show_default=True, help="Random seed, for repeatable data.")
def demo_data(seed):
    """Load a realistic sample: 3 instances with about 30 builds each."""
    counts = demo.load(seed)
    db.session.commit()
    click.echo(f"loaded {counts['instances']} instances, {counts['builds']} builds, {counts['cases']} cases")


@click.command("bootstrap")
def bootstrap():
    """On an empty database, create an admin (printing its password once) and the demo data."""
    if db.session.scalar(select(func.count()).select_from(User)):
        click.echo("users exist already; nothing to bootstrap")
        return
    password = secrets.token_urlsafe(12)
    admin = User(username="admin", role="admin", active=True)
    admin.set_password(password)
    db.session.add(admin)
    loaded = None
    if not db.session.scalar(select(func.count()).select_from(TestInstance)):
        loaded = demo.load(7)
    db.session.commit()
    current_app.logger.info("bootstrapped an empty database")
    if loaded:
        click.echo(
            f"Loaded demo data to look around: {loaded['instances']} instances, {loaded['builds']} builds, "
            f"{loaded['cases']} cases (delete them in the admin panel when you are done)."
        )
    click.echo("=" * 60)
    click.echo(f"Created user 'admin' with password: {password}")
    click.echo("It is shown only this once. Change it after logging in.")
    click.echo("=" * 60)


def init_app(app):
    """Register the commands with ``flask``."""
    for command in (users, tokens, demo_data, bootstrap):
        app.cli.add_command(command)
