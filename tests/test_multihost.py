"""Multi-host for real: two processes joined by ``jax.distributed`` (CPU collectives over
127.0.0.1) run README's example, and the result equals the one-process run bit for bit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

import td_jax

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "run_multi_host.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_bit_for_bit(tmp_path):
    out = tmp_path / "multi_host.npz"
    address = f"127.0.0.1:{_free_port()}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TD_JAX_CACHE_DIR": ""}
    env.pop("XLA_FLAGS", None)  # one CPU device per process
    procs = [
        subprocess.Popen(
            [sys.executable, str(SCRIPT), str(i), "2", address, str(out)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for i in range(2)
    ]
    logs = [p.communicate(timeout=240)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), logs
    multi = td_jax.RunResult.load(out)
    assert len(multi.info["devices"]) == 2  # the learner axis spanned both processes
    mrp = td_jax.envs.make("random_mrp", num_states=5, reward="student_t")
    single = td_jax.run(["td", "qtd"], {"mrp": mrp}, [0.03, 0.1], num_seeds=6, num_steps=200,
                        progress=False)  # fmt: skip
    for field in ("value_error", "distribution_error", "diverged"):
        np.testing.assert_array_equal(getattr(multi, field), getattr(single, field))
    np.testing.assert_array_equal(multi.final_values["mrp"], single.final_values["mrp"])
    for name, values in single.metrics.items():
        np.testing.assert_array_equal(multi.metrics[name], values)


def test_readme_shows_the_script_the_test_runs():
    readme = (ROOT / "README.md").read_text()
    assert SCRIPT.read_text().strip() in readme
