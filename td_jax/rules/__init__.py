"""Update rules: the registry and every built-in TD learner.

``make(name, **hparams)`` builds a rule, ``available()`` lists names, ``register(name,
factory)`` adds a user's rule, and ``tabular_rule(kernel, ...)`` lifts a per-state kernel
into a full ``UpdateRule`` so that a new rule is a few lines. Each rule is defined once
(``RuleDefinition``: the direction its per-state statistics move, ``*_signal``); its
tabular, control and parametric forms are liftings of that definition.
"""

from td_jax.rules import categorical as _categorical  # noqa: I001
from td_jax.rules import classical as _classical
from td_jax.rules import quantile as _quantile
from td_jax.rules.categorical import cramer_project, ctd, ctd_definition, ctd_kernel, ctd_signal
from td_jax.rules.classical import (
    td,
    td_definition,
    td_kernel,
    td_lambda,
    td_placebo,
    td_signal,
)
from td_jax.rules.definition import RuleDefinition, kernel_of, signal_of_kernel
from td_jax.rules.facts import with_facts
from td_jax.rules.dopamine import (
    dopamine_expectile,
    dopamine_kernel,
    dopamine_quantile,
    dopamine_signal,
)
from td_jax.rules.expectile import (
    edrl,
    edrl_definition,
    expectile_kernel,
    expectile_mean,
    expectile_residuals,
    expectile_signal,
    impute_samples,
)
from td_jax.rules.quantile import qtd, qtd_definition, qtd_kernel, qtd_signal
from td_jax.rules.registry import available, describe, make, register
from td_jax.rules.rescale import rescaled
from td_jax.rules.tabular import TabularState, tabular_of, tabular_rule
from td_jax.rules.quantile import midpoint_taus

register("td", td, "TD(0): tabular temporal-difference learning of the mean (Sutton 1988)")
register("td_placebo", td_placebo, "placebo control: TD(0) at half the step size it is given")
register(
    "td_lambda",
    _classical.td_lambda_factory,
    "online TD(lambda), accumulating eligibility traces (Sutton 1988)",
)
register(
    "qtd",
    _quantile.qtd_factory,
    "quantile TD, m quantiles at (2i-1)/2m (Dabney 2018; Rowland et al. 2024)",
)
register(
    "ctd",
    _categorical.ctd_factory,
    "categorical TD, K atoms on [v_min, v_max], Cramer projection (Rowland et al. 2018)",
)
register("edrl", edrl, "expectile TD with imputation at s' (Rowland et al. 2019)")
register(
    "dopamine_expectile",
    dopamine_expectile,
    "dopamine cells, asymmetric rates, expectile code (Dabney et al. 2020)",
)
register(
    "dopamine_quantile",
    dopamine_quantile,
    "dopamine cells, asymmetric rates, quantile code (Dabney et al. 2020)",
)

__all__ = [
    "td_signal",
    "td_definition",
    "tabular_of",
    "with_facts",
    "signal_of_kernel",
    "qtd_signal",
    "qtd_definition",
    "kernel_of",
    "expectile_signal",
    "edrl_definition",
    "dopamine_signal",
    "ctd_signal",
    "ctd_definition",
    "RuleDefinition",
    "TabularState",
    "available",
    "cramer_project",
    "ctd",
    "ctd_kernel",
    "describe",
    "dopamine_expectile",
    "dopamine_kernel",
    "dopamine_quantile",
    "edrl",
    "expectile_kernel",
    "expectile_mean",
    "expectile_residuals",
    "impute_samples",
    "make",
    "midpoint_taus",
    "qtd",
    "qtd_kernel",
    "register",
    "tabular_rule",
    "td",
    "td_kernel",
    "td_lambda",
    "td_placebo",
    "rescaled",
]
