"""The search space of a tuning config (``conf/tuning/<name>.yaml``, key ``space``).

The space mirrors the tuned model node (``tuning.model``): each leaf is a parameter spec, keyed by
the parameter's path inside the node (nested keys, or dotted keys such as
``model.learning_rate``; both spell the path ``model.learning_rate``)::

    space:
      model:
        learning_rate: {type: float, low: 0.01, high: 0.3, log: true}
        num_leaves: {type: int, low: 7, high: 127, log: true}
        objective: {type: categorical, choices: [tweedie, poisson]}
        tweedie_variance_power:
          {type: float, low: 1.1, high: 1.9, condition: {model.objective: tweedie}}

A spec is ``type`` (int | float | categorical) with ``low``/``high`` (and optional ``log`` or
``step``) for numbers, ``choices`` for categoricals, and an optional ``condition``
``{other_path: value or [values]}``: the parameter is suggested only when every named parameter
was suggested with one of those values; otherwise the node keeps its own value.  The space is
parsed and checked before any trial runs, and every error names the offending key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf

TYPES = ("int", "float", "categorical")
SPEC_KEYS = {
    "int": {"type", "low", "high", "log", "step", "condition"},
    "float": {"type", "low", "high", "log", "step", "condition"},
    "categorical": {"type", "choices", "condition"},
}
#: Python types Optuna accepts as categorical choices (storable in every storage).
CHOICE_TYPES = (type(None), bool, int, float, str)


@dataclass(frozen=True)
class Param:
    """One tunable parameter: its path in the model node, distribution and condition."""

    path: str
    type: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()
    condition: dict[str, tuple] = field(default_factory=dict)

    def suggest(self, trial: optuna.Trial) -> Any:
        """Ask ``trial`` for a value of this parameter (named by its path)."""
        if self.type == "categorical":
            return trial.suggest_categorical(self.path, list(self.choices))
        if self.type == "int":
            return trial.suggest_int(
                self.path, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(
            self.path, float(self.low), float(self.high), step=self.step, log=self.log
        )


def parse_space(space: Mapping | DictConfig | None, node: DictConfig, where: str) -> list[Param]:
    """Parse and check a space against the model node it tunes.

    Parameters
    ----------
    space
        The ``space`` mapping of a tuning config.
    node
        The tuned model node (``tuning.model``): every parameter path must exist in it.
    where
        How errors name the space, e.g. ``"conf/tuning/lightgbm_tweedie.yaml: tuning.space"``.

    Returns
    -------
    list[Param]
        The parameters in suggestion order: a parameter comes after those its condition names.
    """
    if isinstance(space, DictConfig):
        space = OmegaConf.to_container(space, resolve=True)
    if not space:
        raise ValueError(f"{where} is empty: declare at least one parameter to tune")
    if not isinstance(space, Mapping):
        raise ValueError(f"{where} should be a mapping of parameter paths to specs")
    node_paths = set(_leaf_paths(OmegaConf.to_container(node, resolve=False)))
    params = {}
    for path, spec in _spec_leaves(space, "", where):
        if path in params:
            raise ValueError(f"{where}.{path} is declared twice (nested and dotted keys)")
        if path not in node_paths:
            raise ValueError(
                f"{where}.{path}: the model node (tuning.model) has no parameter {path!r}; "
                f"its parameters are {sorted(p for p in node_paths if not p.endswith('_target_'))}"
            )
        params[path] = _parse_spec(path, spec, f"{where}.{path}")
    for param in params.values():
        for other, values in param.condition.items():
            where_cond = f"{where}.{param.path}.condition"
            if other not in params:
                raise ValueError(
                    f"{where_cond}: {other!r} is not a parameter of the space; "
                    f"parameters: {sorted(params)}"
                )
            if other == param.path:
                raise ValueError(f"{where_cond}: a parameter cannot depend on itself")
            if params[other].type == "categorical":
                unknown = [v for v in values if v not in params[other].choices]
                if unknown:
                    raise ValueError(
                        f"{where_cond}: {other}={unknown} is never suggested; "
                        f"its choices are {list(params[other].choices)}"
                    )
    return _ordered(params, where)


def suggest(trial: optuna.Trial, space: list[Param]) -> dict[str, Any]:
    """Suggest every parameter whose condition holds; return ``{path: value}``."""
    values: dict[str, Any] = {}
    for param in space:
        if all(
            other in values and values[other] in allowed
            for other, allowed in param.condition.items()
        ):
            values[param.path] = param.suggest(trial)
    return values


def apply(node: DictConfig, overrides: Mapping[str, Any]) -> DictConfig:
    """A resolved copy of ``node`` with ``{path: value}`` overrides set."""
    copy = OmegaConf.create(OmegaConf.to_container(node, resolve=True))
    for path, value in overrides.items():
        OmegaConf.update(copy, path, value, merge=False)
    return copy


def _spec_leaves(space: Mapping, prefix: str, where: str):
    """Yield (path, spec) for every spec (a mapping with a ``type`` key) in a nested space."""
    for key, value in space.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if not isinstance(value, Mapping):
            raise ValueError(
                f"{where}.{path}: expected a parameter spec such as "
                f"{{type: float, low: 0.01, high: 0.3}} or a mapping of them; got {value!r}"
            )
        if "type" in value and not isinstance(value["type"], Mapping):
            yield path, value
        else:
            yield from _spec_leaves(value, path, where)


def _leaf_paths(node: Any, prefix: str = ""):
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _leaf_paths(value, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix


def _parse_spec(path: str, spec: Mapping, where: str) -> Param:
    kind = spec["type"]
    if kind not in TYPES:
        raise ValueError(f"{where}: type={kind!r} should be one of {list(TYPES)}")
    unknown = sorted(set(spec) - SPEC_KEYS[kind])
    if unknown:
        raise ValueError(
            f"{where}: unknown keys {unknown} for type={kind}; allowed: {sorted(SPEC_KEYS[kind])}"
        )
    condition = _parse_condition(spec.get("condition"), f"{where}.condition")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list | tuple) or not choices:
            raise ValueError(f"{where}: type=categorical needs a non-empty list of choices")
        bad = [c for c in choices if not isinstance(c, CHOICE_TYPES)]
        if bad:
            raise ValueError(
                f"{where}: choices {bad} are not numbers, strings, booleans or null "
                "(Optuna stores only those); tune a list-valued parameter through a string "
                "choice in the model node instead"
            )
        if len(set(map(repr, choices))) != len(choices):
            raise ValueError(f"{where}: choices={list(choices)} has duplicates")
        return Param(path, kind, choices=tuple(choices), condition=condition)
    for key in ("low", "high"):
        if key not in spec:
            raise ValueError(f"{where}: type={kind} needs low and high")
        value = spec[key]
        numeric = int if kind == "int" else int | float
        if isinstance(value, bool) or not isinstance(value, numeric):
            raise ValueError(
                f"{where}: {key}={value!r} should be {'an integer' if kind == 'int' else 'a number'}"
            )
    low, high = spec["low"], spec["high"]
    if low > high:
        raise ValueError(f"{where}: low={low} should be <= high={high}")
    log, step = bool(spec.get("log", False)), spec.get("step")
    if log and low <= 0:
        raise ValueError(f"{where}: log=true needs low > 0; got low={low}")
    if log and step is not None:
        raise ValueError(f"{where}: log=true and step={step} cannot be combined (Optuna)")
    if step is not None and (isinstance(step, bool) or not step > 0):
        raise ValueError(f"{where}: step={step!r} should be > 0")
    if kind == "int" and step is not None and not isinstance(step, int):
        raise ValueError(f"{where}: step={step!r} should be an integer for type=int")
    return Param(path, kind, low, high, log, step, condition=condition)


def _parse_condition(condition: Any, where: str) -> dict[str, tuple]:
    if condition is None:
        return {}
    if not isinstance(condition, Mapping) or not condition:
        raise ValueError(
            f"{where}: expected a mapping {{other_parameter: value or [values]}}; got {condition!r}"
        )
    return {str(k): tuple(v) if isinstance(v, list | tuple) else (v,) for k, v in condition.items()}


def _ordered(params: dict[str, Param], where: str) -> list[Param]:
    """Declaration order, except that a parameter follows those its condition names."""
    done: dict[str, Param] = {}
    visiting: list[str] = []

    def visit(path: str) -> None:
        if path in done:
            return
        if path in visiting:
            cycle = " -> ".join([*visiting[visiting.index(path) :], path])
            raise ValueError(f"{where}: conditions form a cycle: {cycle}")
        visiting.append(path)
        for other in params[path].condition:
            visit(other)
        visiting.pop()
        done[path] = params[path]

    for path in params:
        visit(path)
    return list(done.values())
