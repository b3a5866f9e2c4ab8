//! GRPO on CartPole-v1, on any compiled backend: groups of episodes that start from the same
//! seeded reset, scored by their returns and compared within the group; the clipped ratio over
//! several gradient steps per batch; a k3 KL penalty towards a reference policy; no critic
//! (`cinder::rl::grpo::config`).
//!
//! ```text
//! cargo run --release --example cartpole_grpo -- --seed 1 --out runs/grpo-s1
//! cargo run --release --example cartpole_grpo -- --set reference_kl.coef=0.1
//! cargo run --release --example cartpole_grpo --features wgpu -- --backend wgpu
//! cargo run --release --example cartpole_grpo -- --resume runs/grpo-s1
//! ```
//!
//! A thin call of Cinder's runner (`cinder::runner`): the same as
//! `cargo run --release -- train --algo grpo --env CartPole-v1`, with the same flags
//! (`--seed`, `--backend`, `--total-steps`, `--config FILE.toml`, `--set key=value`,
//! `--no-preset`, `--out`, `--resume`, `--eval-episodes`). It shows a progress bar, writes the run
//! directory (config.json, metrics.jsonl, checkpoint.ckpt, summary.json) and prints the greedy
//! evaluation, the wall time and the steps per second.

use anyhow::Result;
use cinder::cli::RunArgs;
use cinder::presets::Algorithm;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "GRPO on CartPole-v1, on any compiled Burn backend")]
struct Args {
    #[command(flatten)]
    run: RunArgs,
}

fn main() -> Result<()> {
    let args = Args::parse();
    cinder::cli::train("CartPole-v1", Algorithm::Grpo, &args.run)?;
    Ok(())
}
