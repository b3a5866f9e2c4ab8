"""Gymnasium's env throughput, for `cinder-bench envs` (which runs this script in the same run).

Usage: python -W ignore tools/bench_gymnasium.py --steps 100000 [--envs CartPole-v1,...]

Prints JSON: versions, then per env and setting (single env; SyncVectorEnv with 8 and 64 envs in
SAME_STEP autoreset mode, as Cinder's vector env is measured) the steps, wall and CPU seconds.
Random actions are generated beforehand so that sampling is not timed; resets are included.
Each figure is the median of `--repeats` runs after one warm-up run.
"""
import argparse
import json
import platform
import time

import gymnasium as gym
import numpy as np

ENVS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1"]


def actions_for(space, count, seed, batch=None):
    rng = np.random.Generator(np.random.PCG64(seed))
    shape = (count,) if batch is None else (count, batch)
    if isinstance(space, gym.spaces.Discrete):
        acts = rng.integers(0, space.n, size=shape)
        return [int(a) for a in acts] if batch is None else list(acts)
    return list(rng.uniform(space.low[0], space.high[0], size=shape + space.shape).astype(np.float32))


def timed(fn, repeats):
    """Median (by wall time) of `repeats` runs of `fn`, after one untimed warm-up run."""
    fn()
    runs = []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        steps = fn()
        runs.append({"steps": steps, "wall_s": time.perf_counter() - w0,
                     "cpu_s": time.process_time() - c0})
    runs.sort(key=lambda r: r["wall_s"])
    return runs[len(runs) // 2]


def bench_single(env_id, steps, repeats):
    env = gym.make(env_id)
    acts = actions_for(env.action_space, steps, 7)
    env.reset(seed=0)

    def run():
        for a in acts:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset()
        return len(acts)

    return timed(run, repeats)


def bench_vector(env_id, steps, num_envs, repeats):
    envs = gym.vector.SyncVectorEnv([lambda: gym.make(env_id)] * num_envs,
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    calls = max(1, steps // num_envs)
    acts = actions_for(envs.single_action_space, calls, 7, batch=num_envs)
    envs.reset(seed=0)

    def run():
        for a in acts:
            envs.step(np.asarray(a))
        return calls * num_envs

    result = timed(run, repeats)
    envs.close()
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--envs", default=",".join(ENVS))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = []
    for env_id in args.envs.split(","):
        results.append({"env_id": env_id, "num_envs": 1,
                        "measurement": bench_single(env_id, args.steps, args.repeats)})
        for n in (8, 64):
            results.append({"env_id": env_id, "num_envs": n,
                            "measurement": bench_vector(env_id, args.steps, n, args.repeats)})
    print(json.dumps({"gymnasium_version": gym.__version__, "numpy_version": np.__version__,
                      "python_version": platform.python_version(), "results": results}))


if __name__ == "__main__":
    main()
