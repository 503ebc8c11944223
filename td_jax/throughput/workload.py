"""The throughput workload, as data: rules, task, step sizes, sizes and step counts.

Each rule runs with td_jax's default hyperparameters except where ``RULES`` says; the task is
a 10-state chain with Gaussian rewards; learners are streams (seeds) x ``STEP_SIZES``, online.
``numpy_rule`` translates a rule into baseline (a)'s parameters from the same factory
defaults, so the baselines cannot drift from the library.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

RULES: dict[str, dict[str, Any]] = {
    "td": {},
    "td_lambda": {},
    "qtd": {"num_quantiles": 32},
    "ctd": {"num_atoms": 51},
    "edrl": {},
    "dopamine_expectile": {},
    "dopamine_quantile": {},
}
# Parametric learners (td_jax.approx): (base rule, hyperparameters) per row name. They have
# no numpy or per-learner-loop baseline (td_jax's own tabular rows are their reference), so
# the CPU targets, which compare with those baselines, are judged on the tabular rows only.
TILES = {"name": "tile", "num_tilings": 4, "num_tiles": 4}
APPROX_RULES: dict[str, tuple[str, dict[str, Any]]] = {
    "linear_td": ("td", {"approximator": "linear", "features": TILES, "optimizer": "sgd"}),
    "linear_qtd": (
        "qtd",
        {"approximator": "linear", "features": TILES, "optimizer": "sgd", "num_quantiles": 32},
    ),
    "mlp_td": ("td", {"approximator": "mlp", "features": "position", "optimizer": "adam"}),
    "mlp_qtd": (
        "qtd",
        {"approximator": "mlp", "features": "position", "optimizer": "adam", "num_quantiles": 32},
    ),
}
LABELS = {
    "qtd": "qtd (m=32)",
    "ctd": "ctd (K=51)",
    "linear_td": "linear td (tiles 4x4, sgd)",
    "linear_qtd": "linear qtd (m=32, tiles 4x4, sgd)",
    "mlp_td": "mlp td (32x32, adam)",
    "mlp_qtd": "mlp qtd (m=32, 32x32, adam)",
}
ENV: dict[str, Any] = {"num_states": 10, "reward": "gaussian"}
STEP_SIZES = np.geomspace(0.005, 0.5, 10)
SIZES = (1_000, 10_000, 100_000)
# Learner-updates per timed run, by rule: a few seconds each of td_jax and of numpy.
UPDATE_BUDGET = {
    "td": 1e8,
    "td_lambda": 5e7,
    "qtd": 6e6,
    "ctd": 5e6,
    "edrl": 2e6,
    "dopamine_expectile": 2e7,
    "dopamine_quantile": 2e7,
    "linear_td": 5e7,
    "linear_qtd": 6e6,
    "mlp_td": 1e6,
    "mlp_qtd": 5e5,
}
# Where numpy would take minutes, its run is smaller: fewer learners (its cost per learner
# is flat in the learner count once vectorised, so its rate carries over; the report marks
# such rows) and, for EDRL, which imputes at every update, fewer steps.
NUMPY_BUDGET = {"edrl": 2e5}
NUMPY_MAX_LEARNERS = {"edrl": 1_000}
MIN_STEPS, MAX_STEPS = 2, 20_000
QUICK_RULES = ("td", "qtd")
QUICK_SIZES = (1_000,)
QUICK_STEPS = 50


def num_steps_for(rule: str, learners: int, numpy: bool = False) -> int:
    """Steps of one timed run: the rule's update budget over the learners, clipped."""
    steps = int(UPDATE_BUDGET.get(rule, 1e7) // learners)
    if numpy and rule in NUMPY_BUDGET:
        steps = int(NUMPY_BUDGET[rule] // learners)
    return int(np.clip(steps, MIN_STEPS, MAX_STEPS))


def numpy_learners(rule: str, learners: int) -> int:
    """Learners of baseline (a)'s run for a td_jax run of ``learners``."""
    return min(learners, NUMPY_MAX_LEARNERS.get(rule, learners))


def make_env():
    import td_jax

    return td_jax.envs.make("chain", **ENV)


def make_rule(name: str):
    from td_jax import approx, rules

    if name in APPROX_RULES:
        base, hparams = APPROX_RULES[name]
        return approx.make(base, **hparams)
    return rules.make(name, **RULES.get(name, {}))


def describe(name: str) -> dict[str, Any]:
    """A row's rule as recorded in the report: its hyperparameters, or base rule and form."""
    if name in APPROX_RULES:
        base, hparams = APPROX_RULES[name]
        return {"rule": base, **hparams}
    return dict(RULES.get(name, {}))


def has_baselines(name: str) -> bool:
    """Whether baselines (a) and (b) exist for a row: the tabular built-in rules."""
    return name in RULES


def _defaults(factory) -> dict[str, Any]:
    return {
        k: p.default
        for k, p in inspect.signature(factory).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def numpy_rule(name: str) -> dict[str, Any]:
    """Baseline (a)'s ``Rule`` fields for a built-in rule, from td_jax's factory defaults."""
    from td_jax import rules
    from td_jax.rules.dopamine import DEFAULT_NUM_CELLS
    from td_jax.rules.expectile import DEFAULT_ITERATIONS, DEFAULT_NUM_EXPECTILES
    from td_jax.rules.quantile import midpoint_taus

    hp = dict(RULES.get(name, {}))
    f32 = lambda x: np.asarray(x, np.float32).tolist()  # noqa: E731
    if name == "td":
        return {"kind": "td"}
    if name == "td_lambda":
        return {
            "kind": "td_lambda",
            "lam": hp.get("lambda_", _defaults(rules.td_lambda)["lambda_"]),
        }
    if name == "qtd":
        m = hp.get("num_quantiles", _defaults(rules.qtd)["num_quantiles"])
        return {"kind": "qtd", "num_stats": m, "taus": f32(midpoint_taus(m))}
    if name == "ctd":
        d = {**_defaults(rules.ctd), **hp}
        support = np.linspace(d["v_min"], d["v_max"], d["num_atoms"])
        return {"kind": "ctd", "num_stats": d["num_atoms"], "support": f32(support)}
    if name == "edrl":
        d = {**_defaults(rules.edrl), **hp}
        taus = midpoint_taus(d["num_expectiles"] or DEFAULT_NUM_EXPECTILES)
        iters = d["num_iterations"]
        return {"kind": "edrl", "num_stats": len(taus), "taus": f32(taus), "iterations": iters}
    if name in ("dopamine_expectile", "dopamine_quantile"):
        d = {**_defaults(getattr(rules, name)), **hp}
        taus = np.asarray(midpoint_taus(d["num_cells"] or DEFAULT_NUM_CELLS))
        return {
            "kind": name,
            "num_stats": len(taus),
            "taus": f32(taus),
            "alpha_plus": f32(taus),
            "alpha_minus": f32(1.0 - taus),
            "iterations": d.get("num_iterations", DEFAULT_ITERATIONS),
        }
    raise ValueError(f"no numpy baseline for rule {name!r}")
