"""Quantile temporal-difference learning (QTD).

References:
  Dabney, Rowland, Bellemare, Munos (2018). Distributional reinforcement learning with
  quantile regression. AAAI. https://arxiv.org/abs/1710.10044
  Rowland, Munos, Azar, Tang, Ostrovski, Harutyunyan, Tuyls, Bellemare, Dabney (2024).
  An analysis of quantile temporal-difference learning. JMLR 25.
  https://arxiv.org/abs/2301.04462 (Algorithm 1, the update implemented here)
"""

from __future__ import annotations

import chex
import jax.numpy as jnp
import numpy as np

from td_jax.rules.definition import RuleDefinition, canonical
from td_jax.rules.facts import with_facts
from td_jax.rules.tabular import tabular_of
from td_jax.strict import check_finite, check_size
from td_jax.types import Array, PRNGKey, UpdateRule

COUNT_BLOCK = 32  # targets compared at once in ``qtd_signal``


def midpoint_taus(m: int) -> np.ndarray:
    """The quantile levels tau_i = (2i - 1) / (2m), i = 1..m (Dabney et al. 2018)."""
    return (2.0 * np.arange(1, m + 1) - 1.0) / (2.0 * m)


def qtd_signal(
    theta: Array, r_t: Array, discount_t: Array, theta_next: Array, taus: Array
) -> Array:
    """The quantile-regression direction ``tau_i - (1/m) sum_j 1{r + gamma theta'_j < theta_i}``.

    QTD's one definition: the negative gradient of the quantile (pinball) loss at the
    targets, as in QR-DQN (Dabney et al. 2018) and tabular QTD (Rowland et al. 2024,
    Algorithm 1). Bounded by 1 whatever the reward, which is why QTD's variance does not
    grow with the reward's (Rowland et al. 2023).

    Args:
      theta: f32[m] quantile estimates at s_tm1.
      r_t, discount_t: f32[] the transition's reward and discount.
      theta_next: f32[m] quantile estimates at s_t.
      taus: f32[m] quantile levels.
    """
    chex.assert_rank([theta, r_t, discount_t, theta_next, taus], [1, 0, 0, 1, 1])
    targets = r_t + discount_t * theta_next
    # An integer count (exact, as the f32 mean of 0/1 is) vectorises better on CPU. Summed
    # over blocks of COUNT_BLOCK targets: past 32 targets XLA's CPU fusion of the [m, m]
    # comparison falls off a cliff (m = 128: 50x slower per update than in blocks); the
    # integer sums are the same, block by block, so every result is bit for bit the same.
    count = jnp.zeros(theta.shape, jnp.int32)
    for j in range(0, targets.shape[0], COUNT_BLOCK):
        block = targets[None, j : j + COUNT_BLOCK] < theta[:, None]
        count = count + jnp.sum(block.astype(jnp.int32), axis=1)
    return taus - count.astype(theta.dtype) / theta.shape[0]


def qtd_kernel(
    theta: Array,
    r_t: Array,
    discount_t: Array,
    theta_next: Array,
    step_size: Array,
    taus: Array,
) -> Array:
    """One QTD step on one state: ``theta += step_size * qtd_signal(...)``.

    Args:
      theta: f32[m] quantile estimates at s_tm1.
      r_t, discount_t: f32[] the transition's reward and discount.
      theta_next: f32[m] quantile estimates at s_t.
      step_size: f32[] alpha.
      taus: f32[m] quantile levels.

    Returns:
      f32[m] the new quantile estimates at s_tm1.
    """
    return theta + step_size * qtd_signal(theta, r_t, discount_t, theta_next, taus)


def qtd_definition(num_quantiles: int = 32, init_value: float = 0.0) -> RuleDefinition:
    """QTD's definition: m quantiles at tau_i = (2i-1)/(2m) moved along ``qtd_signal``."""
    m = check_size("qtd", "num_quantiles", num_quantiles, 1)
    init_value = check_finite("qtd", "init_value", init_value)
    taus = jnp.asarray(midpoint_taus(m), jnp.float32)

    def signal(theta, r_t, discount_t, theta_next, key: PRNGKey):
        del key
        return qtd_signal(theta, r_t, discount_t, theta_next, taus)

    return RuleDefinition(signal, jnp.full((m,), init_value, jnp.float32), name="qtd")


def qtd(num_quantiles: int = 32, init_value: float = 0.0) -> UpdateRule:
    """QTD: tabular quantile TD with m quantiles at tau_i = (2i-1)/(2m) (Rowland et al. 2024).

    Args:
      num_quantiles: m >= 1, the number of quantiles per state (``m`` is an alias).
      init_value: the initial value of every quantile.
    """
    return with_facts(tabular_of(qtd_definition(num_quantiles, init_value)), step_unit="return")


def qtd_factory(**hparams: float) -> UpdateRule:
    """Quantile TD (QTD), m quantiles at midpoint levels (Rowland et al. 2024)."""
    return qtd(**canonical(hparams))
