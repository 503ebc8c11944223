"""The rules' semi-gradient directions, as a parametric learner follows them.

A rule is defined once, in ``td_jax.rules``, by the direction ``g`` its per-state
statistics move (``td_jax.rules.RuleDefinition``): the tabular rule adds
``step_size * g``. ``g`` is the negative gradient, with the bootstrapped target held fixed,
of the rule's loss on one transition (the *semi-gradient*, Sutton & Barto 2018, section
9.3). A parametric learner with statistics ``f_theta(phi(s)) f32[K]`` follows the same
direction through its model: ``theta += step_size * J_theta(s)^T g`` (or an optimizer's
transform of it). With one-hot features and a linear model, ``J^T g`` puts ``g`` in row
``s``: the tabular rule.

This module re-exports the definitions under their parametric names (``SemiGradient`` is
``RuleDefinition``) and adds the one parametrisation that is not the tabular one: CTD's
softmax head (C51, Bellemare et al. 2017).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np

from td_jax.rules.categorical import categorical_setup, ctd_definition, ctd_signal
from td_jax.rules.classical import td_definition, td_signal
from td_jax.rules.definition import RuleDefinition, Signal, signal_of_kernel
from td_jax.rules.expectile import edrl_definition, expectile_signal
from td_jax.rules.quantile import qtd_definition, qtd_signal

SemiGradient = RuleDefinition
from_kernel = signal_of_kernel
# The parametric forms by rule name: each the rule's one definition.
td, qtd, edrl = td_definition, qtd_definition, edrl_definition

__all__ = [
    "SEMI_GRADIENTS",
    "SemiGradient",
    "Signal",
    "ctd",
    "ctd_signal",
    "edrl",
    "expectile_signal",
    "from_kernel",
    "qtd",
    "qtd_signal",
    "td",
    "td_signal",
]


def ctd(
    num_atoms: int = 51,
    v_min: float = -10.0,
    v_max: float = 10.0,
    init_value: float | None = None,
    head: str = "linear",
) -> RuleDefinition:
    """Semi-gradient CTD on K evenly spaced atoms (Bellemare et al. 2017; 2019).

    Args:
      num_atoms, v_min, v_max, init_value: as ``td_jax.rules.ctd``.
      head: how the model's K outputs give probabilities.
        ``"linear"``: the outputs ARE the probabilities, moved along ``ctd_signal``: the
        rule's definition itself (the linear CTD of Bellemare et al. 2019; exactly tabular
        CTD with one-hot features and sgd, and mean-equivalent to linear TD).
        Normalisation is preserved by sgd only: an optimizer that rescales coordinates
        (adam) lets the mass drift.
        ``"softmax"``: the outputs are logits, ``p = softmax(out)``, moved along
        ``Pi_C target - p``, the negative gradient of the cross-entropy to the projected
        target (C51, Bellemare et al. 2017): always a distribution, for any model and
        optimizer. It starts at the tabular initial distribution mixed with 10% uniform
        mass (a softmax cannot represent a point mass).
    """
    if head not in ("linear", "softmax"):
        raise ValueError(f"ctd: head must be 'linear' or 'softmax', got {head!r}")
    if head == "linear":
        return ctd_definition(num_atoms, v_min, v_max, init_value)
    support, init_np = categorical_setup(num_atoms, v_min, v_max, init_value)
    k = init_np.shape[0]
    logits0 = np.log(0.9 * init_np + 0.1 / k)

    def softmax_signal(logits, r_t, discount_t, logits_next, key):
        del key
        p_next = jax.nn.softmax(logits_next)
        return ctd_signal(jax.nn.softmax(logits), r_t, discount_t, p_next, support)

    return RuleDefinition(
        softmax_signal,
        logits0.astype(np.float32),
        lambda logits: jax.nn.softmax(logits) @ support,
        lambda logits: (support, jax.nn.softmax(logits)),
        True,
        name="ctd_softmax",
    )


# Parametric forms by name; any other tabular rule of the registry runs through its own
# definition (``td_jax.approx.make``).
SEMI_GRADIENTS: dict[str, Callable[..., RuleDefinition]] = {
    "td": td,
    "qtd": qtd,
    "ctd": ctd,
    "edrl": edrl,
}
