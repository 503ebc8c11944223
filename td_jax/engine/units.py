"""What every unit of a comparison suite shares, prediction or control: its rule, built
from the suite's spec (plug-ins included), and the shape of its runs (the configurations
of a round as rows of (step, decay) pairs, padded so that rounds reuse one program).
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import numpy as np

from td_jax import rules as rule_lib
from td_jax.engine.errors import BenchError
from td_jax.engine.specs import RuleSpec
from td_jax.engine.tuning import unit_of
from td_jax.types import UpdateRule


def build_rule(spec: RuleSpec, tasks: dict[str, Any]) -> tuple[UpdateRule, dict[str, Any]]:
    """Makes a suite's rule and returns it with the hyperparameters used.

    ``support="auto"`` covers the tasks' returns: every state's return lies in the support
    with probability >= 1 - ``support_tail`` (default 1e-4), widened by ``support_margin``
    (default 10%) of its width on each side.
    """
    hparams = dict(spec.hparams)
    if hparams.get("support") == "auto":
        del hparams["support"]
        tail = float(hparams.pop("support_tail", 1e-4))
        margin = float(hparams.pop("support_margin", 0.1))
        bounds = np.asarray([env.truth().bounds(tail) for env in tasks.values()])
        lo, hi = float(bounds[:, 0].min()), float(bounds[:, 1].max())
        pad = margin * max(hi - lo, 1.0)
        hparams.update(v_min=lo - pad, v_max=hi + pad)
    rule, hparams = _make_rule(spec, hparams)
    if spec.step_factor != 1.0:
        rule = rule_lib.rescaled(rule, spec.step_factor)
    return rule, hparams


def _make_rule(spec: RuleSpec, hparams: dict[str, Any]) -> tuple[UpdateRule, dict[str, Any]]:
    if isinstance(spec.rule, str):
        return rule_lib.make(spec.rule, **hparams), hparams
    try:
        rule = spec.rule(**hparams)
    except Exception as err:  # noqa: BLE001 - a plug-in's own failure, reported in one line
        where = traceback.extract_tb(err.__traceback__)[-1]
        raise BenchError(
            f"plug-in rule {spec.label!r}: its factory raised {type(err).__name__}: {err} "
            f"({Path(where.filename).name}, line {where.lineno})"
        ) from None
    if not isinstance(rule, UpdateRule):
        raise BenchError(
            f"plug-in rule {spec.label!r}: its factory must return a "
            f"td_jax.UpdateRule, got {type(rule).__name__}"
        )
    return rule, hparams


def padded_count(n: int, step: int = 8) -> int:
    """The configuration count a run is padded to: multiples of ``step`` up to 64, then
    of 32. Padding the rounds of a unit to one size lets them reuse one compiled program
    (step sizes are traced)."""
    step = step if n <= 64 else 32
    return max(step, -(-n // step) * step)


def _rows(unit, configs: dict, size: int) -> list[list[tuple[float, float]]]:
    """Per task, its configurations as (step, decay) pairs padded to ``size`` with distinct
    fillers (the runner refuses duplicates): steps a hair above the row's last one."""
    out = []
    for t in unit.tasks:
        scale = unit_of(unit, t.spec.label)
        pairs = [c.absolute(scale, unit.num_states) for c in configs.get(t.spec.label, [])]
        last, decay = pairs[-1] if pairs else (1e-3 * scale, np.inf)
        pairs += [(float(np.float32(last * (1 + 1e-4 * k))), decay)
                  for k in range(1, size - len(pairs) + 1)]  # fmt: skip
        out += [pairs] * len(getattr(t, "members", [t]))  # pooled: the row on every instance
    return out


def sweeps(unit, configs, size: int | None = None) -> tuple[list, list, list]:
    """(the (step, decay) pairs, the step sizes, the decays) a unit's run takes: one sweep
    of ``configs`` (a list) for every task, or per task its own (``{task label: list}``),
    each row padded to ``size`` (default ``padded_count`` of the longest, ``_rows``).
    Shared by the prediction and control units."""
    if isinstance(configs, dict):
        size = size or padded_count(max(len(c) for c in configs.values()), 4)
        pairs = _rows(unit, configs, size)
        return pairs, [[p[0] for p in r] for r in pairs], [[p[1] for p in r] for r in pairs]
    if getattr(unit, "units", None):
        raise ValueError(
            f"unit {unit.name}: its tasks have steps in several units, so each "
            "needs its own sweep ({task label: configurations})"
        )
    pairs = [c.absolute(unit.unit, unit.num_states) for c in configs]
    return pairs, [p[0] for p in pairs], [p[1] for p in pairs]
