"""The ``td-jax`` command line: list, bench, compare, control, throughput, deep."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core


class _OneLineErrors(typer.core.TyperGroup):
    """typer's command group, with a usage error (an unknown option or command, a value that
    does not parse as the option's type) reported like every other bad input: one line,
    "td-jax: error: ...", exit 2, instead of a usage box. Help and everything else as typer
    does it."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        except Exception as err:  # click's exceptions (vendored by typer) by their interface
            if not hasattr(err, "format_message") or not isinstance(
                getattr(err, "exit_code", None), int
            ):
                raise
            if type(err).__name__ == "NoArgsIsHelpError":  # ``td-jax`` alone: the help
                err.show()
            else:
                message = " ".join(err.format_message().split())
                typer.echo(f"td-jax: error: {message}", err=True)
            sys.exit(err.exit_code)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=_OneLineErrors,
    add_completion=False,
    no_args_is_help=True,
    help="td_jax: does distributional TD converge faster than classical TD?",
)


def _fail(message: str) -> None:
    typer.echo(f"td-jax: error: {message}", err=True)
    raise typer.Exit(2)


def _enable_compilation_cache() -> None:
    """Persist XLA programs between runs (TD_JAX_CACHE_DIR; empty disables)."""
    from td_jax.runner import compile_cache

    compile_cache.enable_persistent_cache()


@app.command("list")
def list_all() -> None:
    """Rules, reward distributions, environments, control tasks and suites, one line each."""
    from td_jax import catalog, envs, rewards, rules

    for title, items in (
        ("rules", rules.describe()),
        ("reward distributions", rewards.describe()),
        ("environments", envs.describe()),
        ("control tasks (MDPs)", envs.describe_mdps()),
        (
            f"suites (the comparison suites are files in {catalog.suite_files.builtin_dir()}; "
            "--suite path/to/study.toml runs your own)",
            catalog.describe(),
        ),
    ):
        typer.echo(f"{title}:")
        width = max(len(name) for name in items)
        for name, text in items.items():
            typer.echo(f"  {name:<{width}}  {text}")


def flag(help: str) -> Any:
    """An off-by-default ``--name / --no-name`` option with ``help`` (the commands' flags)."""
    return Annotated[bool, typer.Option(help=help)]


QUIET = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")]


@app.command()
def bench(
    suite: Annotated[
        str, typer.Option(help="suite name (see `td-jax list`), or a study file path/to/study.toml")
    ] = "default",
    out: Annotated[str | None, typer.Option(help="results directory [results/<suite>]")] = None,
    rule: Annotated[
        list[str] | None,
        typer.Option(
            help="a plug-in rule, module:factory, importable from the working directory; repeatable"
        ),
    ] = None,
    quiet: QUIET = False,
    reuse_stale: flag(
        "reuse saved units computed by other code (td_jax's or a plug-in's, edited"
        " since) instead of recomputing them; recorded in the manifest"
    ) = False,
) -> None:
    """Run a suite and write its tables, verdict, plots and manifest (resumable: a saved
    unit is reused only when its configuration and the code that computed it match)."""
    if out is not None and not out.strip():
        _fail("--out is empty; give a results directory (default results/<suite>)")
    _run(suite, None if out is None else Path(out), rule or [], quiet, reuse_stale)


@app.command()
def report(
    directory: Annotated[Path, typer.Argument(help="a finished results directory")],
    quiet: QUIET = False,
    reuse_stale: flag("re-score units computed by other code too (recorded)") = False,
) -> None:
    """Re-score a finished results directory from its saved units, computing none: its
    tables, verdict, plots and manifest are rewritten by the bench's own path (the same
    suite, and its plug-in rules re-imported from the working directory). A unit that is
    not saved, or was computed by other code, is an error naming it."""
    import json

    try:
        manifest = json.loads((directory / "manifest.json").read_text())
        name = manifest["suite"]
        rules = manifest.get("configuration", {}).get("rules", [])
    except (OSError, ValueError, KeyError, AttributeError) as err:
        _fail(f"{directory} is not a finished results directory (manifest.json: {err})")
    # The rules given with --rule, as given (a suite's own factories are not plug-ins).
    plugged = [r["plugin"] for r in rules if isinstance(r, dict) and r.get("plugin")]
    # A user's study file is found again where the bench read it.
    source = manifest.get("suite_file") if isinstance(manifest, dict) else None
    if isinstance(source, dict) and str(source.get("path", "")).endswith(".toml"):
        from td_jax import catalog

        if name not in catalog.available():
            name = source["path"]
    _run(name, directory, plugged, quiet, reuse_stale, score_only=True)


def _run(
    suite: str,
    out: Path | None,
    rule: list[str],
    quiet: bool,
    reuse_stale: bool,
    score_only: bool = False,
) -> None:
    """``bench`` and ``report``: the suite with its plug-ins run into ``out`` (default
    results/<suite>); with ``score_only`` no unit is computed (``store.score_only``)."""
    from td_jax import catalog
    from td_jax.engine import driver, plugins, specs, store
    from td_jax.engine.errors import BenchError
    from td_jax.studies import suite_files

    try:
        chosen = catalog.get_suite(suite)
        path = catalog.suite_file(suite)
        source = None if path is None else suite_files.file_record(path)
        target = out if out is not None else Path("results") / chosen.name
        if rule and isinstance(chosen, specs.CustomSuite):
            _fail(
                f"suite {chosen.name!r} is a fixed reproduction; --rule needs a "
                f"comparison suite ({', '.join(catalog.comparison_suites())})"
            )
        if rule:
            chosen = chosen.with_rules(tuple(plugins.load_rule(r) for r in rule))
        _enable_compilation_cache()
        with store.reuse_stale(reuse_stale), store.score_only(score_only), store.suite_file(source):
            if isinstance(chosen, specs.CustomSuite):
                manifest = chosen.run(target, quiet=quiet)
            else:
                manifest = driver.run_suite(chosen, target, quiet=quiet, source=source)
    except BenchError as err:  # the user's to fix: one line, exit 2 (bugs keep tracebacks)
        _fail(str(err).splitlines()[0] if "\n" in str(err) else str(err))
    except OSError as err:  # a full disk, a read-only file system...: the path, the errno's text
        _fail(_os_error(err, out if out is not None else Path("results") / suite))
    except KeyboardInterrupt:
        typer.echo("td-jax: interrupted; finished units are kept, rerun to resume", err=True)
        sys.stderr.flush()
        sys.stdout.flush()
        # Units in flight run in worker threads that Python would wait for at exit; their
        # results are written atomically, so ending the process now loses nothing finished.
        os._exit(130)
    if not quiet:
        verb = "re-scored" if score_only else "wrote"
        typer.echo(
            f"{verb} {target} ({manifest['wall_seconds']:.0f} s); verdict: {target / 'verdict.md'}"
        )
    if reuse_stale:  # loud, even when quiet: these results are not all the current code's
        stale = manifest.get("stale_units_reused", [])
        typer.echo(
            f"td-jax: warning: --reuse-stale: {len(stale)} unit(s) computed by other code were "
            f"reused in {target} (manifest.json: reuse_stale, stale_units_reused)",
            err=True,
        )


@app.command()
def compare(
    dir_a: Annotated[Path, typer.Argument(help="a results directory (the reference)")],
    dir_b: Annotated[Path, typer.Argument(help="a results directory (the candidate)")],
    fail_on_regression: flag("exit 3 when a cell's N(eps) grew beyond its interval") = False,
    allow_different_suites: flag(
        "compare runs of different suites, or whose tasks differ under one label "
        "(refused otherwise); the output says so"
    ) = False,
) -> None:
    """Two runs' N(eps) tables side by side; differences beyond the intervals marked.

    Prediction results are compared per weighting, control results per metric. Rules
    defined differently, differing seed sets and other settings are flagged above the table.
    Exit status: 0; 2 on bad input, runs of different suites (see --allow-different-suites)
    or no cell in common; 3 with --fail-on-regression when a cell got slower."""
    from td_jax.engine.errors import BenchError
    from td_jax.engine.scoring import compare as compare_lib

    try:
        text, regressions = compare_lib.compare_dirs(
            dir_a, dir_b, allow_different_suites=allow_different_suites
        )
    except BenchError as err:
        _fail(str(err))
    typer.echo(text)
    if fail_on_regression and regressions:
        typer.echo(f"td-jax: {regressions} regression(s) beyond the intervals", err=True)
        raise typer.Exit(3)


def _os_error(err: OSError, where: str | Path) -> str:
    """One line for an OSError met while writing results: the file (``where``, the output
    directory, when the error names none) and the errno's text (``os.strerror``)."""
    text = os.strerror(err.errno) if err.errno else (err.strerror or str(err))
    return f"cannot write {err.filename or where}: {text}"


def _parse_params(items: list[str] | None, what: str) -> dict:
    """``["k=v", ...]`` -> ``{k: v}``, each value read as JSON where it parses (numbers,
    lists, mappings), else kept as a string."""
    import json

    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what} must look like name=value, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _mdp_from_file(path: Path):
    """An MDP from a JSON file ``{"transitions", "rewards", "gamma"[, "start_probs"]}``
    (``td_jax.envs.tabular_mdp``'s arguments)."""
    import json

    from td_jax import envs

    try:
        spec = json.loads(path.read_text())
    except OSError as err:
        raise ValueError(f"cannot read --mdp-file {path}: {err.strerror or err}") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"--mdp-file {path} is not JSON: {err}") from None
    keys = {"transitions", "rewards", "gamma", "start_probs"}
    if not isinstance(spec, dict) or not {"transitions", "rewards", "gamma"} <= set(spec):
        raise ValueError(
            f"--mdp-file {path} must hold a JSON object with transitions, rewards and gamma "
            f"(optional start_probs), got {sorted(spec) if isinstance(spec, dict) else spec!r}"
        )
    extra = set(spec) - keys
    if extra:
        raise ValueError(f"--mdp-file {path}: unknown keys {sorted(extra)}; allowed: "
                         f"{sorted(keys)}")  # fmt: skip
    return envs.tabular_mdp(spec["transitions"], spec["rewards"], spec["gamma"],
                            spec.get("start_probs"), name=path.stem)  # fmt: skip


@app.command()
def control(
    mdp: Annotated[str, typer.Option(help="a built-in MDP (see `td-jax list`)")] = "risky_safe",
    param: Annotated[
        list[str] | None, typer.Option(help="an MDP parameter, name=value; repeatable")
    ] = None,
    mdp_file: Annotated[
        Path | None,
        typer.Option(help="a JSON file with transitions, rewards (one per (s, a)), gamma"),
    ] = None,
    rule: Annotated[
        list[str] | None,
        typer.Option(help="a rule name, or a plug-in module:factory; repeatable [td, qtd]"),
    ] = None,
    step_size: Annotated[
        list[float] | None, typer.Option(help="in each rule's own unit; repeatable [0.1]")
    ] = None,
    seeds: Annotated[int, typer.Option(help="seeds per step size")] = 30,
    steps: Annotated[int, typer.Option(help="updates per learner")] = 2_000,
    mode: Annotated[str, typer.Option(help="synchronous or online")] = "synchronous",
    epsilon: Annotated[float, typer.Option(help="online exploration rate")] = 0.1,
) -> None:
    """A first look at rules as control learners on one MDP: the final ||Q - Q*||_inf and
    value gap, divided by the task's scale as the control suites do, with 95% intervals
    over seeds, per rule and step size (in each rule's own unit: return-unit rules such as
    QTD are scaled by the task's RMS return). One untuned configuration is not a
    comparison; `td-jax bench --suite control_quick` is."""
    from td_jax import envs
    from td_jax.engine import control_look
    from td_jax.engine.control_truth import ControlTask
    from td_jax.engine.errors import BenchError

    try:
        if mdp_file is not None:
            if param:
                _fail("--param sets a built-in MDP's parameters; put them in --mdp-file instead")
            task = _mdp_from_file(mdp_file)
        else:
            task = envs.make_mdp(mdp, **_parse_params(param, "--param"))
        truth = ControlTask(None, task, steps)
        rows, units = control_look.look(truth, list(rule or ["td", "qtd"]), step_size or [0.1],
                                        seeds, steps, mode, epsilon)  # fmt: skip
    except (ValueError, BenchError) as err:
        _fail(str(err).splitlines()[0])
    for line in control_look.table(truth, rows, units, seeds, steps, mode):
        typer.echo(line)


@app.command()
def throughput(
    out: Annotated[str, typer.Option(help="where throughput.md / .json go")] = "results",
    quick: flag("a small run (seconds), for tests") = False,
    million: flag("also run 1,000,000 learners (td and qtd, 10^4 steps)") = False,
    accelerator: flag(
        "time td_jax alone on the default GPU/TPU (no CPU baselines); writes"
        " throughput_<platform>.md"
    ) = False,
) -> None:
    """Learner-updates per second: td_jax against numpy and a per-learner rlax loop, the
    user workload (td_jax.run end to end) and each rule's fraction of the roofline."""
    from td_jax.engine import store
    from td_jax.engine.errors import BenchError
    from td_jax.throughput import benchmark as tp

    try:  # bench's output-directory checks: not empty, not a file, writable
        store.check_output_dir(out)
    except BenchError as err:
        _fail(str(err))
    out = Path(out)
    try:
        if accelerator:
            import jax

            from td_jax.throughput import accelerator as acc

            if jax.default_backend() == "cpu":
                _fail("--accelerator needs a GPU or TPU; jax sees only the CPU")
            acc.run_accelerator(out)
            return
        tp.run_throughput(out, quick=quick, million=million)
    except ValueError as err:
        _fail(str(err))
    except OSError as err:
        _fail(_os_error(err, out))


@app.command()
def deep(
    agent: Annotated[str, typer.Option(help="dqn, c51 or qrdqn")] = "dqn",
    env: Annotated[str, typer.Option(help="a gymnax environment, e.g. CartPole-v1")] = (
        "CartPole-v1"
    ),
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="an agent hyperparameter, key=value; repeatable"),
    ] = None,
    seeds: Annotated[int, typer.Option(help="seeds, vmapped")] = 4,
    steps: Annotated[int | None, typer.Option(help="environment steps per run")] = None,
    reward_noise: Annotated[
        str, typer.Option(help="none, gaussian, student_t or bernoulli_sparse")
    ] = "none",
) -> None:
    """Train a deep agent (DQN, C51, QR-DQN) on a gymnax task; print the final IQM return
    (true return, mean of the last tenth of the run, IQM over seeds with a 95% CI)."""
    import ast
    import dataclasses

    try:
        from td_jax.deep import agents, suites, train
        from td_jax.engine.scoring import stats

        if agent not in agents.CONFIGS:
            raise ValueError(f"unknown agent {agent!r}; use one of {', '.join(agents.CONFIGS)}")
        train.check_env(env)
        if reward_noise not in suites.NOISES:
            raise ValueError(f"unknown --reward-noise {reward_noise!r}; use one of "
                             f"{', '.join(suites.NOISES)}")  # fmt: skip
        if seeds < 1:
            raise ValueError(f"--seeds must be >= 1, got {seeds}")
        defaults = {f.name: f.default for f in dataclasses.fields(agents.CONFIGS[agent])}
        overrides = {}
        for item in set_ or []:
            key, sep, text = item.partition("=")
            key = key.strip()
            if not sep or not key:
                raise ValueError(f"--set must look like key=value, got {item!r}")
            if key not in defaults:
                raise ValueError(f"unknown {agent} hyperparameter {key!r}; allowed: "
                                 f"{', '.join(defaults)}")  # fmt: skip
            try:
                value = ast.literal_eval(text.strip())
            except (ValueError, SyntaxError):
                value = text.strip()
            default = defaults[key]
            if (
                isinstance(default, float)
                and isinstance(value, int)
                and not isinstance(value, bool)
            ):
                value = float(value)
            elif isinstance(default, int) and not isinstance(default, bool):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
            elif isinstance(default, tuple) and isinstance(value, int):
                value = (value,)
            overrides[key] = value
        if steps is not None:
            overrides["total_steps"] = steps
        config = agents.make_config(agent, **overrides)
        lr = config.learning_rate
        num_bins = min(train.NUM_BINS, config.total_steps // config.num_envs)
        out = train.run_batch(config, env, range(seeds), [lr], suites.NOISES[reward_noise],
                              num_bins)  # fmt: skip
    except ValueError as err:
        _fail(str(err).splitlines()[0])
    import numpy as np

    from td_jax.deep import analysis

    curve = analysis.fill_curve(np.asarray(out["returns"])[:, 0])
    final = curve[:, -max(1, num_bins // 10) :].mean(-1)
    point, low, high = stats.iqm_intervals({agent: final[:, None]})[agent]
    typer.echo(f"{agent} on {env} (reward noise {reward_noise}), {config.total_steps:,} steps, "
               f"lr {lr:g}, {seeds} seeds")  # fmt: skip
    typer.echo(f"final return IQM {point[0]:.1f} [{low[0]:.1f}, {high[0]:.1f}] (95% CI); "
               f"per seed: {', '.join(f'{x:.0f}' for x in final)}")  # fmt: skip


def main() -> None:
    """Entry point of the ``td-jax`` console script and ``python -m td_jax``."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
