"""Parametric TD learners as ``UpdateRule``s: a model of features, trained by an optax optimizer.

``parametric_rule(semi_gradient, model, features, optimizer)`` lifts a rule's semi-gradient
direction (``td_jax.approx.signals``) into a full ``UpdateRule``, the parametric
counterpart of ``td_jax.rules.tabular_rule``. Per transition:

    g     = signal(f(s_tm1), r_t, discount_t, f(s_t), key)     # f(s_t) held fixed
    grads = -J_theta f(s_tm1)^T g                               # a pseudo-gradient
    u     = optimizer(grads)                                    # built with learning rate 1
    theta = theta + step_size * u

The optimizer is built with learning rate 1 and its update is scaled by the traced
``step_size``: for sgd and adam (any chain ending in ``scale_by_learning_rate``) this is
exactly the optimizer at learning rate ``step_size``, so a sweep of learning rates is a
``vmap`` axis of ``td_jax.run``, never a recompile.

The learner state holds the parameters, the optimizer state and the feature table (a
draw per seed for random features), so ``init(key, num_states)`` is all the runner calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from td_jax.approx import signals as signal_lib
from td_jax.approx.features import FeatureMap, make_features
from td_jax.approx.models import Model, Params, make_model
from td_jax.approx.specs import from_spec
from td_jax.rules.classical import td_definition
from td_jax.rules.definition import canonical
from td_jax.strict import check_finite, check_unit_interval
from td_jax.types import Array, PRNGKey, Transition, UpdateRule


class ApproxState(NamedTuple):
    """State of a parametric learner."""

    params: Params  # the model's parameters
    opt_state: optax.OptState  # the optimizer's state
    features: Array  # f32[num_states, d] feature table (row s is phi(s))
    trace: Params = ()  # eligibility trace, shaped like params (TD(lambda) only)


OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "sgd": lambda **kw: optax.sgd(1.0, **kw),
    "adam": lambda **kw: optax.adam(1.0, **kw),
    "rmsprop": lambda **kw: optax.rmsprop(1.0, **kw),
}


def make_optimizer(
    spec: str | Mapping[str, Any] | optax.GradientTransformation,
) -> optax.GradientTransformation:
    """An optax optimizer at learning rate 1 from ``"sgd" | "adam" | "rmsprop"``, a mapping
    ``{"name": ..., **kwargs}`` (e.g. ``{"name": "adam", "eps": 1e-6}``), or a
    ``GradientTransformation`` the caller built with learning rate 1."""
    if isinstance(spec, optax.GradientTransformation):
        return spec
    allowed = "a name, a mapping with 'name', or an optax GradientTransformation"
    return from_spec("optimizer", spec, OPTIMIZERS, allowed=allowed)


def _step(
    optimizer: optax.GradientTransformation,
    params: Params,
    opt_state: optax.OptState,
    grads: Params,
    step_size: Array,
) -> tuple[Params, optax.OptState]:
    updates, opt_state = optimizer.update(grads, opt_state, params)
    updates = jax.tree.map(lambda u: (step_size * u).astype(u.dtype), updates)
    return optax.apply_updates(params, updates), opt_state


def _init_fn(model: Model, features: FeatureMap, optimizer, init_stat: Array, traced: bool):
    def init(key: PRNGKey, num_states: int) -> ApproxState:
        k_features, k_model = jax.random.split(key)
        feats = features(k_features, num_states)
        chex.assert_rank([feats.table, feats.unit], [2, 1])
        chex.assert_axis_dimension(feats.table, 0, num_states)
        params = model.init(k_model, feats, init_stat)
        trace = jax.tree.map(jnp.zeros_like, params) if traced else ()
        return ApproxState(params, optimizer.init(params), feats.table, trace)

    return init


def _readouts(model: Model, sg: signal_lib.SemiGradient):
    def values(state: ApproxState) -> Array:
        return jax.vmap(sg.values_fn)(model.apply(state.params, state.features))

    def distribution(state: ApproxState) -> tuple[Array, Array]:
        return jax.vmap(sg.distribution_fn)(model.apply(state.params, state.features))

    return values, distribution


def parametric_rule(
    semi_gradient: signal_lib.SemiGradient,
    model: Model,
    features: FeatureMap,
    optimizer: optax.GradientTransformation,
) -> UpdateRule:
    """Lifts a semi-gradient direction into a parametric ``UpdateRule``.

    Args:
      semi_gradient: the rule's direction and statistics (``td_jax.approx.signals``).
      model: a ``Model`` with ``K = semi_gradient.init_stat.size`` outputs.
      features: ``(key, num_states) -> Features``.
      optimizer: an optax transformation built with learning rate 1 (see module doc).

    Returns:
      An ``UpdateRule`` whose state is an ``ApproxState``.
    """
    sg = semi_gradient
    init_stat = jnp.asarray(sg.init_stat, jnp.float32)

    def update(
        state: ApproxState, transition: Transition, step_size: Array, key: PRNGKey
    ) -> ApproxState:
        params = state.params
        phi_s = state.features[transition.s_tm1]
        stat_next = model.apply(params, state.features[transition.s_t])
        stat_s, pullback = jax.vjp(lambda p: model.apply(p, phi_s), params)
        g = sg.signal(
            stat_s,
            jnp.asarray(transition.r_t, jnp.float32),
            jnp.asarray(transition.discount_t, jnp.float32),
            stat_next,
            key,
        )
        (grads,) = pullback(-g)
        step_size = jnp.asarray(step_size, jnp.float32)
        params, opt_state = _step(optimizer, params, state.opt_state, grads, step_size)
        return ApproxState(params, opt_state, state.features, state.trace)

    values, distribution = _readouts(model, sg)
    init = _init_fn(model, features, optimizer, init_stat, traced=False)
    return UpdateRule(init, update, values, distribution, sg.distributional)


def td_lambda_rule(
    model: Model,
    features: FeatureMap,
    optimizer: optax.GradientTransformation,
    lambda_: float = 0.9,
    init_value: float = 0.0,
) -> UpdateRule:
    """Semi-gradient online TD(lambda), accumulating traces in parameter space.

    ``z = discount * lambda * z + grad v(s_tm1)``, ``theta += step_size * opt(-delta z)``
    (Sutton & Barto 2018, section 12.2; with sgd, exactly their semi-gradient TD(lambda)).
    As in the tabular rule, the trace decays by this transition's ``discount_t * lambda``
    after the update, so an episode boundary clears it; lambda = 0 is semi-gradient TD(0).

    Args:
      model: a ``Model`` with one output.
      lambda_: the trace decay, in [0, 1].
      init_value: the initial value of every state.
    """
    lam = check_unit_interval("td_lambda", "lambda", lambda_, closed=True)
    sg = td_definition(check_finite("td_lambda", "init_value", init_value))

    def update(
        state: ApproxState, transition: Transition, step_size: Array, key: PRNGKey
    ) -> ApproxState:
        del key
        params = state.params
        discount_t = jnp.asarray(transition.discount_t, jnp.float32)
        v_next = model.apply(params, state.features[transition.s_t])[0]
        v_s, pullback = jax.vjp(lambda p: model.apply(p, state.features[transition.s_tm1]), params)
        (grad_v,) = pullback(jnp.ones_like(v_s))
        trace = jax.tree.map(jnp.add, state.trace, grad_v)
        delta = transition.r_t + discount_t * v_next - v_s[0]
        grads = jax.tree.map(lambda z: -delta * z, trace)
        step_size = jnp.asarray(step_size, jnp.float32)
        params, opt_state = _step(optimizer, params, state.opt_state, grads, step_size)
        trace = jax.tree.map(lambda z: z * (discount_t * lam), trace)
        return ApproxState(params, opt_state, state.features, trace)

    values, distribution = _readouts(model, sg)
    init = _init_fn(model, features, optimizer, jnp.asarray(sg.init_stat), traced=True)
    return UpdateRule(init, update, values, distribution, False)


RULES = ("td", "td_lambda", "qtd", "ctd", "edrl")


def _definition(rule: Any, hparams: dict[str, Any]) -> signal_lib.SemiGradient:
    """The definition a parametric learner follows: a ``SemiGradient`` as given, a
    tabular ``UpdateRule``'s own, or a registry name's (``SEMI_GRADIENTS`` first, for
    CTD's ``head``; then any tabular rule of ``td_jax.rules``)."""
    from td_jax import rules as rules_lib

    if isinstance(rule, signal_lib.SemiGradient | UpdateRule):
        if hparams:
            raise ValueError(
                f"approx.make: a rule object takes no hyperparameters, got {sorted(hparams)}"
            )
        definition = rule if isinstance(rule, signal_lib.SemiGradient) else rule.definition
        if definition is None:
            raise ValueError(
                "approx.make: this UpdateRule has no definition (rule.definition is None: "
                "not a tabular rule, or one with random initial statistics); give a "
                "td_jax.rules.RuleDefinition, a tabular_rule, or a rule name"
            )
        return definition
    known = available()
    if not isinstance(rule, str) or rule not in known:
        raise ValueError(f"unknown parametric rule {rule!r}; available: {', '.join(known)}")
    try:
        if rule in signal_lib.SEMI_GRADIENTS:
            return signal_lib.SEMI_GRADIENTS[rule](**hparams)
        built = rules_lib.make(rule, **hparams)
    except TypeError as err:
        raise ValueError(f"{rule}: bad hyperparameters {sorted(hparams)}: {err}") from err
    if built.definition is None:
        raise ValueError(f"rule {rule!r} has no definition: it has no parametric form")
    return built.definition


def make(
    rule: str | signal_lib.SemiGradient | UpdateRule,
    *,
    approximator: str | Mapping[str, Any] | Callable[[int], Model] = "linear",
    features: str | Mapping[str, Any] | FeatureMap = "one_hot",
    optimizer: str | Mapping[str, Any] | optax.GradientTransformation = "sgd",
    **hparams: Any,
) -> UpdateRule:
    """A parametric TD learner: ``rule`` trained through ``approximator`` of ``features``.

    Example::

        rule = td_jax.approx.make("qtd", approximator="mlp", features="position",
                                  optimizer="adam", num_quantiles=16)
        td_jax.run({"mlp_qtd": rule}, envs, step_sizes=[1e-3, 1e-2], num_seeds=10, ...)

    Args:
      rule: "td", "td_lambda", "qtd", "ctd", "edrl" (or any tabular rule of the registry,
        e.g. "dopamine_quantile"), a ``RuleDefinition`` (``SemiGradient``), or a tabular
        ``UpdateRule`` (its ``definition``: a ``tabular_rule`` of one's own kernel runs here
        unchanged).
      approximator: "linear" | "mlp", ``{"name": "mlp", "hidden": [64, 64],
        "activation": "tanh"}``, or a callable ``num_outputs -> Model``.
      features: "one_hot" | "random" | "tile" | "position" | "fourier", a mapping with
        parameters (``{"name": "tile", "num_tilings": 8, "num_tiles": 4}``) or a feature map.
      optimizer: "sgd" | "adam" | "rmsprop", a mapping with keyword arguments, or an optax
        transformation built with learning rate 1. The step size swept by ``td_jax.run``
        is its learning rate.
      **hparams: the rule's own hyperparameters, as for ``td_jax.rules.make`` (the
        aliases ``m``, ``K``, ``lam`` / ``lambda`` are accepted); ``ctd`` also takes
        ``head="linear" | "softmax"`` (``td_jax.approx.signals.ctd``; use "softmax" with
        adam or an MLP).

    Raises:
      ValueError: for an unknown rule, approximator, feature map or optimizer, or a bad
        hyperparameter (the message names it).
    """
    hparams = canonical(hparams)
    feature_map = make_features(features)
    opt = make_optimizer(optimizer)
    if isinstance(rule, str) and rule == "td_lambda":
        try:
            return td_lambda_rule(make_model(approximator, 1), feature_map, opt, **hparams)
        except TypeError as err:
            raise ValueError(f"td_lambda: bad hyperparameters {sorted(hparams)}: {err}") from err
    sg = _definition(rule, hparams)
    model = make_model(approximator, int(sg.init_stat.shape[0]))
    return parametric_rule(sg, model, feature_map, opt)


def available() -> list[str]:
    """The rules ``make`` builds parametric forms of: ``RULES`` and every other rule of the
    registry (each tabular rule is its definition's lifting; registered factories are
    built only when asked for)."""
    from td_jax import rules as rules_lib

    return list(RULES) + sorted(set(rules_lib.available()) - set(RULES))
