"""The ``approx`` suites: classical vs distributional TD through linear and MLP approximators.

Regular ``td_jax.engine.specs.Suite``s (same tables, verdict and plots as ``default``) whose
``RuleSpec``s call ``td_jax.approx.make``. The tasks are the line tasks, where every
learner reads the state's position on [0, 1] (``td_jax.approx.features``): ``chain``,
Sutton's ``random_walk`` and the continuous-state ``continuous_walk`` (values exactly
``V(x) = x``), each with every reward family of the study (standardised to std 1, so the
families differ only in shape, as in the default suite).

* linear learners: tile coding (4 tilings x 4 tiles, d = 20), plain sgd, so the learning
  rate plays the tabular step size's role (rows have unit norm);
* MLP learners: two hidden layers of 32 ReLUs on the affine position features, adam;
  the MLP's CTD has a softmax head (C51's cross-entropy), since adam does not keep the
  linear head's probabilities normalised.

Comparisons are paired by seed: every rule of a seed sees the same transitions, the same
random initial weights of its hidden layers and the same feature draw.

Listed by ``td_jax.catalog``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from td_jax.approx.learner import make
from td_jax.engine.specs import RuleSpec, Suite, TaskSpec, null_rules
from td_jax.studies.prediction_suites import HEADLINE_REWARDS, RELATIVE_EPS

LINEAR = {
    "approximator": "linear",
    "features": {"name": "tile", "num_tilings": 4, "num_tiles": 4},
    "optimizer": "sgd",
}
MLP = {
    "approximator": {"name": "mlp", "hidden": [32, 32]},
    "features": "position",
    "optimizer": "adam",
}
SGD_STEPS = tuple(float(x) for x in np.geomspace(0.01, 1.0, 7).round(6))
ADAM_STEPS = tuple(float(x) for x in np.geomspace(0.001, 0.1, 7).round(6))
APPROX_REWARDS = ("deterministic", "gaussian", "bimodal", "student_t")


def approx_rules(
    m: int = 16, atoms: int = 51, expectiles: int = 9, edrl: bool = False
) -> tuple[RuleSpec, ...]:
    """Linear (sgd) and MLP (adam) forms of td, qtd and ctd, linear td_lambda, and with
    ``edrl`` the EDRL forms (off by default: its imputation, an expectile solve per
    update, runs tens of times slower than QTD and would take most of the suite's budget).

    Labels are ``<approximator>_<rule>``; ``linear_td`` is the suite's baseline.
    """

    def spec(prefix: str, rule: str, base: Mapping[str, Any], steps, **hp) -> RuleSpec:
        return RuleSpec(f"{prefix}_{rule}", make, {"rule": rule, **base, **hp}, steps)

    rules = [
        spec("linear", "td", LINEAR, SGD_STEPS),
        spec("linear", "td_lambda", LINEAR, SGD_STEPS, lambda_=0.8),
        spec("linear", "qtd", LINEAR, SGD_STEPS, num_quantiles=m),
        spec("linear", "ctd", LINEAR, SGD_STEPS, num_atoms=atoms, support="auto"),
        spec("mlp", "td", MLP, ADAM_STEPS),
        spec("mlp", "qtd", MLP, ADAM_STEPS, num_quantiles=m),
        spec("mlp", "ctd", MLP, ADAM_STEPS, num_atoms=atoms, support="auto", head="softmax"),
    ]
    if edrl:
        hp = {"num_expectiles": expectiles}
        rules.insert(4, spec("linear", "edrl", LINEAR, SGD_STEPS, **hp))
        rules.append(spec("mlp", "edrl", MLP, ADAM_STEPS, **hp))
    return tuple(rules)


def _centred(reward: Mapping[str, Any], mean: float) -> dict[str, Any]:
    """The headline reward moved to ``mean`` (std and shape kept)."""
    out = dict(reward)
    if "standardize" in out:
        out["standardize"] = (mean, out["standardize"][1])
    else:  # deterministic
        out["value"] = mean
    return out


def approx_tasks(
    rewards: Mapping[str, Mapping[str, Any]],
    chain_states: int = 10,
    walk_states: int = 9,
    grid_states: int = 21,
    kinds: tuple[str, ...] = ("chain", "random_walk", "continuous_walk"),
) -> tuple[TaskSpec, ...]:
    """chain, random_walk and continuous_walk (or those of ``kinds``), with every reward.

    chain: every step pays the reward (mean 1, std 1), gamma 0.9. random_walk: gamma 1,
    the ends pay -1 / +1 on average with the family's noise. continuous_walk: gamma 1,
    exit pays its position plus the family's noise, recentred.
    """
    tasks = []
    for label, reward in rewards.items():
        tasks += [
            TaskSpec(
                f"chain/{label}",
                "chain",
                {"num_states": chain_states, "reward": dict(reward), "gamma": 0.9},
            ),
            TaskSpec(
                f"random_walk/{label}",
                "random_walk",
                {
                    "num_states": walk_states,
                    "left_reward": _centred(reward, -1.0),
                    "right_reward": _centred(reward, 1.0),
                },
            ),
            TaskSpec(
                f"continuous_walk/{label}",
                "continuous_walk",
                {"num_states": grid_states, "reward": dict(reward)},
            ),
        ]
    return tuple(sorted((t for t in tasks if t.env in kinds), key=lambda t: t.label))


def _pairing(rules: tuple[RuleSpec, ...]) -> dict[str, Any]:
    """Each MLP rule against ``mlp_td``, each linear one (and ``mlp_td``) against
    ``linear_td``.

    Takes effect with the engine's per-rule baselines (``Suite.baselines``); an engine
    without them compares every rule with the single ``baseline``.
    """
    if "baselines" not in Suite.__dataclass_fields__:
        return {}
    mlp = [r.label for r in rules if r.label.startswith("mlp_") and r.label != "mlp_td"]
    return {"baselines": dict.fromkeys(mlp, "mlp_td")}


def _nulls(rules: tuple[RuleSpec, ...], split_seeds: tuple[int, ...]) -> tuple[RuleSpec, ...]:
    """The null controls of the linear baseline (``engine.specs.null_rules``)."""
    base = next(r for r in rules if r.label == "linear_td")
    return null_rules(base, split_seeds, prefix="linear_td")


def approx_suite() -> Suite:
    """The full suite: 7 rules x 12 tasks, 3,000 updates, 8 tuning + 20 evaluation seeds."""
    rules = approx_rules()
    rules = rules + _nulls(rules, tuple(range(300, 308)))
    return Suite(
        name="approx",
        description="linear (tile, sgd) and MLP (adam) TD vs distributional TD on line tasks",
        rules=rules,
        tasks=approx_tasks({k: HEADLINE_REWARDS[k] for k in APPROX_REWARDS}),
        tuning_seeds=tuple(range(0, 8)),
        eval_seeds=tuple(range(100, 120)),
        num_steps=3_000,
        # >= 100 expected visits of every state (the walks' end states are rare).
        horizons={"continuous_walk": 5_000},
        # Function approximation leaves an error floor: band eps below what both rules
        # reach on the tuning seeds are left out of the estimand.
        eps_grid=RELATIVE_EPS,
        eps_relative=True,
        nulls=tuple(r.label for r in _nulls(rules, tuple(range(300, 308)))),
        max_refinements=6,
        baseline="linear_td",
        **_pairing(rules),
    )


def approx_quick_suite() -> Suite:
    """The approx suite's shape, small: for tests (well under a minute of compute)."""
    rewards = {k: HEADLINE_REWARDS[k] for k in ("deterministic", "student_t")}
    rules = tuple(
        RuleSpec(r.label, r.rule, r.hparams, r.step_sizes[::2])
        for r in approx_rules(m=8, atoms=21)
        if r.label in ("linear_td", "linear_qtd", "linear_ctd", "mlp_td", "mlp_qtd")
    )
    rules = rules + _nulls(rules, (20, 21, 22))
    return Suite(
        name="approx_quick",
        description="the approx suite's shape, small: for tests and a first look",
        rules=rules,
        tasks=approx_tasks(
            rewards, chain_states=5, grid_states=11, kinds=("chain", "continuous_walk")
        ),
        tuning_seeds=(0, 1, 2),
        eval_seeds=(10, 11, 12, 13, 14),
        num_steps=600,
        horizons={"continuous_walk": 2_100},
        eps_grid=(0.5, 0.1, 0.03, 0.01),
        eps_relative=True,
        band=(0.01, 0.1),
        nulls=tuple(r.label for r in _nulls(rules, (20, 21, 22))),
        max_refinements=2,
        harmonic_steps=(1.0,),
        harmonic_c=(1.0,),
        reps=300,
        max_extensions=1,
        baseline="linear_td",
        **_pairing(rules),
    )
