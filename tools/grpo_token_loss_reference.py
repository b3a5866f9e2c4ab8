"""Known answers for cinder-lm's token-level GRPO loss (`cinder_lm::grpo::token_loss`), computed
with PyTorch the way TRL's GRPOTrainer computes them (`_generate_and_score_completions` for the
advantages, `_compute_loss` for the loss).

A generation batch of 3 groups of G = 4 completions of ragged lengths (1 to 6 tokens,
max_completion_length 6), padded to [12, 6] with a mask as TRL pads completions; one completion
per group was cut at the length limit (not terminated). Rewards per completion (the second
group's all agree). Per-token log-probs of the policy (the leaf the gradient is taken for), of
the rollout policy (near them, so that ratios fall on both sides of the clip) and of the
reference. The loss is taken on a minibatch, the first two groups (8 completions), while DAPO's
denominator counts the tokens of the whole generation batch — as TRL does with
`num_items_in_batch` when `steps_per_generation` > 1.

For every case (loss_type x scale_rewards x beta x epsilon_high x mask_truncated_completions)
writes the advantages of the whole batch, the minibatch's loss and the gradient of the loss with
respect to the minibatch's per-token log-probs ([8, 6], zero on padding).
crates/cinder-lm/tests/grpo_token_loss_reference.rs must reproduce them within 1e-5.

Usage: python tools/grpo_token_loss_reference.py --out crates/cinder-lm/tests/data/grpo_token_loss_reference.json
"""
import argparse
import json

import numpy as np
import torch

G = 4
MAX_COMPLETION_LENGTH = 6
LENGTHS = [3, 6, 1, 4, 2, 5, 6, 3, 4, 4, 2, 6]
# The completions of length 6 in groups 1 and 3 were cut at the limit (no EOS).
TERMINATED = [True, False, True, True, True, True, True, True, True, True, True, False]
REWARDS = [1.5, 0.25, 0.0, 2.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.75, 2.0, 0.5]
MINIBATCH = 8
EPSILON = 0.2


def advantages_of(rewards, scale_rewards):
    """TRL: centre by the group mean; divide by the group's or the batch's sample std + 1e-4."""
    grouped = rewards.view(-1, G)
    mean = grouped.mean(dim=1).repeat_interleave(G)
    advantages = rewards - mean
    if scale_rewards == "group":
        advantages = advantages / (grouped.std(dim=1).repeat_interleave(G) + 1e-4)
    elif scale_rewards == "batch":
        advantages = advantages / (rewards.std().expand_as(rewards) + 1e-4)
    return advantages


def loss_of(logp, old, ref, advantages, mask, case, num_items_in_batch):
    """TRL's `_compute_loss` on per-token log-probs [b, c]."""
    coef_1 = torch.exp(logp - old)
    coef_2 = torch.clamp(coef_1, 1 - EPSILON, 1 + case["epsilon_high"])
    per_token_loss = -torch.min(coef_1 * advantages.unsqueeze(1), coef_2 * advantages.unsqueeze(1))
    if case["beta"] != 0.0:
        per_token_kl = torch.exp(ref - logp) - (ref - logp) - 1
        per_token_loss = per_token_loss + case["beta"] * per_token_kl
    loss_type = case["loss_type"]
    if loss_type == "grpo":
        return ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if loss_type == "bnpo":
        return (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)
    if loss_type == "dr_grpo":
        return (per_token_loss * mask).sum() / (per_token_loss.size(0) * MAX_COMPLETION_LENGTH)
    if loss_type == "dapo":
        return (per_token_loss * mask).sum() / num_items_in_batch
    raise ValueError(loss_type)


def flat(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    a = p.parse_args()
    rng = np.random.default_rng(14)
    n, c = len(LENGTHS), max(LENGTHS)
    f32 = lambda x: torch.tensor(x, dtype=torch.float32)
    logp0 = f32(-np.abs(rng.normal(0.7, 0.5, (n, c))))
    old = logp0 + f32(rng.uniform(-0.4, 0.4, (n, c)))
    ref = logp0 + f32(rng.uniform(-0.3, 0.3, (n, c)))
    padding = f32([[1.0 if j < length else 0.0 for j in range(c)] for length in LENGTHS])
    rewards = f32(REWARDS)

    cases = []
    for loss_type in ["grpo", "bnpo", "dr_grpo", "dapo"]:
        for scale_rewards in ["group", "batch", "none"]:
            for beta, epsilon_high, mask_truncated in [(0.0, 0.2, False), (0.04, 0.28, True)]:
                cases.append(dict(loss_type=loss_type, scale_rewards=scale_rewards, beta=beta,
                                  epsilon_high=epsilon_high, mask_truncated_completions=mask_truncated))
    out_cases = []
    for case in cases:
        keep = f32([1.0 if (t or not case["mask_truncated_completions"]) else 0.0 for t in TERMINATED])
        mask = padding * keep.unsqueeze(1)
        advantages = advantages_of(rewards, case["scale_rewards"])
        num_items_in_batch = mask.sum()
        logp = logp0[:MINIBATCH].clone().requires_grad_(True)
        loss = loss_of(logp, old[:MINIBATCH], ref[:MINIBATCH], advantages[:MINIBATCH],
                       mask[:MINIBATCH], case, num_items_in_batch)
        loss.backward()
        out_cases.append(dict(case, advantages=flat(advantages), loss=float(loss.detach()),
                              grad=flat(logp.grad), generation_tokens=int(num_items_in_batch)))
    data = dict(group_size=G, max_completion_length=MAX_COMPLETION_LENGTH, epsilon=EPSILON,
                lengths=LENGTHS, terminated=TERMINATED, rewards=REWARDS, minibatch=MINIBATCH,
                width=c, log_probs=flat(logp0), old_log_probs=flat(old), ref_log_probs=flat(ref),
                torch_version=torch.__version__, cases=out_cases)
    with open(a.out, "w") as f:
        json.dump(data, f, indent=1)
    print(f"wrote {len(out_cases)} cases to {a.out}")


if __name__ == "__main__":
    main()
