"""``flask storage gc``: remove stored attachment objects that no row refers to."""

from datetime import timedelta

import click
from flask.cli import AppGroup

from webapp import attachments
from webapp import storage

storage_group = AppGroup("storage", help="Manage stored files (attachments).")


@storage_group.command("gc")
@click.option("--dry-run", is_flag=True, help="Only list the orphans.")
@click.option(
    "--grace-minutes",
    default=60,
    show_default=True,
    type=click.IntRange(min=0),
    help="Leave objects younger than this: an upload stores its object just before its row.",
)
def gc(dry_run, grace_minutes):
    """Find attachment objects whose rows are gone (after a crash) and delete them."""
    found = attachments.orphans(timedelta(minutes=grace_minutes))
    for key in found:
        click.echo(key)
    if dry_run:
        click.echo(f"{len(found)} orphaned objects (dry run: nothing deleted)")
        return
    storage.get().delete_many(found)
    click.echo(f"deleted {len(found)} orphaned objects")


def init_app(app):
    """Register ``flask storage``."""
    app.cli.add_command(storage_group)
