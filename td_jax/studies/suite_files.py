"""Suites as files: a study file (TOML, ``benchmarks/<name>.toml``) read, checked and built
into the suite the engine runs (``engine.specs.Suite`` or ``engine.control_specs.ControlSuite``).

Every built-in comparison suite is such a file (``builtin_files``), and a user's own runs
the same way (``td-jax bench --suite path/study.toml``). Everything is checked before
anything compiles: an unknown key, a wrong type, an unknown rule, environment or reward
family, or a value out of range is a ``SuiteFileError`` in one line naming the file, the key
and what is allowed (the command line prints it and exits 2). The keys are
``suite_schema``'s; docs/study_files.md is their reference.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from td_jax import envs, rewards, strict
from td_jax import rules as rule_lib
from td_jax.engine.control_specs import ControlSuite, MDPSpec
from td_jax.engine.errors import BenchError
from td_jax.engine.plugins import LABEL, factory_of, import_module
from td_jax.engine.specs import Claim, CustomSuite, RuleSpec, Suite, TaskSpec
from td_jax.studies import module_files
from td_jax.studies import suite_schema as schema
from td_jax.studies.module_files import frozen

SUFFIX = ".toml"
PACKAGED = Path(__file__).resolve().parents[1] / "benchmarks"  # a non-editable install's
CHECKOUT = Path(__file__).resolve().parents[2] / "benchmarks"  # a source checkout's


class SuiteFileError(BenchError):
    """A bad study file: one line naming the file, the key and what is allowed (exit 2)."""


def builtin_dir() -> Path:
    """The folder of the built-in suite files: the copy shipped inside the package (a
    non-editable install), else the checkout's top-level ``benchmarks/``."""
    return PACKAGED if PACKAGED.is_dir() else CHECKOUT


def builtin_files() -> dict[str, Path]:
    """Suite name -> its file, for every built-in suite file (the name is the file's stem)."""
    return {p.stem: p for p in sorted(builtin_dir().glob(f"*{SUFFIX}"))}


def file_record(path: Path) -> dict[str, str]:
    """What a manifest records of the file a suite came from: its path (``benchmarks/
    <name>.toml`` for a built-in one) and the sha256 of its bytes."""
    path = Path(path)
    builtin = path.resolve().parent == builtin_dir().resolve()
    shown = f"benchmarks/{path.name}" if builtin else str(path)
    return {"path": shown, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def load(path: Path | str) -> Suite | ControlSuite | CustomSuite:
    """The suite a study file defines (a reproduction's or deep suite's: what its module
    builds from the file's settings, ``module_files``).

    Raises:
      SuiteFileError: an unreadable file, invalid TOML, or any bad key or value (one line:
        the file, the key, what is allowed).
    """
    path = Path(path)
    raw = parse(path)
    return checked(path, lambda: build(raw, path.parent))


def settings(name: str) -> Any:
    """The ``[settings]`` of the built-in file ``benchmarks/<name>.toml``, checked and read
    into its module's ``SETTINGS`` dataclass: how a reproduction or a deep suite reads its
    own configuration.

    Raises:
      SuiteFileError: a missing or bad file, in one line.
    """
    path = builtin_files().get(name)
    if path is None:
        raise SuiteFileError(f"no study file {builtin_dir() / (name + SUFFIX)}")
    raw = parse(path)
    return checked(path, lambda: module_files.read(raw, path.parent)[1])


def parse(path: Path) -> dict[str, Any]:
    """The TOML of a study file (SuiteFileError, one line, if unreadable or invalid)."""
    try:
        return tomllib.loads(path.read_text())
    except OSError as err:
        raise SuiteFileError(f"cannot read study file {path}: {err.strerror or err}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise SuiteFileError(f"{path}: not a valid TOML file: {err}") from None


def checked(path: Path, make: Callable[[], Any]) -> Any:
    """``make()``, its ValueError or TypeError (BenchError and strict's checks) a
    SuiteFileError in one line prefixed with the file's path."""
    try:
        return make()
    except (ValueError, TypeError) as err:
        raise SuiteFileError(f"{path}: {str(err).splitlines()[0]}") from None


def build(raw: Mapping[str, Any], folder: Path | None = None) -> Suite | ControlSuite | CustomSuite:
    """The suite of a parsed study file (``folder``: where its plug-in modules may lie).
    Its ``imports`` are imported first, so that what they register (a reward family) is
    known when the rest is checked."""
    import_modules(raw.get("imports", []), folder)
    if raw.get("track") in module_files.TRACKS:
        return module_files.build(raw, folder)
    track = schema.choice(*schema.TRACKS)("track", raw.get("track", "prediction"))
    sections, tables = schema.SCHEMAS[track], schema.TABLES[track]
    allowed = [*sections[""], *(s for s in sections if s), *tables]
    for key in raw:
        if key not in allowed:
            raise ValueError(f"unknown key {key!r}; allowed at the top level of a {track} "
                             f"suite: {', '.join(allowed)}")  # fmt: skip
    kwargs: dict[str, Any] = {}
    for section, readers in sections.items():
        given = (
            {k: v for k, v in raw.items() if k in readers} if not section else raw.get(section, {})
        )
        values = schema.read_table(section, given, readers, schema.REQUIRED.get(section, ()))
        kwargs |= {schema.FIELD.get((section, k), k): v for k, v in values.items()}
    for key in ("track", "imports"):
        kwargs.pop(key, None)
    named = _named_rewards(raw.get("rewards", {}))
    tasks = _tasks(raw.get("tasks"), track, named)
    rules = _rules(raw.get("rules"), folder)
    _check_names(kwargs, rules, tasks, track)
    if track == "control":
        return ControlSuite(rules=rules, tasks=tasks, **kwargs)
    claims = tuple(_claim(f"claims[{i}]", c, rules, tasks)
                   for i, c in enumerate(_array("claims", raw.get("claims", []))))  # fmt: skip
    return Suite(rules=rules, tasks=tasks, claims=claims, **kwargs)


def import_modules(value: Any, folder: Path | None) -> None:
    """``imports``: each module imported (from ``folder``, the study file's, first, then the
    working directory, as a plug-in rule's module is found), e.g. one that calls
    ``td_jax.rewards.register``. Loading the file again (a resumed run, ``td-jax report``)
    imports them again in a new process."""
    for i, name in enumerate(schema.modules("imports", value)):
        import_module(name, f"imports[{i}]", folder)


def _array(key: str, value: Any) -> list[dict]:
    """An array of tables (``[[key]]``)."""
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        strict.fail(None, key, value, f"an array of tables ([[{key}]] sections)")
    return value


def _reward(key: str, spec: Any) -> Any:
    """A reward spec (``td_jax.rewards.as_reward``: a table with ``name``, a family name or
    a number), checked by building it; returned frozen."""
    try:
        rewards.as_reward(frozen(spec))
    except (ValueError, TypeError) as err:
        raise ValueError(f"{key}: {str(err).splitlines()[0]}") from None
    return frozen(spec)


def _named_rewards(value: Any) -> dict[str, Any]:
    """``[rewards.NAME]``: reward specs the tasks name in ``each_reward``."""
    return {name: _reward(f"rewards.{name}", spec)
            for name, spec in schema.table("rewards", value).items()}  # fmt: skip


def _each_reward(key: str, value: Any, named: dict[str, Any]) -> dict[str, Any]:
    """``each_reward``: an array of names from ``[rewards]``, or a table name -> spec."""
    if isinstance(value, Mapping):
        return {name: _reward(f"{key}.{name}", spec) for name, spec in value.items()}
    for i, name in enumerate(schema.array(key, value, "an array of [rewards] names or a table")):
        if name not in named:
            defined = ", ".join(named) or "none defined"
            strict.fail(None, f"{key}[{i}]", name, f"a reward named in [rewards] ({defined})")
    return {name: named[name] for name in value}


def _tasks(value: Any, track: str, named: dict[str, Any]) -> tuple:
    """``[[tasks]]``: each a task, or with ``each_reward`` one task per reward (its label
    the ``label`` template with ``{reward}`` replaced by the reward's name)."""
    kind = "env" if track == "prediction" else "mdp"
    out: dict[str, Any] = {}
    for i, item in enumerate(_array("tasks", value)):
        key = f"tasks[{i}]"
        got = schema.read_table(key, item, schema.TASK[track], (kind,))
        name = got[kind]
        known = envs.available() if kind == "env" else envs.available_mdps()
        if name not in known:
            strict.fail(None, f"{key}.{kind}", name, f"one of {', '.join(known)}")
        params = frozen(got.get("params", {}))
        extra = {k: got[k] for k in ("instances", "instance_param", "mode", "horizon") if k in got}
        if "each_reward" in got:
            label = got.get("label", f"{name}/{{reward}}")
            if "{reward}" not in label:
                strict.fail(None, f"{key}.label", label, "a template holding {reward}")
            param = got.get("reward_param", "reward")
            each = _each_reward(f"{key}.each_reward", got["each_reward"], named)
            variants = [(label.replace("{reward}", r), params | {param: spec})
                        for r, spec in each.items()]  # fmt: skip
        elif "label" not in got:
            raise ValueError(f"missing key '{key}.label' (required without each_reward)")
        else:
            variants = [(got["label"], params)]
        for label, task_params in variants:
            if label in out:
                strict.fail(None, f"{key}.label", label, "a label no other task has")
            out[label] = _task(key, kind, label, name, task_params, extra)
    if not out:
        raise ValueError("missing key 'tasks' (at least one [[tasks]] table)")
    return tuple(out.values())


def _task(key: str, kind: str, label: str, name: str, params: dict, extra: dict) -> Any:
    """One task, its reward parameters and then the whole environment checked by building
    it (cheap: no program is compiled)."""
    for param, spec in params.items():
        if param == "reward" or param.endswith("_reward"):
            _reward(f"{key}.params.{param}", spec)
    if kind == "env":
        task = TaskSpec(label, name, params, **extra)
        build = dict(params)
        if task.instances:
            build[task.instance_param] = task.instances[0]
        maker = envs.make
    else:
        task = MDPSpec(label, name, params, **extra)
        build, maker = dict(params), envs.make_mdp
    try:
        maker(name, **build)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{key} ({label!r}) params: {str(err).splitlines()[0]}") from None
    return task


def _rules(value: Any, folder: Path | None) -> tuple[RuleSpec, ...]:
    """``[[rules]]``: each a registry rule or a ``module:factory`` plug-in; ``like = LABEL``
    starts from an earlier rule's whole spec (the null controls are the baseline so)."""
    out: dict[str, RuleSpec] = {}
    for i, item in enumerate(_array("rules", value)):
        key = f"rules[{i}]"
        got = schema.read_table(key, item, schema.RULE, ("label",))
        label = got["label"]
        if not LABEL.fullmatch(label) or label in out:
            strict.fail(None, f"{key}.label", label, "a new label of letters, digits and "
                        "_ . - (not first: . or -)")  # fmt: skip
        like = got.pop("like", None)
        if like is not None and like not in out:
            strict.fail(None, f"{key}.like", like, f"an earlier rule's label ({', '.join(out)})")
        if like is None and "rule" not in got:
            raise ValueError(f"missing key '{key}.rule' (a rule name or module:factory)")
        if "rule" in got:
            got["rule"] = _rule(f"{key}.rule", got["rule"], folder)
        fields = {k: tuple(v) if k in ("envs", "tasks") else v for k, v in got.items()}
        spec = dataclasses.replace(out[like], **fields) if like else RuleSpec(**fields)
        if isinstance(spec.rule, str) and ("rule" in got or "hparams" in got):
            _check_hparams(f"{key}.hparams", spec.rule, spec.hparams)
        out[label] = spec
    if not out:
        raise ValueError("missing key 'rules' (at least one [[rules]] table)")
    return tuple(out.values())


def _rule(key: str, name: str, folder: Path | None) -> Any:
    """A registry rule's name, or the factory a plug-in's ``module:factory`` names."""
    if ":" in name:
        return factory_of(name, key, folder)
    strict.check_known_name(f"rule at {key}", name, rule_lib.available())
    return name


def _check_hparams(key: str, name: str, hparams: Mapping[str, Any]) -> None:
    """A registry rule's hyperparameters, checked by building it (no program is compiled),
    with a placeholder support where the engine sets ``support = "auto"``."""
    hp = dict(hparams)
    if hp.get("support") == "auto":
        for k in ("support", "support_tail", "support_margin"):
            hp.pop(k, None)
        hp |= {"v_min": -1.0, "v_max": 1.0}
    try:
        rule_lib.make(name, **hp)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{key}: {err}") from None


def _claim(key: str, value: Any, rules: tuple, tasks: tuple) -> Claim:
    got = schema.read_table(key, value, schema.CLAIM, tuple(schema.CLAIM))
    _member(f"{key}.rule", got["rule"], [r.label for r in rules], "a rule label")
    _member(f"{key}.task", got["task"], [t.label for t in tasks], "a task label")
    return Claim(**got)


def _member(key: str, value: str, allowed: list[str], what: str) -> None:
    if value not in allowed:
        strict.fail(None, key, value, f"{what} of this file ({', '.join(allowed)})")


def _check_names(kwargs: dict, rules: tuple, tasks: tuple, track: str) -> None:
    """Every label the file names refers to one it defines: baselines, nulls, the rules'
    environments and tasks, the per-environment horizons."""
    both = sorted(set(kwargs["tuning_seeds"]) & set(kwargs["eval_seeds"]))
    if both:
        raise ValueError(f"seeds.tuning and seeds.evaluation must be disjoint, both hold {both}")
    labels = [r.label for r in rules]
    env_names = list(dict.fromkeys(t.env if track == "prediction" else t.mdp for t in tasks))
    task_labels = [t.label for t in tasks]
    _member("baseline", kwargs.get("baseline", "td"), labels, "a rule label")
    for k, v in kwargs.get("baselines", {}).items():
        _member("baselines (key)", k, labels, "a rule label")
        _member(f"baselines.{k}", v, labels, "a rule label")
    for key in ("nulls", "placebos"):  # a stale or misspelt label would drop a control
        for i, label in enumerate(kwargs.get(key, ())):
            _member(f"controls.{key}[{i}]", label, labels, "a rule label")
    for i, r in enumerate(rules):
        for j, env in enumerate(r.envs or ()):
            _member(f"rules[{i}].envs[{j}]", env, env_names, "an environment")
        for j, task in enumerate(r.tasks or ()):
            _member(f"rules[{i}].tasks[{j}]", task, task_labels, "a task label")
    for env, steps in kwargs.get("horizons", {}).items():
        _member("horizons.by_env (key)", env, env_names, "an environment")
        strict.check_int(None, f"horizons.by_env.{env}", steps, 1)
