"""``flask retention run [--dry-run]``: prune case rows beyond each instance's retention policy."""

import time

import click
from flask.cli import AppGroup

from webapp import retention

retention_group = AppGroup("retention", help="Apply each instance's retention policy.")


def describe(plan):
    """One line on what a plan prunes."""
    policy = []
    if plan.instance.keep_builds is not None:
        policy.append(f"newest {plan.instance.keep_builds} builds")
    if plan.instance.keep_days is not None:
        policy.append(f"last {plan.instance.keep_days} days")
    kept = " or ".join(policy) or "everything"
    pinned = f", {plan.pinned_kept} pinned kept" if plan.pinned_kept else ""
    return (
        f"{plan.instance.name}: keeps {kept}; {len(plan.build_ids):,} builds to prune "
        f"({plan.cases:,} cases, {plan.attachments:,} attachments{pinned})"
    )


@retention_group.command("run")
@click.option("--dry-run", is_flag=True, help="Only say what would be pruned.")
@click.option("--instance", "instance_name", default=None, help="Only this instance (by name).")
@click.option(
    "--batch",
    default=retention.BATCH,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Case rows moved per transaction.",
)
def run(dry_run, instance_name, batch):
    """Delete case rows (and attachments) of builds beyond the policy, keeping counters and run summaries."""
    plans = retention.plans(instance_name)
    if instance_name is not None and not plans:
        raise click.ClickException(f"no instance named {instance_name!r}")
    for plan in plans:
        click.echo(describe(plan))
    if dry_run:
        click.echo("dry run: nothing deleted")
        return
    started = time.monotonic()
    totals = {"builds": 0, "cases": 0, "attachments": 0}
    for plan in plans:
        if not plan.build_ids:
            continue
        with click.progressbar(length=len(plan.build_ids), label=plan.instance.name) as bar:
            done = retention.run(plan, batch, progress=lambda build_id, counts: bar.update(1))
        retention.add_to(totals, done)
    click.echo(
        f"pruned {totals['builds']:,} builds: {totals['cases']:,} cases, "
        f"{totals['attachments']:,} attachments in {time.monotonic() - started:.1f} s"
    )


def init_app(app):
    """Register ``flask retention``."""
    app.cli.add_command(retention_group)
