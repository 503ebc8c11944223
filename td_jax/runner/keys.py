"""Threefry-2x32 keys whose hash compiles to straight-line code: same bits, faster on CPU.

JAX lowers its threefry hash on CPU as a rolled ``fori_loop`` (5 iterations of 4 rounds),
which keeps compile times short but costs a handful of tiny loop kernels per call. The
runner draws a few words per stream per step, so on CPU those loops, not the arithmetic,
dominated the cost of classical TD. ``FUSED_THREEFRY`` is a PRNG implementation
(``jax.extend.random.define_prng_impl``) with the same key shape and the same split,
fold-in and random-bits algorithms as JAX's default ``threefry2x32``, written with
unrolled rounds in ``jax.numpy`` so that XLA fuses the hash into its consumers. Every key
operation returns exactly the bits the default implementation returns
(tests/test_keys.py), so results do not depend on which implementation ran.

Reference: Salmon, Moraes, Dror, Shaw (2011). Parallel random numbers: as easy as 1, 2, 3.
SC'11. https://doi.org/10.1145/2063384.2063405
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from td_jax.types import Array

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def _rotate_left(x: Array, d: int) -> Array:
    return lax.shift_left(x, np.uint32(d)) | lax.shift_right_logical(x, np.uint32(32 - d))


def threefry2x32(k1: Array, k2: Array, x1: Array, x2: Array) -> tuple[Array, Array]:
    """The Threefry-2x32 block hash (20 rounds), unrolled; uint32 in, uint32 out.

    Bit-identical to ``jax.extend.random.threefry_2x32`` on the same key and counter pair.
    """
    ks = (k1, k2, k1 ^ k2 ^ _PARITY)
    x = [x1 + ks[0], x2 + ks[1]]
    for block in range(5):
        for rot in _ROTATIONS[block % 2]:
            x[0] = x[0] + x[1]
            x[1] = x[0] ^ _rotate_left(x[1], rot)
        x[0] = x[0] + ks[(block + 1) % 3]
        x[1] = x[1] + ks[(block + 2) % 3] + np.uint32(block + 1)
    return x[0], x[1]


def _counters(shape: tuple[int, ...]) -> tuple[Array, Array]:
    """``iota(prod(shape))`` as (high, low) uint32 words, like JAX's partitionable mode."""
    size = math.prod(shape)
    if size >= 2**32:
        raise ValueError(
            f"fused threefry: {size:,} random words requested at once (shape {shape}); at "
            f"most 2**32 - 1 = {2**32 - 1:,} are allowed per draw (32-bit counters); draw "
            "in smaller batches, e.g. a smaller micro_batch in td_jax.run"
        )
    low = lax.iota(np.uint32, size).reshape(shape)
    return jnp.zeros(shape, np.uint32), low


def _seed(seed: Array) -> Array:
    return jax.random.key_data(jax.random.key(seed, impl="threefry2x32"))


def _split(key: Array, shape: tuple[int, ...]) -> Array:
    hi, lo = _counters(tuple(shape))
    bits1, bits2 = threefry2x32(key[0], key[1], hi, lo)
    return jnp.stack([bits1, bits2], axis=bits1.ndim)


def _fold_in(key: Array, data: Array) -> Array:
    data = jnp.asarray(data, np.uint32)
    y1, y2 = threefry2x32(key[0], key[1], jnp.zeros_like(data), data)
    return jnp.stack([y1, y2])


def _random_bits(key: Array, bit_width: int, shape: tuple[int, ...]) -> Array:
    hi, lo = _counters(tuple(shape))
    bits1, bits2 = threefry2x32(key[0], key[1], hi, lo)
    if bit_width == 64:
        return (bits1.astype(np.uint64) << np.uint64(32)) | bits2.astype(np.uint64)
    dtype = {8: np.uint8, 16: np.uint16, 32: np.uint32}[bit_width]
    return (bits1 ^ bits2).astype(dtype)


FUSED_THREEFRY = jax.extend.random.define_prng_impl(
    key_shape=(2,),
    seed=_seed,
    split=_split,
    random_bits=_random_bits,
    fold_in=_fold_in,
    name="threefry2x32_fused",
    tag="fry_fused",
)


def counter_bits(key: Array, high: Array, start: int, count: int) -> Array:
    """u32[count]: the words at counters ``(high, start + i)``, ``i < count``, of ``key``.

    Each word is the Threefry-2x32 hash of the key on the counter pair ``(high, low)``,
    its two output words XORed: the construction of JAX's partitionable ``random_bits``
    (whose high counter word is 0), here with ``high`` chosen by the caller. The runner
    takes ``high`` = the update's step, so a stream's draws at every step come straight
    from its one key: no per-step ``fold_in`` and ``split`` (two more hashes, which XLA
    recomputed in every kernel that read the derived key). Counter-based streams: Salmon
    et al. (2011), section 3, "keyed bijections"; distinct counters give independent words.

    Args:
      key: a typed key (any threefry implementation) or its raw ``u32[2]`` data.
      high: u32[] (or int) high counter word.
      start, count: static; the low counter words are ``start .. start + count - 1``.
    """
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    if start < 0 or count < 1 or start + count > 2**32:
        raise ValueError(
            f"counter_bits: low counters [{start}, {start + count}) must lie in [0, 2**32)"
        )
    high = jnp.full((count,), jnp.asarray(high).astype(np.uint32))
    low = np.uint32(start) + lax.iota(np.uint32, count)
    bits1, bits2 = threefry2x32(key[0], key[1], high, low)
    return bits1 ^ bits2


def wrap(key_data: Array) -> Array:
    """Typed keys of the fused implementation from raw ``u32[..., 2]`` threefry key data.

    Falls back to JAX's own threefry when ``jax_threefry_partitionable`` is off, whose
    bits the fused implementation does not reproduce.
    """
    if not jax.config.jax_threefry_partitionable:
        return jax.random.wrap_key_data(key_data, impl="threefry2x32")
    return jax.random.wrap_key_data(key_data, impl=FUSED_THREEFRY)
