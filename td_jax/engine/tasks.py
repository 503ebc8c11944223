"""What the protocol needs of a task: its env(s), state weights, error scales and e0.

A task is one environment (``TaskInfo``) or, where its ``TaskSpec`` names
``instances``, a family of random instances pooled over seeds (``PooledTask``): stream
seed s runs on instance ``s mod K``, so that every tuning and evaluation seed set spreads
evenly over the instances (seed sets of consecutive integers, a multiple of K long) and a
call is about the family, not one draw of it, at the cost of one instance (Garnet
MRPs: Archibald et al. 1995; the instance-to-instance spread is the point of issue 22's
"tasks that generalise").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from td_jax import envs as env_lib
from td_jax.engine.specs import Suite, TaskSpec
from td_jax.engine.store import BenchError
from td_jax.runner import RunResult
from td_jax.runner.metrics import WEIGHTINGS, error_scale, return_spread


def _noise_std(env: Any, weights: np.ndarray) -> float:
    """The RMS (under ``weights``) of each state's one-step reward noise std; a Gaussian-
    equivalent spread (IQR / 1.349) where a reward has no finite variance."""
    laws = env.reward_laws()
    var = np.array([law.variance for law in laws], np.float64)
    if not np.all(np.isfinite(var)):
        q = np.array([[law.quantile(0.25), law.quantile(0.75)] for law in laws], np.float64)
        var = np.square((q[:, 1] - q[:, 0]) / 1.349)
    probs = np.asarray(env.outcome_probs, np.float64)
    per_state = (probs * var[np.asarray(env.reward_index, np.int64)]).sum(axis=1)
    return float(np.sqrt(np.sum(weights * per_state)))


class TaskInfo:
    """One environment: its truth, state weights and error scales."""

    def __init__(self, spec: TaskSpec, env: Any, mode: str, horizon: int):
        self.spec, self.env, self.horizon = spec, env, horizon
        self.members: list[TaskInfo] = [self]  # the envs a run holds for this task
        self.values = np.asarray(env.true_values(), np.float64)
        self.variances = np.asarray(env.return_variances(), np.float64)
        uniform = np.full(env.num_states, 1.0 / env.num_states)
        visits = env.visit_distribution() if mode == "online" else uniform
        self.weights = {"visit": visits, "uniform": uniform}
        self.scales, self.scale_kind, self.msq = {}, {}, {}
        for name, w in self.weights.items():
            self.msq[name] = float(np.sum(w * np.square(self.values)))
            self.scales[name], self.scale_kind[name] = error_scale(self.values, self.variances, w)
        self.min_visits = float(horizon * visits.min()) if mode == "online" else float(horizon)
        self.spread = return_spread(env, self.variances)
        # The error of the all-zero initial estimate: an eps at or above it is reached by not
        # learning at all (N = 1 for any small enough step), so such cells are not tuned.
        self.initial_error = {w: self.msq[w] / self.scales[w] for w in self.weights}
        # The reward-scale axis as a noise-to-signal ratio: the reward noise's std over the
        # value scale (the RMS true value under the visit weights).
        rms_value = float(np.sqrt(self.msq["visit"]))
        noise = _noise_std(env, visits)
        self.noise_to_signal = noise / rms_value if rms_value > 1e-12 else float("inf")

    def instance_of(self, seeds: np.ndarray) -> np.ndarray:
        """i64[N]: the member each seed runs on (one env: all 0)."""
        return np.zeros(np.asarray(seeds).size, np.int64)

    def manifest(self) -> dict[str, Any]:
        v = self.weights["visit"]
        return {
            "horizon": self.horizon,
            "return_std": float(np.sqrt(np.sum(v * self.variances))),
            "rms_value": float(np.sqrt(np.sum(v * np.square(self.values)))),
            "noise_to_signal": self.noise_to_signal,
            "min_expected_visits": self.min_visits,
            "scale": self.scales,
            "scale_kind": self.scale_kind,
            "initial_error": self.initial_error,
        }


class PooledTask(TaskInfo):
    """K instances of a random environment pooled over seeds: seed s runs on instance
    ``s mod K`` (each normalised by its own scale), so the task's curve is the mean over
    instances (equal weights for seed sets spread evenly). Its e0 and floors are the
    instances' means; its step unit is read from all instances' states together."""

    def __init__(self, spec: TaskSpec, mode: str, horizon: int):
        key = spec.instance_param
        self.members = [
            TaskInfo(
                TaskSpec(f"{spec.label}#{key}{g}", spec.env, {**spec.env_params, key: g}),
                env_lib.make(spec.env, **{**spec.env_params, key: g}), mode, horizon,
            )
            for g in spec.instances
        ]  # fmt: skip
        first = self.members[0]
        self.spec, self.env, self.horizon = spec, first.env, horizon
        k = len(self.members)
        self.values = np.concatenate([m.values for m in self.members])
        self.variances = np.concatenate([m.variances for m in self.members])
        self.spread = np.concatenate([m.spread for m in self.members])
        self.weights = {
            w: np.concatenate([m.weights[w] for m in self.members]) / k for w in first.weights
        }
        self.scales = {w: float(np.mean([m.scales[w] for m in self.members])) for w in first.scales}
        self.scale_kind = {w: f"each instance's {first.scale_kind[w]}" for w in first.scale_kind}
        self.msq = {w: float(np.mean([m.msq[w] for m in self.members])) for w in first.msq}
        self.min_visits = min(m.min_visits for m in self.members)
        self.initial_error = {
            w: float(np.mean([m.initial_error[w] for m in self.members])) for w in first.weights
        }
        self.noise_to_signal = float(np.mean([m.noise_to_signal for m in self.members]))

    def instance_of(self, seeds: np.ndarray) -> np.ndarray:
        return np.asarray(seeds, np.int64) % len(self.members)

    def manifest(self) -> dict[str, Any]:
        return {
            "horizon": self.horizon,
            "instances": {self.spec.instance_param: list(self.spec.instances),
                          "seed_to_instance": "instance[seed mod K]"},
            "noise_to_signal": self.noise_to_signal,
            "min_expected_visits": self.min_visits,
            "initial_error": self.initial_error,
            "members": {m.spec.label: m.manifest() for m in self.members},
        }  # fmt: skip


def task_info(spec: TaskSpec, mode: str, horizon: int) -> TaskInfo:
    if spec.instances:
        return PooledTask(spec, mode, horizon)
    return TaskInfo(spec, env_lib.make(spec.env, **spec.env_params), mode, horizon)


def prepare_tasks(suite: Suite) -> dict[str, TaskInfo]:
    """Every task's env(s) and truth; refuses a task whose horizon leaves a state (of any
    instance) fewer than ``suite.min_visits`` expected visits."""
    infos = {}
    for t in suite.tasks:
        info = task_info(t, suite.mode, suite.horizon(t.env))
        for m in info.members:
            if m.min_visits < suite.min_visits:
                raise BenchError(
                    f"suite {suite.name}: task {m.spec.label} gives a state {m.min_visits:.0f} "
                    f"expected visits in {m.horizon:,} updates; at least {suite.min_visits} "
                    f"are needed: raise horizons[{t.env!r}] to "
                    f"{int(np.ceil(suite.min_visits / m.weights['visit'].min())):,} or more"
                )
        infos[t.label] = info
    return infos


def stream_mask(tasks: list[TaskInfo], seeds) -> np.ndarray | None:
    """bool[E, N] over the tasks' members in run order: each seed on its instance only
    (``td_jax.run``'s ``streams``); None where every task is one env (the full product)."""
    if all(len(t.members) == 1 for t in tasks):
        return None
    seeds = np.asarray(list(seeds), np.int64)
    rows = [t.instance_of(seeds) == k for t in tasks for k in range(len(t.members))]
    return np.stack(rows)


def normalised(result: RunResult, tasks: list[TaskInfo]) -> dict[str, np.ndarray]:
    """Per task, f64[A, N, C, W]: the normalised squared errors (inf once diverged); a
    pooled task's seed n read from its instance, normalised by that instance's scale."""
    out = {}
    seeds = np.asarray(result.seeds)
    for t in tasks:
        per_member = []
        for m in t.members:
            e = result.envs.index(m.spec.label)
            per_w = []
            for w in WEIGHTINGS:
                x = result.metrics[WEIGHTINGS[w]][0, e].astype(np.float64) / m.scales[w]
                x = np.where(result.diverged[0, e] | ~np.isfinite(x), np.inf, x)
                per_w.append(x)
            per_member.append(np.stack(per_w, axis=-1))
        if len(per_member) == 1:
            out[t.spec.label] = per_member[0]
        else:
            which = t.instance_of(seeds)
            stacked = np.stack(per_member)  # [K, A, N, C, W]
            out[t.spec.label] = stacked[which, :, np.arange(seeds.size)].transpose(1, 0, 2, 3)
    return out
