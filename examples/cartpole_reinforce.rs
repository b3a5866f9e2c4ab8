//! REINFORCE with a learned baseline on CartPole-v1, on any compiled backend: Monte-Carlo
//! returns-to-go minus the critic's values, the vanilla surrogate, one update per batch of
//! complete episodes (`cinder::rl::reinforce::config`).
//!
//! ```text
//! cargo run --release --example cartpole_reinforce -- --seed 1 --out runs/reinforce-s1
//! cargo run --release --example cartpole_reinforce --features wgpu -- --backend wgpu
//! cargo run --release --example cartpole_reinforce -- --resume runs/reinforce-s1
//! ```
//!
//! Writes the same run directory as `cartpole_ppo` (config, metrics.jsonl, checkpoint.ckpt,
//! summary.json) and prints the greedy evaluation.

mod common;

use anyhow::Result;
use cinder::backend::dispatch;
use cinder::rl::reinforce;
use clap::Parser;
use common::{CommonArgs, PolicyGradientRun};

#[derive(Parser, Debug)]
#[command(about = "REINFORCE with a learned baseline on CartPole-v1, on any compiled backend")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Complete episodes per update.
    #[arg(long, default_value_t = 8)]
    episodes_per_batch: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let config = reinforce::config()
        .with_seed(args.common.seed)
        .with_total_timesteps(args.common.total_steps.unwrap_or(500_000))
        .with_episodes_per_batch(args.episodes_per_batch);
    let kind = args.common.backend_kind()?;
    let run = PolicyGradientRun {
        args: args.common,
        env_id: "CartPole-v1",
        algorithm: "reinforce",
        config,
        kind,
    };
    dispatch(kind, run)?
}
