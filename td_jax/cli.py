"""The ``td-jax`` command line: list, bench, compare, throughput."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
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
    from td_jax import envs, rewards, rules
    from td_jax.harness import catalog

    for title, items in (
        ("rules", rules.describe()),
        ("reward distributions", rewards.describe()),
        ("environments", envs.describe()),
        ("control tasks (MDPs)", envs.describe_mdps()),
        ("suites", catalog.describe()),
    ):
        typer.echo(f"{title}:")
        width = max(len(name) for name in items)
        for name, text in items.items():
            typer.echo(f"  {name:<{width}}  {text}")


@app.command()
def bench(
    suite: Annotated[str, typer.Option(help="suite name (see `td-jax list`)")] = "default",
    out: Annotated[str | None, typer.Option(help="results directory [results/<suite>]")] = None,
    rule: Annotated[
        list[str] | None,
        typer.Option(
            help="a plug-in rule, module:factory, importable from the working directory; repeatable"
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Run a suite and write its tables, verdict, plots and manifest (resumable)."""
    from td_jax.harness import bench as bench_lib
    from td_jax.harness import catalog, plugins, suites
    from td_jax.harness.errors import BenchError

    try:
        if out is not None and not out.strip():
            raise BenchError("--out is empty; give a results directory (default results/<suite>)")
        chosen = catalog.get_suite(suite)
        target = Path(out) if out is not None else Path("results") / chosen.name
        if isinstance(chosen, suites.CustomSuite):
            if rule:
                _fail(
                    f"suite {chosen.name!r} is a fixed reproduction; --rule needs a "
                    f"comparison suite ({', '.join(catalog.comparison_suites())})"
                )
            _enable_compilation_cache()
            manifest = chosen.run(target, quiet=quiet)
        else:
            if rule:
                chosen = chosen.with_rules(tuple(plugins.load_rule(r) for r in rule))
            _enable_compilation_cache()
            manifest = bench_lib.run_suite(chosen, target, quiet=quiet)
    except BenchError as err:  # the user's to fix: one line, exit 2 (bugs keep tracebacks)
        _fail(str(err).splitlines()[0] if "\n" in str(err) else str(err))
    except OSError as err:
        if err.filename is None:
            raise
        _fail(f"cannot write {err.filename}: {err.strerror or err}")
    except KeyboardInterrupt:
        typer.echo("td-jax: interrupted; finished units are kept, rerun to resume", err=True)
        sys.stderr.flush()
        sys.stdout.flush()
        # Units in flight run in worker threads that Python would wait for at exit; their
        # results are written atomically, so ending the process now loses nothing finished.
        os._exit(130)
    if not quiet:
        typer.echo(
            f"wrote {target} ({manifest['wall_seconds']:.0f} s); verdict: {target / 'verdict.md'}"
        )


@app.command()
def compare(
    dir_a: Annotated[Path, typer.Argument(help="a results directory (the reference)")],
    dir_b: Annotated[Path, typer.Argument(help="a results directory (the candidate)")],
    fail_on_regression: Annotated[
        bool, typer.Option(help="exit 3 when a cell's N(eps) grew beyond its interval")
    ] = False,
) -> None:
    """Two runs' N(eps) tables side by side; differences beyond the intervals marked.

    Exit status: 0, 2 on bad input, 3 with --fail-on-regression when a cell got slower."""
    from td_jax.harness import compare as compare_lib
    from td_jax.harness.errors import BenchError

    try:
        text, regressions = compare_lib.compare_dirs(dir_a, dir_b)
    except BenchError as err:
        _fail(str(err))
    typer.echo(text)
    if fail_on_regression and regressions:
        typer.echo(f"td-jax: {regressions} regression(s) beyond the intervals", err=True)
        raise typer.Exit(3)


@app.command()
def throughput(
    out: Annotated[Path, typer.Option(help="where throughput.md / .json go")] = Path("results"),
    quick: Annotated[bool, typer.Option(help="a small run (seconds), for tests")] = False,
    million: Annotated[
        bool, typer.Option(help="also run 1,000,000 learners (td and qtd, 10^4 steps)")
    ] = False,
    accelerator: Annotated[
        bool,
        typer.Option(
            help="time td_jax alone on the default GPU/TPU (no CPU baselines); writes"
            " throughput_<platform>.md"
        ),
    ] = False,
) -> None:
    """Learner-updates per second: td_jax against numpy and a per-learner rlax loop, the
    user workload (td_jax.run end to end) and each rule's fraction of the roofline."""
    from td_jax.throughput import benchmark as tp

    if accelerator:
        import jax

        from td_jax.throughput import accelerator as acc

        if jax.default_backend() == "cpu":
            _fail("--accelerator needs a GPU or TPU; jax sees only the CPU")
        acc.run_accelerator(out)
        return
    try:
        tp.run_throughput(out, quick=quick, million=million)
    except ValueError as err:
        _fail(str(err))


def main() -> None:
    """Entry point of the ``td-jax`` console script and ``python -m td_jax``."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
