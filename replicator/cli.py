"""Command line: with no subcommand, run the replicator service."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="schematic-datastream-replicator",
        description="Keep a shared Redis in sync with Schematic for SDKs in replicator mode. "
        "With no subcommand it runs the service, configured from the environment "
        "and a .env file.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    commands.add_parser("run", help="run the replicator service (the default)")

    from replicator.simulator import cli as simulator_cli

    simulate = commands.add_parser(
        "simulate", help="serve a simulated Schematic API and datastream on one loopback port"
    )
    simulator_cli.add_arguments(simulate)

    from replicator import demo

    demo_parser = commands.add_parser(
        "demo",
        help="run the simulator and the replicator together against a local or embedded Redis",
    )
    demo.add_arguments(demo_parser)

    from replicator import health_cli

    for name, (help_text, _) in health_cli.COMMANDS.items():
        health_cli.add_arguments(commands.add_parser(name, help=help_text))

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    if args.command == "simulate":
        from replicator.simulator import cli as simulator_cli

        return simulator_cli.run(args)
    if args.command == "demo":
        from replicator import demo

        return demo.run(args)
    if args.command in ("health", "ready", "status"):
        from replicator import health_cli

        return health_cli.run(args)

    from replicator import supervisor

    return supervisor.main()


if __name__ == "__main__":
    sys.exit(main())
