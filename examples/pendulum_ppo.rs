//! PPO on Pendulum-v1 (continuous control: a diagonal-Gaussian policy whose actions are clipped
//! to the torque limits), with the RL Zoo's tuned hyperparameters (`presets/ppo.toml`).
//!
//! ```text
//! cargo run --release --example pendulum_ppo -- --seed 1 --out runs/pendulum-s1
//! cargo run --release --example pendulum_ppo -- --set learning_rate=3e-4
//! cargo run --release --example pendulum_ppo -- --resume runs/pendulum-s1
//! ```
//!
//! A thin call of Cinder's runner (`cinder::runner`): the same as
//! `cargo run --release -- train --algo ppo --env Pendulum-v1`, with the same flags
//! (`--seed`, `--backend`, `--total-steps`, `--config FILE.toml`, `--set key=value`,
//! `--no-preset`, `--out`, `--resume`, `--eval-episodes`). It shows a progress bar, writes the run
//! directory (config.json, metrics.jsonl, checkpoint.ckpt, summary.json) and prints the greedy
//! evaluation, the wall time and the steps per second.

use anyhow::Result;
use cinder::cli::RunArgs;
use cinder::presets::Algorithm;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "PPO on Pendulum-v1 (RL Zoo preset), on any compiled Burn backend")]
struct Args {
    #[command(flatten)]
    run: RunArgs,
}

fn main() -> Result<()> {
    let args = Args::parse();
    cinder::cli::train("Pendulum-v1", Algorithm::Ppo, &args.run)?;
    Ok(())
}
