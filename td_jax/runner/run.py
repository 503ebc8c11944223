"""``td_jax.run``: every rule x task x step size x seed as one batch of learners."""

from __future__ import annotations

import functools
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from td_jax import strict
from td_jax.runner import compile_cache, step_units
from td_jax.runner.inputs import Inputs, validate
from td_jax.runner.metrics import VALUE_METRICS, error_scale, visit_weights
from td_jax.runner.program import ProgramConfig, Schedule, Truth, make_program, shared_leaves
from td_jax.runner.resources import (
    bytes_per_learner,
    compile_lowered,
    default_unroll,
    fetch,
    memory_budget,
    progress_bar,
    put,
    target_learners,
)
from td_jax.runner.result import RunResult
from td_jax.types import UpdateRule


def stream_key(base_seed: int, env_name: str, seed: int) -> jax.Array:
    """The key of stream (task, seed): independent of rules, step sizes and chunking."""
    key = jax.random.key(base_seed)
    key = jax.random.fold_in(key, zlib.crc32(env_name.encode()) & 0x7FFFFFFF)
    return jax.random.fold_in(key, seed)


# fold_in of one key with many seeds, compiled once per seed count (an eager ``vmap``
# retraces on every call: in a suite's many small runs that was a tenth of their time).
_fold_seeds = jax.jit(jax.vmap(jax.random.fold_in, in_axes=(None, 0)))


# Seed sets up to this size are memoised (1,024 entries of at most 32 KiB: 32 MiB at most).
MEMO_SEEDS = 4096


def _stream_keys(base_seed: int, env_name: str, seeds: np.ndarray) -> np.ndarray:
    """Raw key data u32[len(seeds), ...] of ``stream_key`` for many seeds at once; a set of
    at most ``MEMO_SEEDS`` seeds is memoised (read-only) per (base seed, task, seeds), as a
    suite asks for the same streams in every round."""
    seeds = np.asarray(seeds)
    if seeds.size <= MEMO_SEEDS:
        return _memo_keys(int(base_seed), env_name, tuple(seeds.tolist()))
    return _fold_keys(int(base_seed), env_name, seeds)


@functools.lru_cache(maxsize=1024)
def _memo_keys(base_seed: int, env_name: str, seeds: tuple[int, ...]) -> np.ndarray:
    out = _fold_keys(base_seed, env_name, np.asarray(seeds))
    out.flags.writeable = False
    return out


def _fold_keys(base_seed: int, env_name: str, seeds: np.ndarray) -> np.ndarray:
    base = jax.random.fold_in(jax.random.key(base_seed), zlib.crc32(env_name.encode()) & 0x7FFFFFFF)
    keys = _fold_seeds(base, jnp.asarray(np.asarray(seeds, np.int64).astype(np.uint32)))
    return np.asarray(jax.random.key_data(keys))


def run(
    rules: Any,
    envs: Any,
    step_sizes: Sequence[float] | np.ndarray,
    num_seeds: int | Sequence[int],
    num_steps: int,
    *,
    mode: str = "online",
    checkpoints: Sequence[int] | None = None,
    num_checkpoints: int = 20,
    schedule: Schedule | None = None,
    seed: int = 0,
    chunk_size: int | None = None,
    micro_batch: int | None = None,
    memory_fraction: float = 0.25,
    divergence_bound: float = 1e6,
    truth_atoms: int = 256,
    distribution_metric: bool | str = "final",
    keep_distributions: bool = False,
    progress: bool | None | Callable[[int, int], None] = None,
    decay: Sequence[float] | np.ndarray | None = None,
    unroll: int | None = None,
    streams: np.ndarray | None = None,
    step_unit: str = "given",
    compile_streams: int | None = None,
) -> RunResult:
    """Runs every rule x env x step size x seed as one batch of learners per rule structure.

    Tasks with the same structure (pytree and shapes) form one batched axis, so a rule
    compiles once per structure; step sizes and seeds are batched axes too. Each (task,
    seed) stream draws its transitions once and shares them across step sizes; rules see
    the same stream (common random numbers). Metrics are reduced at checkpoints inside
    the compiled loop.

    Args:
      rules: ``{name: UpdateRule}``, or a list of registered names, ``UpdateRule``s or
        ``(name, UpdateRule)`` pairs.
      envs: ``{name: MRP}`` or a list of MRPs (named by their ``name``) or pairs.
      step_sizes: positive step sizes (the scale of ``schedule`` when one is given); or a
        2-D array, one row of A per env (in ``envs``' order): each task its own sweep in
        one program (the engine's per-task tuning). ``decay`` then has the same shape.
      num_seeds: the number of seeds (seed indices 0..n-1), or explicit seed indices
        (distinct integers in [0, 2**32)).
      num_steps: updates per learner (online: transitions; synchronous: sweeps), at most
        2**31 - 1.
      mode: "online" (one trajectory per stream) or "synchronous" (every state updated
        each step from a generative model, all from the previous estimates).
      checkpoints: update counts at which metrics are taken (default: log-spaced).
      num_checkpoints: how many log-spaced checkpoints when ``checkpoints`` is None.
      schedule: an optax schedule ``count -> multiplier``; the step size at update t is
        ``step_size * schedule(t)`` (e.g. ``optax.polynomial_schedule(1.0, 0.0, 1, T)``).
      seed: the base seed of every stream key, an integer in [0, 2**32).
      chunk_size: streams per dispatched chunk (default: sized from available memory).
        A chunk runs its micro-batches one after another, so it bounds the memory of
        inputs and outputs; results are bit-identical whatever the chunk size.
      micro_batch: streams vectorised together, the compiled unit (default: 2^20 learners
        on accelerators; on CPU about 3 MB of learner state, 1,024 to 65,536 learners;
        divided by the number of step sizes).
      memory_fraction: the share of free memory a chunk may use when sizing chunks, in
        (0, 1].
      divergence_bound: a learner whose |value| exceeds it (or is non-finite) diverged.
      truth_atoms: atoms of the true-distribution table used for the W1 metric.
      distribution_metric: the W1 distribution error at the last checkpoint only ("final",
        the default: it is the costly part of a run's metrics), at every checkpoint (True
        or "all"), or never (False). Other checkpoints' ``distribution_error`` is nan.
      keep_distributions: also return every learner's final ``distribution()`` in
        ``RunResult.final_distributions`` (memory: learners x states x atoms).
      progress: show a progress bar (default: when stderr is a terminal), or a callable
        ``progress(done_chunks, total_chunks)`` for a caller's own display.
      decay: per step size, the scale d of a harmonic decay: learner a uses
        ``alpha_a / (1 + alpha_a * t / d_a)`` at update t (``inf``: constant). Traced like
        the step sizes, so a sweep over (step size, decay) pairs is one program. Pairs
        must be distinct.
      unroll: updates per iteration of the compiled loop (default: 1 on CPU, 8 on GPU and
        TPU, where each iteration is a kernel launch). Results do not depend on it.
      step_unit: "given" (every rule at ``step_sizes`` as given) or "auto": a rule whose
        step is in return units (``RuleFacts.step_unit``, e.g. QTD) runs at the steps times
        each task's RMS return, as the suites scale it; ``info["step_units"]`` reports
        each rule's unit per env (``runner.step_units``).
      streams: bool[E, N], which (env, seed) streams to run (default: every env on every
        seed). The others are not computed: their errors are nan. A stream's draws depend
        only on (``seed``, env name, seed index), so a stream run here equals the same
        stream in a full run up to float rounding. Pools task instances over seeds (each
        seed on one instance) without running the whole product.
      compile_streams: size the compiled program for this many (task, seed) streams,
        whatever this run's count, and run each chunk as one micro-batch of it. Runs
        given the same value (a suite's tuning rounds and its evaluation on more seeds)
        then reuse one program instead of compiling one per stream count (a run on more
        streams makes more calls). Deterministic for a given value; across values, equal
        up to float rounding (the micro-batch shape can change XLA's vectorisation: bit
        for bit for every tabular rule on the quick and default suites' tasks, not for the
        parametric CTD rules at every size). ``chunk_size`` then plays no part: a chunk is
        one micro-batch. Default: sized for this run.

    Returns:
      A ``RunResult``.

    Raises:
      ValueError: on any bad input, before anything compiles.
    """
    if step_unit != "given":  # each rule's steps in its own unit: one run per unit, joined
        args = {k: v for k, v in locals().items() if k != "step_unit"}
        strict.check_known_name("step unit", step_unit, step_units.STEP_UNITS)
        return step_units.run_in_units(run, args)
    compile_cache.enable_persistent_cache()
    inputs = validate(
        rules, envs, step_sizes, num_seeds, num_steps, mode, checkpoints, num_checkpoints,
        schedule, chunk_size, micro_batch, divergence_bound, truth_atoms, distribution_metric,
        decay, streams, seed=seed, memory_fraction=memory_fraction,
        keep_distributions=keep_distributions, progress=progress, unroll=unroll,
        compile_streams=compile_streams,
    )  # fmt: skip
    unroll = default_unroll() if unroll is None else int(unroll)
    truths = _truths(inputs, truth_atoms, distribution_metric)
    plan = _plan(inputs, memory_fraction, chunk_size, micro_batch, truth_atoms,
                 distribution_metric, compile_streams)  # fmt: skip
    out = _Arrays.empty(inputs)
    timings = _execute(inputs, truths, plan, out, seed, divergence_bound, schedule,
                       distribution_metric, keep_distributions, progress, int(unroll))  # fmt: skip
    return _assemble(inputs, truths, out, timings, seed, mode, num_steps)


def _error_scales(env: Any, values: np.ndarray, visits: np.ndarray) -> tuple[dict, dict]:
    """Per weighting (``metrics.WEIGHTINGS``): the error scale, and the normalised error of
    the all-zero estimate (the mean square value over the scale)."""
    # A task that does not give its returns' variances is scaled by its mean square value.
    variances = env.return_variances() if hasattr(env, "return_variances") else None
    weights = {"visit": visits, "uniform": np.full(values.size, 1.0 / values.size)}
    scales = {w: error_scale(values, variances, x)[0] for w, x in weights.items()}
    initial = {w: float(np.sum(x * np.square(values))) / scales[w] for w, x in weights.items()}
    return scales, initial


class TaskTruth(NamedTuple):
    """One env's exact ground truth, as the metrics read it (float64, host side)."""

    values: np.ndarray  # f64[S]
    locs: np.ndarray  # f64[S, N] the truth table's atoms, sorted per state
    probs: np.ndarray  # f64[S, N] their probabilities
    visits: np.ndarray  # f64[S] the stream's state weights (metrics.visit_weights)
    error: float  # the table's own W1 error (nan: no distribution metric)
    scales: dict[str, float]  # per weighting, the error scale (metrics.error_scale)
    initial: dict[str, float]  # per weighting, the all-zero estimate's normalised error


def _truths(inputs: Inputs, truth_atoms: int, distribution_metric) -> dict[str, TaskTruth]:
    """Per env its ``TaskTruth``."""
    out = {}
    for name, env in inputs.env_list:
        if distribution_metric:
            table = env.true_distribution_table(truth_atoms)
        else:  # no W1 metric: skip the (possibly costly) distributional truth
            table = (np.zeros((env.num_states, 1)), np.ones((env.num_states, 1)))
        locs, probs = (np.asarray(x, np.float64) for x in table)
        order = np.argsort(locs, axis=1, kind="stable")  # the W1 metric merges sorted truth
        locs, probs = np.take_along_axis(locs, order, 1), np.take_along_axis(probs, order, 1)
        v = np.asarray(env.true_values(), np.float64)
        if not distribution_metric:
            error = float("nan")
        elif hasattr(env, "table_error"):  # W1 of the table actually used, quantisation included
            error = float(env.table_error(truth_atoms))
        else:
            error = float(getattr(env, "truth_error", 0.0))
        visits = visit_weights(env, inputs.mode)
        scales, initial = _error_scales(env, v, visits)
        out[name] = TaskTruth(v, locs, probs, visits, error, scales, initial)
    return out


class Plan(NamedTuple):
    """One program of a run: which rule on which tasks, and how its streams are batched."""

    rule: int  # index into the run's rules
    members: list  # indices of the tasks (of one structure) it runs
    streams: int  # (task, seed) streams it runs
    micro: int  # streams vectorised together: the compiled unit
    num_micro: int  # micro-batches per dispatched chunk


def _plan(inputs: Inputs, memory_fraction, chunk_size, micro_batch, truth_atoms,
          dist_metric, compile_streams=None) -> list[Plan]:  # fmt: skip
    """Per program: its ``Plan`` (``compile_streams``: see ``run``)."""
    devices = jax.devices()
    num_a = inputs.alphas.shape[-1]
    plan = []
    budget = memory_budget(memory_fraction)
    for r, (rule_name, _rule) in enumerate(inputs.rule_list):
        for members in inputs.groups:
            env0 = inputs.env_list[members[0]][1]
            state, num_atoms = inputs.shapes[(rule_name, inputs.env_list[members[0]][0])]
            total = int(inputs.streams[members].sum())
            if total == 0:  # no stream of this structure is run
                continue
            # The micro-batch is the compiled unit: a function of the configuration only,
            # never of free memory, so results do not depend on the machine's load.
            micro = micro_batch or max(1, target_learners(state) // num_a)
            # Each device vectorises exactly `micro` streams, whatever the device count, so
            # sharded results equal single-device ones bit for bit. A program sized for
            # `compile_streams` streams is the one every run given that count compiles.
            basis = total if compile_streams is None else min(total, compile_streams)
            per_device = -(-basis // len(devices))
            micro = min(micro, per_device)
            # Balanced micro-batches: as many as that size needs, each as small as it can
            # be, so that padding the last one wastes little (10,000 streams in micro-
            # batches of at most 6,553: two of 5,000, not two of 6,553).
            micro = -(-per_device // -(-per_device // micro)) * len(devices)
            if compile_streams is not None:  # one micro-batch per call: one program shape
                plan.append(Plan(r, members, total, micro, 1))
                continue
            if chunk_size is None:
                per_learner = bytes_per_learner(
                    state, env0.num_states, num_atoms, truth_atoms, dist_metric
                )
                size = max(1, budget // max(per_learner * num_a, 1))
            else:
                size = chunk_size
            # Balanced chunks too: the last chunk is padded to the chunk's shape, so split
            # the micro-batches evenly (10,000 streams at most 30 x 244 per chunk: two
            # chunks of 21 x 244, not two of 30 x 244, a third of them padding).
            total_micro = -(-total // micro)
            per_chunk = max(1, min(size, total) // micro)
            num_micro = -(-total_micro // -(-total_micro // per_chunk))
            plan.append(Plan(r, members, total, micro, num_micro))
    return plan


class _Arrays(NamedTuple):
    """The host-side outputs, filled chunk by chunk."""

    value_error: np.ndarray  # f32[R, E, A, N, C]
    dist_error: np.ndarray
    diverged: np.ndarray
    value_metrics: np.ndarray  # f32[R, E, A, N, C, M]
    final_values: dict[str, np.ndarray]
    final_dists: dict[str, tuple[np.ndarray, np.ndarray]]

    @classmethod
    def empty(cls, inputs: Inputs) -> _Arrays:
        shape = (
            len(inputs.rule_list), len(inputs.env_list), inputs.alphas.shape[-1],
            inputs.seeds.size, inputs.checkpoints.size,
        )  # fmt: skip
        value_error = np.full(shape, np.nan, np.float32)
        finals = {
            n: np.zeros((shape[0], shape[2], shape[3], e.num_states), np.float32)
            for n, e in inputs.env_list
        }
        return cls(
            value_error, np.full_like(value_error, np.nan), np.zeros(shape, bool),
            np.full((*shape, len(VALUE_METRICS)), np.nan, np.float32), finals, {},
        )  # fmt: skip


def _execute(inputs, truths, plan, out: _Arrays, seed, divergence_bound, schedule,
             distribution_metric, keep_distributions, progress,
             unroll) -> dict[str, Any]:  # fmt: skip
    """Compiles each program once and runs its chunks; fills ``out``; returns timings."""
    devices = jax.devices()
    sharding = replicated = None
    if len(devices) > 1:
        mesh = Mesh(np.asarray(devices), ("streams",))
        sharding = NamedSharding(mesh, PartitionSpec(None, "streams"))
        replicated = NamedSharding(mesh, PartitionSpec())
    num_a, num_n = inputs.alphas.shape[-1], inputs.seeds.size
    env_list = inputs.env_list
    bar = progress_bar(progress, sum(-(-p.streams // (p.micro * p.num_micro)) for p in plan))
    compile_seconds, run_seconds, run_cpu_seconds, reused = {}, 0.0, 0.0, []
    try:
        for r, members, total, micro, num_micro in plan:
            size = micro * num_micro
            rule_name, rule = inputs.rule_list[r]
            base, factor = _program_rule(rule)
            env0 = env_list[members[0]][1]
            config = ProgramConfig(
                base,
                env0.num_states,
                inputs.mode,
                tuple(int(c) for c in inputs.checkpoints),
                schedule,
                float(divergence_bound),
                distribution_metric,
                keep_distributions,
                tuple(VALUE_METRICS),
                unroll,
            )
            g = _group(inputs, truths, members, seed, replicated)
            envs_stacked, truth, alphas_dev, inv_decay = g.envs, g.truth, g.alphas, g.inv_decay
            env_idx, keys, pair_env, pair_seed = g.env_idx, g.keys, g.pair_env, g.pair_seed
            shared = shared_leaves(envs_stacked)
            factor = jnp.float32(factor)
            factor = factor if replicated is None else jax.device_put(factor, replicated)
            compiled = None
            for start in range(0, total, size):
                sel = np.minimum(np.arange(start, start + size), total - 1)  # pad by repeating
                sel = sel.reshape(num_micro, micro)
                args = (
                    envs_stacked,
                    truth,
                    put(env_idx[sel], sharding),
                    put(keys[sel], sharding),
                    alphas_dev,
                    inv_decay,
                    factor,
                )
                if compiled is None:
                    t0 = time.perf_counter()
                    compiled, hit = _compiled_program(config, shared, args)
                    name = f"{rule_name}/{env_list[members[0]][0]}"
                    if hit:
                        reused.append(name)
                    else:
                        compile_seconds[name] = time.perf_counter() - t0
                t0, cpu0 = time.perf_counter(), time.process_time()
                result = jax.block_until_ready(compiled(*args))
                run_seconds += time.perf_counter() - t0
                run_cpu_seconds += time.process_time() - cpu0
                n_valid = min(size, total - start)
                rows = slice(start, start + n_valid)
                _store(out, r, pair_env[rows], pair_seed[rows], result, n_valid, rule_name,
                       env_list, num_a, num_n, keep_distributions)  # fmt: skip
                if bar is not None:
                    bar.advance(bar.task_ids[0])
    finally:
        if bar is not None:
            bar.stop()
    return {
        "compile_seconds": compile_seconds,  # programs compiled by this call
        "programs_reused": reused,  # programs taken from the in-process cache
        "run_seconds": run_seconds,
        "run_cpu_seconds": run_cpu_seconds,  # CPU time of every thread while running
    }


class _Group(NamedTuple):
    """One program's inputs: the members' envs stacked, their truth, step sizes and inverse
    decays (replicated over devices), and per stream its member's position, its key, its
    env index and its seed index."""

    envs: Any
    truth: Truth
    alphas: Any
    inv_decay: Any
    env_idx: np.ndarray
    keys: np.ndarray
    pair_env: np.ndarray
    pair_seed: np.ndarray


def _stacked(*leaves: Any) -> jax.Array:
    """One leaf of the group's stacked tasks: stacked on the host and sent once (an eager
    ``jnp.stack`` per leaf dispatched one program per leaf, a run's tasks every run). A
    Python scalar or weakly typed leaf keeps ``jnp.stack``, whose result is weakly typed, so
    that the program traced (and its numbers) are the same."""
    arrays = all(isinstance(x, np.ndarray | jax.Array) for x in leaves)
    if not arrays or any(getattr(x, "weak_type", False) for x in leaves):
        return jnp.stack(leaves)
    return jnp.asarray(np.stack([np.asarray(x) for x in leaves]))


def _group(inputs, truths, members, seed, replicated) -> _Group:
    env_list = inputs.env_list
    envs_stacked = jax.tree.map(_stacked, *[env_list[i][1] for i in members])
    truth = Truth(
        *(
            jnp.asarray(np.stack([getattr(truths[env_list[i][0]], f) for i in members]),
                        jnp.float32)
            for f in Truth._fields
        )
    )  # fmt: skip
    # The streams run, env by env: (member position, seed index) of each.
    local, seed_idx = np.nonzero(inputs.streams[members])
    keys = np.concatenate(
        [
            _stream_keys(seed, env_list[i][0], inputs.seeds[seed_idx[local == j]])
            for j, i in enumerate(members)
            if (local == j).any()
        ]
    )
    env_idx = local.astype(np.int32)
    per_env = inputs.alphas.ndim == 2  # rows: this group's members, in stream order
    rows = np.asarray(members) if per_env else slice(None)
    device = (envs_stacked, truth, jnp.asarray(inputs.alphas[rows], jnp.float32),
              jnp.asarray(1.0 / inputs.decay[rows], jnp.float32))  # fmt: skip
    if replicated is not None:
        device = jax.device_put(device, replicated)
    return _Group(*device, env_idx, keys, np.asarray(members)[env_idx], seed_idx)


def _program_rule(rule: UpdateRule) -> tuple[UpdateRule, float]:
    """The rule whose program runs ``rule``, and the factor on its steps: a rescaled rule's
    base (``UpdateRule.rescale_of``) while its update is the one ``rescaled`` built."""
    scaling = rule.rescale_of
    if scaling is not None and rule.update is scaling.update:
        return scaling.base, float(scaling.factor)
    return rule, 1.0


def _compiled_program(config: ProgramConfig, shared: tuple, args: tuple) -> tuple[Any, bool]:
    """The compiled program for these arguments: from the in-process cache where an
    identical one was compiled before (``compile_cache``), else traced and compiled now."""

    def build():
        return compile_lowered(jax.jit(make_program(config, shared)).lower(*args))

    key = compile_cache.program_key(config, shared, args)
    try:
        hash(key)
    except TypeError:  # an unhashable static part (e.g. a schedule object): no reuse
        return build(), False
    return compile_cache.get_compiled(key, build)


def _store(out: _Arrays, r, e_arr, n_arr, result, n_valid, rule_name, env_list, num_a, num_n,
           keep_distributions) -> None:  # fmt: skip
    """Copies one chunk's outputs into the host arrays."""
    v_err, d_err, div, final, f_locs, f_probs, extra = (fetch(x)[:n_valid] for x in result)
    out.value_error[r, e_arr, :, n_arr] = v_err
    out.dist_error[r, e_arr, :, n_arr] = d_err
    out.diverged[r, e_arr, :, n_arr] = div
    out.value_metrics[r, e_arr, :, n_arr] = extra
    for e in np.unique(e_arr):
        mask = e_arr == e
        out.final_values[env_list[e][0]][r, :, n_arr[mask]] = final[mask]
        if keep_distributions:
            key = f"{rule_name}/{env_list[e][0]}"
            if key not in out.final_dists:
                shape = (num_a, num_n, *f_locs.shape[2:])
                out.final_dists[key] = (np.zeros(shape, np.float32), np.zeros(shape, np.float32))
            out.final_dists[key][0][:, n_arr[mask]] = f_locs[mask].swapaxes(0, 1)
            out.final_dists[key][1][:, n_arr[mask]] = f_probs[mask].swapaxes(0, 1)


def _assemble(inputs: Inputs, truths, out: _Arrays, timings, seed, mode, num_steps) -> RunResult:
    num_r = len(inputs.rule_list)
    return RunResult(
        rules=[n for n, _ in inputs.rule_list],
        envs=[n for n, _ in inputs.env_list],
        step_sizes=inputs.alphas,
        seeds=inputs.seeds,
        checkpoints=inputs.checkpoints,
        value_error=out.value_error,
        distribution_error=out.dist_error,
        diverged=out.diverged,
        distributional=[bool(rule.distributional) for _, rule in inputs.rule_list],
        final_values=out.final_values,
        final_distributions=out.final_dists,
        true_values={n: t.values for n, t in truths.items()},
        truth_error={n: t.error for n, t in truths.items()},
        decay=inputs.decay,
        metrics={m: out.value_metrics[..., i] for i, m in enumerate(VALUE_METRICS)},
        visits={n: t.visits for n, t in truths.items()},
        info={
            "mode": mode,
            "num_steps": num_steps,
            "seed": seed,
            **timings,
            "learner_updates": int(
                num_r * inputs.alphas.shape[-1] * int(inputs.streams.sum()) * num_steps
            ),
            "devices": [str(d) for d in jax.devices()],
            "backend": jax.default_backend(),
            "error_scales": {n: t.scales for n, t in truths.items()},
            "initial_error": {n: t.initial for n, t in truths.items()},
        },
    )
