"""``td_jax.run``: every rule x task x step size x seed as one batch of learners."""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from td_jax.rules import make as make_rule
from td_jax.runner.inputs import MODES, check_positive_int, check_rule_takes_env, named
from td_jax.runner.metrics import log_checkpoints
from td_jax.runner.program import ProgramConfig, Schedule, Truth, make_program, shared_leaves
from td_jax.runner.resources import (
    bytes_per_learner,
    compile_lowered,
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


def _stream_keys(base_seed: int, env_name: str, seeds: np.ndarray) -> np.ndarray:
    """Raw key data u32[len(seeds), ...] of ``stream_key`` for many seeds at once."""
    base = jax.random.fold_in(jax.random.key(base_seed), zlib.crc32(env_name.encode()) & 0x7FFFFFFF)
    keys = jax.vmap(lambda s: jax.random.fold_in(base, s))(jnp.asarray(seeds, jnp.uint32))
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
    distribution_metric: bool | str = True,
    keep_distributions: bool = False,
    progress: bool | None | Callable[[int, int], None] = None,
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
      step_sizes: positive step sizes (the scale of ``schedule`` when one is given).
      num_seeds: the number of seeds (seed indices 0..n-1), or explicit seed indices.
      num_steps: updates per learner (online: transitions; synchronous: sweeps).
      mode: "online" (one trajectory per stream) or "synchronous" (every state updated
        each step from a generative model, all from the previous estimates).
      checkpoints: update counts at which metrics are taken (default: log-spaced).
      num_checkpoints: how many log-spaced checkpoints when ``checkpoints`` is None.
      schedule: an optax schedule ``count -> multiplier``; the step size at update t is
        ``step_size * schedule(t)`` (e.g. ``optax.polynomial_schedule(1.0, 0.0, 1, T)``).
      seed: the base seed of every stream key.
      chunk_size: streams per dispatched chunk (default: sized from available memory).
        A chunk runs its micro-batches one after another, so it bounds the memory of
        inputs and outputs; results are bit-identical whatever the chunk size.
      micro_batch: streams vectorised together, the compiled unit (default: 2^20 learners
        on accelerators; on CPU about 3 MB of learner state, 1,024 to 65,536 learners;
        divided by the number of step sizes).
      memory_fraction: the share of free memory a chunk may use when sizing chunks.
      divergence_bound: a learner whose |value| exceeds it (or is non-finite) diverged.
      truth_atoms: atoms of the true-distribution table used for the W1 metric.
      distribution_metric: the W1 distribution error at every checkpoint (True or "all"),
        at the last one only ("final": the costly part of a run's metrics), or never.
      keep_distributions: also return every learner's final ``distribution()`` in
        ``RunResult.final_distributions`` (memory: learners x states x atoms).
      progress: show a progress bar (default: when stderr is a terminal), or a callable
        ``progress(done_chunks, total_chunks)`` for a caller's own display.

    Returns:
      A ``RunResult``.

    Raises:
      ValueError: on any bad input, before anything compiles.
    """
    rule_list = named(rules, "rule", make_rule)
    env_list = named(envs, "env")
    for name, rule in rule_list:
        if not isinstance(rule, UpdateRule):
            raise ValueError(f"rule {name!r} must be a td_jax.UpdateRule, got {type(rule)}")
    alphas = np.asarray(step_sizes, dtype=np.float64)
    if alphas.ndim != 1 or alphas.size == 0:
        raise ValueError(f"step_sizes must be a non-empty 1-D sequence, got shape {alphas.shape}")
    bad = alphas[~(np.isfinite(alphas) & (alphas > 0))]
    if bad.size:
        raise ValueError(f"step sizes must be finite and > 0, got {float(bad[0])!r}")
    if isinstance(num_seeds, int | np.integer) and not isinstance(num_seeds, bool):
        seeds = np.arange(check_positive_int("num_seeds", num_seeds))
    else:
        seeds = np.asarray(num_seeds, dtype=np.int64).reshape(-1)
        if seeds.size == 0 or np.any(seeds < 0) or len(set(seeds.tolist())) != seeds.size:
            raise ValueError(f"seeds must be distinct non-negative integers, got {list(seeds)}")
    num_steps = check_positive_int("num_steps", num_steps)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if checkpoints is None:
        ckpts = log_checkpoints(num_steps, num_checkpoints)
    else:
        ckpts = np.asarray(checkpoints, dtype=np.int64).reshape(-1)
        if ckpts.size == 0 or np.any(np.diff(ckpts) <= 0) or ckpts[0] < 1 or ckpts[-1] > num_steps:
            raise ValueError(
                f"checkpoints must increase strictly within [1, num_steps="
                f"{num_steps}], got {list(ckpts)}"
            )
    truth_atoms = check_positive_int("truth_atoms", truth_atoms)
    if chunk_size is not None:
        chunk_size = check_positive_int("chunk_size", chunk_size)
    if micro_batch is not None:
        micro_batch = check_positive_int("micro_batch", micro_batch)
    if distribution_metric not in (True, False, "all", "final"):
        raise ValueError(
            "distribution_metric must be True, False, 'all' or 'final', got "
            f"{distribution_metric!r}"
        )
    if schedule is not None and not callable(schedule):
        raise ValueError(f"schedule must be a callable count -> multiplier, got {schedule!r}")
    for env_name, env in env_list:
        for attr in ("num_states", "step", "reset", "true_values", "true_distribution_table"):
            if not hasattr(env, attr):
                raise ValueError(f"env {env_name!r} has no {attr!r}: not a td_jax MRP")
    # Trace every (rule, env) pair before anything compiles.
    shapes = {
        (r, e): check_rule_takes_env(r, rule, e, env, mode)
        for r, rule in rule_list
        for e, env in env_list
    }

    # Group tasks of one structure into one batched axis.
    groups: dict[Any, list[int]] = {}
    for i, (_, env) in enumerate(env_list):
        leaves, treedef = jax.tree.flatten(env)
        signature = (treedef, tuple((np.shape(x), jnp.asarray(x).dtype) for x in leaves))
        groups.setdefault(signature, []).append(i)

    truths, true_values, truth_error = {}, {}, {}
    for name, env in env_list:
        if distribution_metric:
            table = env.true_distribution_table(truth_atoms)
        else:  # no W1 metric: skip the (possibly costly) distributional truth
            table = (np.zeros((env.num_states, 1)), np.ones((env.num_states, 1)))
        locs, probs = (np.asarray(x, np.float64) for x in table)
        order = np.argsort(locs, axis=1, kind="stable")  # the W1 metric merges sorted truth
        locs, probs = np.take_along_axis(locs, order, 1), np.take_along_axis(probs, order, 1)
        v = np.asarray(env.true_values(), np.float64)
        truths[name] = (v, locs, probs)
        true_values[name] = v
        if not distribution_metric:
            truth_error[name] = float("nan")
        elif hasattr(env, "table_error"):  # W1 of the table actually used, quantisation included
            truth_error[name] = float(env.table_error(truth_atoms))
        else:
            truth_error[name] = float(getattr(env, "truth_error", 0.0))

    num_r, num_e, num_a, num_n = len(rule_list), len(env_list), alphas.size, seeds.size
    num_c = ckpts.size
    value_error = np.full((num_r, num_e, num_a, num_n, num_c), np.nan, np.float32)
    dist_error = np.full_like(value_error, np.nan)
    diverged = np.zeros(value_error.shape, bool)
    final_dists: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    final_values = {
        n: np.zeros((num_r, num_a, num_n, e.num_states), np.float32) for n, e in env_list
    }

    devices = jax.devices()
    sharding = replicated = None
    if len(devices) > 1:
        mesh = Mesh(np.asarray(devices), ("streams",))
        sharding = NamedSharding(mesh, PartitionSpec(None, "streams"))
        replicated = NamedSharding(mesh, PartitionSpec())

    plan = []
    budget = memory_budget(memory_fraction)
    for r, (rule_name, _rule) in enumerate(rule_list):
        for members in groups.values():
            env0 = env_list[members[0]][1]
            state, num_atoms = shapes[(rule_name, env_list[members[0]][0])]
            total = len(members) * num_n
            # The micro-batch is the compiled unit: a function of the configuration only,
            # never of free memory, so results do not depend on the machine's load.
            micro = micro_batch or max(1, target_learners(state) // num_a)
            # Each device vectorises exactly `micro` streams, whatever the device count, so
            # sharded results equal single-device ones bit for bit.
            per_device = -(-total // len(devices))
            micro = min(micro, per_device)
            # Balanced micro-batches: as many as that size needs, each as small as it can
            # be, so that padding the last one wastes little (10,000 streams in micro-
            # batches of at most 6,553: two of 5,000, not two of 6,553).
            micro = -(-per_device // -(-per_device // micro)) * len(devices)
            if chunk_size is None:
                per_learner = bytes_per_learner(
                    state, env0.num_states, num_atoms, truth_atoms, distribution_metric
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
            plan.append((r, members, total, micro, num_micro))

    bar = progress_bar(progress, sum(-(-total // (m * k)) for _, _, total, m, k in plan))
    compile_seconds, run_seconds, run_cpu_seconds = {}, 0.0, 0.0
    try:
        for r, members, total, micro, num_micro in plan:
            size = micro * num_micro
            rule_name, rule = rule_list[r]
            env0 = env_list[members[0]][1]
            config = ProgramConfig(
                rule,
                env0.num_states,
                mode,
                tuple(int(c) for c in ckpts),
                schedule,
                float(divergence_bound),
                distribution_metric,
                keep_distributions,
            )
            envs_stacked = jax.tree.map(
                lambda *xs: jnp.stack(xs), *[env_list[i][1] for i in members]
            )
            truth = Truth(
                *(
                    jnp.asarray(np.stack([truths[env_list[i][0]][k] for i in members]), jnp.float32)
                    for k in range(3)
                )
            )
            keys = np.concatenate([_stream_keys(seed, env_list[i][0], seeds) for i in members])
            env_idx = np.repeat(np.arange(len(members), dtype=np.int32), num_n)
            pair_env = np.asarray(members)[env_idx]
            pair_seed = np.tile(np.arange(num_n), len(members))
            alphas_dev = jnp.asarray(alphas, jnp.float32)
            if replicated is not None:
                envs_stacked, truth, alphas_dev = jax.device_put(
                    (envs_stacked, truth, alphas_dev), replicated
                )
            program = jax.jit(make_program(config, shared_leaves(envs_stacked)))
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
                )
                if compiled is None:
                    t0 = time.perf_counter()
                    compiled = compile_lowered(program.lower(*args))
                    compile_seconds[f"{rule_name}/{env_list[members[0]][0]}"] = (
                        time.perf_counter() - t0
                    )
                t0, cpu0 = time.perf_counter(), time.process_time()
                out = jax.block_until_ready(compiled(*args))
                run_seconds += time.perf_counter() - t0
                run_cpu_seconds += time.process_time() - cpu0
                n_valid = min(size, total - start)
                v_err, d_err, div, final, f_locs, f_probs = (fetch(x)[:n_valid] for x in out)
                rows = slice(start, start + n_valid)
                e_arr, n_arr = pair_env[rows], pair_seed[rows]
                value_error[r, e_arr, :, n_arr] = v_err
                dist_error[r, e_arr, :, n_arr] = d_err
                diverged[r, e_arr, :, n_arr] = div
                for e in np.unique(e_arr):
                    mask = e_arr == e
                    final_values[env_list[e][0]][r, :, n_arr[mask]] = final[mask]
                    if keep_distributions:
                        key = f"{rule_name}/{env_list[e][0]}"
                        if key not in final_dists:
                            shape = (num_a, num_n, *f_locs.shape[2:])
                            final_dists[key] = (
                                np.zeros(shape, np.float32),
                                np.zeros(shape, np.float32),
                            )
                        final_dists[key][0][:, n_arr[mask]] = f_locs[mask].swapaxes(0, 1)
                        final_dists[key][1][:, n_arr[mask]] = f_probs[mask].swapaxes(0, 1)
                if bar is not None:
                    bar.advance(bar.task_ids[0])
    finally:
        if bar is not None:
            bar.stop()

    return RunResult(
        rules=[n for n, _ in rule_list],
        envs=[n for n, _ in env_list],
        step_sizes=alphas,
        seeds=seeds,
        checkpoints=ckpts,
        value_error=value_error,
        distribution_error=dist_error,
        diverged=diverged,
        distributional=[bool(rule.distributional) for _, rule in rule_list],
        final_values=final_values,
        final_distributions=final_dists,
        true_values=true_values,
        truth_error=truth_error,
        info={
            "mode": mode,
            "num_steps": num_steps,
            "seed": seed,
            "compile_seconds": compile_seconds,
            "run_seconds": run_seconds,
            "run_cpu_seconds": run_cpu_seconds,  # CPU time of every thread while running
            "learner_updates": int(num_r * num_e * num_a * num_n * num_steps),
            "devices": [str(d) for d in devices],
            "backend": jax.default_backend(),
        },
    )
