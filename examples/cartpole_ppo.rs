//! PPO on CartPole-v1 with CleanRL's hyperparameters, on any compiled backend.
//!
//! ```text
//! cargo run --release --example cartpole_ppo -- --seed 1 --out runs/ppo-s1
//! cargo run --release --example cartpole_ppo --features wgpu -- --backend wgpu
//! cargo run --release --example cartpole_ppo -- --resume runs/ppo-s1
//! ```
//!
//! Shows a progress bar (plain lines when the output is not a terminal), writes the run
//! directory (config, metrics.jsonl, checkpoint.ckpt, summary.json), then prints the greedy
//! evaluation over 20 episodes, the wall time and the steps per second.

mod common;

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use cinder::backend::{BackendKind, BackendTask, dispatch};
use cinder::env::AutoresetMode;
use cinder::env::classic_control::CartPoleVec;
use cinder::rl::ppo::{Ppo, PpoConfig, checkpoint_config};
use clap::Parser;
use common::CommonArgs;

const ENV_ID: &str = "CartPole-v1";

#[derive(Parser, Debug)]
#[command(about = "PPO on CartPole-v1 (CleanRL's defaults), on any compiled Burn backend")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Parallel envs.
    #[arg(long, default_value_t = 4)]
    num_envs: usize,
}

/// The whole run, generic over the backend.
struct Run(Args, BackendKind);

impl BackendTask for Run {
    type Output = Result<()>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<()> {
        let Run(args, kind) = self;
        let common = &args.common;
        let backend = format!("{kind} ({})", B::name(&device));
        let (mut ppo, mut run_dir) = match (&common.resume, common.resume_checkpoint()) {
            (Some(dir), Some(checkpoint)) => {
                // The checkpoint holds the configuration the envs must match.
                let config = checkpoint_config(&checkpoint)?;
                let envs = CartPoleVec::new(config.num_envs, AutoresetMode::SameStep)?;
                let ppo = Ppo::<B, _>::resume(&checkpoint, envs, device)?;
                let run_dir = common::reopen_run(dir, &ppo)?;
                (ppo, run_dir)
            }
            _ => {
                let config = PpoConfig::new()
                    .with_seed(common.seed)
                    .with_total_timesteps(common.total_steps.unwrap_or(500_000))
                    .with_num_envs(args.num_envs);
                let run_dir = common::create_run(common, ENV_ID, "ppo", kind, &config)?;
                let envs = CartPoleVec::new(config.num_envs, AutoresetMode::SameStep)?;
                (Ppo::<B, _>::new(config, envs, device)?, run_dir)
            }
        };
        let seed = ppo.config().seed;
        common::train_and_summarise(
            &mut ppo,
            &mut run_dir,
            common,
            ENV_ID,
            "ppo",
            backend,
            seed,
            Ppo::evaluate,
        )?;
        Ok(())
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let kind = args.common.backend_kind()?;
    dispatch(kind, Run(args, kind))?
}
