"""``tierlab`` command line: ``tierlab <command> [args]``.

Commands:
  run [overrides]          run an experiment (Hydra overrides, --multirun, --cfg job, ...)
  tune [overrides]         tune a model with Optuna (tuning=<name>), refit, register it
  tune-worker [overrides]  join an existing Optuna study as one more worker process
  promote [overrides]      move the registry's champion alias to the challenger if it is better
  score --model URI --input FILE --output FILE
                           score a customer indicator file with a registered model
  report --experiment NAME [--run-id ID] [--output DIR]
                           research report (HTML + Markdown) of MLflow runs
"""

from __future__ import annotations

import importlib
import sys

USAGE = __doc__.split("\n", 2)[2]

#: command -> (module, function); the function takes the remaining arguments.
COMMANDS = {
    "run": ("tierlab.run", "main"),
    "tune": ("tierlab.tuning.cli", "tune_main"),
    "tune-worker": ("tierlab.tuning.cli", "tune_worker_main"),
    "promote": ("tierlab.registry.cli", "promote_main"),
    "score": ("tierlab.registry.cli", "score_main"),
    "report": ("tierlab.report.cli", "report_main"),
}
#: Commands whose entry point is a Hydra app: it reads sys.argv itself.
HYDRA_COMMANDS = ("run", "tune", "tune-worker", "promote")


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a sub-command; Hydra (or argparse for ``score``) parses the rest."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print("usage: tierlab <command> [args]\n\n" + USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"tierlab: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    module, function = COMMANDS[command]
    entry = getattr(importlib.import_module(module), function)
    if command in HYDRA_COMMANDS:
        if command == "promote" and not any(a.startswith("task_name=") for a in rest):
            rest = ["task_name=promote", *rest]  # its outputs folder and run name
        sys.argv = [f"{sys.argv[0]} {command}", *rest]
        entry()
        return 0
    return int(entry(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
