//! GRPO on CartPole-v1, on any compiled backend: groups of episodes that start from the same
//! seeded reset, scored by their returns and compared within the group; the clipped ratio over
//! several gradient steps per batch; a k3 KL penalty towards a reference policy; no critic
//! (`cinder::rl::grpo::config`).
//!
//! ```text
//! cargo run --release --example cartpole_grpo -- --seed 1 --out runs/grpo-s1
//! cargo run --release --example cartpole_grpo -- --beta 0.1 --group-size 4
//! cargo run --release --example cartpole_grpo --features wgpu -- --backend wgpu
//! cargo run --release --example cartpole_grpo -- --resume runs/grpo-s1
//! ```
//!
//! Writes the same run directory as `cartpole_ppo` (its metrics add the KL to the reference and
//! the group return statistics) and prints the greedy evaluation.

mod common;

use anyhow::Result;
use cinder::backend::dispatch;
use cinder::rl::advantages::GroupScale;
use cinder::rl::grpo;
use cinder::rl::policy_gradient::AdvantageEstimator;
use clap::Parser;
use common::{CommonArgs, PolicyGradientRun};

#[derive(Parser, Debug)]
#[command(about = "GRPO on CartPole-v1 (groups of episodes from one start state), on any backend")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Episodes per group (G).
    #[arg(long, default_value_t = 8)]
    group_size: usize,
    /// Groups per update.
    #[arg(long, default_value_t = 2)]
    groups: usize,
    /// KL coefficient β (0: the KL is measured, not penalised).
    #[arg(long, default_value_t = 0.04)]
    beta: f32,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let defaults = grpo::config();
    let reference_kl = defaults
        .reference_kl
        .clone()
        .map(|kl| kl.with_coef(args.beta));
    let config = defaults
        .with_seed(args.common.seed)
        .with_total_timesteps(args.common.total_steps.unwrap_or(500_000))
        .with_advantage(AdvantageEstimator::GroupRelative {
            group_size: args.group_size,
            scale: GroupScale::Std,
        })
        .with_episodes_per_batch(args.group_size * args.groups)
        .with_reference_kl(reference_kl);
    let kind = args.common.backend_kind()?;
    let run = PolicyGradientRun {
        args: args.common,
        env_id: "CartPole-v1",
        algorithm: "grpo",
        config,
        kind,
    };
    dispatch(kind, run)?
}
