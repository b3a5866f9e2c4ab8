"""envpool's env throughput, for `cinder-bench envs` (which runs this script in the same run).

Usage: python -W ignore tools/bench_envpool.py --num-envs 1024 --threads 1,2 [--envs CartPole-v1,...]

Prints JSON: versions, then per env and thread count the steps, wall and CPU seconds of
synchronous stepping (`batch_size == num_envs`, envpool's automatic reset) of `--num-envs` envs
on `num_threads` threads: the throughput a training loop sees, Python's per-call cost included.
Random actions are generated beforehand so that sampling is not timed. Each figure is the
median of `--repeats` runs after one warm-up run.
"""
import argparse
import json
import platform

import envpool
import numpy as np

from bench_gymnasium import timed  # same timing (median of repeats after a warm-up)

ENVS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1"]


def bench(env_id, num_envs, threads, steps, repeats):
    env = envpool.make_gymnasium(env_id, num_envs=num_envs, batch_size=num_envs,
                                 num_threads=threads, seed=0)
    space = env.action_space
    rng = np.random.Generator(np.random.PCG64(7))
    if hasattr(space, "n"):
        acts = [rng.integers(0, space.n, size=num_envs).astype(np.int32) for _ in range(16)]
    else:
        acts = [rng.uniform(space.low[0], space.high[0], size=(num_envs,) + space.shape)
                .astype(np.float32) for _ in range(16)]
    calls = max(1, steps // num_envs)
    env.reset()

    def run():
        for c in range(calls):
            env.step(acts[c % len(acts)])
        return calls * num_envs

    result = timed(run, repeats)
    env.close()
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--num-envs", type=int, default=1024)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--envs", default=",".join(ENVS))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = []
    for env_id in args.envs.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            results.append({"env_id": env_id, "num_envs": args.num_envs, "threads": threads,
                            "measurement": bench(env_id, args.num_envs, threads, args.steps,
                                                 args.repeats)})
    print(json.dumps({"envpool_version": envpool.__version__, "numpy_version": np.__version__,
                      "python_version": platform.python_version(), "results": results}))


if __name__ == "__main__":
    main()
