"""``tierlab promote [overrides]`` (a Hydra app) and ``tierlab score --model --input --output``.

User errors (no challenger, a bad promotion setting, an input file that does not fit the model,
an unknown model URI or an unreachable server) end with the message on stderr and exit code 1,
without a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

import hydra
import mlflow
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig

from tierlab.config import CONF_DIR, register_resolvers

register_resolvers()


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def promote_main(cfg: DictConfig) -> None:
    """Promote the challengers of ``registry.clv_name`` and ``registry.tiering_name`` when they
    beat their champions on the holdout of the configured data (see
    :func:`tierlab.registry.promote.promote`)."""
    from tierlab.registry.promote import PromotionError, promote
    from tierlab.registry.score import InputError

    if threading.current_thread() is threading.main_thread():
        # SIGTERM (a scheduler stopping the job) unwinds like an error: the run ends FAILED.
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        results = promote(cfg)
    except (PromotionError, InputError, MlflowException) as exc:
        print(f"tierlab promote: {exc}", file=sys.stderr)
        sys.exit(1)
    for result in results.values():
        print(
            f"{result['name']}: champion = version {result['champion']} "
            f"(challenger {result['challenger']}: {result['decision']})"
        )


def score_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tierlab score",
        description=(
            "Score a customer indicator file with a registered model. The tracking/registry "
            "server comes from MLFLOW_TRACKING_URI. Tiering model output: customer_id (when the "
            "input has it), tier (1 = most valuable), predicted_clv, service_level."
        ),
    )
    parser.add_argument(
        "--model", required=True, help="model URI, e.g. models:/tierlab-tiering@champion"
    )
    parser.add_argument("--input", required=True, help="indicator file (.parquet, .pq or .csv)")
    parser.add_argument(
        "--output", required=True, help="scores file to write (.parquet, .pq or .csv)"
    )
    add_tracking_uri_argument(parser)
    return parser


def add_tracking_uri_argument(parser: argparse.ArgumentParser) -> None:
    """``--tracking-uri``, resolved by :func:`tracking_uri` (shared by score and report)."""
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking/registry URI (default: MLFLOW_TRACKING_URI, else tierlab's "
        "configured store, tracking.uri in conf/tracking/mlflow.yaml)",
    )


def tracking_uri(explicit: str | None) -> str:
    """The registry to read: --tracking-uri, else MLFLOW_TRACKING_URI, else the project's
    configured store (the local ``mlruns.db`` by default), so that models registered by
    ``tierlab tune`` are found without any setting."""
    if explicit:
        return explicit
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    from tierlab.config import compose

    return str(compose([]).tracking.uri)


def score_main(argv: list[str]) -> int:
    """``tierlab score``: 0 on success, 1 with the message on stderr for a user error."""
    args = score_parser().parse_args(argv)
    from tierlab.registry.score import InputError, score

    uri = tracking_uri(args.tracking_uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        scores = score(args.model, args.input, args.output)
    except (InputError, MlflowException, OSError) as exc:
        print(f"tierlab score: {exc}", file=sys.stderr)
        return 1
    print(f"scored {len(scores)} customers with {args.model} -> {args.output}")
    return 0
