"""Semi-gradient directions of the TD rules, one per rule: what a parametric learner follows.

Every tabular rule of ``td_jax.rules`` updates the statistics of the state it leaves as
``stat_s += step_size * g``, with ``g`` not depending on the step size. ``g`` is the
negative gradient, with the bootstrapped target held fixed, of the rule's loss on one
transition (the *semi-gradient*, Sutton & Barto 2018, section 9.3). A parametric learner
with statistics ``f_theta(phi(s)) f32[K]`` follows the same direction through its model:
``theta += step_size * J_theta(s)^T g`` (or an optimizer's transform of it). With one-hot
features and a linear model, ``J^T g`` puts ``g`` in row ``s``: the tabular rule.

A ``SemiGradient`` bundles a rule's direction with what its statistics mean:

* ``signal(stat_s, r_t, discount_t, stat_next, key) -> g f32[K]``
* ``init_stat f32[K]``, ``values_fn(stat) -> f32[]``, ``distribution_fn(stat) -> (locs, probs)``

References (per rule, below): Sutton 1988; Dabney et al. 2018 and Rowland et al. 2024
(QTD); Bellemare et al. 2017, Rowland et al. 2018 and Bellemare et al. 2019 (CTD, and
its linear form); Rowland et al. 2019 (EDRL).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from td_jax.rules.categorical import categorical_setup, cramer_project
from td_jax.rules.expectile import (
    DEFAULT_ITERATIONS,
    edrl_setup,
    expectile_mean,
    impute_samples,
)
from td_jax.rules.validation import check_finite, check_int, midpoint_taus
from td_jax.types import Array, PRNGKey

Signal = Callable[[Array, Array, Array, Array, PRNGKey], Array]


class SemiGradient(NamedTuple):
    """A rule's semi-gradient direction and the meaning of its K statistics per state."""

    signal: Signal
    init_stat: Array  # f32[K]
    values_fn: Callable[[Array], Array]  # f32[K] -> f32[]
    distribution_fn: Callable[[Array], tuple[Array, Array]]  # f32[K] -> (f32[K'], f32[K'])
    distributional: bool


def _equal_atoms(stat: Array) -> tuple[Array, Array]:
    return stat, jnp.full(stat.shape, 1.0 / stat.shape[0], stat.dtype)


def td_signal(v: Array, r_t: Array, discount_t: Array, v_next: Array, key: PRNGKey) -> Array:
    """The TD error ``delta = r_t + discount_t * v_next - v`` (Sutton 1988), f32[1]."""
    del key
    chex.assert_rank([v, r_t, discount_t, v_next], [1, 0, 0, 1])
    return r_t + discount_t * v_next - v


def td(init_value: float = 0.0) -> SemiGradient:
    """Semi-gradient TD(0) on the squared TD error: linear TD (Sutton 1988;
    Tsitsiklis & Van Roy 1997, whose fixed point solves ``Phi^T D (Phi - gamma P Phi) w =
    Phi^T D r``)."""
    init_value = check_finite("td", "init_value", init_value)
    return SemiGradient(
        td_signal,
        jnp.full((1,), init_value, jnp.float32),
        lambda v: v[0],
        lambda v: (v, jnp.ones_like(v)),
        False,
    )


def qtd_signal(
    theta: Array, r_t: Array, discount_t: Array, theta_next: Array, taus: Array
) -> Array:
    """The quantile-regression direction ``tau_i - (1/m) sum_j 1{r + gamma theta'_j < theta_i}``.

    The negative gradient of the quantile (pinball) loss at the targets, as in QR-DQN
    (Dabney et al. 2018, https://arxiv.org/abs/1710.10044) and tabular QTD (Rowland et al.
    2024, Algorithm 1, https://arxiv.org/abs/2301.04462). Bounded by 1 whatever the reward.
    """
    chex.assert_rank([theta, r_t, discount_t, theta_next, taus], [1, 0, 0, 1, 1])
    targets = r_t + discount_t * theta_next
    below = jnp.mean((targets[None, :] < theta[:, None]).astype(theta.dtype), axis=1)
    return taus - below


def qtd(num_quantiles: int = 32, init_value: float = 0.0) -> SemiGradient:
    """Semi-gradient QTD: m quantiles at tau_i = (2i-1)/(2m) (Dabney et al. 2018)."""
    m = check_int("qtd", "num_quantiles", num_quantiles, 1)
    init_value = check_finite("qtd", "init_value", init_value)
    taus = jnp.asarray(midpoint_taus(m), jnp.float32)

    def signal(theta, r_t, discount_t, theta_next, key):
        del key
        return qtd_signal(theta, r_t, discount_t, theta_next, taus)

    return SemiGradient(
        signal, jnp.full((m,), init_value, jnp.float32), jnp.mean, _equal_atoms, True
    )


def ctd_signal(p: Array, r_t: Array, discount_t: Array, p_next: Array, support: Array) -> Array:
    """``Pi_C[r + gamma Z(s')] - p``: towards the Cramer-projected target, in probability space.

    The negative gradient of ``1/2 |Pi_C target - p|^2``. With a linear model this is the
    linear CTD of Bellemare et al. (2019) written in probabilities instead of cumulative
    probabilities (a fixed linear change of coordinates); its mean follows linear TD
    exactly while the support covers the returns (Lyle et al. 2019), and it stays
    normalised when the features can represent a constant. Probabilities may go negative
    (a signed measure), as that paper discusses.
    """
    chex.assert_rank([p, r_t, discount_t, p_next, support], [1, 0, 0, 1, 1])
    return cramer_project(r_t + discount_t * support, p_next, support) - p


def ctd(
    num_atoms: int = 51,
    v_min: float = -10.0,
    v_max: float = 10.0,
    init_value: float | None = None,
    head: str = "linear",
) -> SemiGradient:
    """Semi-gradient CTD on K evenly spaced atoms (Bellemare et al. 2017; 2019).

    Args:
      num_atoms, v_min, v_max, init_value: as ``td_jax.rules.ctd``.
      head: how the model's K outputs give probabilities.
        ``"linear"``: the outputs ARE the probabilities, moved along ``ctd_signal`` (the
        linear CTD of Bellemare et al. 2019; exactly tabular CTD with one-hot features and
        sgd, and mean-equivalent to linear TD). Normalisation is preserved by sgd only: an
        optimizer that rescales coordinates (adam) lets the mass drift.
        ``"softmax"``: the outputs are logits, ``p = softmax(out)``, moved along
        ``Pi_C target - p``, the negative gradient of the cross-entropy to the projected
        target (C51, Bellemare et al. 2017): always a distribution, for any model and
        optimizer. It starts at the tabular initial distribution mixed with 10% uniform
        mass (a softmax cannot represent a point mass).
    """
    if head not in ("linear", "softmax"):
        raise ValueError(f"ctd: head must be 'linear' or 'softmax', got {head!r}")
    # The tabular rule's support and initial probabilities, bit for bit.
    support, init_np = categorical_setup(num_atoms, v_min, v_max, init_value)
    k = init_np.shape[0]
    if head == "softmax":
        logits0 = np.log(0.9 * init_np + 0.1 / k)

        def softmax_signal(logits, r_t, discount_t, logits_next, key):
            del key
            p_next = jax.nn.softmax(logits_next)
            return ctd_signal(jax.nn.softmax(logits), r_t, discount_t, p_next, support)

        return SemiGradient(
            softmax_signal,
            jnp.asarray(logits0.astype(np.float32)),
            lambda logits: jax.nn.softmax(logits) @ support,
            lambda logits: (support, jax.nn.softmax(logits)),
            True,
        )

    def signal(p, r_t, discount_t, p_next, key):
        del key
        return ctd_signal(p, r_t, discount_t, p_next, support)

    # Read out normalised by the total mass, as tabular CTD does: float32 rounding (and,
    # with a rescaling optimizer, the updates themselves) let sum(p) drift from 1.
    return SemiGradient(
        signal,
        jnp.asarray(init_np.astype(np.float32)),
        lambda p: (p @ support) / jnp.sum(p),
        lambda p: (support, p / jnp.sum(p)),
        True,
    )


def expectile_signal(e: Array, targets: Array, taus: Array) -> Array:
    """``mean_j |tau_i - 1{y_j < e_i}| (y_j - e_i)``: the expectile-regression direction.

    The negative gradient of the expectile loss (Rowland et al. 2019,
    https://arxiv.org/abs/1902.08102); ``td_jax.rules.expectile_kernel`` is ``e + alpha *``
    this.
    """
    chex.assert_rank([e, targets, taus], 1)
    diff = targets[None, :] - e[:, None]
    weight = jnp.abs(taus[:, None] - (diff < 0.0).astype(e.dtype))
    return jnp.mean(weight * diff, axis=1)


def edrl(
    num_expectiles: int | None = None,
    taus: Sequence[float] | None = None,
    num_samples: int | None = None,
    num_iterations: int = DEFAULT_ITERATIONS,
    init_value: float = 0.0,
) -> SemiGradient:
    """Semi-gradient EDRL: expectile regression towards imputed next-state samples.

    Samples x_j at s_t are imputed from the learned expectiles (``impute_samples``), then
    every expectile at s_tm1 moves along ``expectile_signal`` towards y_j = r + gamma x_j
    (Rowland et al. 2019). Arguments as ``td_jax.rules.edrl``.
    """
    taus_np, n, iters, init_value = edrl_setup(
        num_expectiles, taus, num_samples, num_iterations, init_value
    )
    tau_arr = jnp.asarray(taus_np, jnp.float32)
    half = int(np.argmin(np.abs(taus_np - 0.5)))
    has_half = bool(abs(taus_np[half] - 0.5) < 1e-6)
    bracketed = bool((taus_np < 0.5).any() and (taus_np > 0.5).any())

    def impute(e: Array) -> Array:
        return impute_samples(e, tau_arr, n, iters)

    def signal(e, r_t, discount_t, e_next, key):
        del key
        chex.assert_rank([e, r_t, discount_t, e_next], [1, 0, 0, 1])
        # With discount 0 the target does not depend on s_t: skip the solve (as tabular).
        samples = jax.lax.cond(discount_t == 0.0, jnp.sort, impute, e_next)
        return expectile_signal(e, r_t + discount_t * samples, tau_arr)

    def values_fn(e: Array) -> Array:
        # The 0.5-expectile is the mean; without that level, the tabular rule's readout
        # (``expectile_mean``), and the imputed samples' mean when 0.5 is not bracketed.
        if has_half:
            return e[half]
        return expectile_mean(e, tau_arr) if bracketed else jnp.mean(impute(e))

    return SemiGradient(
        signal,
        jnp.full((taus_np.size,), init_value, jnp.float32),
        values_fn,
        lambda e: _equal_atoms(impute(e)),
        True,
    )


def from_kernel(kernel: Callable[..., Array]) -> Signal:
    """The direction of a tabular kernel ``(stat, r, discount, stat_next, alpha, key)``:
    ``kernel(..., alpha=1) - stat``.

    Exact (up to float rounding) for kernels affine in the step size, which every built-in
    kernel is; lets any user kernel for ``td_jax.rules.tabular_rule`` drive a parametric
    learner.
    """

    def signal(stat, r_t, discount_t, stat_next, key):
        return kernel(stat, r_t, discount_t, stat_next, jnp.ones((), stat.dtype), key) - stat

    return signal


SEMI_GRADIENTS: dict[str, Callable[..., SemiGradient]] = {
    "td": td,
    "qtd": qtd,
    "ctd": ctd,
    "edrl": edrl,
}
