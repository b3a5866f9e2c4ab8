"""Reads a run directory's TensorBoard event files with TensorBoard's own reader and prints
every scalar as JSON: {"tag": [[step, value], ...], ...}.

Used by `crates/cinder-rl/tests/ppo_runs.rs` (the `tensorboard` package from PyPI):

    python tools/tensorboard_scalars.py runs/CartPole-v1_ppo-s1-...
"""

import json
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: tensorboard_scalars.py RUN_DIR")
    # size_guidance 0: keep every event (the default samples 10,000 per tag).
    acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
    acc.Reload()
    out = {
        tag: [[e.step, e.value] for e in acc.Scalars(tag)]
        for tag in acc.Tags()["scalars"]
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
