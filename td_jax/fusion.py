"""A hint to XLA's fusion: compute a value once, in a kernel of its own.

The runner vmaps a rule's update over the step sizes of a stream with the stream's
transition and rule key shared (``in_axes=None``), so whatever the update derives from the
key alone (e.g. the dopamine cells' bootstrap indices) is per stream, not per learner. XLA
fuses such a cheap element-wise producer into each consumer that reads it, which recomputes
it for every learner of the stream: a 20-word threefry hash, 10 step sizes, 10 times over.
``compute_once`` puts the value through an identity XLA does not fuse into its consumers,
so it is materialised once per stream and read by every learner.

Tried and measured on the throughput workload (dopamine cells, 1,000 learners, CPU): an
``optimization_barrier`` left the hash inside the learners' kernel (XLA's CPU pipeline drops
barriers before fusing); so did a ``lax.cond`` and an XOR ``reduce``; a ``dot`` with the
identity materialised it (1.6x) but costs a matmul. A scatter of the value into a buffer of
its own shape at its own (sorted, unique) positions is an exact identity that XLA keeps as a
kernel of its own (1.9x; without the hash at all: 2.1x).
"""

from __future__ import annotations

import jax.numpy as jnp

from td_jax.types import Array


def compute_once(x: Array) -> Array:
    """``x``, materialised: an exact identity that XLA computes once per (unbatched) value.

    Use it on a value derived from inputs that a vmap leaves unbatched (a stream's key or
    transition) and read by every batched learner: numbers or booleans, any shape (not a
    typed PRNG key array itself; its ``jax.random.key_data`` is fine). Values are unchanged
    bit for bit; only where XLA computes them changes, which is XLA's decision and was
    measured on CPU only (td_jax/throughput measures the effect; tests/test_fusion.py checks
    the compiled dopamine update).
    """
    flat = jnp.ravel(x)
    index = jnp.arange(flat.shape[0])
    out = jnp.zeros_like(flat).at[index].set(flat, indices_are_sorted=True, unique_indices=True)
    return out.reshape(jnp.shape(x))
