"""The ``greenbar`` command: one subcommand per job (``upload``, ``gate``, ``split``).

Exit status: 0 when done; 2 for a usage or configuration error; 3 when
Greenbar refused, with its message; 4 when it could not be reached after the
retries. ``greenbar gate`` also exits 1 when the gate fails. Errors are one
line on stderr, never a traceback.
"""

import argparse
import sys

from greenbar_client import __version__
from greenbar_client.config import SETTINGS
from greenbar_client.config import ConfigError
from greenbar_client.config import resolve

EXIT_GATE_FAILED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_UNREACHABLE = 4


def add_settings(parser):
    """The flags every subcommand that talks to Greenbar takes, one per setting."""
    group = parser.add_argument_group("settings (each flag overrides its environment variable)")
    for setting in SETTINGS:
        group.add_argument(
            setting.flag,
            dest=setting.name,
            metavar=setting.variable,
            help=f"{setting.help} (default: ${setting.variable})",
        )
    group.add_argument(
        "--retry-seconds",
        type=float,
        default=120.0,
        help="how long to keep retrying when Greenbar is down (default: 120)",
    )


def run_upload(args):
    """``greenbar upload``."""
    from greenbar_client.server import Greenbar
    from greenbar_client.upload import upload

    settings = resolve(flags=vars(args)).require()
    upload(Greenbar(settings, args.retry_seconds), settings, args.paths)


def run_gate(args):
    """``greenbar gate``: print each rule's outcome; the exit status says whether the gate passed."""
    from greenbar_client import act
    from greenbar_client.server import Greenbar

    settings = resolve(flags=vars(args)).require(("url", "user", "token", "instance"))
    greenbar = Greenbar(settings, args.retry_seconds)
    instance = act.instance_id(greenbar, settings.instance)
    build = act.build_id(greenbar, instance, settings.build_number)
    verdict = act.gate(greenbar, instance, build, args.base_branch, args.wait)
    for line in act.verdict_lines(verdict):
        print(line)
    return 0 if verdict["passed"] else EXIT_GATE_FAILED


def run_split(args):
    """``greenbar split``: print shard I's tests (of N, counted from 1), one node id per line."""
    from greenbar_client import act
    from greenbar_client.server import Greenbar

    if not 1 <= args.index <= args.shards:
        raise act.NotFound(f"--index must be between 1 and --shards ({args.shards})")
    settings = resolve(flags=vars(args)).require(("url", "user", "token", "instance"))
    greenbar = Greenbar(settings, args.retry_seconds)
    instance = act.instance_id(greenbar, settings.instance)
    mine, _ = act.shard_tests(
        greenbar, instance, args.index, args.shards, args.history_branch, before=settings.build_number
    )
    for node_id in mine:
        print(node_id)


def add_act_commands(commands):
    """The ``gate`` and ``split`` subcommands."""
    gate_parser = commands.add_parser(
        "gate",
        help="ask Greenbar whether a build passes the instance's quality gate (exit 0 yes, 1 no)",
        description="Print each gate rule's outcome for a build (GREENBAR_BUILD_NUMBER, else the newest).",
    )
    gate_parser.add_argument("--base-branch", help="compare with this branch's newest finished build")
    gate_parser.add_argument(
        "--wait", type=int, default=60, help="seconds to wait for the build to finish (default: 60)"
    )
    add_settings(gate_parser)
    gate_parser.set_defaults(run=run_gate)
    split_parser = commands.add_parser(
        "split",
        help="print one shard's tests, balanced by their recorded durations",
        description="Print shard I of N (counted from 1) as node ids, one per line.",
    )
    split_parser.add_argument("--shards", type=int, required=True, help="how many shards (N)")
    split_parser.add_argument("--index", type=int, required=True, help="which shard to print (1..N)")
    split_parser.add_argument("--history-branch", help="balance by this branch's builds only")
    add_settings(split_parser)
    split_parser.set_defaults(run=run_split)


def parser():
    """The command line: ``greenbar SUBCOMMAND ...``; a later subcommand is one more ``add_parser``."""
    main_parser = argparse.ArgumentParser(prog="greenbar", description="Send test results to Greenbar.")
    main_parser.add_argument("--version", action="version", version=f"greenbar-client {__version__}")
    commands = main_parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    upload_parser = commands.add_parser(
        "upload",
        help="upload JUnit XML reports into one build",
        description="Upload JUnit XML reports (files, folders, globs; .gz allowed) into one build.",
    )
    upload_parser.add_argument("paths", nargs="+", metavar="PATH")
    add_settings(upload_parser)
    upload_parser.set_defaults(run=run_upload)
    add_act_commands(commands)
    return main_parser


def main(argv=None):
    """Run the command; return its exit status."""
    from greenbar_client.act import NotFound
    from greenbar_client.server import Refused
    from greenbar_client.server import Unreachable
    from greenbar_client.upload import UsageError

    args = parser().parse_args(argv)
    try:
        status = args.run(args)
    except (ConfigError, UsageError, NotFound, OSError) as error:
        print(f"greenbar: {error}", file=sys.stderr)
        return EXIT_USAGE
    except Refused as error:
        hint = " (check GREENBAR_USER and GREENBAR_TOKEN)" if error.status == 401 else ""
        if error.status == 403:
            hint = " (GREENBAR_USER needs the maintainer role)"
        print(f"greenbar: Greenbar refused: {error}{hint}", file=sys.stderr)
        return EXIT_REFUSED
    except Unreachable as error:
        print(f"greenbar: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        print("greenbar: interrupted", file=sys.stderr)
        return 130
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
