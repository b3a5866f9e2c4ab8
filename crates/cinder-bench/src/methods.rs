//! PPO, REINFORCE, GRPO and TRPO side by side on CartPole-v1: the same budget, the same seeds,
//! one backend (flex, the default CPU backend, unless `--backend` says), each method with its defaults (`PpoConfig::new()`, `reinforce::config()`,
//! `grpo::config()`, `TrpoConfig::new()`). For each run: the first step (and time) at which the mean of the last 20
//! training returns reaches 475, the wall time of the whole budget and the greedy evaluation.

use anyhow::Result;
use cinder::backend::BackendKind;
use cinder::presets::{Algorithm, AlgorithmConfig};
use cinder::runner::{self, RunOptions, RunSpec};
use cinder_rl::ppo::PpoConfig;
use cinder_rl::trpo::TrpoConfig;
use cinder_rl::{grpo, reinforce};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The methods compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    /// PPO with CleanRL's hyperparameters.
    Ppo,
    /// REINFORCE with a learned baseline.
    Reinforce,
    /// GRPO on episodes.
    Grpo,
    /// TRPO with SB3-contrib's hyperparameters.
    Trpo,
}

impl Method {
    /// All four, in table order.
    pub const ALL: [Method; 4] = [Method::Ppo, Method::Reinforce, Method::Grpo, Method::Trpo];

    /// The method's name.
    pub fn name(self) -> &'static str {
        match self {
            Method::Ppo => "PPO",
            Method::Reinforce => "REINFORCE",
            Method::Grpo => "GRPO",
            Method::Trpo => "TRPO",
        }
    }

    /// Its pieces: (advantage, surrogate, penalty, batch).
    pub fn pieces(self) -> [&'static str; 4] {
        match self {
            Method::Ppo => [
                "GAE(0.99, 0.95) with a critic, normalised per minibatch",
                "clipped ratio, ε = 0.2; 4 epochs × 4 minibatches",
                "entropy 0.01, value loss 0.5",
                "4 envs × 128 steps",
            ],
            Method::Reinforce => [
                "return-to-go − learned V(s), normalised",
                "vanilla −log π · Â; 1 step per batch",
                "value loss 0.5",
                "8 complete episodes",
            ],
            Method::Grpo => [
                "group-relative (R − mean) / (std + 1e-4), groups of 8 from one seeded start",
                "clipped ratio, ε = 0.2; 4 steps per batch",
                "β = 0.04 · k3 KL to a reference refreshed every 10 updates; no critic",
                "2 groups × 8 episodes",
            ],
            Method::Trpo => [
                "GAE(0.99, 0.95) with a critic, normalised over the rollout",
                "ratio ρ · Â, maximised inside mean KL(π_θ ‖ π_old) ≤ 0.01: natural gradient by \
                 15 conjugate-gradient steps on exact Fisher products (damping 0.1), backtracking \
                 line search",
                "none in the policy step; critic: 10 epochs of Adam on the MSE",
                "1 env × 2048 steps",
            ],
        }
    }
}

/// One training run's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodRun {
    /// The method.
    pub method: Method,
    /// The seed.
    pub seed: u64,
    /// Env steps taken.
    pub steps: u64,
    /// Updates done.
    pub updates: u64,
    /// Wall-clock seconds for the whole budget (construction, training).
    pub wall_s: f64,
    /// First env step at which the mean of the last 20 training returns reached 475.
    pub solved_step: Option<u64>,
    /// Training seconds at that point.
    pub solved_wall_s: Option<f64>,
    /// Greedy evaluation over 20 episodes at the end.
    pub eval_mean: f64,
}

/// Trains `method` with `seed` for `total_steps` on `backend`, through Cinder's runner, each with
/// its defaults (PPO: CleanRL's). With `run_dir`, the run keeps its run directory there
/// (metrics for the learning curves); without, none.
pub fn run_method(
    method: Method,
    seed: u64,
    total_steps: u64,
    backend: BackendKind,
    run_dir: Option<std::path::PathBuf>,
) -> Result<MethodRun> {
    let (algorithm, config) = match method {
        Method::Ppo => (
            Algorithm::Ppo,
            AlgorithmConfig::Ppo(
                PpoConfig::new()
                    .with_seed(seed)
                    .with_total_timesteps(total_steps),
            ),
        ),
        Method::Reinforce => (
            Algorithm::Reinforce,
            AlgorithmConfig::PolicyGradient(
                reinforce::config()
                    .with_seed(seed)
                    .with_total_timesteps(total_steps),
            ),
        ),
        Method::Grpo => (
            Algorithm::Grpo,
            AlgorithmConfig::PolicyGradient(
                grpo::config()
                    .with_seed(seed)
                    .with_total_timesteps(total_steps),
            ),
        ),
        Method::Trpo => (
            Algorithm::Trpo,
            AlgorithmConfig::Trpo(
                TrpoConfig::new()
                    .with_seed(seed)
                    .with_total_timesteps(total_steps),
            ),
        ),
    };
    let start = Instant::now();
    let summary = runner::train(RunSpec {
        env_id: "CartPole-v1".into(),
        algorithm,
        config,
        preset_source: None,
        backend,
        out: run_dir,
        options: RunOptions {
            eval_episodes: 20,
            checkpoint_every: 0,
            progress: false,
            ..RunOptions::default()
        },
    })?;
    Ok(MethodRun {
        method,
        seed,
        steps: summary.total_steps,
        updates: summary.updates,
        wall_s: start.elapsed().as_secs_f64(),
        solved_step: summary.solved_at_step,
        solved_wall_s: summary.solved_at_seconds,
        eval_mean: summary.evaluation.map_or(f64::NAN, |e| e.mean_return),
    })
}

/// Env steps in thousands, rounded to the nearest: `32768` → `33k` (seeds and medians alike).
fn thousands(steps: f64) -> String {
    format!("{}k", (steps / 1000.0).round())
}

/// The median, `None` for no values.
fn median(xs: Vec<f64>) -> Option<f64> {
    (!xs.is_empty()).then(|| crate::measure::median(xs))
}

/// The markdown tables: the methods' pieces, then per method the steps and seconds to solve
/// for each seed with their medians, the wall time of the budget and the greedy evaluations.
pub fn markdown_table(runs: &[MethodRun]) -> String {
    let mut t = String::from(
        "| method | advantage | surrogate | penalties | batch |\n|---|---|---|---|---|\n",
    );
    for method in Method::ALL {
        let [a, s, p, b] = method.pieces();
        t.push_str(&format!("| {} | {a} | {s} | {p} | {b} |\n", method.name()));
    }
    t.push_str(
        "\n| method | steps to 475 (per seed) | median | time to 475 (s, per seed) | median | \
         wall for the budget (s) | greedy eval |\n|---|---|---:|---|---:|---:|---|\n",
    );
    for method in Method::ALL {
        let rs: Vec<&MethodRun> = runs.iter().filter(|r| r.method == method).collect();
        if rs.is_empty() {
            continue;
        }
        let list = |f: &dyn Fn(&MethodRun) -> String| {
            rs.iter().map(|r| f(r)).collect::<Vec<_>>().join(" / ")
        };
        let steps = list(&|r| r.solved_step.map_or("–".into(), |s| thousands(s as f64)));
        let times = list(&|r| r.solved_wall_s.map_or("–".into(), |s| format!("{s:.1}")));
        let evals = list(&|r| format!("{:.0}", r.eval_mean));
        // A median over the seeds that solved, only if all did.
        let all_solved = rs.iter().all(|r| r.solved_step.is_some());
        let med_steps = all_solved
            .then(|| {
                median(
                    rs.iter()
                        .filter_map(|r| r.solved_step)
                        .map(|s| s as f64)
                        .collect(),
                )
            })
            .flatten()
            .map_or("–".into(), thousands);
        let med_time = all_solved
            .then(|| median(rs.iter().filter_map(|r| r.solved_wall_s).collect()))
            .flatten()
            .map_or("–".into(), |s| format!("{s:.1}"));
        let wall = median(rs.iter().map(|r| r.wall_s).collect()).unwrap_or(f64::NAN);
        t.push_str(&format!(
            "| {} | {steps} | {med_steps} | {times} | {med_time} | {wall:.1} | {evals} |\n",
            method.name()
        ));
    }
    t
}
