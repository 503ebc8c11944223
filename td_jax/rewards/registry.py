"""A user's own reward families: ``td_jax.rewards.register(name, sampler, cdf, defaults=...)``.

A registered family is a JAX sampler from the two uniforms every reward draws from, and a
numpy CDF; the exact side (mean, variance, quantiles, expectiles) is computed numerically
from the CDF (``td_jax.rewards.numerical``, with its stated tolerance). Its rewards are
``td_jax.rewards.Mixture`` pytrees of one component (``td_jax.rewards.mixture``), so the
built-in families' pytree and compiled programs are untouched by any registration, and a
registered family also serves as a mixture component.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from td_jax import strict
from td_jax.code_digests import family_digest
from td_jax.rewards import families, numerical

MIXTURE = "mixture"


@dataclasses.dataclass(frozen=True, eq=False)  # compared by identity: a re-registration is new
class RegisteredFamily:
    """A user's reward family.

    Attributes:
      name: its registry name.
      sampler: ``sampler(u1, u2, **params) -> x`` in JAX: f32 uniforms in (0, 1) (arrays of
        one shape) and f32 scalar parameters to samples of the uniforms' shape. Inverse-CDF
        sampling ``x = F^-1(u1)`` is exact; ``u2`` is there for laws that need two.
      cdf: ``cdf(x, **params) -> F(x)`` in numpy float64, elementwise on an array.
      defaults: the parameters (scalars) and their default values.
      description, reference: for ``td-jax list``.
      code_digest: the digest of its sampler's and cdf's code and of their user modules'
        source (``td_jax.code_digests.family_digest``), taken when it was
        registered: it joins the key of every saved unit and floor of a task that uses it.
    """

    name: str
    sampler: Callable[..., Any]
    cdf: Callable[..., Any]
    defaults: dict[str, float]
    description: str
    reference: str
    code_digest: str = ""

    def build(self, params: Mapping[str, Any]) -> np.ndarray:
        """f64[P]: the validated parameter vector (one-line ValueError otherwise)."""
        strict.check_known_kwargs(self.name, params, self.defaults)
        full = {**self.defaults, **params}
        vector = np.array([strict.check_finite(self.name, k, full[k]) for k in self.defaults])
        law(self, tuple(vector.tolist()))  # refuses parameters that give no distribution
        return vector

    def config(self, params: np.ndarray) -> dict[str, float]:
        return {k: float(v) for k, v in zip(self.defaults, params, strict=True)}

    def draw(self, u1: jax.Array, u2: jax.Array, params: jax.Array) -> jax.Array:
        kwargs = {k: params[i] for i, k in enumerate(self.defaults)}
        return jnp.asarray(self.sampler(u1, u2, **kwargs), jnp.float32)


@functools.lru_cache(maxsize=256)
def law(family: RegisteredFamily, params: tuple[float, ...]) -> numerical.Numerical:
    """The numerical law of ``family`` at ``params`` (cached: its integrals cost ms)."""
    kwargs = dict(zip(family.defaults, params, strict=True))
    try:
        return numerical.Numerical(lambda x: family.cdf(x, **kwargs))
    except numerical.CDFError as err:
        raise ValueError(
            f"{family.name}: cdf must be a distribution function of finite mean at {kwargs}; {err}"
        ) from None


_REGISTRY: dict[str, RegisteredFamily] = {}


def register(
    name: str,
    sampler: Callable[..., Any],
    cdf: Callable[..., Any],
    *,
    defaults: Mapping[str, float] | None = None,
    description: str | None = None,
    reference: str = "",
    overwrite: bool = False,
) -> RegisteredFamily:
    """Adds a reward family, so that ``td_jax.rewards.make(name, **params)`` (and any reward
    spec: a task's reward, a mixture component, a study file) builds it.

    Args:
      name: a new name (not a built-in family, not "mixture").
      sampler: ``sampler(u1, u2, **params) -> x``, JAX, see ``RegisteredFamily``.
      cdf: ``cdf(x, **params) -> F(x)``, numpy, see ``RegisteredFamily``.
      defaults: ``{parameter: default}``, scalars; ``make`` accepts exactly these.
      description: one line for ``td-jax list`` (default: the sampler's docstring's first).
      reference: the law's source, shown with the description.
      overwrite: replace a family registered under ``name`` before (rewards made from the
        old one keep it).

    Returns the family. Mean, variance, quantiles and expectiles are computed from ``cdf``
    to the tolerance stated in ``td_jax.rewards.numerical`` (1e-8 of the spread).

    Raises:
      ValueError, one line: a name that is built in, taken or not a string; a sampler or
      cdf that is not callable or does not take the parameters; a non-numeric default; a
      sampler that does not map f32 uniforms to f32 samples of their shape; a cdf that is
      not a distribution function of finite mean at the defaults.
    """
    if not isinstance(name, str) or not name.isidentifier():
        strict.fail("rewards.register", "name", name, "a name of letters, digits and _")
    if name in families.BY_NAME or name == MIXTURE:
        strict.fail("rewards.register", "name", name, "a new name (it is a built-in family)")
    if name in _REGISTRY and not overwrite:
        strict.fail("rewards.register", "name", name, "new (pass overwrite=True to replace it)")
    defaults = dict(defaults or {})
    for key, value in defaults.items():
        strict.check_finite(name, f"default {key!r}", value)
    for role, fn, first in (("sampler", sampler, ("u1", "u2")), ("cdf", cdf, ("x",))):
        if not callable(fn):
            strict.fail(name, role, fn, "callable")
        try:
            inspect.signature(fn).bind(*first, **defaults)
        except (TypeError, ValueError) as err:
            args = ", ".join([*first, *defaults])
            strict.fail(name, role, fn, f"a callable taking ({args}) ({err})")
    if description is None:
        doc = (getattr(sampler, "__doc__", None) or "").strip().splitlines()
        description = doc[0] if doc else f"user-registered family {name}"
    params = {k: float(v) for k, v in defaults.items()}
    code = family_digest(name, sampler, cdf)
    family = RegisteredFamily(name, sampler, cdf, params, description, reference, code)
    _check_sampler(family)
    family.build({})
    _REGISTRY[name] = family
    return family


def _check_sampler(family: RegisteredFamily) -> None:
    u = jax.ShapeDtypeStruct((3,), jnp.float32)
    p = jax.ShapeDtypeStruct((len(family.defaults),), jnp.float32)
    try:
        out = jax.eval_shape(family.draw, u, u, p)
    except Exception as err:  # a user's function: report any failure in one line
        msg = " ".join(str(err).split())[:200]
        strict.fail(family.name, "sampler", family.sampler,
                    f"a JAX function of f32 uniforms ({type(err).__name__}: {msg})")  # fmt: skip
    if out.shape != (3,):
        allowed = f"a function returning samples of the uniforms' shape (3,), not {out.shape}"
        strict.fail(family.name, "sampler", family.sampler, allowed)


def get(name: str) -> RegisteredFamily | None:
    return _REGISTRY.get(name)


def names() -> list[str]:
    """Registered families, in registration order."""
    return list(_REGISTRY)


def reachable(obj: Any) -> tuple[RegisteredFamily, ...]:
    """The registered families that ``obj`` uses, by first appearance: a reward (a
    ``Mixture``'s families, mixture components included), an environment (its ``rewards``),
    or a configuration (mappings, lists and strings: each registered name in it, a reward
    spec ``{"name": ...}`` and its components included) -- anything nested of these."""
    found: dict[int, RegisteredFamily] = {}
    todo, seen = [obj], 0
    while todo and seen < 100_000:  # a bound on the walk over a large configuration
        x, seen = todo.pop(), seen + 1
        if isinstance(x, RegisteredFamily):
            found.setdefault(id(x), x)
        elif isinstance(x, str):
            if x in _REGISTRY:
                todo.append(_REGISTRY[x])
        elif isinstance(x, Mapping):
            todo += reversed([*x.keys(), *x.values()])
        elif isinstance(x, list | tuple | set | frozenset):
            todo += reversed(list(x))
        elif hasattr(x, "registered") and hasattr(x, "parts"):  # a Mixture
            todo += reversed(list(x.registered))
        elif hasattr(x, "rewards") and not isinstance(x, type):  # an environment
            todo.append(x.rewards)
    return tuple(found.values())


def digests(families: Any) -> dict[str, str]:
    """``{name: code digest}`` of the registered families ``reachable`` from ``families``
    (two families of one name, an old reward beside a re-registration: their digests
    joined)."""
    out: dict[str, str] = {}
    for family in reachable(families):
        out[family.name] = "+".join(filter(None, [out.get(family.name), family.code_digest]))
    return dict(sorted(out.items()))
