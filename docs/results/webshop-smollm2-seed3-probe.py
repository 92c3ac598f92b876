"""The seed-3 probe of docs/results.md ("The SmolLM2 study", Reading): two checkpoints played
greedily on the same first N held-out tasks, episode by episode, to see which actions differ.

A record of how that paragraph's numbers were made, not a pawkit command (no test covers it).
From the repository root, after the study's seed-3 runs exist under results/ (~2.5 min on 2 cores):

    python docs/results/webshop-smollm2-seed3-probe.py \\
        results/webshop-smollm2/runs/grpo/seed3,results/webshop-smollm2/runs/grpo+paw/seed3 50

Writes docs/results/webshop-smollm2-seed3-probe.json: run -> task id -> [return, [actions]].
"""

import json
import sys
from pathlib import Path

from pawkit.config import load_config
from pawkit.rollout.engines import build_engine, close_engine
from pawkit.rollout.envpool import build_env, make_env_pool
from pawkit.train.evaluate import eval_slots, play_split
from pawkit.train.models import checkpoint_model, load_model

runs, episodes = sys.argv[1].split(","), int(sys.argv[2]) if len(sys.argv) > 2 else 50
out = {}
for run in runs:
    checkpoint, _ = checkpoint_model(Path(run))  # the run's last complete checkpoint
    config = load_config(None, str(Path(run) / "config.yaml"), [f"model.name={checkpoint}"])
    env = build_env(config.env.name, config.env.options)
    model, tokenizer = load_model(config.model)
    model.eval()
    slots = eval_slots(config, episodes)
    with make_env_pool(config.env.name, config.env.options, slots, config.rollout.num_workers, config.rollout.step_timeout) as pool:
        generator = build_engine(model, tokenizer, config.rollout)
        batch = play_split(env, pool, generator, config, episodes, config.env.eval_split, slots, "off")
        close_engine(generator)
    out[run] = {e.task_id: [round(e.return_, 3), [t.action.command for t in e.transitions]] for e in batch.episodes}
    print(f"{run}: greedy mean return {sum(v[0] for v in out[run].values()) / len(out[run]):.3f}")
Path("docs/results/webshop-smollm2-seed3-probe.json").write_text(json.dumps(out, indent=1) + "\n")
a, b = (out[run] for run in runs[:2])
differ = [t for t in a if a[t][1] != b[t][1]]
no_buy = [t for t in differ if b[t][1][-1] != "click[buy now]"]
print(f"{len(differ)} of {len(a)} episodes differ; in {len(no_buy)} of them the second run's last action is not buy-now")
print(f"last action not buy-now: {sum(v[1][-1] != 'click[buy now]' for v in a.values())} (first run), "
      f"{sum(v[1][-1] != 'click[buy now]' for v in b.values())} (second run)")
