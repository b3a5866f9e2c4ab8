"""Renders classic-control episodes with Gymnasium's own `rgb_array` mode (pygame) for
`crates/cinder-env/tests/render.rs`, which replays the same seeds and actions in Cinder and
compares its frames with these.

    pip install "gymnasium==1.4.0" pygame
    python tools/gymnasium_render.py --out crates/cinder-env/tests/data/render

Writes one PNG per recorded frame (`<env id>-<step>.png`, step 0 being the frame after the
reset) and `episodes.json`: per env the reset seed, every action taken, and the steps whose
frames were saved.
"""

import argparse
import json
import os

import gymnasium as gym
import numpy as np

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
import pygame  # noqa: E402  (after SDL_VIDEODRIVER)

ENVS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1"]
# Frames kept: after the reset and after these steps (while the episode lasts).
FRAME_STEPS = [0, 7, 25, 60]


def save_png(frame: np.ndarray, path: str) -> None:
    # surfarray is (width, height, 3); rgb_array is (height, width, 3).
    surface = pygame.surfarray.make_surface(np.ascontiguousarray(frame.transpose(1, 0, 2)))
    pygame.image.save(surface, path)


def record(env_id: str, seed: int, out: str) -> dict:
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=seed)
    env.action_space.seed(seed)
    rng = np.random.default_rng(seed)
    actions, frames = [], []
    for step in range(max(FRAME_STEPS) + 1):
        if step in FRAME_STEPS:
            name = f"{env_id}-{step}.png"
            save_png(env.render(), os.path.join(out, name))
            frames.append({"step": step, "file": name})
        if step == max(FRAME_STEPS):
            break
        if isinstance(env.action_space, gym.spaces.Discrete):
            # Mostly one action, so that CartPole's pole leans and the cars move.
            action = int(rng.integers(env.action_space.n)) if rng.random() < 0.4 else 0
            actions.append(action)
        else:
            action = env.action_space.sample()
            actions.append([float(a) for a in action])
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            # The episode's last frame (CartPole falls before the later steps).
            name = f"{env_id}-{step + 1}.png"
            save_png(env.render(), os.path.join(out, name))
            frames.append({"step": step + 1, "file": name})
            break
    env.close()
    return {"id": env_id, "seed": seed, "actions": actions, "frames": frames}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    episodes = [record(env_id, args.seed, args.out) for env_id in ENVS]
    with open(os.path.join(args.out, "episodes.json"), "w") as f:
        json.dump({"gymnasium": gym.__version__, "pygame": pygame.version.ver, "episodes": episodes}, f, indent=1)
    for e in episodes:
        print(e["id"], "frames at steps", [fr["step"] for fr in e["frames"]])


if __name__ == "__main__":
    main()
