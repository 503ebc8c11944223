"""The control suites, as data (``td-jax bench --suite control`` and ``control_quick``):
Q-learning and the distributional rules lifted to control, on exact MDPs, by the
protocol of SCIENCE.md section 8 (the types are ``td_jax.engine.control_specs``).
"""

from __future__ import annotations

from typing import Any

from td_jax.engine.control_specs import ControlSuite, MDPSpec
from td_jax.engine.specs import NULLS, RuleSpec, log_grid, null_rules
from td_jax.studies.prediction_suites import HEADLINE_REWARDS, RELATIVE_EPS

EDRL_NOTE = (
    "edrl is left out of the control suites: its imputation runs about 1.5e5 learner-updates/s "
    "as a synchronous control learner on 2 CPU cores (40-100x slower than the other rules), "
    "and every pair updates each step; dopamine_expectile is the expectile rule here"
)


CONTROL_SPLIT_SEEDS = tuple(range(500, 510))  # the split-seed null's own tuning seeds


def control_rules(
    m: int = 32, cells: int = 21, split_seeds: tuple[int, ...] = CONTROL_SPLIT_SEEDS
) -> tuple[RuleSpec, ...]:
    """Q-learning (``td``), its null controls (``engine.specs.null_rules``: Q-learning with its
    step x1.37 and x0.59 inside it, and tuned on ``split_seeds``), its placebo (a
    pipeline check), and the distributional control learners."""
    baseline = RuleSpec("td", "td")
    return (
        baseline,
        *null_rules(baseline, split_seeds),
        RuleSpec("td_placebo", "td_placebo"),
        RuleSpec("qtd", "qtd", {"num_quantiles": m}),
        RuleSpec(
            "ctd",
            "ctd",
            {"num_atoms": 51, "support": "auto", "support_tail": 1e-7, "support_margin": 0.5},
        ),  # fmt: skip
        RuleSpec("dopamine_quantile", "dopamine_quantile", {"num_cells": cells}),
        RuleSpec("dopamine_expectile", "dopamine_expectile", {"num_cells": cells}),
    )


def _family(name: str, mean: float, std: float) -> dict[str, Any]:
    reward = dict(HEADLINE_REWARDS[name])
    if name == "deterministic":
        return {"name": "deterministic", "value": mean}
    reward["standardize"] = (mean, std)
    return reward


CONTROL_FAMILIES = ("deterministic", "gaussian", "bernoulli", "student_t")
# risky_safe's action order per state (``envs.risky_safe``): seed 0 puts the risky
# (optimal) action first in states 1-3 of five (and of three: 1-2) and second in the
# others, so neither a tie rule nor an index can find it.
ORDER_SEED = 0


def control_tasks(families=CONTROL_FAMILIES, garnet_families=("gaussian", "student_t"),
                  risky_states: int = 5, garnet_states: int = 8,
                  online: bool = True) -> tuple[MDPSpec, ...]:  # fmt: skip
    """risky_safe (the risky action's reward from each of ``families``, mean 1.2, std 2,
    against a certain 1.0) and a Garnet MDP (each pair's reward noise from each of
    ``garnet_families``, std 1), synchronous; the gridworld and risky_safe (Student t)
    online."""
    tasks = []
    for fam in families:
        tasks.append(MDPSpec(f"sync/risky_safe/{fam}", "risky_safe", {
            "num_states": risky_states, "risky_reward": _family(fam, 1.2, 2.0),
            "order_seed": ORDER_SEED}))  # fmt: skip
    for fam in garnet_families:
        noise = _family(fam, 0.0, 1.0) if fam != "deterministic" else 0.0
        params = {"num_states": garnet_states, "num_actions": 2, "seed": 3, "reward": noise}
        tasks.append(MDPSpec(f"sync/garnet/{fam}", "garnet_mdp", params))
    if online:
        tasks.append(MDPSpec("online/gridworld", "gridworld", {"size": 3}, mode="online"))
        tasks.append(MDPSpec("online/risky_safe/student_t", "risky_safe", {
            "num_states": risky_states, "risky_reward": _family("student_t", 1.2, 2.0),
            "order_seed": ORDER_SEED}, mode="online"))  # fmt: skip
    return tuple(tasks)


def control_suite() -> ControlSuite:
    """The control study (``td-jax bench --suite control``): the calibrated protocol of
    SCIENCE.md section 9 on both metrics (accuracies relative to each task's initial
    error, refined selections, the re-selection bootstrap, one call per (rule, task,
    metric), null controls that can fail)."""
    return ControlSuite(
        name="control",
        description="control: N(eps) of Q-learning vs quantile, categorical and dopamine "
        "control learners on risky_safe, Garnet and gridworld MDPs x 4 reward families",
        rules=control_rules(),
        tasks=control_tasks(),
        tuning_seeds=tuple(range(0, 10)),
        eval_seeds=tuple(range(1000, 1100)),
        num_steps=5_000,
        eps_grid=RELATIVE_EPS,
        eps_relative=True,
        nulls=NULLS,
        max_refinements=2,
        reps=1_000,
    )


def control_quick_suite() -> ControlSuite:
    """The control suite's shape, small: for tests and a first look."""
    return ControlSuite(
        name="control_quick",
        description="the control suite's shape, small: for tests and a first look",
        rules=tuple(
            r
            for r in control_rules(m=8, cells=5, split_seeds=(5, 6, 7))
            if r.label in ("td", "td_placebo", "qtd", *NULLS)
        ),
        tasks=(
            MDPSpec(
                "sync/risky_safe/student_t",
                "risky_safe",
                {
                    "num_states": 3,
                    "risky_reward": _family("student_t", 1.2, 2.0),
                    "order_seed": ORDER_SEED,
                },
            ),
        ),  # fmt: skip  (the online path: tests/test_control.py, and the control suite)
        tuning_seeds=(0, 1, 2),
        eval_seeds=tuple(range(10, 20)),
        num_steps=500,
        eps_grid=(0.5, 0.1, 0.03),
        eps_relative=True,
        band=(0.03, 0.1),
        nulls=NULLS,
        max_refinements=1,
        constant_grid=log_grid(0.01, 1.0, 2),
        harmonic_c=(1.0,),
        reps=200,
        max_extensions=1,
    )
