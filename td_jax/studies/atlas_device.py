"""The device atlas (``benchmarks/atlas_device.toml``, ``track = "generated"``): the CPU
atlas's rules, seeds and protocol over a full factorial of reward shapes x noise levels x
environments, 10^4 tasks or more (SCIENCE.md section 10), generated from the file's
``[settings]`` (``Grid``) instead of written out task by task.

``suite(name, description, grid)`` builds the study as a study file would hold it (the base
file's keys, the generated ``[rewards]`` and ``[[tasks]]``) and checks it through
``suite_files.build``, so the device atlas runs the same code as the CPU one, on one GPU or
on several hosts (``td_jax.run``'s sharding).

``python -m td_jax.studies.atlas_device estimate`` estimates its time on an accelerator
from the CPU atlas's committed work (configurations tried and evaluated per task, each
environment's horizon) and the accelerator rows of ``results/throughput_gpu.json``; it
writes ``results/atlas/device_estimate.md`` and ``.json`` (``estimate``).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from td_jax.studies import suite_files


@dataclasses.dataclass(frozen=True)
class Grid:
    """The device atlas's factorial (every field a TOML key of ``[settings]``).

    Attributes:
      base: the built-in study file whose keys the atlas takes (rules, seeds, horizons,
        accuracy, search, scoring, controls, reports), its rewards and tasks replaced.
      student_t_df, lognormal_sigma, bernoulli_p: the shapes, with the Gaussian when
        ``gaussian``; every law has mean 1 and noise std from ``noise_std`` (Student t
        with df <= 2, which has no std: IQR / 1.349 equal to it).
      chain_gamma x chain_states: 5-state (or other) chains; garnet_gamma: Garnet MRPs of
        ``garnet_states`` states over ``garnet_instances`` (pooled); the bandit always.
      horizons: updates per learner by environment name (the base's where absent).
      keep_slices: rule labels that keep the base file's ``envs`` / ``tasks`` (the
        others run on every task).
    """

    base: str = "atlas"
    student_t_df: tuple[float, ...] = (1.5, 2.0, 3.0, 5.0, 10.0)
    gaussian: bool = True
    lognormal_sigma: tuple[float, ...] = (0.5, 1.0)
    bernoulli_p: tuple[float, ...] = (0.5, 0.1)
    noise_std: tuple[float, ...] = (0.1, 0.32, 1.0, 3.2, 10.0)
    chain_gamma: tuple[float, ...] = (0.5, 0.9)
    chain_states: tuple[int, ...] = (5,)
    garnet_gamma: tuple[float, ...] = (0.9,)
    garnet_states: int = 10
    garnet_instances: tuple[int, ...] = (20, 22, 40)
    horizons: dict[str, int] = dataclasses.field(default_factory=dict)
    keep_slices: tuple[str, ...] = ("edrl",)


SETTINGS = Grid
IQR_GAUSSIAN = 1.349


def _tag(x: float) -> str:
    return f"{x:g}".replace(".", "p")


def rewards(grid: Grid) -> dict[str, dict[str, Any]]:
    """Every reward law of the factorial by name (``<shape>_s<k>``: noise level k)."""
    from scipy import stats

    shapes: list[tuple[str, dict[str, Any]]] = [
        (f"t{_tag(df)}", {"name": "student_t", "df": float(df)}) for df in grid.student_t_df
    ]
    shapes += [("gauss", {"name": "gaussian"})] if grid.gaussian else []
    shapes += [(f"lognorm{_tag(s)}", {"name": "lognormal", "sigma": float(s)})
               for s in grid.lognormal_sigma]  # fmt: skip
    shapes += [(f"bern{_tag(p)}", {"name": "bernoulli", "p": float(p)}) for p in grid.bernoulli_p]
    out = {}
    for k, std in enumerate(grid.noise_std):
        for tag, spec in shapes:
            law = dict(spec)
            if law["name"] == "student_t" and law["df"] <= 2.0:
                iqr_half = float(stats.t.ppf(0.75, law["df"]))
                law |= {"loc": 1.0, "scale": float(f"{std * IQR_GAUSSIAN / (2 * iqr_half):.6g}")}
            else:
                law["standardize"] = [1.0, float(std)]
            out[f"{tag}_s{k}"] = law
    return out


def tasks(grid: Grid, names: list[str]) -> list[dict[str, Any]]:
    """The ``[[tasks]]`` tables: the bandit, every (gamma, states) chain and every gamma's
    Garnet MRPs, each under every reward of ``names``."""
    out = [{"env": "bandit", "each_reward": names}]
    for gamma in grid.chain_gamma:
        for n in grid.chain_states:
            params = {"num_states": n, "gamma": gamma}
            label = f"chain_g{gamma:g}_n{n}/{{reward}}"
            out.append({"env": "chain", "label": label, "params": params, "each_reward": names})
    for gamma in grid.garnet_gamma:
        out.append({"env": "random_mrp", "label": f"garnet_g{gamma:g}/{{reward}}",
                    "instances": list(grid.garnet_instances),
                    "params": {"num_states": grid.garnet_states, "gamma": gamma},
                    "each_reward": names})  # fmt: skip
    return out


def study(name: str, description: str, grid: Grid) -> dict[str, Any]:
    """The device atlas as a parsed study file: the base file's keys, its rules without
    their slices (but ``keep_slices``), the generated rewards and tasks."""
    path = suite_files.builtin_files().get(grid.base)
    if path is None:
        raise ValueError(f"[settings] base: no built-in study file {grid.base!r}")
    raw = suite_files.parse(path)
    laws = rewards(grid)
    rules = []
    for rule in raw.get("rules", []):
        rule = dict(rule)
        if rule.get("label") not in grid.keep_slices:
            rule.pop("envs", None)
            rule.pop("tasks", None)
        elif "tasks" in rule:  # a slice of named tasks: every bandit task instead
            rule.pop("tasks")
            rule["envs"] = ["bandit"]
        rules.append(rule)
    horizons = dict(raw.get("horizons", {}))
    horizons["by_env"] = {**horizons.get("by_env", {}), **grid.horizons}
    return {**raw, "name": name, "description": description, "rules": rules,
            "horizons": horizons, "rewards": laws, "tasks": tasks(grid, list(laws))}  # fmt: skip


def suite(name: str, description: str, grid: Grid) -> Any:
    """The device atlas's ``Suite``, checked as a study file is."""
    return suite_files.build(study(name, description, grid))


def task_count(grid: Grid) -> dict[str, int]:
    """Tasks per environment name of the factorial (without building it)."""
    laws = len(rewards(grid))
    chains = len(grid.chain_gamma) * len(grid.chain_states)
    return {"bandit": laws, "chain": chains * laws, "random_mrp": len(grid.garnet_gamma) * laws}


# Accelerator rates for rules without a row of their own in results/throughput_gpu.json,
# whose qtd row is m = 32: qtd with m quantiles takes it times 32 / m, at most 4 (its
# update compares m targets with m quantiles; small m is bound by the sampling, as TD is);
# dopamine_expectile takes dopamine_quantile's (the same cells, another signal); EDRL's
# imputation (an expectile solve per update) takes qtd's times its CPU ratio to it, 1 / 28
# (results/throughput.md); anything else TD's.
PROXY = {"dopamine_expectile": ("dopamine_quantile", 1.0), "edrl": ("qtd", 1.0 / 28.0)}
QTD_ROW_M = 32


def _gpu_rate(rule_name: str, m: int | None, rates: dict[str, float]) -> tuple[float, str]:
    if rule_name == "qtd":
        factor = min(QTD_ROW_M / float(m or QTD_ROW_M), 4.0)
        return rates["qtd"] * factor, f"qtd (m = {QTD_ROW_M}) x {factor:.3g}"
    if rule_name in rates:
        return rates[rule_name], rule_name
    ref, factor = PROXY.get(rule_name, ("td", 1.0))
    return rates[ref] * factor, f"{ref} x {factor:.3g}"


def _work(results: Path) -> pd.DataFrame:
    """Per (rule, env): tasks, and the learner-updates the CPU atlas spent per task (the
    configurations tried on the tuning seeds and evaluated on the evaluation seeds, times
    the environment's horizon), from its committed CSVs and manifest."""
    manifest = json.loads((results / "manifest.json").read_text())
    cfg = manifest["configuration"]
    tune_n, eval_n = manifest["num_tuning_seeds"], manifest["num_evaluation_seeds"]
    horizon = {t["label"]: int(manifest["tasks"][t["label"]]["horizon"]) for t in cfg["tasks"]}
    env = {t["label"]: t["env"] for t in cfg["tasks"]}
    sens = pd.read_csv(results / "sensitivity.csv")
    conv = pd.read_csv(results / "convergence.csv")
    key = ["rule", "task", "step_size", "schedule"]
    tried = sens[sens.weighting == "visit"].drop_duplicates(key).groupby(["rule", "task"]).size()
    evald = conv[conv.weighting == "visit"].drop_duplicates(key).groupby(["rule", "task"]).size()
    rows = []
    for (rule, task), n in tried.items():
        updates = (n * tune_n + evald.get((rule, task), 0) * eval_n) * horizon[task]
        rows.append({"rule": rule, "env": env[task], "updates": float(updates)})
    frame = pd.DataFrame(rows)
    grouped = frame.groupby(["rule", "env"])
    return grouped.agg(tasks=("updates", "size"), per_task=("updates", "mean")).reset_index()


def estimate(results: Path, throughput: Path, grid: Grid) -> dict[str, Any]:
    """The device atlas's time on the accelerator of ``throughput`` (its rows' best
    learner-updates/s per rule), from the CPU atlas's work per task (``_work``), scaled
    to the device atlas's tasks per environment and horizons. Every rule runs on every
    environment there (edrl on the bandit); where the CPU atlas did not run a rule on an
    environment, TD's work per task there stands in. Compile time, padding and the host's
    scoring are left out."""
    gpu = json.loads(Path(throughput).read_text())
    rates: dict[str, float] = {}
    for row in gpu["rows"]:
        rates[row["rule"]] = max(rates.get(row["rule"], 0.0), float(row["ups"]))
    counts = task_count(grid)
    cpu = json.loads((results / "manifest.json").read_text())
    base_h = {k: int(v) for k, v in cpu["configuration"]["horizons"].items()}
    work = _work(results).set_index(["rule", "env"])
    lines, total = [], 0.0
    for spec in cpu["configuration"]["rules"]:
        label = spec["label"]
        name = spec["rule"] if isinstance(spec["rule"], str) else label
        m = (spec.get("hparams") or {}).get("num_quantiles")
        rate, source = _gpu_rate(name, m, rates)
        envs = ["bandit"] if label in grid.keep_slices else list(counts)
        for env in envs:
            mine = (label, env) in work.index
            per_task = work.loc[(label if mine else "td", env), "per_task"]
            scale = grid.horizons.get(env, base_h.get(env, 1)) / base_h.get(env, 1)
            updates = float(per_task) * counts[env] * scale
            seconds = updates / rate
            total += seconds
            lines.append({"rule": label, "env": env, "device_tasks": int(counts[env]),
                          "work_from": label if mine else "td", "updates": updates,
                          "ups": rate, "rate_from": source, "seconds": seconds})  # fmt: skip
    return {"device": gpu.get("device_kind", ""), "measured": gpu.get("date", ""),
            "tasks": int(sum(counts.values())), "seconds": total, "rows": lines}  # fmt: skip


def estimate_markdown(est: dict[str, Any]) -> str:
    head = (
        f"# The device atlas's estimated time\n\n"
        f"`atlas_device` ({est['tasks']:,} tasks) on {est['device']} (rates measured "
        f"{est['measured']}, results/throughput_gpu.md): about **{est['seconds'] / 60:.0f} "
        "minutes** of learner updates, from the CPU atlas's configurations per task "
        "(tried on the tuning seeds, evaluated on the evaluation seeds) times each "
        "environment's horizon, scaled to the device atlas's tasks and horizons, over each "
        "rule's best accelerator rate (where the CPU atlas did not run a rule on an "
        "environment, TD's work per task there stands in: `work from`). Compile time, "
        "padding and the host's scoring (a bootstrap per (rule, task) pair, about 120,000 "
        "of them) are not in it. `python -m td_jax.studies.atlas_device estimate` writes "
        "this file.\n\n"
        "| rule | env | device tasks | work from | learner-updates | ups | rate from | minutes |\n"
        "|---|---|---:|---|---:|---:|---|---:|\n"
    )
    body = "".join(
        f"| `{r['rule']}` | {r['env']} | {r['device_tasks']} | `{r['work_from']}` | "
        f"{r['updates']:.3g} | {r['ups']:.3g} | {r['rate_from']} | {r['seconds'] / 60:.1f} |\n"
        for r in est["rows"]
    )
    return head + body


def main(argv: list[str]) -> int:
    if argv[:1] != ["estimate"]:
        print("usage: python -m td_jax.studies.atlas_device estimate [ROOT]", file=sys.stderr)
        return 2
    root = Path(argv[1]) if len(argv) > 1 else Path(".")
    results = root / "results" / "atlas"
    grid = suite_files.settings("atlas_device")  # benchmarks/atlas_device.toml's, checked
    est = estimate(results, root / "results" / "throughput_gpu.json", grid)
    (results / "device_estimate.json").write_text(json.dumps(est, indent=1) + "\n")
    (results / "device_estimate.md").write_text(estimate_markdown(est))
    print(f"device atlas: {est['tasks']} tasks, about {est['seconds'] / 60:.0f} minutes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
