"""Known answers for Cinder's GRPO loss, computed with PyTorch the way TRL's GRPOTrainer computes
its loss (`_compute_loss`), with episodes in place of completions.

A CartPole-sized categorical policy (4 observations, 2 actions, fixed random weights) and a
reference policy (other weights); a batch of 3 groups of 3 trajectories of ragged lengths,
padded to [9, max_len] with a mask as TRL pads completions; one reward per trajectory (the
second group's are all equal, so its advantages are zero). For each loss_type ("grpo", "bnpo",
"dr_grpo") writes the group-relative advantages (sample std, eps 1e-4), the loss, its policy
part, the mean per-token k3 KL, the clip fraction and the gradient of the loss for every policy
parameter. crates/cinder-rl/tests/grpo_loss_reference.rs loads the same weights and batch into
cinder_rl::policy_gradient::pg_loss and must reproduce these values.

Usage: python tools/grpo_loss_reference.py --out crates/cinder-rl/tests/data/grpo_loss_reference.json
"""
import argparse
import json

import numpy as np
import torch
import torch.nn as nn
from torch.distributions.categorical import Categorical

HIDDEN, OBS, ACTIONS, GROUP = 16, 4, 2, 3
LENGTHS = [3, 5, 2, 4, 4, 1, 6, 2, 3]
REWARDS = [12.0, 30.0, 7.0, 9.0, 9.0, 9.0, 40.0, 3.0, 22.0]
CLIP_LOW, CLIP_HIGH, BETA, MAX_LENGTH = 0.2, 0.28, 0.04, 8


def mlp(inp, out):
    return nn.Sequential(nn.Linear(inp, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, HIDDEN), nn.Tanh(),
                         nn.Linear(HIDDEN, out))


def randomise(nets, rng, scale):
    params = []
    with torch.no_grad():
        for net_name, net in nets:
            for i, layer in enumerate(l for l in net if isinstance(l, nn.Linear)):
                layer.weight.copy_(torch.tensor(rng.normal(0, scale, layer.weight.shape), dtype=torch.float32))
                layer.bias.copy_(torch.tensor(rng.normal(0, 0.1, layer.bias.shape), dtype=torch.float32))
                params.append((f"{net_name}.{i}.weight", layer.weight))
                params.append((f"{net_name}.{i}.bias", layer.bias))
    return params


def flat(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    a = p.parse_args()
    rng = np.random.default_rng(7)
    actor, critic = mlp(OBS, ACTIONS), mlp(OBS, 1)
    params = randomise([("actor", actor), ("critic", critic)], rng, 0.5)
    ref_actor, ref_critic = mlp(OBS, ACTIONS), mlp(OBS, 1)
    ref_params = randomise([("actor", ref_actor), ("critic", ref_critic)], rng, 0.5)

    n_traj, max_len = len(LENGTHS), max(LENGTHS)
    steps = sum(LENGTHS)
    obs = torch.tensor(rng.normal(0, 1, (steps, OBS)), dtype=torch.float32)
    actions = torch.tensor(rng.integers(0, ACTIONS, steps))
    with torch.no_grad():
        logp0 = Categorical(logits=actor(obs)).log_prob(actions)
    # Rollout log-probs near the current ones, so that ratios fall on both sides of the clip.
    old_logp = logp0 + torch.tensor(rng.uniform(-0.4, 0.4, steps), dtype=torch.float32)

    # TRL: rewards viewed as [groups, G]; std with Bessel's correction; eps 1e-4.
    rewards = torch.tensor(REWARDS, dtype=torch.float32)
    grouped = rewards.view(-1, GROUP)
    mean = grouped.mean(dim=1).repeat_interleave(GROUP)
    std = grouped.std(dim=1).repeat_interleave(GROUP)
    advantages = (rewards - mean) / (std + 1e-4)

    # Pad the flat, trajectory-major steps to [n_traj, max_len] with a mask.
    index = torch.zeros(n_traj, max_len, dtype=torch.long)
    mask = torch.zeros(n_traj, max_len)
    start = 0
    for i, length in enumerate(LENGTHS):
        index[i, :length] = torch.arange(start, start + length)
        mask[i, :length] = 1.0
        start += length

    cases = []
    for loss_type in ("grpo", "bnpo", "dr_grpo"):
        for _, prm in params:
            prm.grad = None
        logp = Categorical(logits=actor(obs)).log_prob(actions)
        with torch.no_grad():
            ref_logp = Categorical(logits=ref_actor(obs)).log_prob(actions)
        per_token_logps = logp[index] * mask
        ref_per_token = ref_logp[index]
        old_per_token = old_logp[index]
        per_token_kl = torch.exp(ref_per_token - per_token_logps) - (ref_per_token - per_token_logps) - 1
        coef_1 = torch.exp(per_token_logps - old_per_token)
        coef_2 = torch.clamp(coef_1, 1 - CLIP_LOW, 1 + CLIP_HIGH)
        adv = advantages.unsqueeze(1)
        per_token_pg = -torch.min(coef_1 * adv, coef_2 * adv)
        per_token_loss = per_token_pg + BETA * per_token_kl

        def aggregate(x):
            if loss_type == "grpo":
                return ((x * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
            if loss_type == "bnpo":
                return (x * mask).sum() / mask.sum().clamp(min=1.0)
            return (x * mask).sum() / (x.size(0) * MAX_LENGTH)

        loss = aggregate(per_token_loss)
        loss.backward()
        with torch.no_grad():
            outside = ((coef_1 < 1 - CLIP_LOW) | (coef_1 > 1 + CLIP_HIGH)).float()
            clip_fraction = (outside * mask).sum() / mask.sum()
            kl_mean = (per_token_kl * mask).sum() / mask.sum()
            policy_loss = aggregate(per_token_pg)
        cases.append(dict(
            loss_type=loss_type, loss=loss.item(), policy_loss=policy_loss.item(),
            kl_to_reference=kl_mean.item(), clip_fraction=clip_fraction.item(),
            grads=[flat(prm.grad) if prm.grad is not None else [0.0] * prm.numel() for _, prm in params],
        ))

    out = dict(
        torch=torch.__version__, hidden=HIDDEN, obs_dim=OBS, action_dim=ACTIONS, group_size=GROUP,
        lengths=LENGTHS, rewards=REWARDS, clip_low=CLIP_LOW, clip_high=CLIP_HIGH, beta=BETA,
        max_length=MAX_LENGTH,
        params=[dict(name=n, shape=list(p.shape), data=flat(p)) for n, p in params],
        ref_params=[dict(name=n, shape=list(p.shape), data=flat(p)) for n, p in ref_params],
        obs=flat(obs), actions=flat(actions.float()), old_log_probs=flat(old_logp),
        advantages=flat(advantages), cases=cases,
    )
    with open(a.out, "w") as f:
        json.dump(out, f)
    for c in cases:
        print(c["loss_type"], {k: round(v, 6) for k, v in c.items() if isinstance(v, float)})


if __name__ == "__main__":
    main()
