"""Where the Hydra configuration lives, and how code outside the CLI composes it.

The config tree is ``conf/`` at the project root (one group per pipeline stage).  The CLI,
the tests and the notebooks all compose it through :func:`compose`, so there is exactly one
place that knows where it is.  ``TIERLAB_CONF_DIR`` points elsewhere when tierlab is installed
without its source tree.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

CONF_DIR = Path(os.environ.get("TIERLAB_CONF_DIR", Path(__file__).resolve().parents[2] / "conf"))
PROJECT_ROOT = CONF_DIR.parent


def register_resolvers() -> None:
    """Register the OmegaConf resolvers the config tree uses (idempotent)."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))


def compose(overrides: Sequence[str] = (), output_dir: str | Path | None = None) -> DictConfig:
    """Compose ``conf/config.yaml`` with Hydra overrides, outside a Hydra run.

    Parameters
    ----------
    overrides
        Hydra override strings, e.g. ``["debug=fast", "data.n_customers=500"]``.
    output_dir
        Where run outputs go. Inside ``tierlab run`` Hydra provides it; here it must be given
        (tests pass a temporary folder) because ``${hydra:runtime.output_dir}`` does not resolve
        outside a Hydra run.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=list(overrides))
    if output_dir is not None:
        OmegaConf.set_struct(cfg, False)
        cfg.paths.output_dir = str(output_dir)
        OmegaConf.set_struct(cfg, True)
    return cfg


def prepare_output_dir(cfg: DictConfig) -> Path:
    """Lock ``cfg`` (struct mode: a misspelt key is an error), create its output folder and
    write the resolved config there; return the folder (``tierlab run`` and ``tierlab tune``)."""
    OmegaConf.set_struct(cfg, True)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "resolved_config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    return output_dir
