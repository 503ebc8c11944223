"""JAX samplers for the reward families: one kernel per shape of law, chosen by lax.switch.

Every kernel maps the same two uniforms ``(u1, u2)`` to a sample (inverse-CDF wherever a
closed form exists), so:
  * a reward's family can be a traced int32: envs whose rewards differ in family stack
    into one batched pytree and one compiled program (``lax.switch`` becomes a select
    under ``vmap``);
  * families share common random numbers: the same key gives coupled draws across
    families, which makes paired comparisons across reward distributions less noisy.

Uniforms are ``(k + 1/2) * 2^-23`` for a 23-bit integer ``k``: strictly inside (0, 1) and
symmetric about 1/2, so ``ndtri`` and ``log`` never see 0 or 1 and symmetric laws stay
exactly symmetric. The price is tail truncation at probability 2^-24 (about 6e-8): the
sampled Gaussian stops at 5.3 std, the exponential at 16.6 means.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy import special as jsp_special

NUM_PARAMS = 5  # the widest family (bimodal) needs m1, m2, s1, s2, w1

(
    KERNEL_ATOMS,
    KERNEL_NORMAL,
    KERNEL_BIMODAL,
    KERNEL_EXPONENTIAL,
    KERNEL_LOGNORMAL,
    KERNEL_STUDENT_T,
    KERNEL_UNIFORM,
) = range(7)


def unit(bits: jax.Array) -> jax.Array:
    """f32 uniforms in (0, 1) from uint32 words: (k + 1/2) 2^-23 with k the top 23 bits."""
    return ((bits >> 9).astype(jnp.float32) + 0.5) * jnp.float32(2.0**-23)


def uniforms(key: jax.Array, shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """Two independent f32 uniforms in (0, 1), never 0 or 1, symmetric about 1/2."""
    u = unit(jax.random.bits(key, (2, *shape), dtype=jnp.uint32))
    return u[0], u[1]


def _atoms(u1, u2, p, locs, probs):
    del u2, p
    cdf = jnp.cumsum(probs)
    # Padding atoms repeat the largest location with probability 0, so clipping an index
    # pushed past the end by f32 rounding of the cdf still returns a real atom.
    idx = jnp.searchsorted(cdf, u1, side="right", method="compare_all")
    return locs[jnp.minimum(idx, locs.shape[0] - 1)]


def _normal(u1, u2, p, locs, probs):
    del u2, locs, probs
    return p[0] + p[1] * jsp_special.ndtri(u1)


def _bimodal(u1, u2, p, locs, probs):
    del locs, probs
    z = jsp_special.ndtri(u1)
    return jnp.where(u2 < p[4], p[0] + p[2] * z, p[1] + p[3] * z)


def _exponential(u1, u2, p, locs, probs):
    del u2, locs, probs
    return -p[0] * jnp.log(u1)


def _lognormal(u1, u2, p, locs, probs):
    del u2, locs, probs
    return jnp.exp(p[0] + p[1] * jsp_special.ndtri(u1))


def _student_t(u1, u2, p, locs, probs):
    """Bailey's polar form: T = sqrt(df (U1^(-2/df) - 1)) cos(2 pi U2), exact, no rejection.

    Bailey, R. W. (1994), "Polar generation of random variates with the t-distribution",
    Mathematics of Computation 62(206):779-781.
    """
    del locs, probs
    df = p[0]
    radius = jnp.sqrt(df * jnp.expm1(-2.0 / df * jnp.log(u1)))
    return p[1] + p[2] * radius * jnp.cos(2.0 * jnp.pi * u2)


def _uniform(u1, u2, p, locs, probs):
    del u2, locs, probs
    return p[0] + (p[1] - p[0]) * u1


KERNELS = (_atoms, _normal, _bimodal, _exponential, _lognormal, _student_t, _uniform)


def draw(
    kernel: jax.Array | int,
    u1: jax.Array,
    u2: jax.Array,
    params: jax.Array,
    locs: jax.Array,
    probs: jax.Array,
) -> jax.Array:
    """Base-law samples (before the affine standardising map) from uniforms.

    A Python int ``kernel`` calls that kernel directly (no switch in the program); a traced
    one dispatches with ``lax.switch``.
    """
    if isinstance(kernel, int):
        return KERNELS[kernel](u1, u2, params, locs, probs)
    return lax.switch(kernel, KERNELS, u1, u2, params, locs, probs)
