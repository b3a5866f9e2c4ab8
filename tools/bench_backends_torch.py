"""PyTorch's side of `cinder-bench backends`: the same micro-workloads as Cinder's, in the same
run, so that each backend's figure has a peer beside it.

- inference: the actor-critic MLP (CleanRL's `Agent`: 64-64 tanh actor and critic) on a batch of
  CartPole observations uploaded from NumPy: actions sampled, their log-probs and the values
  copied to the host (what CleanRL's rollout step does); latency per call.
- update: CleanRL's PPO minibatch loss (clipped surrogate, clipped value loss, entropy),
  backward, global gradient-norm clipping and an Adam step; time per update.

Warm-up calls first (the first call is reported separately), then repetitions until a time
budget is spent; median and 10th/90th percentiles. On CUDA the device is synchronised before
each clock stops.

Usage: python tools/bench_backends_torch.py --device cpu --threads 1 \
           --inference-batches 1,8,64,512,4096 --update-batches 64,256,1024,4096
Prints one JSON object (the schema of `cinder_bench::backends::TorchResult`). Run by
`cinder-bench backends` when torch is importable.
"""
import argparse
import json
import time

import numpy as np
import torch
import torch.nn as nn
from torch.distributions.categorical import Categorical

OBS, ACTIONS, HIDDEN = 4, 2, 64


def mlp(out):
    return nn.Sequential(nn.Linear(OBS, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, HIDDEN), nn.Tanh(),
                         nn.Linear(HIDDEN, out))


class Agent(nn.Module):
    def __init__(self):
        super().__init__()
        self.actor, self.critic = mlp(ACTIONS), mlp(1)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(batch, fn, device, budget_s, warmup, min_reps, max_reps):
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    first = time.perf_counter() - t0
    for _ in range(warmup):
        fn()
        sync(device)
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or (time.perf_counter() - start < budget_s and len(times) < max_reps):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    q = np.percentile(times, [10, 50, 90])
    return dict(batch=batch, first_call_s=first, median_s=float(q[1]), p10_s=float(q[0]), p90_s=float(q[2]),
                repetitions=len(times))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--inference-batches", default="1,8,64,512,4096")
    p.add_argument("--update-batches", default="64,256,1024,4096")
    p.add_argument("--budget", type=float, default=1.0, help="seconds of repetitions per size")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--min-reps", type=int, default=10)
    p.add_argument("--max-reps", type=int, default=2000)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    torch.manual_seed(0)
    agent = Agent().to(device)
    optimizer = torch.optim.Adam(agent.parameters(), lr=2.5e-4, eps=1e-5)
    rng = np.random.default_rng(0)

    inference = []
    for batch in [int(b) for b in a.inference_batches.split(",")]:
        obs_np = rng.uniform(-1, 1, (batch, OBS)).astype(np.float32)

        def infer():
            with torch.no_grad():
                obs = torch.as_tensor(obs_np, device=device)
                dist = Categorical(logits=agent.actor(obs))
                action = dist.sample()
                logprob, value = dist.log_prob(action), agent.critic(obs)
                action.cpu().numpy(), logprob.cpu().numpy(), value.cpu().numpy()

        inference.append(timed(batch, infer, device, a.budget, a.warmup, a.min_reps, a.max_reps))

    update = []
    for batch in [int(b) for b in a.update_batches.split(",")]:
        obs = torch.tensor(rng.normal(0, 1, (batch, OBS)), dtype=torch.float32, device=device)
        actions = torch.tensor(rng.integers(0, ACTIONS, batch), device=device)
        old_logp = torch.tensor(rng.normal(-0.7, 0.1, batch), dtype=torch.float32, device=device)
        adv = torch.tensor(rng.normal(0, 1, batch), dtype=torch.float32, device=device)
        old_values = torch.tensor(rng.normal(0, 1, batch), dtype=torch.float32, device=device)
        returns = torch.tensor(rng.normal(0, 1, batch), dtype=torch.float32, device=device)

        def step():
            dist = Categorical(logits=agent.actor(obs))
            newlogp, entropy = dist.log_prob(actions), dist.entropy()
            newvalue = agent.critic(obs).view(-1)
            ratio = (newlogp - old_logp).exp()
            pg = torch.max(-adv * ratio, -adv * torch.clamp(ratio, 0.8, 1.2)).mean()
            v_clipped = old_values + torch.clamp(newvalue - old_values, -0.2, 0.2)
            v = 0.5 * torch.max((newvalue - returns) ** 2, (v_clipped - returns) ** 2).mean()
            loss = pg - 0.01 * entropy.mean() + 0.5 * v
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(agent.parameters(), 0.5)
            optimizer.step()
            loss.item()

        update.append(timed(batch, step, device, a.budget, a.warmup, a.min_reps, a.max_reps))

    print(json.dumps(dict(torch=torch.__version__, device=a.device, threads=a.threads,
                          gpu=torch.cuda.get_device_name(0) if device.type == "cuda" else None,
                          inference=inference, update=update)))


if __name__ == "__main__":
    main()
