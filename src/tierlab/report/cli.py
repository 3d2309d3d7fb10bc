"""``tierlab report --experiment NAME [--run-id ID ...] [--output DIR] [--tracking-uri URI]``.

A missing experiment or run ends with the message on stderr and exit code 1, no traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlflow.exceptions import MlflowException

from tierlab.registry.cli import add_tracking_uri_argument, tracking_uri
from tierlab.report.build import build_report
from tierlab.report.fetch import ReportError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tierlab report",
        description=(
            "Build the research report of MLflow runs: a self-contained HTML page (images "
            "embedded) and a Markdown twin, from the tracking store alone."
        ),
    )
    p.add_argument("--experiment", required=True, help="MLflow experiment name, e.g. tierlab")
    p.add_argument(
        "--run-id",
        action="append",
        dest="run_ids",
        metavar="ID",
        help="run to report (repeat for several; default: the latest finished `tierlab run` "
        "of the experiment)",
    )
    p.add_argument(
        "--output",
        type=Path,
        help="folder for report.html, report.md and report_files/ (default: "
        "reports/<experiment>/<run id> in the project)",
    )
    add_tracking_uri_argument(p)
    return p


def report_main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    uri = tracking_uri(args.tracking_uri)
    try:
        html, markdown = build_report(uri, args.experiment, args.run_ids, args.output)
    except (ReportError, MlflowException) as exc:
        print(f"tierlab report: {exc}", file=sys.stderr)
        return 1
    print(f"report: {html}\nmarkdown: {markdown}")
    return 0
