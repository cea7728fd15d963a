"""The ``vipcore`` command line: one module per subcommand.

Each module in :data:`COMMANDS` defines ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``, and may define
``process_setup()``, run only when ``vipcore`` runs as a program (not when
:func:`main` is called from Python with ``argv``), for settings that belong
to the process (such as JAX's compilation cache). Errors in user input
(``ValueError``, missing files) become one line on stderr and exit code 2,
with no traceback; set ``VIPCORE_DEBUG=1`` to see the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS: dict[str, str] = {
    "verify": "vipcore._src.apps.cli.verify",
    "allocate": "vipcore._src.apps.cli.allocate",
    "sweep": "vipcore._src.apps.cli.sweep",
    "simulate": "vipcore._src.apps.cli.simulate",
    "bench": "vipcore._src.apps.cli.bench",
    "embed": "vipcore._src.apps.cli.embed",
}


def _modules(only: str | None = None) -> dict:
    mods = {}
    for name, modname in COMMANDS.items():
        if only is not None and name != only:
            continue
        try:
            mods[name] = importlib.import_module(modname)
        except ModuleNotFoundError as err:  # a command not written yet
            if err.name != modname:
                raise
    return mods


class _Version(argparse.Action):
    """``--version``, reading the installed version only when asked (the
    package metadata costs a noticeable part of a command's start-up)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from vipcore import __version__

        print(f"vipcore {__version__}")
        parser.exit()


def build_parser(only: str | None = None) -> tuple[argparse.ArgumentParser, dict]:
    """The parser, and the command modules it loaded.

    With ``only`` (a command name) just that command's module is imported
    and given its options; the other commands stay bare choices. That keeps
    ``vipcore allocate`` from loading the modules of every other command.
    """
    parser = argparse.ArgumentParser(
        prog="vipcore",
        description="Variance-aware rollout allocation for GRPO-style RL trainers.",
    )
    parser.add_argument("--version", action=_Version, nargs=0,
                        default=argparse.SUPPRESS,
                        help="show the program's version number and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    mods = _modules(only)
    for name in COMMANDS:
        if name in mods:
            p = sub.add_parser(name, help=mods[name].HELP,
                               description=mods[name].HELP)
            mods[name].add_arguments(p)
        elif only is not None:
            sub.add_parser(name)
    return parser, mods


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    only = words[0] if words and words[0] in COMMANDS else None
    parser, mods = build_parser(only)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    setup = getattr(mods[args.command], "process_setup", None)
    if argv is None and setup is not None:  # a real command-line process only
        setup()
    try:
        return int(mods[args.command].run(args) or 0)
    except BrokenPipeError:
        # The reader went away (``vipcore ... | head``): not an error of ours.
        # Point stdout at devnull so the interpreter's final flush is silent.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, OSError) as err:
        if os.environ.get("VIPCORE_DEBUG"):
            raise
        print(f"vipcore {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vipcore {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
