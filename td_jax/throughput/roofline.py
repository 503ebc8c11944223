"""Roofline fractions: each workload row's rate against what the machine's measured memory
bandwidth and peak arithmetic allow for the work that XLA says one learner-update does.

Per rule, XLA's cost analysis (``compiled.cost_analysis()``: 'bytes accessed', 'flops') of
the program td_jax runs gives the bytes and flops of one update. XLA counts a while loop's
body once, whatever its trip count (``program_cost`` shows it on td_jax's own program: the
same total at 100 and 1,000 steps), so dividing the program's total by steps x learners
would be wrong by the step count. ``iteration_cost`` therefore compiles one iteration of
the program's update loop on its own, the body of ``td_jax.runner.program.make_program``'s
loop (the step size, ``online_apply`` of the carried sample to every step size's learner,
``online_draw`` of the next sample) for a micro-batch of the workload's shape, with its
carry donated so that tables are updated in place as in the loop, and divides by the
micro-batch's learners. The draw is per stream and shared by its step sizes, so its share
per learner is divided by their number too.

roofline rate = min(bandwidth / bytes per update, peak / flops per update), with the
bandwidth of a STREAM triad and the peak of a float32 matmul (``machine.measure_peaks``);
the row's measured rate is given as a fraction of it, on all cores and per core (the rate
over the cores the run kept busy, against one core's bandwidth and peak).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from td_jax.throughput import workload

COST_STREAMS = 128  # streams of the analysed micro-batch (per-learner costs do not depend on it)
CHECK_STEPS = (100, 1_000)


def _cost(compiled: Any) -> dict[str, Any]:
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list | tuple):
        analysis = analysis[0]
    out: dict[str, Any] = {k: float(analysis.get(k, math.nan)) for k in ("bytes accessed", "flops")}
    # The trip counts of the while loops left in the program (None where XLA does not know
    # one): each of their bodies is in the totals once.
    text = compiled.as_text()
    out["loops"] = [
        int(m.group(1)) if m.group(1) else None
        for m in re.finditer(r" while\(.*?(?:known_trip_count\":\{\"n\":\"(\d+)\"|$)", text, re.M)
    ]
    return out


def _per(cost: dict[str, Any], learners: int) -> dict[str, Any]:
    return {
        "bytes": cost["bytes accessed"] / learners,
        "flops": cost["flops"] / learners,
        "loops": cost["loops"],
    }


def _config(rule: Any, num_states: int, steps: int):
    from td_jax.runner.program import ProgramConfig

    # The workload rows' configuration (``worker.time_td_jax``): online, metrics at the last
    # step only, no W1; the other fields at their defaults, as ``td_jax.run`` sets them.
    return ProgramConfig(
        rule=rule,
        num_states=num_states,
        mode="online",
        checkpoints=(steps,),
        schedule=None,
        divergence_bound=1e6,
        distribution_metric=False,
    )


def iteration_cost(name: str, streams: int = COST_STREAMS) -> dict[str, Any]:
    """Bytes and flops per learner of one iteration of the workload's update loop.

    Returns ``{"bytes", "flops"}`` of the whole iteration and of its ``sampling`` part alone
    (the next transition and key of each stream, shared by its step sizes), ``loops``: the
    trip counts of loops inside the update itself (their bodies are counted once, so then
    the figures are lower bounds), and ``state_bytes``: one learner's state.
    """
    import jax
    import jax.numpy as jnp

    from td_jax.runner import keys as key_lib
    from td_jax.runner import program
    from td_jax.runner.resources import compile_lowered

    rule, env = workload.make_rule(name), workload.make_env()
    config = _config(rule, env.num_states, 2)
    step_sizes = jnp.asarray(workload.STEP_SIZES, jnp.float32)
    inv_decay = jnp.zeros_like(step_sizes)
    num_a = step_sizes.shape[0]

    def init(raw):  # make_program's one_stream, up to the loop
        k_init, k_reset, k_run = jax.random.split(key_lib.wrap(raw), 3)
        state = rule.init(k_init, env.num_states)
        states = jax.tree.map(lambda x: jnp.broadcast_to(x, (num_a, *x.shape)), state)
        sample = program.online_draw(config, env, k_run, jnp.int32(0), env.reset(k_reset))
        return (sample, states), jax.random.key_data(k_run)

    def iteration(carry, k_run, step, alphas0, inv, apply=True):  # make_program's body
        (sample, env_state), states = carry
        if apply:
            alphas = alphas0 / (1.0 + alphas0 * step.astype(jnp.float32) * inv)
            k_rule = program.rule_keys(config, env, key_lib.wrap(k_run), step)
            states = program.online_apply(config, sample, states, alphas, k_rule)
        return program.online_draw(config, env, key_lib.wrap(k_run), step + 1, env_state), states

    raw = jax.random.key_data(jax.random.split(jax.random.key(0), streams))
    carry, k_run = jax.jit(jax.vmap(init))(raw)
    out: dict[str, Any] = {}
    for part, apply in (("iteration", True), ("sampling", False)):
        fn = jax.vmap(
            lambda c, k, t, a, i, apply=apply: iteration(c, k, t, a, i, apply),
            in_axes=(0, 0, None, None, None),
        )
        lowered = jax.jit(fn, donate_argnums=0).lower(
            carry, k_run, jnp.int32(3), step_sizes, inv_decay
        )
        out[part] = _per(_cost(compile_lowered(lowered)), streams * num_a)
    state = rule.init(jax.random.key(0), env.num_states)
    return {
        **out["iteration"],
        "sampling": {k: out["sampling"][k] for k in ("bytes", "flops")},
        "streams": streams,
        "state_bytes": sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state)),
    }


def program_cost(name: str, steps: int, streams: int = COST_STREAMS) -> dict[str, float]:
    """XLA's cost of td_jax's whole compiled program for the workload, per learner.

    Built as ``td_jax.run`` builds it (``make_program`` on one task, one micro-batch).
    """
    import jax
    import jax.numpy as jnp
    import numpy as np

    from td_jax.runner.program import Truth, make_program, shared_leaves
    from td_jax.runner.resources import compile_lowered

    rule, env = workload.make_rule(name), workload.make_env()
    num_s, num_a = env.num_states, len(workload.STEP_SIZES)
    envs = jax.tree.map(lambda x: jnp.stack([x]), env)
    values = jnp.asarray(np.asarray(env.true_values())[None], jnp.float32)
    truth = Truth(
        values, jnp.zeros((1, num_s, 1)), jnp.ones((1, num_s, 1)), jnp.full((1, num_s), 1 / num_s)
    )
    keys = jax.random.key_data(jax.random.split(jax.random.key(0), streams))[None]
    args = (
        envs,
        truth,
        jnp.zeros((1, streams), jnp.int32),
        keys,
        jnp.asarray(workload.STEP_SIZES, jnp.float32),
        jnp.zeros((num_a,), jnp.float32),
        jnp.float32(1.0),
    )
    program = make_program(_config(rule, num_s, steps), shared_leaves(envs))
    return _per(_cost(compile_lowered(jax.jit(program).lower(*args))), streams * num_a)


def rule_costs(names: Sequence[str], check: Sequence[str] = ()) -> dict[str, Any]:
    """``iteration_cost`` per rule; for the rules in ``check``, also the whole program's cost
    at ``CHECK_STEPS`` steps (equal totals: the loop body is counted once)."""
    out = {}
    for name in names:
        try:
            row = iteration_cost(name)
            if name in check:
                row["program"] = {str(t): program_cost(name, t) for t in CHECK_STEPS}
        except Exception as err:  # noqa: BLE001 - recorded in the report, the others go on
            row = {"error": f"{type(err).__name__}: {err}"[:300]}
        out[name] = row
    return out


def rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Per workload row: bytes and flops per update, roofline rate and the measured fraction."""
    costs, peaks = result.get("costs", {}), result.get("peaks", {})
    if not costs or "all" not in peaks:
        return []
    out = []
    for row in result.get("rows", []):
        cost, ours = costs.get(row["rule"], {}), row["td_jax"]
        if "bytes" not in cost or "ups" not in ours:
            continue
        entry = {"rule": row["rule"], "learners": row["learners"], **_roofline(cost, peaks)}
        cores = ours.get("cores_busy") or 1.0
        entry["ups"], entry["ups_per_core"] = ours["ups"], ours["ups"] / cores
        entry["fraction"] = ours["ups"] / entry["roofline"]
        if entry.get("roofline_per_core"):
            entry["fraction_per_core"] = entry["ups_per_core"] / entry["roofline_per_core"]
        out.append(entry)
    return out


def _roofline(cost: dict[str, Any], peaks: dict[str, Any]) -> dict[str, Any]:
    def bound(p: dict[str, Any]) -> tuple[float, str]:
        memory = p["triad_gbs"] * 1e9 / cost["bytes"]
        compute = p["peak_gflops"] * 1e9 / cost["flops"]
        return (memory, "memory") if memory <= compute else (compute, "compute")

    rate, kind = bound(peaks["all"])
    out = {"bytes": cost["bytes"], "flops": cost["flops"], "roofline": rate, "bound": kind}
    if "one_core" in peaks:
        out["roofline_per_core"] = bound(peaks["one_core"])[0]
    return out


def _g(x: float | None, spec: str = ".3g") -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:{spec}}"


def markdown(result: dict[str, Any]) -> list[str]:
    """The roofline section of throughput.md (empty when it did not run)."""
    costs, peaks = result.get("costs", {}), result.get("peaks", {})
    if not costs:
        return []
    lines = ["", "## Roofline", ""]
    if "all" in peaks:
        a, one = peaks["all"], peaks.get("one_core", {})
        lines.append(
            f"Measured on this machine: memory bandwidth {a['triad_gbs']:.1f} GB/s on"
            f" {a['threads']} threads ({one.get('triad_gbs', math.nan):.1f} GB/s on one core;"
            f" copy {a['copy_gbs']:.1f} / {one.get('copy_gbs', math.nan):.1f}), peak float32"
            f" {a['peak_gflops']:.0f} GFLOP/s ({one.get('peak_gflops', math.nan):.0f} on one"
            " core)."
        )
    lines += [
        "",
        "Definitions. bytes / update and flops / update: XLA's cost analysis ('bytes"
        " accessed', 'flops') of one iteration of td_jax's compiled update loop for the"
        f" workload (a micro-batch of {COST_STREAMS} streams x 10 step sizes: each stream's"
        " carried sample applied to its learners, and its next sample drawn), divided by the"
        " micro-batch's learners. XLA counts a while loop's body once, whatever its trip"
        " count, so the whole program's total is not steps x the iteration; the check below"
        " shows it (the same program total at 100 and 1,000 steps), and the iteration is"
        " compiled on its own, carry donated so that tables update in place as in the loop."
        " XLA counts every element-wise operation as a flop, integer ones included (the"
        " threefry hash of each stream's sample: 'of which sampling', shared by the stream's"
        " 10 step sizes), and counts each fused kernel's operands and outputs whole: a"
        " gather or an in-place scatter of one row of a learner's table counts the table."
        " Bandwidth: a STREAM triad (a = b + s c, 12 bytes moved per element, no"
        " write-allocate counted) over arrays far larger than the last-level cache, one"
        " thread per core (one core: a process pinned to one core); peak: a float32 matmul"
        " in jax (2 n^3 flops), best of several. roofline ups = min(bandwidth / bytes,"
        " peak / flops); 'bound' says which term is smaller. fraction: the workload row's"
        " measured ups over the roofline; per core: ups over the cores the run kept busy,"
        " against one core's roofline. A micro-batch's tables (a few MB at most) stay in"
        " cache, and XLA's whole-operand counting overstates the traffic of an update that"
        " touches two rows of a table, so a fraction above 1 means the rule runs faster"
        " than DRAM traffic of XLA's byte count would allow.",
        "",
        "| rule | learners | state B | bytes / update | flops / update (of which sampling)"
        " | roofline ups | bound | td_jax ups | fraction | ups per core | roofline per core"
        " | fraction per core |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows(result):
        cost = costs[r["rule"]]
        mark = " (loops)" if cost.get("loops") else ""
        lines.append(
            f"| {workload.LABELS.get(r['rule'], r['rule'])}{mark} | {r['learners']:,}"
            f" | {cost.get('state_bytes', math.nan):.0f} | {r['bytes']:.0f}"
            f" | {r['flops']:.0f} ({cost['sampling']['flops']:.0f}) | {_g(r['roofline'])}"
            f" | {r['bound']} | {_g(r['ups'])} | {_g(r['fraction'], '.2f')}"
            f" | {_g(r['ups_per_core'])} | {_g(r.get('roofline_per_core'))}"
            f" | {_g(r.get('fraction_per_core'), '.2f')} |"
        )
    return lines + _notes(costs) + _hand_count(result)


def _notes(costs: dict[str, Any]) -> list[str]:
    """Below the roofline table: rules with loops of their own, failed analyses, and the
    loop-accounting check."""
    lines: list[str] = []
    looped = [
        f"{workload.LABELS.get(n, n)} (trip counts {', '.join(str(t) for t in c['loops'])})"
        for n, c in costs.items()
        if c.get("loops")
    ]
    if looped:
        lines += [
            "",
            "(loops): the rule's update runs loops of its own, "
            + "; ".join(looped)
            + ". XLA counts each of their bodies once, so that row's bytes and flops are"
            " lower bounds, its roofline an upper bound and its fraction a lower bound.",
        ]
    failed = [f"{n}: {c['error']}" for n, c in costs.items() if "error" in c]
    if failed:
        lines += ["", "Cost analysis failed for " + "; ".join(failed) + "."]
    checks = []
    for name, c in costs.items():
        if "program" in c:
            totals = " / ".join(f"{p['bytes']:.0f}" for p in c["program"].values())
            trips = " / ".join(
                str(max(filter(None, p["loops"]), default=0)) for p in c["program"].values()
            )
            label = workload.LABELS.get(name, name)
            checks.append(
                f"{label} {totals} B (longest loop's known trip count {trips};"
                f" {c['bytes']:.0f} per iteration)"
            )
    if checks:
        steps = " and ".join(f"{t:,}" for t in CHECK_STEPS)
        lines += [
            "",
            f"Loop-accounting check: XLA's bytes per learner of the whole program at {steps}"
            f" steps: {'; '.join(checks)}. Equal totals at both step counts: the loop body"
            " is counted once; the rest of the program's total is its set-up (the first"
            " sample, the tables' initial values) and final metrics, once per run.",
        ]
    return lines


HAND_COUNT_TD = {"bytes": 16.0, "flops": 10.0}


def _hand_count(result: dict[str, Any]) -> list[str]:
    """td's XLA figures beside a hand count, and the roofline the hand count would give."""
    td, peaks = result.get("costs", {}).get("td", {}), result.get("peaks", {})
    if "bytes" not in td or "all" not in peaks:
        return []
    best = max((r["ups"] for r in rows(result) if r["rule"] == "td"), default=None)
    hand = HAND_COUNT_TD["bytes"]
    roof = peaks["all"]["triad_gbs"] * 1e9 / hand
    update_flops = td["flops"] - td["sampling"]["flops"]
    text = (
        "Hand count for td: an update reads V(s) and V(s') and writes V(s) (12 bytes), plus"
        " its share of the stream's transition, about 16 bytes, and about 10 flops (the TD"
        " error, the step, the step size's decay term). XLA's figures:"
        f" {td['bytes']:.0f} bytes, as its fused kernels read or write the learner's whole"
        f" {td['state_bytes']:.0f}-byte table (the TD error's gather reads it, the in-place"
        f" scatter reads and writes it), and {td['flops']:.0f} flops, of which"
        f" {td['sampling']['flops']:.0f} are the stream's threefry sampling (integer"
        f" operations, over 10 step sizes) and {update_flops:.0f} the update itself. At"
        f" {hand:.0f} bytes per update this machine's bandwidth would allow {roof:.3g} ups"
    )
    if "one_core" in peaks:
        text += f" ({peaks['one_core']['triad_gbs'] * 1e9 / hand:.3g} on one core)"
    if best is not None:
        text += f"; td's best rate here, {best:.3g}, is {best / roof:.2f} of that"
    return ["", text + "."]
