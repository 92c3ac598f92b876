"""``pawkit view RUN_DIR [RUN_DIR…] [--export FILE.html] [--port P] [--model CKPT]``.

Builds one self-contained HTML page over the runs (pawkit/view/: curves of every run overlaid,
episodes turn by turn, the world model's view of each transition) and either writes it
(``--export``) or serves it on http://127.0.0.1:P (the stdlib's http.server, loopback only)
until Ctrl-C. ``--model CKPT`` recomputes the WM view of every dumped episode with that model
(a checkpoint, a run folder or a model name): the rollout's own code rebuilds each step's
prompt and target from the dump and the run's config (pawkit/train/wm_view.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from pawkit.protocol import UsageError


def add_command(subparsers) -> argparse.ArgumentParser:
    help = "open runs in a browser: curves, episodes turn by turn, the world model's view"
    p = subparsers.add_parser("view", help=help, description=help)
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders (trainer.output_dir); several are overlaid")
    p.add_argument("--export", metavar="FILE.html", help="write one self-contained HTML file and exit")
    p.add_argument("--port", type=int, default=8765, help="serve on 127.0.0.1:PORT (default 8765; 0 = any free port)")
    p.add_argument("--model", metavar="CKPT", help="recompute the WM view of the dumped episodes with this model")
    p.set_defaults(func=cmd_view)
    return p


def rescored_views(folder: Path, model_name: str) -> dict[int, list[dict]]:
    """Step → WM views of the run's dumped episodes under ``model_name`` (the run's config otherwise)."""
    from pawkit.config import Config
    from pawkit.protocol import Episode
    from pawkit.rollout.envpool import build_env
    from pawkit.train.models import load_model
    from pawkit.train.wm_view import rescore_episodes
    from pawkit.view.data import dumped_steps, load_run

    run = load_run(folder)
    config = Config.model_validate(run["config"])
    config = config.model_copy(update={"model": config.model.model_copy(update={"name": model_name})})
    env = build_env(config.env.name, config.env.options)
    try:
        model, tokenizer = load_model(config.model)
        views = {}
        for step, path in dumped_steps(folder).items():
            episodes = [Episode.from_json(line) for line in path.read_text().splitlines() if line.strip()]
            views[step] = rescore_episodes(model, tokenizer, env, config, episodes)
    finally:
        env.close()
    return views


def cmd_view(args: argparse.Namespace) -> int:
    from pawkit.view.data import load_run
    from pawkit.view.page import plotly_js, write

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0–65535, got {args.port}")
    if args.export and not args.export.endswith((".html", ".htm")):
        raise UsageError(f"--export must name an .html file, got {args.export}")
    if args.model and len(args.runs) != 1:
        raise UsageError("--model recomputes one run's WM view: give exactly one RUN_DIR")
    folders = [Path(r) for r in args.runs]
    runs = [load_run(f) for f in folders]  # a folder that is not a run: one line, before any model loads
    plotly_js()  # the missing-package hint before any work
    if args.model:
        runs = [load_run(folders[0], rescored_views(folders[0], args.model))]
    if args.export:
        print(f"wrote {write(runs, Path(args.export))}")
        return 0
    return serve(write(runs, Path(tempfile.mkdtemp(prefix="pawkit-view-")) / "index.html"), args.port)


def serve(page: Path, port: int) -> int:
    """Serve ``page``'s folder on 127.0.0.1:``port`` until interrupted."""
    import functools
    import http.server

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(page.parent))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); pick another --port") from None
    print(f"pawkit view: http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
