"""The ``greenbar`` command: one subcommand per job (``greenbar upload`` today).

Exit status: 0 when done; 2 for a usage or configuration error; 3 when
Greenbar refused, with its message; 4 when it could not be reached after the
retries. Errors are one line on stderr, never a traceback.
"""

import argparse
import sys

from greenbar_client import __version__
from greenbar_client.config import SETTINGS
from greenbar_client.config import ConfigError
from greenbar_client.config import resolve

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
    return main_parser


def main(argv=None):
    """Run the command; return its exit status."""
    from greenbar_client.server import Refused
    from greenbar_client.server import Unreachable
    from greenbar_client.upload import UsageError

    args = parser().parse_args(argv)
    try:
        args.run(args)
    except (ConfigError, UsageError, OSError) as error:
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
