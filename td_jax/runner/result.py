"""``RunResult``: the metrics of a run, as arrays and as a tidy pandas frame; save and load."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

_UMASK = os.umask(0)  # read once at import (setting it back at once)
os.umask(_UMASK)


def write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Writes ``arrays`` to the ``.npz`` archive ``path`` atomically (a temporary file in the
    same directory, then a rename): an interruption leaves no partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's 0600 -> like any other output file
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_npz(path: str | os.PathLike, kind: str, read: Callable[[Any], Any]) -> Any:
    """``read(data)`` of the ``.npz`` archive ``path``, for ``kind``'s ``load``: ValueError
    naming the file where it is not an archive ``kind.save`` wrote (truncated, another
    format, missing arrays); OSError (e.g. FileNotFoundError) where it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return read(data)
    except OSError:
        raise
    except (ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"{kind}.load: {path!s} is not a file {kind}.save wrote ({type(err).__name__}: {err})"
        ) from err


@dataclasses.dataclass
class RunResult:
    """Metrics of every learner of a run at every checkpoint.

    Arrays are indexed ``[rule, env, step_size, seed, checkpoint]``; ``final_values`` is
    ``{env name: f32[rule, step_size, seed, num_states]}`` since tasks differ in size.

    Attributes:
      rules, envs: names, in the order of the arrays' first two axes.
      step_sizes: f64[A], or f64[E, A] where each env had its own; seeds: i64[N] (seed
        indices of the streams).
      checkpoints: i64[C], the number of updates done at each checkpoint.
      value_error: RMSE over states of ``values()`` against the exact values.
      distribution_error: mean over states of W1(``distribution()``, true distribution)
        (nan at checkpoints the run did not compute it at: by default all but the last).
      diverged: sticky flag: non-finite or beyond the divergence bound.
      distributional: per rule, whether it learns more than the mean.
      true_values: ``{env name: f64[S]}``; truth_error: ``{env name: W1 bound of the truth}``.
      info: compile and run times, mode, devices and the run's configuration.
      final_distributions: ``{"rule/env": (locs, probs)}``, each f32[step_size, seed, S, K],
        the learned return distributions at the end (only with ``keep_distributions``).
      decay: f64[A], each step size's harmonic decay scale (inf: constant).
      metrics: ``{name: f32[rule, env, step_size, seed, checkpoint]}``, the value metrics of
        ``td_jax.runner.metrics.VALUE_METRICS`` (squared errors under each state weighting).
      visits: ``{env name: f64[S]}``, the state weights of the ``sq_error_visit`` metric.
    """

    rules: list[str]
    envs: list[str]
    step_sizes: np.ndarray
    seeds: np.ndarray
    checkpoints: np.ndarray
    value_error: np.ndarray
    distribution_error: np.ndarray
    diverged: np.ndarray
    distributional: list[bool]
    final_values: dict[str, np.ndarray]
    true_values: dict[str, np.ndarray]
    truth_error: dict[str, float]
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    final_distributions: dict[str, tuple[np.ndarray, np.ndarray]] = dataclasses.field(
        default_factory=dict
    )
    decay: np.ndarray | None = None
    metrics: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    visits: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.decay is None:
            self.decay = np.full(np.shape(self.step_sizes), np.inf)

    @property
    def num_learners(self) -> int:
        return int(np.prod(self.value_error.shape[:4]))

    def to_dataframe(self) -> pd.DataFrame:
        """A tidy frame: one row per (rule, env, step_size, decay, seed, step), with a column
        per metric."""
        shape = self.value_error.shape
        index = np.indices(shape).reshape(len(shape), -1)
        rule_i, env_i, alpha_i, seed_i, ckpt_i = index
        columns = {
            "rule": np.asarray(self.rules, dtype=object)[rule_i],
            "env": np.asarray(self.envs, dtype=object)[env_i],
            "step_size": _per_env(self.step_sizes, env_i, alpha_i),
            "decay": _per_env(np.asarray(self.decay), env_i, alpha_i),
            "seed": self.seeds[seed_i],
            "step": self.checkpoints[ckpt_i],
            "value_error": self.value_error.reshape(-1),
            "distribution_error": self.distribution_error.reshape(-1),
            "diverged": self.diverged.reshape(-1),
            "distributional": np.asarray(self.distributional)[rule_i],
        }
        columns.update({name: x.reshape(-1) for name, x in self.metrics.items()})
        return pd.DataFrame(columns)

    def normalised_error(self, weighting: str = "visit") -> np.ndarray:
        """f64[rule, env, step_size, seed, checkpoint]: the squared value error under
        ``weighting``'s state weights ("visit": the stream's visit distribution; "uniform")
        divided by the env's error scale, the return variance under the same weights
        (``info["error_scales"]``, ``runner.metrics.error_scale``): the error every suite
        states its accuracies eps in. inf from the checkpoint a learner diverged on.
        ``info["initial_error"]`` is the all-zero estimate's, in the same units."""
        from td_jax.runner.metrics import WEIGHTINGS

        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {sorted(WEIGHTINGS)}, got {weighting!r}")
        scales = self.info.get("error_scales")
        if not scales:
            raise ValueError("this result has no error scales (saved by an older td_jax); "
                             "rerun it")  # fmt: skip
        per_env = np.asarray([scales[e][weighting] for e in self.envs], np.float64)
        x = np.asarray(self.metrics[WEIGHTINGS[weighting]], np.float64)
        x = x / per_env[None, :, None, None, None]
        return np.where(np.asarray(self.diverged) | ~np.isfinite(x), np.inf, x)

    def save(self, path: str | os.PathLike) -> Path:
        """Writes ``path`` (a ``.npz`` archive) atomically: no partial file on interruption."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {
            "step_sizes": self.step_sizes,
            "seeds": self.seeds,
            "checkpoints": self.checkpoints,
            "value_error": self.value_error,
            "distribution_error": self.distribution_error,
            "diverged": self.diverged,
            "decay": np.asarray(self.decay),
        }
        for name, x in self.metrics.items():
            arrays[f"metric/{name}"] = x
        for name, x in self.visits.items():
            arrays[f"visits/{name}"] = x
        for name in self.envs:
            arrays[f"final_values/{name}"] = self.final_values[name]
            arrays[f"true_values/{name}"] = self.true_values[name]
        for key, (locs, probs) in self.final_distributions.items():
            arrays[f"final_locs/{key}"] = locs
            arrays[f"final_probs/{key}"] = probs
        meta = {
            "rules": self.rules,
            "envs": self.envs,
            "distributional": self.distributional,
            "truth_error": self.truth_error,
            "info": self.info,
        }
        arrays["meta"] = np.frombuffer(json.dumps(meta, default=str).encode(), dtype=np.uint8)
        return write_npz(path, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> RunResult:
        """Reads a result written by ``save``.

        Raises:
          ValueError: ``path`` is not a path, or the file is not a result ``save`` wrote
            (naming the file and what is wrong with it); OSError (e.g. FileNotFoundError)
            where the file cannot be read.
        """
        if not isinstance(path, str | os.PathLike) and not hasattr(path, "read"):
            raise ValueError(f"RunResult.load: path must be a str or os.PathLike, got {path!r}")
        try:
            return cls._read(path)
        except OSError:
            raise
        except (ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(
                f"RunResult.load: {path!s} is not a result written by RunResult.save "
                f"({type(err).__name__}: {err})"
            ) from err

    @classmethod
    def _read(cls, path) -> RunResult:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            envs = meta["envs"]
            return cls(
                rules=meta["rules"],
                envs=envs,
                step_sizes=data["step_sizes"],
                seeds=data["seeds"],
                checkpoints=data["checkpoints"],
                value_error=data["value_error"],
                distribution_error=data["distribution_error"],
                diverged=data["diverged"],
                distributional=meta["distributional"],
                final_values={e: data[f"final_values/{e}"] for e in envs},
                true_values={e: data[f"true_values/{e}"] for e in envs},
                truth_error=meta["truth_error"],
                info=meta["info"],
                final_distributions={
                    name[len("final_locs/") :]: (data[name], data["final_probs/" + name[11:]])
                    for name in data.files
                    if name.startswith("final_locs/")
                },
                decay=data["decay"] if "decay" in data.files else None,
                metrics={
                    n[len("metric/") :]: data[n] for n in data.files if n.startswith("metric/")
                },
                visits={
                    n[len("visits/") :]: data[n] for n in data.files if n.startswith("visits/")
                },
            )


def _per_env(values: np.ndarray, env_i: np.ndarray, alpha_i: np.ndarray) -> np.ndarray:
    """A step-size column: shared (f[A]) or each env's own (f[E, A])."""
    return values[env_i, alpha_i] if values.ndim == 2 else values[alpha_i]
