"""``pawkit eval``: evaluate a model or checkpoint on an env's split (moved here from cli.py).

    pawkit eval --model CKPT [--env ENV] [--episodes N] [--split S] [--json] [KEY=VALUE ...]
    pawkit eval --engine openai --base-url URL --model NAME --env ENV [--api-key-env VAR] ...

``--engine local`` (default): ``--model`` is a built-in name, HF id or a checkpoint (a run or
step folder of a pawkit run: that run's config.yaml is the base config), played by the run's
``rollout.engine`` (pawkit/train/evaluate.py). ``--engine openai``: ``--model`` is the name a
served OpenAI-compatible endpoint at ``--base-url`` (``http://host:port/v1``) knows — a local
vLLM server or a hosted API — played as a prompting baseline (pawkit/rollout/vllm_openai.py:
text in and out, the action list shown in the prompt, no restriction, no WM accuracy).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pawkit.protocol import UsageError


def add_command(subparsers) -> argparse.ArgumentParser:
    help = "evaluate a model or checkpoint, or a served model through an OpenAI-compatible API"
    p = subparsers.add_parser("eval", help=help, description=help)
    p.add_argument("--env", help="registered environment name (see `pawkit envs`)")
    p.add_argument("--config", action="append", help="YAML config file, or a run folder for its config.yaml (default: the "
                   "env's config, then ./configs/<env>.yaml); repeat to merge several in order")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides, e.g. rollout.max_steps=3")
    p.add_argument("--model", required=True, help="built-in name, HF id, or checkpoint path (a run, step or model "
                   "folder of a pawkit run: that run's config.yaml is the base config unless --config is given); "
                   "with --engine openai: the served model's name")
    p.add_argument("--engine", choices=("local", "openai"), default="local",
                   help="local = load --model here (rollout.engine samples); openai = an OpenAI-compatible server at --base-url")
    p.add_argument("--base-url", help="--engine openai: the API's base URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="--engine openai: environment variable holding the API key (if any)")
    p.add_argument("--episodes", type=int, default=32)
    p.add_argument("--split", default=None)
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_eval)
    return p


def cmd_eval(args: argparse.Namespace) -> int:
    from pawkit.cli import _command_config, _table, require_ready
    from pawkit.config import read_yaml, run_config_file
    from pawkit.train.evaluate import (  # torch: only for the commands that train
        EvaluationFailed,
        evaluate,
    )
    from pawkit.train.models import checkpoint_model, model_path_problem

    if args.episodes < 1:
        raise UsageError(f"--episodes must be at least 1, got {args.episodes}")
    if args.engine == "openai":
        if not args.base_url:
            raise UsageError("--engine openai needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        config = _command_config(args, list(args.overrides))
        require_ready(config.env.name, config.env.options)
        try:
            result = evaluate_served(config, args.base_url, args.model, os.environ.get(args.api_key_env) or None,
                                     args.episodes, args.split, not args.quiet)
        except EvaluationFailed as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    else:
        model = args.model
        if not Path(model).expanduser().exists() and (problem := model_path_problem(model)):
            raise UsageError(problem)  # a missing path: say so before asking for an env
        resolved, kind = checkpoint_model(Path(model).expanduser())  # a run or step folder given for its model/
        # a step folder holds a config.json of its own (not a model's): only a run folder could be a model folder too
        if resolved is not None and (kind == "a checkpoint folder" or not (Path(model).expanduser() / "config.json").exists()):
            print(f"{model} is {kind}: evaluating {resolved}", file=sys.stderr)
            model = str(resolved)
        overrides = list(args.overrides) + [f"model.name={model}"]
        run = run_config_file(args.model) if not args.config else None  # a checkpoint of a run: that run's config
        if run is not None and args.env is not None:  # another env than the run's: that env's config
            run_env = read_yaml(run).get("env")
            run = run if isinstance(run_env, dict) and run_env.get("name") == args.env else None
        run = run.parent if run is not None else None
        config = _command_config(args, overrides, run)
        require_ready(config.env.name, config.env.options)
        try:
            result = evaluate(config, episodes=args.episodes, split=args.split, show_progress=not args.quiet)
        except EvaluationFailed as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(result))
    else:
        _table("eval summary", ["metric", "value"], [[k, f"{v}"] for k, v in result.items()])
    return 0


def evaluate_served(config, base_url: str, model: str, api_key: str | None, episodes: int, split: str | None,
                    show_progress: bool) -> dict:
    """``episodes`` episodes of ``config``'s env played by the served ``model`` (summary as
    ``pawkit eval``: success rate, return, ... plus ``requests``, the chat calls made)."""
    from pawkit.protocol import check_split
    from pawkit.rollout.envpool import build_env, make_env_pool
    from pawkit.rollout.vllm_openai import OpenAIEngine
    from pawkit.train.evaluate import EvaluationFailed, pass_slots, play_split, sampled_evaluation, summarize
    from pawkit.train.models import byte_tokenizer

    # the prompt must list the actions (a served model cannot be restricted token by token)
    config = config.model_copy(update={"rollout": config.rollout.model_copy(update={"constrained": False})})
    env = build_env(config.env.name, config.env.options)
    split = split or config.env.eval_split
    try:
        check_split(env, split)
        if not list(env.tasks(split)):
            raise UsageError(f"split {split!r} of {env.name} has no tasks to evaluate on")
        engine = OpenAIEngine(base_url, model, config.rollout, byte_tokenizer(), api_key=api_key)
        slots = min(episodes, config.rollout.tasks_per_step * config.rollout.group_size)
        sampled: dict = {}
        with make_env_pool(config.env.name, config.env.options, max(slots, pass_slots(config)), config.rollout.num_workers,
                           config.rollout.step_timeout) as pool:
            batch = play_split(env, pool, engine, config, episodes, split, slots, "auto" if show_progress else "off")
            if config.trainer.eval_pass_k:  # pass@k at rollout.temperature, as the local engine
                sampled, _ = sampled_evaluation(env, pool, engine, config, split, "auto" if show_progress else "off")
    finally:
        env.close()
    kept = sum(e.end_reason != "env_error" for e in batch.episodes)
    if batch.env_error_messages and not kept:
        raise EvaluationFailed(f"all {len(batch.episodes)} evaluation episodes hit env errors; the first: "
                               f"{batch.env_error_messages[0].splitlines()[0]}")
    result = summarize(config.env.name, batch.episodes)
    result.update(sampled)
    result.update({"split": split, "engine": "openai", "model": model, "requests": engine.requests})
    return result
