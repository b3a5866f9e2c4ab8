"""Make extra NumPy reference vectors for cinder-env's port of numpy's random generator.

Usage: python tools/numpy_vectors.py > crates/cinder-env/tests/data/numpy_extra_vectors.json
       python tools/numpy_vectors.py --trig > crates/cinder-env/tests/data/numpy_f32_trig.json

For each seed, builds `np.random.default_rng(seed)` (= Generator(PCG64(SeedSequence(seed))), what
Gymnasium uses) and records an interleaved sequence of `uniform(low, high)` and `integers(0, n)`
draws, so that the 32-bit output buffer kept between calls is exercised too.
"""
import json
import sys

import numpy as np


def trig_vectors():
    """[x, np.sin(x), np.cos(x)] for float32 x, as bit patterns (NumPy's own float32 SIMD sin/cos,
    which Acrobot's reset observation goes through)."""
    rng = np.random.default_rng(7)
    xs = [rng.uniform(-0.1, 0.1, 4000), rng.uniform(-4.0, 4.0, 2000),
          rng.uniform(-200.0, 200.0, 1000), rng.uniform(-1e5, 1e5, 500),
          np.array([0.0, -0.0, 1e-30, np.pi / 4, np.pi / 2, np.pi, 71476.0625, 71477.0, 117435.992,
                    117436.0, 1e6, -1e7])]
    xs = np.concatenate(xs).astype(np.float32)
    rows = [[int(np.float32(x).view(np.uint32)), int(np.sin(x).view(np.uint32)),
             int(np.cos(x).view(np.uint32))] for x in xs]
    print(json.dumps(rows))
    sys.exit(0)


if "--trig" in sys.argv:
    trig_vectors()

SEEDS = [0, 5, 123456789, 2**32 - 1, 2**32, 2**32 + 5, 2**63 + 12345, 2**64 - 1]
PLAN = [("uniform", -0.05, 0.05), ("integers", 2), ("integers", 3), ("uniform", -0.6, -0.4),
        ("integers", 5), ("integers", 1000), ("uniform", -np.pi, np.pi), ("integers", 2**31 + 1),
        ("integers", 2**32), ("integers", 7), ("integers", 2**40), ("uniform", 0.0, 1.0),
        ("integers", 3), ("integers", 1), ("integers", 2**32 - 1), ("uniform", -1.0, 1.0)]

cases = []
for seed in SEEDS:
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(3):
        for item in PLAN:
            if item[0] == "uniform":
                _, low, high = item
                draws.append({"kind": "uniform", "low": low, "high": high,
                              "value": float(rng.uniform(low, high))})
            else:
                _, n = item
                draws.append({"kind": "integers", "n": n, "value": int(rng.integers(0, n))})
    cases.append({"seed": seed, "draws": draws})

print(json.dumps({"numpy_version": np.__version__, "cases": cases}, indent=1))
