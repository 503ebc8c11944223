"""Each rule converges to its exact fixed point; truth computed independently with scipy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import scipy.stats

from td_jax import rules
from tests.helpers import bandit_stream, categorical_rewards, mrp_stream, run_stream

# A discrete reward law whose CDF (0.25, 0.5, 1.0) avoids every tested tau: unique quantiles.
VALUES = np.array([0.0, 1.0, 5.0])
PROBS = np.array([0.25, 0.25, 0.50])
LAW = scipy.stats.rv_discrete(values=(VALUES, PROBS))
NUM_STEPS, BATCH, ALPHA = 12_000, 32, 0.01


def true_expectile(tau: float) -> float:
    """Root of tau E[(X-e)_+] = (1-tau) E[(e-X)_+], by bracketing (SCIENCE.md section 5)."""

    def gap(e):
        upper = np.sum(LAW.pmf(VALUES) * np.maximum(VALUES - e, 0.0))
        lower = np.sum(LAW.pmf(VALUES) * np.maximum(e - VALUES, 0.0))
        return tau * upper - (1 - tau) * lower

    return scipy.optimize.brentq(gap, VALUES.min(), VALUES.max(), xtol=1e-12)


def cramer_truth(support: np.ndarray) -> np.ndarray:
    """Linear-interpolation projection of the reward law onto ``support``, by hand."""
    out = np.zeros_like(support)
    for x, p in zip(VALUES, PROBS, strict=True):
        x = min(max(x, support[0]), support[-1])
        k = min(np.searchsorted(support, x, side="right") - 1, len(support) - 2)
        w_hi = (x - support[k]) / (support[k + 1] - support[k])
        out[k] += p * (1 - w_hi)
        out[k + 1] += p * w_hi
    return out


@pytest.fixture(scope="module")
def stream():
    rewards = categorical_rewards(jax.random.PRNGKey(7), VALUES, PROBS, (BATCH, NUM_STEPS))
    return bandit_stream(rewards)


def _learned(rule, stream, step_size=ALPHA):
    _, avg = run_stream(rule, stream, step_size, num_states=1)
    return np.asarray(avg.table[:, 0, :]).mean(axis=0)  # mean over learners of the average


def test_td_converges_to_mean(stream):
    # Tolerance: Polyak-averaged TD noise ~ sd/sqrt(T*B/2) << 0.02.
    assert abs(_learned(rules.make("td"), stream)[0] - LAW.mean()) < 0.02


@pytest.mark.parametrize("name", ["qtd", "dopamine_quantile"])
def test_quantile_rules_converge_to_quantiles(stream, name):
    rule = rules.make(name, **({"num_quantiles": 4} if name == "qtd" else {"num_cells": 4}))
    taus = rules.midpoint_taus(4)  # 1/8, 3/8, 5/8, 7/8
    # Tolerance 0.1: the constant-step iterate hovers within a few alpha = 0.01 of the atom.
    np.testing.assert_allclose(_learned(rule, stream), LAW.ppf(taus), atol=0.1)


@pytest.mark.parametrize("name", ["edrl", "dopamine_expectile"])
def test_expectile_rules_converge_to_expectiles(stream, name):
    taus = [0.05, 0.25, 0.5, 0.75, 0.95]
    rule = rules.make(name, taus=taus)
    truth = [true_expectile(t) for t in taus]
    # Tolerance 0.05: constant step 0.01, Polyak averaging over 6,000 steps x 32 learners.
    np.testing.assert_allclose(_learned(rule, stream), truth, atol=0.05)


def test_dopamine_expectile_rates_form(stream):
    # alpha_plus / (alpha_plus + alpha_minus) = tau: 0.3 / (0.3 + 0.1) = 0.75.
    rule = rules.make("dopamine_expectile", alpha_plus=[0.3, 0.1], alpha_minus=[0.1, 0.3])
    np.testing.assert_allclose(
        _learned(rule, stream, step_size=0.03),
        [true_expectile(0.75), true_expectile(0.25)],
        atol=0.06,
    )


def test_ctd_converges_to_cramer_projection(stream):
    rule = rules.make("ctd", num_atoms=7, v_min=-1.0, v_max=6.5)
    support = np.linspace(-1.0, 6.5, 7)
    # Tolerance 0.02 per atom: the average of p is an SGD iterate on E[Pi_C delta_R].
    np.testing.assert_allclose(_learned(rule, stream), cramer_truth(support), atol=0.02)


# A 3-state continuing MRP with Gaussian rewards, gamma = 0.8; exact V by a linear solve.
P = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3], [0.3, 0.3, 0.4]])
R_MEAN = np.array([1.0, -0.5, 2.0])
GAMMA = 0.8
V_TRUE = np.linalg.solve(np.eye(3) - GAMMA * P, R_MEAN)


@pytest.fixture(scope="module")
def mrp():
    def reward_fn(key, s):
        return jnp.asarray(R_MEAN, jnp.float32)[s] + jax.random.normal(key)

    return mrp_stream(jax.random.PRNGKey(3), P, reward_fn, GAMMA, 20_000, 16)


@pytest.mark.parametrize(
    ("name", "hparams", "step_size", "atol"),
    [
        ("td", {}, 0.01, 0.1),
        ("td_lambda", {"lambda_": 0.5}, 0.01, 0.1),
        ("td_lambda", {"lambda_": 0.9}, 0.01, 0.15),
        # Distributional means: fixed-point bias (QTD: Rowland et al. 2024 Prop. 19; EDRL:
        # imputation residual) plus noise; bound 0.25 on |V| ~ 3-5.
        # QTD's step is bounded by alpha in reward units, so it takes a larger one.
        ("qtd", {"num_quantiles": 32}, 0.05, 0.25),
        ("edrl", {"num_expectiles": 9}, 0.01, 0.25),
    ],
)
def test_multistate_means_reach_bellman_solution(mrp, name, hparams, step_size, atol):
    rule = rules.make(name, **hparams)
    _, avg = run_stream(rule, mrp, step_size, num_states=3)
    if name == "td_lambda":
        learned = np.asarray(avg.v).mean(axis=0)
    else:
        values = jax.vmap(rule.values)(avg)
        learned = np.asarray(values).mean(axis=0)
    np.testing.assert_allclose(learned, V_TRUE, atol=atol)
