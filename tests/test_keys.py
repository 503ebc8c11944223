"""The runner's fused threefry keys give exactly JAX's threefry bits, jitted or not."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from td_jax.runner import keys

RAW = jax.random.key_data(jax.random.split(jax.random.key(42), 7))

DRAWS = {
    "split3": lambda k: jax.random.split(k, 3),
    "split": lambda k: jax.random.split(k),
    "fold_in": lambda k: jax.random.fold_in(k, 123456789),
    "bits": lambda k: jax.random.bits(k, (5, 3)),
    "bits8": lambda k: jax.random.bits(k, (4,), jnp.uint8),
    "bits16": lambda k: jax.random.bits(k, (4,), jnp.uint16),
    "uniform": lambda k: jax.random.uniform(k, (9,)),
    "normal": lambda k: jax.random.normal(k, (9,)),
    "randint": lambda k: jax.random.randint(k, (20,), 0, 20),
    "permutation": lambda k: jax.random.permutation(k, 10),
}


def _data(x):
    return np.asarray(jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("name", sorted(DRAWS))
def test_fused_keys_draw_jax_threefry_bits(name, jit):
    f = jax.vmap(DRAWS[name])
    f = jax.jit(f) if jit else f
    ours = f(keys.wrap(RAW))
    theirs = f(jax.random.wrap_key_data(RAW, impl="threefry2x32"))
    np.testing.assert_array_equal(_data(ours), _data(theirs))


def test_hash_matches_jax_threefry_2x32():
    counts = jnp.arange(10, dtype=jnp.uint32)
    key = RAW[0]
    theirs = jax.extend.random.threefry_2x32(key, counts)
    y1, y2 = keys.threefry2x32(key[0], key[1], counts[:5], counts[5:])
    np.testing.assert_array_equal(np.concatenate([y1, y2]), theirs)


def test_too_many_words_in_one_draw_is_a_clear_error():
    with pytest.raises(ValueError, match=r"4,294,967,296 random words.*at most 2\*\*32 - 1"):
        keys._counters((1 << 16, 1 << 16))  # raises before allocating anything


@pytest.mark.parametrize("jit", [False, True])
def test_counter_bits_are_the_reference_hash_of_the_step_counters(jit):
    """Word i of step t: JAX's reference threefry_2x32 on the counter pair (t, start + i),
    its two output words XORed; a typed key and its raw data give the same words."""
    key = RAW[3]
    f = jax.jit(keys.counter_bits, static_argnums=(2, 3)) if jit else keys.counter_bits
    for step, start, count in ((0, 0, 4), (7, 4, 2), (2**31 + 5, 40, 60)):
        counters = np.concatenate([np.full(count, step, np.uint32),
                                   start + np.arange(count, dtype=np.uint32)])  # fmt: skip
        ref = np.asarray(jax.extend.random.threefry_2x32(key, jnp.asarray(counters)))
        ours = f(key, jnp.uint32(step), start, count)
        np.testing.assert_array_equal(ours, ref[:count] ^ ref[count:])
        np.testing.assert_array_equal(f(keys.wrap(key), jnp.uint32(step), start, count), ours)


def test_counter_bits_refuse_counters_outside_32_bits():
    with pytest.raises(ValueError, match=r"low counters \[4294967295, 4294967297\)"):
        keys.counter_bits(RAW[0], 0, 2**32 - 1, 2)
