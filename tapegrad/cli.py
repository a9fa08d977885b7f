"""Command line: ``tapegrad demo NAME`` runs a demo from :mod:`tapegrad.demos`;
``tapegrad run -n N script.py`` runs a script on N processes (MPI, :mod:`tapegrad.distributed`).

Each demo is a module ``tapegrad/demos/NAME.py`` with ``DESCRIPTION``,
``add_arguments(parser)`` and ``run(args) -> int``; new demos appear here by themselves.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence


def _demos() -> dict:
    from . import demos

    found = {}
    for info in pkgutil.iter_modules(demos.__path__):
        if info.name.startswith("_"):
            continue
        found[info.name] = f"tapegrad.demos.{info.name}"
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tapegrad`` command."""
    parser = argparse.ArgumentParser(prog="tapegrad", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="run a demo")
    dsub = demo.add_subparsers(dest="name")
    modules = {}
    for name, modname in sorted(_demos().items()):
        try:
            mod = importlib.import_module(modname)
        except ImportError as e:  # a demo whose optional dependency is missing
            print(f"(demo {name} unavailable: {e})", file=sys.stderr)
            continue
        modules[name] = mod
        p = dsub.add_parser(name, help=mod.DESCRIPTION, description=mod.DESCRIPTION)
        mod.add_arguments(p)
    sub.add_parser("version", help="print the version")
    from .distributed import launcher

    launcher.add_arguments(sub.add_parser("run", help="run a script on N processes (MPI)"))
    args = parser.parse_args(argv)
    if args.command == "run":
        return launcher.run(args)
    if args.command == "version":
        from . import __version__

        print(__version__)
        return 0
    if args.command != "demo" or not getattr(args, "name", None):
        parser.print_help()
        print("\ndemos: " + ", ".join(sorted(modules)))
        return 2
    return int(modules[args.name].run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
