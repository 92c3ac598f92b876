"""The ``pawkit`` command line: envs | plugins | config | play | preview | train | eval | sweep | version.

Mistakes a user can fix (config keys, env or plugin names, paths) print one line and exit 2;
``--debug`` shows the traceback instead. The training stack (torch) is imported inside the
commands that need it, so ``pawkit envs``, ``plugins`` and ``config`` start in half a second.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from pawkit import __version__
from pawkit.config import dump_config, env_config_file, load_config, load_config_with_sources, run_config_file
from pawkit.config_reference import explain
from pawkit.experiments.sweep import add_command as add_sweep_command
from pawkit.plugins import HOOKS, broken_plugins, load_plugins, pm, registry
from pawkit.protocol import UsageError, check_split
from pawkit.rollout.play import POLICIES, Summary, play_episode

USER_ERRORS: tuple[type[BaseException], ...] = (UsageError,)  # ConfigError, PluginError, adapters' data errors
# `pawkit train` exit codes: 0 finished (trainer.steps, or early stop), 1 the run stopped itself
# (TrainingStopped), 2 a user mistake (one line), 3 stopped before trainer.steps by SIGINT/SIGTERM
# with its checkpoint kept (`--resume` continues; `pawkit sweep` resumes it), 130 a second Ctrl-C.
EXIT_INTERRUPTED = 3


def _console():
    return Console()


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    table = Table(title=Text(title))
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(Text(str(cell)) for cell in row))  # Text: plugin/env text is never rich markup ("[p ≤ ρ]")
    _console().print(table)


def cmd_version(args: argparse.Namespace) -> int:
    print(f"pawkit {__version__}")
    return 0


def _env_status(entry) -> str:
    """The env's check, given the ``env.options`` of its resolved default config; a config that
    does not load is the status. The config is loaded only where it can matter — a check that
    takes options, a plugin-shipped config, a ./configs file — not for every built-in env of
    `pawkit envs` (pawkit's own configs are checked by its tests)."""
    local = env_config_file(entry.name, Path("configs"))
    if local is not None and local.resolve() == (env_config_file(entry.name) or Path()).resolve():
        local = None  # ./configs is pawkit's own (run from the repository)
    if not (entry.check_takes_options or entry.config is not None or local is not None):
        return entry.status()
    try:
        options = load_config(entry.name).env.options
    except UsageError as exc:
        return f"config problem: {str(exc).splitlines()[0]}"
    return entry.status(options)


def cmd_envs(args: argparse.Namespace) -> int:
    entries = [
        {"name": e.name, "plugin": e.plugin, "status": _env_status(e), "description": e.description}
        for e in registry("env")
    ]
    if args.json:
        print(json.dumps(entries))
    else:
        _table("pawkit environments", ["name", "plugin", "status", "description"], [list(e.values()) for e in entries])
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from pawkit.strategies import OPTIONS_SECTION, describe_options

    def entry(kind: str, e) -> dict[str, Any]:
        out = {"name": e.name, "plugin": e.plugin, "description": e.description}
        if args.explain and kind in OPTIONS_SECTION:  # imports the strategy (and torch): only when asked
            out["options"] = describe_options(e.obj, kind, f"{kind} {e.name!r} of plugin {e.plugin!r}")
        return out

    data: dict[str, Any] = {kind: [entry(kind, e) for e in registry(kind)] for kind in HOOKS}
    data["broken"] = dict(broken_plugins)
    if args.json:
        print(json.dumps(data))
        return 0
    rows = [[kind, e["name"], e["plugin"], e["description"]] for kind in HOOKS for e in data[kind]]
    _table("pawkit plugins", ["hook", "name", "plugin", "description"], rows)
    if args.explain:
        options = [[o["key"], f"{kind} {e['name']}", o["type"], "required" if o["required"] else json.dumps(o["default"]), o["description"]]
                   for kind in HOOKS for e in data[kind] for o in e.get("options", [])]
        if options:
            _table("strategy options (set as key=value)", ["key", "strategy", "type", "default", "description"], options)
        else:
            print("no installed strategy declares options")
    for name, reason in broken_plugins.items():
        print(f"plugin {name!r} failed to load: {reason}", file=sys.stderr)
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    config, sources = load_config_with_sources(args.env, args.config, args.overrides)
    registry("env").get(config.env.name)  # an unknown env: one line listing the registered ones
    if not args.explain:
        print(dump_config(config), end="")
        return 0
    rows = explain(config, sources)
    if sys.stdout.isatty():
        table = Table(title=Text(f"pawkit config ({config.env.name})"))
        table.add_column("key", no_wrap=True)
        table.add_column("value", max_width=32, overflow="fold")
        table.add_column("set by", max_width=40, overflow="fold")
        table.add_column("description")
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))  # Text: no rich markup in "[...]" values
        _console().print(table)
    else:  # one line per key, columns aligned: for grep, less and pipes
        key_width = max(len(key) for key, *_ in rows)
        value_width = min(max(len(value) for _, value, _, _ in rows), 24)
        source_width = max(len(source) for _, _, source, _ in rows)
        for key, value, source, description in rows:
            print(f"{key:<{key_width}}  {value:<{value_width}}  {source:<{source_width}}  {description}")
    return 0


def require_ready(name: str, options: dict[str, Any]) -> None:
    """A UsageError line unless env ``name`` is registered and its check passes with ``options``."""
    if (status := registry("env").get(name).status(options)) != "ready":
        raise UsageError(f"environment {name!r} cannot run here: {status}")


def make_env(name: str, options: dict[str, Any]):
    """Build a registered env, turning an unavailable one into a one-line user error."""
    require_ready(name, options)
    from pawkit.rollout.envpool import build_env

    return build_env(name, options)


def _command_config(args: argparse.Namespace, overrides: list[str], run: Path | None = None):
    """The config of play/eval: ``--config`` files (a run folder or checkpoint stands for its
    run's config.yaml), else ``run``'s (a run folder), else the env's; one stderr line names a
    run config used. No --env and nothing naming the env is one UsageError line."""
    files = list(args.config or ([run] if run is not None else []))
    if args.env is None and not files:
        raise UsageError(f"pawkit {args.command} needs --env ENV, or a run (its config.yaml names the env)")
    config = load_config(args.env, files, overrides)
    for path in filter(None, (run_config_file(f) for f in files if Path(f).expanduser().is_dir())):
        print(f"using the run config {path} (env {config.env.name}); --config FILE or another --env to use another",
              file=sys.stderr)
    return config


def cmd_play(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        raise UsageError(f"--episodes must be at least 1, got {args.episodes}")
    config = _command_config(args, args.overrides)
    if args.policy not in POLICIES:
        raise UsageError(f"unknown policy {args.policy!r}; choose from {', '.join(POLICIES)}")
    policy = POLICIES[args.policy](args.seed)
    episodes = []
    with make_env(config.env.name, config.env.options) as env:
        if args.policy == "expert" and not env.has_expert:
            raise UsageError(f"environment {env.name!r} has no expert policy; use --policy random or human")
        check_split(env, args.split)
        tasks = list(env.tasks(args.split))
        max_steps = config.rollout.max_steps or env.max_steps
        progress = _progress(args.json or args.policy == "human")
        with progress:
            job = progress.add_task(f"playing {env.name}", total=args.episodes)
            for i in range(args.episodes):
                task = tasks[(args.seed + i) % len(tasks)] if tasks else None
                episode = play_episode(env, policy, task, args.seed + i, max_steps, group_id=str(i))
                episodes.append(episode)
                progress.advance(job)
                if args.policy == "human":
                    print(f"episode {i}: return {episode.return_:.3f}, success {episode.success}")
    summary = Summary.of(config.env.name, episodes)
    if args.json:
        print(json.dumps(asdict(summary)))
    else:
        _table("play summary", ["metric", "value"], [[k, f"{v}"] for k, v in asdict(summary).items()])
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    from pawkit.train.preview import run_preview  # transformers: only for this command

    config = load_config(args.env, args.config, args.overrides)
    with make_env(config.env.name, config.env.options) as env:
        run_preview(env, config, args.policy, args.steps, args.seed, args.json, _console())
    return 0


def _progress(disabled: bool):
    return Progress(
        TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        disable=disabled,
    )


class _ResumeFlag(argparse.Action):
    """``--resume`` (True) or ``--resume=auto``; a KEY=VALUE right after a bare ``--resume`` stays an override."""

    def __call__(self, parser, namespace, value, option_string=None):
        if value is not None and value != "auto" and "=" not in value:
            raise UsageError(f"--resume takes no value or =auto, not {value!r}")
        namespace.resume = "auto" if value == "auto" else True
        namespace.resume_overrides = [value] if value and "=" in value else []


def cmd_train(args: argparse.Namespace) -> int:
    from pawkit.train.checkpoint import NonFiniteModel
    from pawkit.train.trainer import (  # torch: only for the commands that train
        TrainingStopped,
        train,
    )

    config = load_config(args.env, args.config, [*args.overrides, *getattr(args, "resume_overrides", [])])
    require_ready(config.env.name, config.env.options)  # fail fast on a bad name, before loading a model
    from pawkit.config import check_writable_dir

    check_writable_dir(config.trainer.output_dir, "trainer.output_dir")  # before the run folder is made
    try:
        history = train(config, resume=args.resume, show_progress=not args.quiet, overwrite=args.overwrite)
    except (TrainingStopped, NonFiniteModel) as exc:  # the run itself decided to stop; checkpoints are kept
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if getattr(history, "interrupted", False):  # a signal stopped it before trainer.steps: not finished
        print(f"stopped at step {int(history[-1]['step'])} of {config.trainer.steps} by a signal; the checkpoint "
              f"is kept: continue with --resume (exit code {EXIT_INTERRUPTED})", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pawkit", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    def env_args(p: argparse.ArgumentParser, required: bool = True) -> None:
        p.add_argument("--env", required=required, help="registered environment name (see `pawkit envs`)")
        p.add_argument(
            "--config", action="append",
            help="YAML config file, or a run folder for its config.yaml (default: the env's config, then "
            "./configs/<env>.yaml); repeat to merge several in order",
        )
        p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides, e.g. trainer.steps=3")

    command("version", cmd_version, "print the pawkit version")
    command("envs", cmd_envs, "list registered environments").add_argument("--json", action="store_true")
    plugins_cmd = command("plugins", cmd_plugins, "list registered strategies per hook")
    plugins_cmd.add_argument("--json", action="store_true")
    plugins_cmd.add_argument("--explain", action="store_true", help="also list each strategy's options (imports the strategies)")

    config = sub.add_parser("config", help="inspect configuration")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = config_sub.add_parser("show", help="print the resolved config")
    show.set_defaults(func=cmd_config_show)
    env_args(show)
    show.add_argument("--explain", action="store_true", help="a table of every key, its value and its description")

    play = command("play", cmd_play, "play episodes with a human, random or expert policy")
    env_args(play, required=False)
    play.add_argument("--policy", default="random", help="human | random | expert")
    play.add_argument("--episodes", type=int, default=1)
    play.add_argument("--seed", type=int, default=0)
    play.add_argument("--split", default="train")
    play.add_argument("--json", action="store_true")

    preview = command("preview", cmd_preview, "show exactly what the model sees per step: prompt, actions, reply, anchor, WM target")
    env_args(preview)
    preview.add_argument("--policy", default="expert", help="expert | random")
    preview.add_argument("--steps", type=int, default=3, help="steps to show (fewer if the episode ends first)")
    preview.add_argument("--seed", type=int, default=0, help="picks the task (as `play`) and seeds the random policy")
    preview.add_argument("--json", action="store_true", help="one JSON object per step")

    train = command("train", cmd_train, "train an agent by RL (+ PaW when paw.enabled=true)")
    env_args(train)
    train.add_argument(
        "--resume", nargs="?", action=_ResumeFlag, default=False, metavar="auto",
        help="continue from the newest intact checkpoint (refused without one); --resume=auto: if there is one, else start fresh",
    )
    train.add_argument("--overwrite", action="store_true", help="delete an earlier run in trainer.output_dir and start over")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    __import__("pawkit.commands.evaluate", fromlist=["add_command"]).add_command(sub)  # pawkit/commands/evaluate.py

    add_sweep_command(sub)
    __import__("pawkit.commands.view", fromlist=["add_command"]).add_command(sub)  # pawkit/commands/view.py
    pm.hook.register_commands(subparsers=sub)
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Like ``parse_args``, but KEY=VALUE overrides may also follow an option (``--quiet a=1``).

    argparse fills a ``nargs="*"`` positional once; overrides after a later option would be
    rejected as unrecognized (subparsers rule out ``parse_intermixed_args``).
    """
    args, extra = parser.parse_known_args(argv)
    stray = [a for a in extra if not (hasattr(args, "overrides") and "=" in a and not a.startswith("-"))]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = [*(args.overrides or []), *extra]
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    if not debug:  # PEFT asks transformers for a deprecated property on every LoRA load
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
    try:
        load_plugins()
        args = parse(build_parser(), argv)
        return int(args.func(args) or 0)
    except USER_ERRORS as exc:
        if debug:
            raise
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `pawkit config show | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
