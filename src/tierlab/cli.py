"""``tierlab`` command line: ``tierlab <command> [args]``.

Commands:
  run [overrides]   run an experiment (Hydra overrides, --multirun, --cfg job, ...)
"""

from __future__ import annotations

import sys

USAGE = __doc__.split("\n", 2)[2]


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a sub-command; Hydra parses the remaining arguments."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print("usage: tierlab <command> [args]\n\n" + USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "run":
        from tierlab.run import main as run_main

        sys.argv = [f"{sys.argv[0]} run", *rest]
        run_main()
        return 0
    print(f"tierlab: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
