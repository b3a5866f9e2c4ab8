"""Known answers for Cinder's TRPO policy step, computed with PyTorch as Stable-Baselines3-contrib's
TRPO.train computes them (sb3_contrib/trpo/trpo.py), for a categorical policy and a diagonal
Gaussian one with fixed random weights and a fixed batch:

- the normalised advantages, the surrogate `mean(A * exp(logp - old_logp))` and its gradient g;
- the Fisher-vector product F v of a fixed v: the gradient of (grad KL(new || old) . v), with
  `old` a copy of the current distribution, as SB3-contrib's hessian_vector_product (without its
  damping term);
- the conjugate-gradient solution of (F + damping I) s = g, by SB3-contrib's own
  conjugate_gradient_solver started from the x0 recorded here (its 1e-4 * randn draw);
- the step size sqrt(2 target_kl / s.(F + damping I)s), SB3-contrib's backtracking line search
  (accepted or not, the number of tries) and the actor parameters it leaves.

Everything runs in float64, so the values are exact to ~1e-12; Cinder computes in float32 and
crates/cinder-rl/tests/trpo.rs compares within 1e-4. Vectors are in Cinder's flat actor layout
(ActorLayout): per layer the weight as [in, out] row by row (PyTorch's weight transposed), then
the bias; then the log-std.

Needs torch and sb3-contrib (../shared/peers/setup.sh, then `pip install sb3-contrib`).
Usage: python tools/trpo_reference.py --out crates/cinder-rl/tests/data/trpo_reference.json
"""
import argparse
import json

import numpy as np
import torch as th
import torch.nn as nn
from sb3_contrib.common.utils import conjugate_gradient_solver
from torch.distributions import Categorical, Normal, kl_divergence

th.set_default_dtype(th.float64)
HIDDEN, BATCH = 8, 64


def case(name, obs_dim, action_dim, continuous, seed, cg_damping, target_kl, cg_max_steps):
    rng = np.random.default_rng(seed)
    layers = [nn.Linear(obs_dim, HIDDEN), nn.Linear(HIDDEN, HIDDEN), nn.Linear(HIDDEN, action_dim)]
    with th.no_grad():
        for layer in layers:
            layer.weight.copy_(th.tensor(rng.normal(0, 0.6, layer.weight.shape)))
            layer.bias.copy_(th.tensor(rng.normal(0, 0.2, layer.bias.shape)))
    log_std = nn.Parameter(th.tensor(rng.normal(-0.3, 0.2, (1, action_dim)))) if continuous else None
    # Parameters in Cinder's order; weights are transposed when flattened.
    params = []
    for layer in layers:
        params += [layer.weight, layer.bias]
    if continuous:
        params.append(log_std)

    def distribution(obs):
        x = obs
        for i, layer in enumerate(layers):
            x = layer(x)
            if i < len(layers) - 1:
                x = th.tanh(x)
        if continuous:
            return Normal(x, log_std.exp().expand_as(x))
        return Categorical(logits=x)

    def log_prob(dist, actions):
        return dist.log_prob(actions).sum(-1) if continuous else dist.log_prob(actions)

    obs = th.tensor(rng.normal(0, 1, (BATCH, obs_dim)))
    with th.no_grad():
        dist = distribution(obs)
        if continuous:
            actions = dist.mean + th.tensor(rng.normal(0, 1, (BATCH, action_dim))) * dist.stddev
        else:
            actions = th.tensor(rng.integers(0, action_dim, BATCH))
        # The rollout's log-probs: near the current ones, so that ratios are not all 1.
        old_log_prob = log_prob(dist, actions) + th.tensor(rng.uniform(-0.3, 0.3, BATCH))
    raw_advantages = th.tensor(rng.normal(0.3, 1.5, BATCH))

    # --- SB3-contrib's TRPO.train, one batch.
    with th.no_grad():
        old_distribution = distribution(obs)
    distribution_now = distribution(obs)
    lp = log_prob(distribution_now, actions)
    advantages = (raw_advantages - raw_advantages.mean()) / (raw_advantages.std() + 1e-8)
    ratio = th.exp(lp - old_log_prob)
    policy_objective = (advantages * ratio).mean()
    kl_div = kl_divergence(distribution_now, old_distribution)
    kl_div = (kl_div.sum(-1) if continuous else kl_div).mean()
    grad_kl = th.autograd.grad(kl_div, params, create_graph=True, retain_graph=True)
    g = th.autograd.grad(policy_objective, params, retain_graph=True)
    grad_kl_flat_torch = th.cat([t.reshape(-1) for t in grad_kl])

    def hvp(vector_torch_layout, retain_graph=True):
        jvp = (grad_kl_flat_torch * vector_torch_layout).sum()
        out = th.autograd.grad(jvp, params, retain_graph=retain_graph)
        return th.cat([t.reshape(-1) for t in out]) + cg_damping * vector_torch_layout

    # Permutation between PyTorch's flat layout and Cinder's.
    index_torch = []
    offset = 0
    for p in params:
        n = p.numel()
        idx = th.arange(offset, offset + n).reshape(p.shape)
        if p.dim() == 2 and p is not log_std:
            idx = idx.t()
        index_torch.append(idx.reshape(-1))
        offset += n
    to_cinder = th.cat(index_torch)  # cinder[i] = torch[to_cinder[i]]

    def cinder(v_torch):
        return v_torch[to_cinder]

    def torch_layout(v_cinder):
        out = th.empty_like(v_cinder)
        out[to_cinder] = v_cinder
        return out

    g_torch = th.cat([t.reshape(-1) for t in g])
    v = th.tensor(rng.normal(0, 1, g_torch.shape[0]))  # Cinder layout
    fvp = cinder(hvp(torch_layout(v)) - cg_damping * torch_layout(v))

    th.manual_seed(seed)
    x0 = 1e-4 * th.randn_like(g_torch)  # what the solver draws first, Torch layout
    th.manual_seed(seed)
    search_direction = conjugate_gradient_solver(hvp, g_torch, max_iter=cg_max_steps)
    residual = g_torch - hvp(search_direction)
    step = 2 * target_kl / th.matmul(search_direction, hvp(search_direction, retain_graph=True))
    step = th.sqrt(step)

    originals = [p.detach().clone() for p in params]
    coeff, accepted, tries = 1.0, False, 0
    with th.no_grad():
        for _ in range(10):
            tries += 1
            start = 0
            for p, orig in zip(params, originals):
                n = p.numel()
                p.data = orig + coeff * step * search_direction[start:start + n].view(p.shape)
                start += n
            dist_new = distribution(obs)
            new_objective = (advantages * th.exp(log_prob(dist_new, actions) - old_log_prob)).mean()
            kl = kl_divergence(dist_new, old_distribution)
            kl = (kl.sum(-1) if continuous else kl).mean()
            if kl < target_kl and new_objective > policy_objective:
                accepted = True
                break
            coeff *= 0.8
        if not accepted:
            for p, orig in zip(params, originals):
                p.data = orig.clone()
        final = cinder(th.cat([p.detach().reshape(-1) for p in params]))
    theta = cinder(th.cat([o.reshape(-1) for o in originals]))
    floats = lambda t: [float(x) for x in t.reshape(-1)]
    return {
        "name": name,
        "obs_dim": obs_dim,
        "action_dim": action_dim,
        "continuous": continuous,
        "hidden": HIDDEN,
        "cg_damping": cg_damping,
        "target_kl": target_kl,
        "cg_max_steps": cg_max_steps,
        "theta": floats(theta),
        "obs": floats(obs),
        "actions": floats(actions),
        "old_log_probs": floats(old_log_prob),
        "raw_advantages": floats(raw_advantages),
        "expected": {
            "advantages": floats(advantages),
            "policy_objective": float(policy_objective.detach()),
            "gradient": floats(cinder(g_torch)),
            "v": floats(v),
            "fisher_v": floats(fvp),
            "x0": floats(cinder(x0)),
            "search_direction": floats(cinder(search_direction)),
            "cg_residual": float(residual.dot(residual).detach()),
            "max_step_size": float(step),
            "line_search_accepted": accepted,
            "line_search_tries": tries,
            "theta_after": floats(final),
        },
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    # Each case's cg_max_steps lets the solver converge (squared residual < 1e-10): an
    # unconverged iterate depends on rounding, not only on the method. Measured here: with
    # PyTorch's own products rounded to float32, the Gaussian case's 15-step direction moves by
    # 1.6 % (at 60 steps, converged, by 2e-5).
    cases = [
        case("categorical", 4, 3, False, seed=7, cg_damping=0.1, target_kl=0.01, cg_max_steps=15),
        case("gaussian", 3, 2, True, seed=11, cg_damping=0.1, target_kl=0.01, cg_max_steps=60),
        # A large radius: the full step leaves the trust region and the line search backtracks.
        case("categorical_backtracking", 4, 3, False, seed=13, cg_damping=0.1, target_kl=0.5,
             cg_max_steps=60),
    ]
    with open(args.out, "w") as f:
        json.dump({"cases": cases}, f)
    for c in cases:
        e = c["expected"]
        print(c["name"], "objective", e["policy_objective"], "step", e["max_step_size"],
              "residual", e["cg_residual"],
              "accepted", e["line_search_accepted"], "tries", e["line_search_tries"])


if __name__ == "__main__":
    main()
