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


def _modules() -> dict:
    mods = {}
    for name, modname in COMMANDS.items():
        try:
            mods[name] = importlib.import_module(modname)
        except ModuleNotFoundError as err:  # a command not written yet
            if err.name != modname:
                raise
    return mods


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    from vipcore import __version__

    parser = argparse.ArgumentParser(
        prog="vipcore",
        description="Variance-aware rollout allocation for GRPO-style RL trainers.",
    )
    parser.add_argument("--version", action="version",
                        version=f"vipcore {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    mods = _modules()
    for name, mod in mods.items():
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
    return parser, mods


def main(argv: list[str] | None = None) -> int:
    parser, mods = build_parser()
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
