"""Record Gymnasium's NormalizeObservation and NormalizeReward wrappers, for Cinder's wrapper test.

Usage: python tools/gymnasium_normalize_golden.py --out crates/cinder-env/tests/data/normalize

One JSON file per env: the same seeded episodes (random actions, automatic resets) through
`NormalizeObservation(gym.make(id))` and `NormalizeReward(gym.make(id), gamma=0.99)`. After
`freeze_after` steps both wrappers' `update_running_mean` is turned off, so the frozen path is
recorded too. Each event is a reset (seed, normalised observation) or a step (action,
normalised observation, normalised reward, flags); at the end the wrappers' statistics.
"""
import argparse
import json
import os

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import NormalizeObservation, NormalizeReward

CASES = [("CartPole-v1", 700), ("Acrobot-v1", 700), ("MountainCar-v0", 500),
         ("MountainCarContinuous-v0", 500), ("Pendulum-v1", 500)]
GAMMA = 0.99
FREEZE_AFTER = 0.8


def floats(x):
    return [float(v) for v in np.asarray(x, dtype=np.float32).reshape(-1)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="crates/cinder-env/tests/data/normalize")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for env_id, num_steps in CASES:
        obs_env = NormalizeObservation(gym.make(env_id))
        rew_env = NormalizeReward(gym.make(env_id), gamma=GAMMA)
        rng = np.random.Generator(np.random.PCG64(3))
        freeze_after = int(num_steps * FREEZE_AFTER)
        seed = 5
        obs, _ = obs_env.reset(seed=seed)
        rew_env.reset(seed=seed)
        events = [{"reset": True, "seed": seed, "obs": floats(obs)}]
        discrete = isinstance(obs_env.action_space, gym.spaces.Discrete)
        for t in range(num_steps):
            if t == freeze_after:
                obs_env.update_running_mean = False
                rew_env.update_running_mean = False
            if discrete:
                action = int(rng.integers(0, obs_env.action_space.n))
                recorded_action = action
            else:
                action = rng.uniform(-1.5, 1.5, size=(1,)).astype(np.float32)
                recorded_action = [float(action[0])]
            obs, _, terminated, truncated, _ = obs_env.step(action)
            _, reward, terminated_r, truncated_r, _ = rew_env.step(action)
            assert (terminated, truncated) == (terminated_r, truncated_r)
            events.append({"action": recorded_action, "obs": floats(obs), "reward": float(reward),
                           "terminated": bool(terminated), "truncated": bool(truncated)})
            if terminated or truncated:
                obs, _ = obs_env.reset()
                rew_env.reset()
                events.append({"reset": True, "seed": None, "obs": floats(obs)})
        record = {
            "env_id": env_id, "gymnasium_version": gym.__version__, "numpy_version": np.__version__,
            "gamma": GAMMA, "freeze_after": freeze_after, "events": events,
            "obs_mean": floats(obs_env.obs_rms.mean), "obs_var": floats(obs_env.obs_rms.var),
            "obs_count": float(obs_env.obs_rms.count),
            "return_mean": float(rew_env.return_rms.mean), "return_var": float(rew_env.return_rms.var),
        }
        path = os.path.join(args.out, f"{env_id}.json")
        with open(path, "w") as f:
            json.dump(record, f)
        print(f"{path}: {len(events)} events")


if __name__ == "__main__":
    main()
