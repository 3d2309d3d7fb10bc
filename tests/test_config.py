"""Config composition: every option of every group and every experiment composes in struct
mode, and every `_target_` in it can be instantiated."""

from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from tierlab.config import CONF_DIR, compose

GROUPS = sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name != "hydra")
OPTIONS = [
    (group, path.stem) for group in GROUPS for path in sorted((CONF_DIR / group).glob("*.yaml"))
]


def targets(node, where=""):
    """Yield (path, node) for every config node with a `_target_`."""
    if isinstance(node, DictConfig):
        if "_target_" in node:
            yield where, node
        for key in node:
            yield from targets(node[key], f"{where}.{key}" if where else str(key))
    elif isinstance(node, ListConfig):
        for i, item in enumerate(node):
            yield from targets(item, f"{where}[{i}]")


def test_every_stage_group_has_options():
    assert {"data", "debug", "experiment", "paths", "split", "tracking"} <= set(GROUPS)
    assert len(OPTIONS) >= 8


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_and_instantiates(tmp_path: Path, group, option):
    cfg = compose([f"{group}={option}"], output_dir=tmp_path)
    assert OmegaConf.is_struct(cfg)
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    found = list(targets(cfg))
    assert found, "the composed config builds nothing"
    for _, node in found:
        assert instantiate(node, _convert_="all") is not None


def test_default_config_is_the_synthetic_bank(tmp_path):
    cfg = compose([], output_dir=tmp_path)
    assert cfg.data._target_ == "tierlab.data.synthetic.SyntheticBank"
    assert cfg.tracking.uri.startswith("sqlite:///") and cfg.tracking.uri.endswith("/mlruns.db")
    assert cfg.split.cutoff is None
