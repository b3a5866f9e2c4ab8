//! GRPO (or RLOO, or PPO) on a small transformer with verifiable rewards, the TRL `GRPOTrainer`
//! and `PPOTrainer` workflow at a size a CPU trains: a supervised warm start on the task (stopped while it solves it only
//! sometimes; it is also the frozen reference), then RL on sampled completions scored by reward
//! functions, with held-out and out-of-distribution evaluations before and after.
//!
//! ```text
//! cargo run --release --example digits_grpo                       # 3-digit addition, GRPO
//! cargo run --release --example digits_grpo -- --task sort --algo rloo --seed 2
//! cargo run --release --example digits_grpo -- --algo ppo --beta 0.05     # PPO with a value head
//! cargo run --release --example digits_grpo -- --beta 0 --set grpo.num_iterations=2
//! cargo run --release --example digits_grpo -- --resume runs/addition_grpo-s1-...  # after a stop
//! ```
//!
//! A thin call of Cinder's runner (`cinder::runner::train_sequence`); flags: `--task`,
//! `--length`, `--algo grpo|rloo|ppo`, `--seed`, `--backend`, `--total-steps` (RL steps),
//! `--num-generations`, `--beta`, `--learning-rate`, `--loss-type`, `--scale-rewards`,
//! `--config FILE.toml`, `--set key=value` (any field of `SequenceRunConfig`, e.g.
//! `grpo.epsilon_high=0.28`, `grpo.dynamic_sampling=true`, `reward_funcs=["exact_match",
//! "partial_credit"]`), `--out`, `--resume DIR` (with `--total-steps` to extend the run). The
//! run directory holds config.json, metrics.jsonl (TRL's metric names), checkpoint.ckpt,
//! summary.json (`accuracy_before`, `accuracy_after` and the OOD split's) and curves.svg. The
//! same through the `cinder` command: `cinder train --algo grpo --task addition`.

use anyhow::Result;
use cinder::cli::SequenceArgs;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "GRPO / RLOO / PPO on a small transformer with verifiable rewards")]
struct Args {
    #[command(flatten)]
    run: SequenceArgs,
}

fn main() -> Result<()> {
    let args = Args::parse();
    cinder::cli::train_sequence(&args.run)?;
    Ok(())
}
