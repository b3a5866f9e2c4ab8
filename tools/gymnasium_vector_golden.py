"""Record Gymnasium `SyncVectorEnv` trajectories in both autoreset modes, for Cinder's vector env test.

Usage: python tools/gymnasium_vector_golden.py --out crates/cinder-env/tests/data/vector

One JSON file per (env, mode): the batched reset observation, then per step the actions, the
observations, rewards, flags and (SAME_STEP) each sub-env's final observation or null.
"""
import argparse
import json
import os

import gymnasium as gym
import numpy as np

# (env, sub-envs, steps): enough steps for episodes to end (Acrobot and MountainCarContinuous
# under random actions end by truncation, at 500 and 999 steps).
CASES = [("CartPole-v1", 4, 300), ("MountainCar-v0", 3, 450), ("Pendulum-v1", 2, 450),
         ("Acrobot-v1", 3, 560), ("MountainCarContinuous-v0", 2, 1060)]
MODES = {"next_step": gym.vector.AutoresetMode.NEXT_STEP,
         "same_step": gym.vector.AutoresetMode.SAME_STEP}


def f32_rows(obs):
    return [[float(x) for x in row] for row in np.asarray(obs, dtype=np.float32)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="crates/cinder-env/tests/data/vector")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for env_id, num_envs, num_steps in CASES:
        for mode_name, mode in MODES.items():
            envs = gym.vector.SyncVectorEnv([lambda: gym.make(env_id)] * num_envs,
                                            autoreset_mode=mode)
            rng = np.random.Generator(np.random.PCG64(7))
            seed = 11
            obs, _ = envs.reset(seed=seed)
            record = {"env_id": env_id, "num_envs": num_envs, "mode": mode_name, "seed": seed,
                      "gymnasium_version": gym.__version__, "reset_obs": f32_rows(obs), "steps": []}
            discrete = isinstance(envs.single_action_space, gym.spaces.Discrete)
            for _ in range(num_steps):
                if discrete:
                    actions = rng.integers(0, envs.single_action_space.n, size=num_envs)
                    action_list = [int(a) for a in actions]
                else:
                    actions = rng.uniform(-2.0, 2.0, size=(num_envs, 1)).astype(np.float32)
                    action_list = [[float(a[0])] for a in actions]
                obs, rewards, terminated, truncated, info = envs.step(actions)
                final_obs = [None] * num_envs
                if "final_obs" in info:
                    for i in range(num_envs):
                        if info["_final_obs"][i]:
                            final_obs[i] = [float(x) for x in
                                            np.asarray(info["final_obs"][i], dtype=np.float32)]
                record["steps"].append({
                    "actions": action_list, "obs": f32_rows(obs),
                    "rewards": [float(r) for r in rewards],
                    "terminated": [bool(t) for t in terminated],
                    "truncated": [bool(t) for t in truncated],
                    "final_obs": final_obs,
                })
            envs.close()
            path = os.path.join(args.out, f"{env_id}_{mode_name}.json")
            with open(path, "w") as f:
                json.dump(record, f, separators=(",", ":"))
            ends = sum(sum(s["terminated"]) + sum(s["truncated"]) for s in record["steps"])
            print(f"{path}: {num_steps} steps, {ends} episode ends")


if __name__ == "__main__":
    main()
