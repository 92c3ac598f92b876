"""Run under `accelerate launch`: train, then write this process's parameter digest.

tests/test_distributed.py compares the digests of both processes.
"""

import hashlib
import json
import sys
from pathlib import Path

from pawkit.config import load_config
from pawkit.train.distributed import Distributed
from pawkit.train.trainer import Trainer, train

out = Path(sys.argv[1])
cfg = load_config("gridnav", overrides=[f"trainer.output_dir={out / 'run'}", *sys.argv[2:]])
history = train(cfg, show_progress=False)
rank = Distributed().rank
trainer = Trainer(cfg, resume=True)  # reload what rank 0 saved: the checkpoint must hold the trained weights
digest = hashlib.sha256()
for name, p in sorted(trainer.model.named_parameters()):
    digest.update(name.encode() + p.detach().float().numpy().tobytes())
trainer.close()
(out / f"rank{rank}.json").write_text(json.dumps({"digest": digest.hexdigest(), "history": history}))
