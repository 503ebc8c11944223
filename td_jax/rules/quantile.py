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

from td_jax.rules.tabular import tabular_rule
from td_jax.rules.validation import check_finite, check_int, midpoint_taus
from td_jax.types import Array, PRNGKey, UpdateRule


def qtd_kernel(
    theta: Array,
    r_t: Array,
    discount_t: Array,
    theta_next: Array,
    step_size: Array,
    taus: Array,
) -> Array:
    """One QTD step on one state (Rowland et al. 2024, Algorithm 1).

    ``theta_i += step_size * (tau_i - (1/m) sum_j 1{r_t + discount_t * theta_next_j < theta_i})``.
    The step is bounded by ``step_size`` whatever the reward, which is why QTD's variance
    does not grow with the reward's (Rowland et al. 2023).

    Args:
      theta: f32[m] quantile estimates at s_tm1.
      r_t, discount_t: f32[] the transition's reward and discount.
      theta_next: f32[m] quantile estimates at s_t.
      step_size: f32[] alpha.
      taus: f32[m] quantile levels.

    Returns:
      f32[m] the new quantile estimates at s_tm1.
    """
    chex.assert_rank([theta, r_t, discount_t, theta_next, taus], [1, 0, 0, 1, 1])
    targets = r_t + discount_t * theta_next
    # An integer count (exact, as the f32 mean of 0/1 is) vectorises better on CPU.
    count = jnp.sum((targets[None, :] < theta[:, None]).astype(jnp.int32), axis=1)
    return theta + step_size * (taus - count.astype(theta.dtype) / theta.shape[0])


def qtd(num_quantiles: int = 32, init_value: float = 0.0) -> UpdateRule:
    """QTD: tabular quantile TD with m quantiles at tau_i = (2i-1)/(2m) (Rowland et al. 2024).

    Args:
      num_quantiles: m >= 1, the number of quantiles per state (``m`` is an alias).
      init_value: the initial value of every quantile.
    """
    m = check_int("qtd", "num_quantiles", num_quantiles, 1)
    init_value = check_finite("qtd", "init_value", init_value)
    taus = jnp.asarray(midpoint_taus(m), jnp.float32)

    def kernel(theta, r_t, discount_t, theta_next, step_size, key: PRNGKey):
        del key
        return qtd_kernel(theta, r_t, discount_t, theta_next, step_size, taus)

    kernel.__name__ = "qtd_kernel"
    return tabular_rule(kernel, init_stat=np.full((m,), init_value, np.float32))


def qtd_factory(**hparams: float) -> UpdateRule:
    """Quantile TD (QTD), m quantiles at midpoint levels (Rowland et al. 2024)."""
    if "m" in hparams:
        hparams["num_quantiles"] = hparams.pop("m")
    return qtd(**hparams)
