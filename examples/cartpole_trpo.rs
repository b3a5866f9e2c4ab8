//! TRPO on CartPole-v1, on any compiled backend, with the RL Zoo's tuned hyperparameters
//! (`presets/trpo.toml`; `--no-preset` gives Stable-Baselines3-contrib's defaults).
//!
//! ```text
//! cargo run --release --example cartpole_trpo -- --seed 1 --out runs/trpo-s1
//! cargo run --release --example cartpole_trpo --features wgpu -- --backend wgpu
//! cargo run --release --example cartpole_trpo -- --resume runs/trpo-s1
//! cargo run --release --example cartpole_trpo -- --set fisher_product.finite_difference.epsilon=0.01
//! ```
//!
//! A thin call of Cinder's runner (`cinder::runner`): the same as
//! `cargo run --release -- train --algo trpo --env CartPole-v1`, with the same flags
//! (`--seed`, `--backend`, `--total-steps`, `--config FILE.toml`, `--set key=value`,
//! `--no-preset`, `--out`, `--resume`, `--eval-episodes`). Each update's line in `metrics.jsonl`
//! holds the surrogate before and after the step, the KL of the accepted step, the line search's
//! tries and outcome, the conjugate gradient's iterations and residual, the value loss and the
//! explained variance.

use anyhow::Result;
use cinder::cli::RunArgs;
use cinder::presets::Algorithm;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "TRPO on CartPole-v1 (RL Zoo preset), on any compiled Burn backend")]
struct Args {
    #[command(flatten)]
    run: RunArgs,
}

fn main() -> Result<()> {
    let args = Args::parse();
    cinder::cli::train("CartPole-v1", Algorithm::Trpo, &args.run)?;
    Ok(())
}
