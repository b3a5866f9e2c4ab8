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
//! A thin call of Cinder's runner (`cinder::runner`): the same as
//! `cargo run --release -- train --algo reinforce --env CartPole-v1`, with the same flags
//! (`--seed`, `--backend`, `--total-steps`, `--config FILE.toml`, `--set key=value`,
//! `--no-preset`, `--out`, `--resume`, `--eval-episodes`). It shows a progress bar, writes the run
//! directory (config.json, metrics.jsonl, checkpoint.ckpt, summary.json) and prints the greedy
//! evaluation, the wall time and the steps per second.

use anyhow::Result;
use cinder::cli::RunArgs;
use cinder::presets::Algorithm;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "REINFORCE on CartPole-v1, on any compiled Burn backend")]
struct Args {
    #[command(flatten)]
    run: RunArgs,
}

fn main() -> Result<()> {
    let args = Args::parse();
    cinder::cli::train("CartPole-v1", Algorithm::Reinforce, &args.run)?;
    Ok(())
}
