//! Bring your own env: a corridor walk written here, registered under its own id, checked by
//! the env checker and trained by PPO through Cinder's runner — with periodic evaluation that
//! keeps the best policy, an early stop at a return threshold, and a callback of our own.
//!
//! ```text
//! cargo run --release --example custom_env -- --seed 1 --out runs/corridor-s1
//! ```
//!
//! The env: a walker starts in the middle of cells `0..=20` and must reach the end the episode
//! names — cell 0 or cell 20, drawn at each reset and shown in the observation (reward +1, the
//! episode terminates); each step costs 0.01 and episodes are cut after 100 steps. The best
//! policy walks straight to its goal: a return of `1 − 0.01 · 9 = 0.91`. A policy that ignores
//! the goal reaches it half the time (a mean return near 0).
//!
//! Registered envs live in the program that registers them, so `cinder eval` (another program)
//! does not know `Corridor-v0`; this example evaluates its own run at the end.

use anyhow::Result;
use cinder::backend::BackendKind;
use cinder::env::rng::EnvRng;
use cinder::env::space::{BoxSpace, Discrete, Space};
use cinder::env::{Env, EnvError, EnvSpec, EnvState, Info, Step, check_env, register};
use cinder::presets::{Algorithm, resolve};
use cinder::rl::callbacks::{Callback, LearnerView, UpdateEvent};
use cinder::runner::{self, PeriodicEval, RunOptions, RunSpec, UserCallback};
use clap::Parser;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The corridor's last cell.
const END: u32 = 20;

/// A walker in a corridor of cells `0..=END` (see the module docs).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Corridor {
    cell: u32,
    goal: u32,
    rng: EnvRng,
    running: bool,
}

impl Corridor {
    /// Observation: the position and the goal, scaled to [0, 1].
    fn obs(&self) -> Vec<f32> {
        vec![self.cell as f32 / END as f32, self.goal as f32 / END as f32]
    }
}

impl Env for Corridor {
    type Obs = Vec<f32>;
    type Action = usize;

    fn observation_space(&self) -> Space {
        Space::Box(BoxSpace::uniform_bounds(0.0, 1.0, 2))
    }
    fn action_space(&self) -> Space {
        // 0: left, 1: right.
        Space::Discrete(Discrete::new(2))
    }
    fn reset(&mut self, seed: Option<u64>) -> cinder::env::Result<(Vec<f32>, Info)> {
        self.goal = if self.rng.reset(seed).integers(2) == 0 {
            0
        } else {
            END
        };
        self.cell = END / 2;
        self.running = true;
        Ok((self.obs(), Info::default()))
    }
    fn step(&mut self, action: &usize) -> cinder::env::Result<Step<Vec<f32>>> {
        if !self.running {
            return Err(EnvError::ResetNeeded);
        }
        match action {
            0 => self.cell = self.cell.saturating_sub(1),
            1 => self.cell = (self.cell + 1).min(END),
            &action => return Err(EnvError::ActionOutOfRange { action, n: 2 }),
        }
        let terminated = self.cell == self.goal;
        self.running = !terminated;
        Ok(Step {
            obs: self.obs(),
            reward: if terminated { 1.0 } else { -0.01 },
            terminated,
            truncated: false,
            info: Info::default(),
        })
    }
    // Resumable checkpoints save the env's state.
    fn save_state(&self) -> cinder::env::Result<EnvState> {
        serde_json::to_value(self).map_err(|e| EnvError::BadState(e.to_string()))
    }
    fn load_state(&mut self, state: &EnvState) -> cinder::env::Result<()> {
        *self =
            serde_json::from_value(state.clone()).map_err(|e| EnvError::BadState(e.to_string()))?;
        Ok(())
    }
}

/// A callback of our own: prints the mean training return every `every` updates.
struct PrintEvery {
    every: u64,
}

impl Callback for PrintEvery {
    fn on_update(
        &mut self,
        event: &UpdateEvent<'_>,
        _learner: &dyn LearnerView,
    ) -> cinder::rl::Result<ControlFlow<String>> {
        if event.iteration % self.every == 0 {
            if let Some(mean) = event.mean_return_last_20 {
                println!(
                    "update {:>4}, step {:>6}: mean return of the last 20 episodes {mean:.3}",
                    event.iteration, event.global_step
                );
            }
        }
        Ok(ControlFlow::Continue(()))
    }
}

#[derive(Parser, Debug)]
#[command(about = "PPO on a corridor env defined and registered by this example")]
struct Args {
    /// Seed of the policy, the sampling and the envs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Total env steps.
    #[arg(long, default_value_t = 30_000)]
    total_steps: u64,
    /// The run directory.
    #[arg(long, default_value = "runs/corridor")]
    out: PathBuf,
    /// Stop once an evaluation's mean return reaches this.
    #[arg(long, default_value_t = 0.8)]
    stop_at_return: f64,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    // A time limit of 100 steps, as `gymnasium.register(..., max_episode_steps=100)`.
    register(
        EnvSpec::new("Corridor-v0", 100, || {
            cinder::env::env::Erased::boxed(Corridor::default())
        })
        .with_reward_threshold(0.8),
    )?;
    // The env keeps the contract (seeding, spaces, errors) before anything trains on it.
    check_env(&mut cinder::env::make("Corridor-v0")?)?;

    let resolved = resolve(
        Algorithm::Ppo,
        "Corridor-v0",
        None,
        &[
            format!("seed={}", args.seed),
            format!("total_timesteps={}", args.total_steps),
            "num_steps=64".into(),
        ],
    )?;
    let printer = Arc::new(Mutex::new(PrintEvery { every: 10 }));
    let summary = runner::train(RunSpec {
        env_id: "Corridor-v0".into(),
        algorithm: Algorithm::Ppo,
        config: resolved.config,
        preset_source: None,
        backend: BackendKind::cpu(),
        out: Some(args.out.clone()),
        options: RunOptions {
            eval_episodes: 20,
            progress: !args.quiet,
            periodic_eval: Some(PeriodicEval {
                every_steps: 2048,
                episodes: 10,
            }),
            stop_at_return: Some(args.stop_at_return),
            callbacks: vec![UserCallback::new(printer)],
            ..RunOptions::default()
        },
    })?;
    cinder::cli::print_summary(&summary);
    let best = runner::evaluate_checkpoint(
        &args.out,
        cinder::rl::callbacks::files::BEST_CHECKPOINT,
        20,
        runner::EVAL_SEED,
        None,
    )?;
    println!(
        "best policy (best.ckpt): {:.3} ± {:.3} over 20 episodes; run directory {}",
        best.mean_return,
        best.std_return,
        args.out.display()
    );
    Ok(())
}
