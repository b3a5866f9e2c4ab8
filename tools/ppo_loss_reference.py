"""Known answers for Cinder's PPO loss, computed with PyTorch exactly as CleanRL's ppo.py and
ppo_continuous_action.py compute them.

For a discrete case (CartPole-sized: 4 observations, 2 actions) and a continuous one
(3 observations, 1 action, state-independent log-std), with fixed random weights and a fixed
batch, writes the parameters (PyTorch layout, [out, in]), the batch, the normalised advantages,
every loss term, approx_kl, clipfrac and the gradient of the total loss for every parameter.
crates/cinder-rl/tests/ppo_loss_reference.rs loads the same weights and batch into Cinder's
policy and must reproduce these values.

Usage: python tools/ppo_loss_reference.py --out crates/cinder-rl/tests/data/ppo_loss_reference.json
"""
import argparse
import json

import numpy as np
import torch
import torch.nn as nn
from torch.distributions.categorical import Categorical
from torch.distributions.normal import Normal

CLIP_COEF, ENT_COEF, VF_COEF, HIDDEN, BATCH = 0.2, 0.01, 0.5, 16, 32


def mlp(inp, out):
    return nn.Sequential(nn.Linear(inp, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, HIDDEN), nn.Tanh(),
                         nn.Linear(HIDDEN, out))


def case(name, obs_dim, action_dim, continuous, seed):
    rng = np.random.default_rng(seed)
    actor, critic = mlp(obs_dim, action_dim), mlp(obs_dim, 1)
    params = []  # in Cinder's visiting order: actor layers, critic layers, then log-std
    with torch.no_grad():
        for net_name, net in (("actor", actor), ("critic", critic)):
            for i, layer in enumerate(l for l in net if isinstance(l, nn.Linear)):
                layer.weight.copy_(torch.tensor(rng.normal(0, 0.4, layer.weight.shape), dtype=torch.float32))
                layer.bias.copy_(torch.tensor(rng.normal(0, 0.1, layer.bias.shape), dtype=torch.float32))
                params.append((f"{net_name}.{i}.weight", layer.weight))
                params.append((f"{net_name}.{i}.bias", layer.bias))
    log_std = None
    if continuous:
        log_std = nn.Parameter(torch.tensor(rng.normal(-0.3, 0.2, (1, action_dim)), dtype=torch.float32))
        params.append(("log_std", log_std))

    obs = torch.tensor(rng.normal(0, 1, (BATCH, obs_dim)), dtype=torch.float32)
    with torch.no_grad():
        if continuous:
            mean = actor(obs)
            dist = Normal(mean, log_std.exp().expand_as(mean))
            actions = torch.tensor(rng.normal(0, 1, (BATCH, action_dim)), dtype=torch.float32) * 0.8 + mean
            logp = dist.log_prob(actions).sum(1)
        else:
            dist = Categorical(logits=actor(obs))
            actions = torch.tensor(rng.integers(0, action_dim, BATCH))
            logp = dist.log_prob(actions)
        values = critic(obs).view(-1)
    # Old log-probs and values near the current ones, so that some ratios fall outside
    # [1 - clip, 1 + clip] and some values outside the value clip, on both sides.
    old_logp = logp + torch.tensor(rng.uniform(-0.45, 0.45, BATCH), dtype=torch.float32)
    old_values = values + torch.tensor(rng.uniform(-0.5, 0.5, BATCH), dtype=torch.float32)
    returns = old_values + torch.tensor(rng.normal(0, 1, BATCH), dtype=torch.float32)
    raw_adv = torch.tensor(rng.normal(0.3, 1.5, BATCH), dtype=torch.float32)
    mb_adv = (raw_adv - raw_adv.mean()) / (raw_adv.std() + 1e-8)

    # CleanRL's minibatch loss.
    if continuous:
        mean = actor(obs)
        dist = Normal(mean, log_std.expand_as(mean).exp())
        newlogprob, entropy = dist.log_prob(actions).sum(1), dist.entropy().sum(1)
    else:
        dist = Categorical(logits=actor(obs))
        newlogprob, entropy = dist.log_prob(actions), dist.entropy()
    newvalue = critic(obs).view(-1)
    logratio = newlogprob - old_logp
    ratio = logratio.exp()
    with torch.no_grad():
        approx_kl = ((ratio - 1) - logratio).mean()
        clipfrac = ((ratio - 1.0).abs() > CLIP_COEF).float().mean()
    pg_loss1 = -mb_adv * ratio
    pg_loss2 = -mb_adv * torch.clamp(ratio, 1 - CLIP_COEF, 1 + CLIP_COEF)
    pg_loss = torch.max(pg_loss1, pg_loss2).mean()
    v_loss_unclipped = (newvalue - returns) ** 2
    v_clipped = old_values + torch.clamp(newvalue - old_values, -CLIP_COEF, CLIP_COEF)
    v_loss_clipped = (v_clipped - returns) ** 2
    v_loss = 0.5 * torch.max(v_loss_unclipped, v_loss_clipped).mean()
    entropy_loss = entropy.mean()
    loss = pg_loss - ENT_COEF * entropy_loss + v_loss * VF_COEF
    loss.backward()

    def flat(t):
        return [float(x) for x in t.detach().reshape(-1).tolist()]

    return dict(
        name=name, obs_dim=obs_dim, action_dim=action_dim, continuous=continuous, hidden=HIDDEN,
        clip_coef=CLIP_COEF, ent_coef=ENT_COEF, vf_coef=VF_COEF,
        params=[dict(name=n, shape=list(p.shape), data=flat(p)) for n, p in params],
        obs=flat(obs), actions=flat(actions.float()), old_log_probs=flat(old_logp),
        old_values=flat(old_values), returns=flat(returns), raw_advantages=flat(raw_adv),
        expected=dict(
            normalized_advantages=flat(mb_adv), loss=loss.item(), policy_loss=pg_loss.item(),
            value_loss=v_loss.item(), entropy=entropy_loss.item(), approx_kl=float(approx_kl),
            clip_fraction=float(clipfrac), grads=[flat(p.grad) for _, p in params],
        ),
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    a = p.parse_args()
    torch.manual_seed(0)
    cases = [case("discrete", 4, 2, False, 1), case("continuous", 3, 1, True, 2)]
    with open(a.out, "w") as f:
        json.dump(dict(torch=torch.__version__, cases=cases), f)
    for c in cases:
        e = c["expected"]
        print(c["name"], {k: round(v, 6) for k, v in e.items() if isinstance(v, float)})


if __name__ == "__main__":
    main()
