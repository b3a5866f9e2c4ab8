"""Record reference episodes from Gymnasium for Cinder's conformance test.

Usage (needs `pip install gymnasium==1.4.0 numpy`):

    python tools/gymnasium_golden.py --out tests/golden

Writes one JSON file per episode:

    {"env_id": ..., "gymnasium_version": ..., "seed": ...,
     "reset_obs": [...],
     "steps": [{"action": ..., "obs": [...], "reward": ..., "terminated": ..., "truncated": ...}]}

`action` is an int for discrete envs and a list of floats for continuous ones; the floats are the
exact float32 values handed to Gymnasium (printed as float64, which round-trips). Episodes run
under `gym.make(env_id)` (its registered time limit) until terminated or truncated.

Each env is driven by several policies so that the files cover random play, termination and
truncation, and (for continuous envs) actions outside the action bounds, which Gymnasium clips
inside its dynamics. Policy randomness comes from numpy's PCG64 with its own seed, independent of
the env's seed.
"""

import argparse
import json
import math
import os

import gymnasium as gym
import numpy as np


def obs_list(obs):
    # float32 -> float64 is exact; repr of a float64 round-trips.
    return [float(x) for x in np.asarray(obs, dtype=np.float32).ravel()]


# --- Policies: (obs, rng) -> action -------------------------------------------------------

def random_discrete(n):
    return lambda obs, rng: int(rng.integers(0, n))


def random_box(low, high):
    def act(obs, rng):
        return np.array([rng.uniform(low, high)], dtype=np.float32)
    return act


def cartpole_balance(obs, rng):
    # A linear controller that keeps the pole up for the whole episode (truncation at 500).
    x, x_dot, theta, theta_dot = obs
    return int(theta + 0.5 * theta_dot + 0.01 * x + 0.1 * x_dot > 0)


def acrobot_pump(obs, rng):
    # Pump energy: torque along the second joint's velocity (reaches the line in ~100 steps).
    return 2 if obs[5] > 0 else 0


def mountain_car_momentum(obs, rng):
    return 2 if obs[1] >= 0 else 0


def mcc_momentum(scale):
    # Push along the velocity; scale > 1 exercises the clamping of out-of-range actions.
    def act(obs, rng):
        return np.array([scale if obs[1] >= 0 else -scale], dtype=np.float32)
    return act


def pendulum_swing(obs, rng):
    cos_t, sin_t, theta_dot = obs
    return np.array([np.clip(3.0 * np.sign(theta_dot) * (1.0 - cos_t) - 2.0 * sin_t, -3.0, 3.0)],
                    dtype=np.float32)


PLANS = {
    "CartPole-v1": [("random", random_discrete(2), [0, 1, 2, 42, 123]),
                    ("balance", cartpole_balance, [0, 7, 2024])],
    "Acrobot-v1": [("random", random_discrete(3), [0, 1, 2, 3, 42, 77]),
                   ("pump", acrobot_pump, [0, 5, 99])],
    "MountainCar-v0": [("random", random_discrete(3), [0, 1, 42]),
                       ("momentum", mountain_car_momentum, [0, 3, 77])],
    "MountainCarContinuous-v0": [("random", random_box(-1.0, 1.0), [0, 42]),
                                 ("random_wide", random_box(-2.0, 2.0), [1]),
                                 ("momentum", mcc_momentum(1.0), [0, 9]),
                                 ("momentum_clipped", mcc_momentum(1.7), [3, 11])],
    "Pendulum-v1": [("random", random_box(-2.0, 2.0), [0, 1, 2, 3, 4, 42]),
                    ("random_wide", random_box(-4.0, 4.0), [5, 6, 7, 8]),
                    ("swing", pendulum_swing, [0, 8])],
}


def pendulum_pow_trap_seeds(count=3, search=20000):
    """Seeds whose first Pendulum-v1 reward differs between Python's `x**2` (libm pow) and `x*x`.

    Gymnasium computes `angle_normalize(th)**2 + 0.1*thdot**2`; glibc's pow(x, 2) is not always
    the correctly rounded square, so a port that writes `x*x` fails on these seeds. Including them
    makes the conformance test catch that mistake.
    """
    from gymnasium.envs.classic_control.pendulum import angle_normalize
    found = []
    env = gym.make("Pendulum-v1")
    for seed in range(search):
        env.reset(seed=seed)
        th, thdot = env.unwrapped.state
        a = angle_normalize(th)
        with_pow = a ** 2 + 0.1 * thdot ** 2
        with_mul = a * a + 0.1 * (thdot * thdot)
        if with_pow != with_mul:
            found.append(seed)
            if len(found) == count:
                break
    env.close()
    return found


def acrobot_f32_trap_seeds(count=3, search=20000):
    """Seeds whose Acrobot-v1 reset observation differs between NumPy's float32 cos/sin (what
    Gymnasium uses on the float32 reset state) and the float64 ones rounded to float32."""
    found = []
    env = gym.make("Acrobot-v1")
    for seed in range(search):
        env.reset(seed=seed)
        s = env.unwrapped.state
        ours = [np.cos(s[0]), np.sin(s[0]), np.cos(s[1]), np.sin(s[1])]
        via_f64 = [np.float32(f(np.float64(x))) for x in s[:2] for f in (np.cos, np.sin)]
        if any(a != b for a, b in zip(ours, via_f64)):
            found.append(seed)
            if len(found) == count:
                break
    env.close()
    return found


def record(env_id, policy, seed, policy_seed):
    env = gym.make(env_id)
    rng = np.random.Generator(np.random.PCG64(policy_seed))
    obs, _ = env.reset(seed=seed)
    episode = {
        "env_id": env_id,
        "gymnasium_version": gym.__version__,
        "seed": seed,
        "reset_obs": obs_list(obs),
        "steps": [],
    }
    discrete = isinstance(env.action_space, gym.spaces.Discrete)
    while True:
        action = policy(obs, rng)
        obs, reward, terminated, truncated, _ = env.step(action)
        episode["steps"].append({
            "action": int(action) if discrete else [float(a) for a in np.asarray(action).ravel()],
            "obs": obs_list(obs),
            "reward": float(reward),
            "terminated": bool(terminated),
            "truncated": bool(truncated),
        })
        if terminated or truncated:
            break
    env.close()
    return episode


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="tests/golden")
    parser.add_argument("--seed-offset", type=int, default=0,
                        help="add this to every env and policy seed (fresh episodes for a check)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    PLANS["Pendulum-v1"].append(("powtrap", random_box(-2.0, 2.0), pendulum_pow_trap_seeds()))
    PLANS["Acrobot-v1"].append(("f32trap", random_discrete(3), acrobot_f32_trap_seeds()))
    for env_id, plans in PLANS.items():
        for name, policy, seeds in plans:
            for seed in seeds:
                seed += args.seed_offset
                ep = record(env_id, policy, seed, policy_seed=1000 + seed)
                last = ep["steps"][-1]
                end = "terminated" if last["terminated"] else "truncated"
                path = os.path.join(args.out, f"{env_id}_{name}_seed{seed}.json")
                with open(path, "w") as f:
                    json.dump(ep, f, separators=(",", ":"))
                    f.write("\n")
                print(f"{path}: {len(ep['steps'])} steps, {end}")


if __name__ == "__main__":
    main()
