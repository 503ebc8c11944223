"""Reproduction: Rowland, Tang, Lyle, Munos, Bellemare, Dabney (2023), "The Statistical Benefits
of Quantile Temporal-Difference Learning for Value Estimation", ICML,
https://arxiv.org/abs/2305.18388.

Suite ``rowland2023`` (``td-jax bench --suite rowland2023``), run by the same calibrated
protocol as ``default`` (SCIENCE.md sections 7 and 9): N(eps) per rule, each at its own
configuration per accuracy (refined to a flat optimum), tuned on separate seeds; one call
per (rule, task), the geometric mean of S = N_td / N_qtd over the band e0/10 .. e0/1000 with
a paired bootstrap that re-selects on resampled tuning seeds, Benjamini-Hochberg over (rule,
task) pairs; TD reparameterised (x1.37, x0.59 inside it) and TD tuned on disjoint seeds as
nulls that can fail. A claim is reproduced when its (rule, task) pair is called as claimed.

The paper's claim: even when only the mean return matters, tabular QTD (the mean of its m
quantiles) can estimate values better than TD in stochastic environments -- its update is
bounded by the step size whatever the reward, so its variance does not grow with the
reward's -- while TD is expected to win in (near-)deterministic ones, where QTD pays its
fixed-point bias and its bounded, sign-driven steps.

Design: TD against QTD with m in {8, 32} on the default suite's 5-state chain and 10-state
random MRP (gamma 0.9; its five Garnet instances pooled over seeds) under reward noise from
deterministic through Gaussian with growing standard deviation (0.1, 1, 10) to Student t
with falling degrees of freedom (10, 3, 1.5; location 1, scale 1). The deterministic,
Gaussian 0.1 / 1 / 10 chain tasks and the deterministic and Gaussian 1 random-MRP tasks are
the default suite's own (same labels, same laws); this suite draws its own tuning and
evaluation seeds, so where the two overlap it is an independent replication
(tests/test_results.py checks that their intervals overlap).
m = 128 is left out: its O(m^2) update ran about 235 s per (task, unit) on 2 CPU cores, so
its 14 tasks would take most of an hour.
"""

from __future__ import annotations

from typing import Any

from td_jax.engine.specs import NULLS, Claim, RuleSpec, Suite, TaskSpec, null_rules
from td_jax.studies.prediction_suites import GARNET_INSTANCES, HEADLINE_REWARDS, RELATIVE_EPS

NAME = "rowland2023"
STUDENT_DF = (10.0, 3.0, 1.5)


def noises() -> dict[str, Any]:
    """Noise label -> reward spec; the shared ones are the default suite's specs."""
    out: dict[str, Any] = {"deterministic": HEADLINE_REWARDS["deterministic"]}
    for std in (0.1, 1.0, 10.0):
        reward = dict(HEADLINE_REWARDS["gaussian"], standardize=(1.0, std))
        out["gaussian" if std == 1.0 else f"gaussian@{std:g}"] = reward
    for df in STUDENT_DF:
        out[f"student_t_df{df:g}"] = {"name": "student_t", "df": df, "loc": 1.0, "scale": 1.0}
    return out


def tasks(mrp_instances: tuple[int, ...] = GARNET_INSTANCES) -> tuple[TaskSpec, ...]:
    """The chain and the random MRP (the default suite's Garnet instances, pooled over
    seeds) under each noise."""
    out = []
    for label, reward in noises().items():
        out.append(TaskSpec(f"chain/{label}", "chain",
                            {"num_states": 5, "reward": reward, "gamma": 0.9}))  # fmt: skip
        out.append(TaskSpec(f"random_mrp/{label}", "random_mrp",
                            {"num_states": 10, "reward": reward, "gamma": 0.9},
                            instances=tuple(mrp_instances)))  # fmt: skip
    return tuple(sorted(out, key=lambda t: t.label))


CLAIMS = tuple(
    Claim(text, rule, f"{env}/{noise}", expected)
    for env in ("chain", "random_mrp")
    for rule in ("qtd_m8", "qtd")
    for noise, expected, text in (
        ("deterministic", "slower", "TD wins with deterministic rewards"),
        ("student_t_df1.5", "faster", "QTD wins with the heaviest tails (Student t, df 1.5)"),
    )
)


def suite() -> Suite:
    return Suite(
        name=NAME,
        description="Rowland et al. 2023: QTD (m = 8, 32) vs TD across reward noise, by N(eps)",
        rules=(
            RuleSpec("td", "td"),
            *null_rules(RuleSpec("td", "td"), split_seeds=tuple(range(600, 620))),
            RuleSpec("qtd_m8", "qtd", {"num_quantiles": 8}),
            RuleSpec("qtd", "qtd", {"num_quantiles": 32}),
        ),
        tasks=tasks(),
        tuning_seeds=tuple(range(200, 220)),
        eval_seeds=tuple(range(2000, 2100)),
        num_steps=10_000,
        horizons={"chain": 10_000, "random_mrp": 20_000},
        eps_grid=RELATIVE_EPS,
        eps_relative=True,
        nulls=NULLS,
        max_refinements=6,
        placebos=(),
        claims=CLAIMS,
    )


SUITE = suite()
