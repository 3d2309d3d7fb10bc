"""tierlab: value-based customer relationship management research for retail banking."""

import os
from importlib.metadata import PackageNotFoundError, version

# Quiet, offline MLflow wherever tierlab is imported first: no telemetry, no artifact progress
# bars in logs.  Set before anything imports mlflow; an explicit setting in the environment wins.
for _name, _value in (
    ("MLFLOW_DISABLE_TELEMETRY", "true"),
    ("DO_NOT_TRACK", "true"),
    ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"),
):
    os.environ.setdefault(_name, _value)

try:
    __version__ = version("tierlab")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
