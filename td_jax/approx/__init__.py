"""Beyond tables: linear and neural TD learners (flax models, optax optimizers) on features.

``make(rule, approximator=..., features=..., optimizer=..., **hparams)`` builds a
parametric learner as an ordinary ``td_jax.UpdateRule``: ``td_jax.run`` vmaps it over step
sizes (the optimizer's learning rate), seeds and tasks like a tabular rule. Rules: ``td``,
``td_lambda``, ``qtd``, ``ctd``, ``edrl``, each trained by the semi-gradient of its own
loss; linear + one-hot + sgd reproduces the tabular rule.

Parts, one file each: ``features`` (state features), ``models`` (linear, MLP),
``signals`` (each rule's semi-gradient direction), ``learner`` (the lifting into an
``UpdateRule``). The ``approx`` and ``approx_quick`` benchmark suites are studies, a layer
above: ``benchmarks/approx.toml`` and ``approx_quick.toml``. A parametric learner carries
TD's ``RuleFacts`` (its step is the optimiser's learning rate): declare others with
``rules.with_facts``.
"""

from td_jax.approx.features import (
    FEATURES,
    FeatureMap,
    Features,
    fourier,
    make_features,
    one_hot,
    position,
    positions,
    random_features,
    tile_coding,
)
from td_jax.approx.learner import (
    OPTIMIZERS,
    ApproxState,
    available,
    make,
    make_optimizer,
    parametric_rule,
    td_lambda_rule,
)
from td_jax.approx.models import MODELS, Model, linear, make_model, mlp
from td_jax.approx.signals import (
    SemiGradient,
    ctd_signal,
    expectile_signal,
    from_kernel,
    qtd_signal,
    td_signal,
)

__all__ = [
    "FEATURES",
    "MODELS",
    "OPTIMIZERS",
    "ApproxState",
    "FeatureMap",
    "Features",
    "Model",
    "SemiGradient",
    "available",
    "ctd_signal",
    "expectile_signal",
    "fourier",
    "from_kernel",
    "linear",
    "make",
    "make_features",
    "make_model",
    "make_optimizer",
    "mlp",
    "one_hot",
    "parametric_rule",
    "position",
    "positions",
    "qtd_signal",
    "random_features",
    "td_lambda_rule",
    "td_signal",
    "tile_coding",
]
