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

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use cinder::backend::{BackendKind, BackendTask, dispatch};
use cinder::env::classic_control::CartPoleVec;
use cinder::env::{AutoresetMode, make, spec};
use cinder::rl::ppo::{Ppo, PpoConfig};
use cinder::rl::run::{Evaluation, RunDir, RunSummary, TrainOptions, train};
use clap::Parser;
use std::path::PathBuf;

const ENV_ID: &str = "CartPole-v1";

#[derive(Parser, Debug)]
#[command(about = "PPO on CartPole-v1 (CleanRL's defaults), on any compiled Burn backend")]
struct Args {
    /// Seed of the policy, the sampling and the envs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Total env steps.
    #[arg(long, default_value_t = 500_000)]
    total_steps: u64,
    /// Parallel envs.
    #[arg(long, default_value_t = 4)]
    num_envs: usize,
    /// The run directory (default: runs/cartpole_ppo-s<seed>-<unix time>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this directory from its checkpoint (its config is used; --seed,
    /// --total-steps and --num-envs are ignored).
    #[arg(long, conflicts_with = "out")]
    resume: Option<PathBuf>,
    /// Backend: ndarray, wgpu or cuda, among those compiled in (default: the best one, or on
    /// --resume the run's own).
    #[arg(long, value_parser = |s: &str| s.parse::<BackendKind>())]
    backend: Option<BackendKind>,
    /// Write a checkpoint every this many updates (and at the end).
    #[arg(long, default_value_t = 50)]
    checkpoint_every: u64,
    /// Greedy evaluation episodes at the end.
    #[arg(long, default_value_t = 20)]
    eval_episodes: usize,
}

/// The whole run, generic over the backend.
struct Run(Args, BackendKind);

impl BackendTask for Run {
    type Output = Result<()>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<()> {
        let Run(args, kind) = self;
        let backend = format!("{kind} ({})", B::name(&device));
        let (mut ppo, mut run_dir) = match &args.resume {
            Some(dir) => {
                let checkpoint = dir.join(cinder::rl::run::files::CHECKPOINT);
                let config: PpoConfig = RunDir::read_config::<serde_json::Value>(dir)
                    .ok()
                    .and_then(|c| serde_json::from_value(c["ppo"].clone()).ok())
                    .context("reading the run's config.json")?;
                let envs = CartPoleVec::new(config.num_envs, AutoresetMode::SameStep)?;
                let ppo = Ppo::<B, _>::resume(&checkpoint, envs, device)?;
                let dir = RunDir::reopen(dir, cinder::rl::run::Learner::iteration(&ppo))?;
                eprintln!(
                    "resuming {} at step {}",
                    dir.path().display(),
                    cinder::rl::run::Learner::global_step(&ppo)
                );
                (ppo, dir)
            }
            None => {
                let config = PpoConfig::new()
                    .with_seed(args.seed)
                    .with_total_timesteps(args.total_steps)
                    .with_num_envs(args.num_envs);
                let out = args.out.clone().unwrap_or_else(|| {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    PathBuf::from(format!("runs/cartpole_ppo-s{}-{now}", args.seed))
                });
                let dir = RunDir::create(
                    &out,
                    &serde_json::json!({
                        "env": ENV_ID,
                        "algorithm": "ppo",
                        "backend": kind.name(),
                        "ppo": config,
                    }),
                )?;
                let envs = CartPoleVec::new(config.num_envs, AutoresetMode::SameStep)?;
                (Ppo::<B, _>::new(config, envs, device)?, dir)
            }
        };
        let options = TrainOptions {
            checkpoint_every: args.checkpoint_every,
            progress: true,
            solve_threshold: spec(ENV_ID).ok().and_then(|s| s.reward_threshold),
        };
        let report = train(&mut ppo, Some(&mut run_dir), &options)?;

        let mut env = make(ENV_ID)?;
        let evaluation =
            Evaluation::from_returns(ppo.evaluate(&mut env, args.eval_episodes, 10_000)?);
        let steps = cinder::rl::run::Learner::global_step(&ppo);
        let wall = cinder::rl::run::Learner::wall_seconds(&ppo);
        let summary = RunSummary {
            env: ENV_ID.into(),
            algorithm: "ppo".into(),
            backend,
            seed: ppo.config().seed,
            total_steps: steps,
            updates: cinder::rl::run::Learner::iteration(&ppo),
            wall_seconds: wall,
            steps_per_second: steps as f64 / wall.max(1e-9),
            train_episodes: report.episodes,
            train_mean_return_last_20: report.mean_last_returns(),
            solved_at_step: report.solved_at_step,
            solved_at_seconds: report.solved_at_seconds,
            evaluation: Some(evaluation.clone()),
        };
        run_dir.write_summary(&summary)?;
        println!(
            "done: {steps} steps in {wall:.1} s ({:.0} steps/s) on {}",
            summary.steps_per_second, summary.backend
        );
        match summary.solved_at_step {
            Some(step) => println!(
                "mean return of the last 20 training episodes reached 475 at step {step} ({:.1} s)",
                summary.solved_at_seconds.unwrap_or_default()
            ),
            None => println!("the mean of the last 20 training returns never reached 475"),
        }
        println!(
            "greedy evaluation over {} episodes: {:.1} ± {:.1}",
            evaluation.episodes, evaluation.mean_return, evaluation.std_return
        );
        println!("run directory: {}", run_dir.path().display());
        Ok(())
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let kind = match (args.backend, &args.resume) {
        (Some(kind), _) => kind,
        // A resumed run stays on its backend unless told otherwise.
        (None, Some(dir)) => RunDir::read_config::<serde_json::Value>(dir)?["backend"]
            .as_str()
            .context("config.json names no backend")?
            .parse()?,
        (None, None) => BackendKind::best(),
    };
    dispatch(kind, Run(args, kind))?
}
