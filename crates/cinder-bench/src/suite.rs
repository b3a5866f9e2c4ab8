//! The classic-control suite: every algorithm × every env × seeds, each run through Cinder's
//! runner with the env's preset (the same as `cinder train --algo A --env E --seed S`), scored by
//! the deterministic (greedy) evaluation of the final policy, beside the published anchors.

use anyhow::Result;
use cinder::backend::BackendKind;
use cinder::presets::{Algorithm, resolve};
use cinder::runner::{self, RunOptions, RunSpec};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The five classic-control envs, in table order.
pub const ENVS: [&str; 5] = [
    "CartPole-v1",
    "Acrobot-v1",
    "MountainCar-v0",
    "MountainCarContinuous-v0",
    "Pendulum-v1",
];

/// The target and the RL Zoo's published result of `algorithm` on `env`: PPO's targets (the
/// issue's) and RL Zoo's `ppo.yml` results; TRPO's published `trpo.yml` results, whose target is
/// to land within their spread; none for the others.
pub fn anchor(algorithm: &str, env: &str) -> (&'static str, &'static str) {
    match algorithm {
        "ppo" => ppo_anchor(env),
        "trpo" => trpo_anchor(env),
        _ => ("–", "–"),
    }
}

/// TRPO's target (within the published spread) and the RL Zoo's published result for each env.
pub fn trpo_anchor(env: &str) -> (&'static str, &'static str) {
    match env {
        "CartPole-v1" => ("500", "500 ± 0"),
        "Acrobot-v1" => ("≥ −102", "−83 ± 19"),
        "MountainCar-v0" => ("≥ −120", "−107 ± 13"),
        "MountainCarContinuous-v0" => ("≥ 92.1", "92.5 ± 0.4 (gSDE)"),
        "Pendulum-v1" => ("≥ −303", "−175 ± 128 (gSDE)"),
        _ => ("–", "–"),
    }
}

/// PPO's target (the issue's) and the RL Zoo's published result for each env.
pub fn ppo_anchor(env: &str) -> (&'static str, &'static str) {
    match env {
        "CartPole-v1" => ("500", "500 ± 0"),
        "Acrobot-v1" => ("≥ −80", "−73.5 ± 18"),
        "MountainCar-v0" => ("≥ −115", "−110 ± 19"),
        "MountainCarContinuous-v0" => ("≥ 90", "88.3 ± 2.6 (gSDE)"),
        "Pendulum-v1" => ("≥ −200", "−172 ± 104 (gSDE)"),
        _ => ("–", "–"),
    }
}

/// One training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteRun {
    /// The algorithm.
    pub algorithm: String,
    /// The env id.
    pub env: String,
    /// The seed.
    pub seed: u64,
    /// Whether the env had a preset for the algorithm (else the algorithm's defaults).
    pub preset: bool,
    /// Env steps trained.
    pub steps: u64,
    /// Training seconds (the learner's own clock).
    pub train_s: f64,
    /// Wall-clock seconds of the whole run (construction, training, evaluation).
    pub wall_s: f64,
    /// Env steps per training second.
    pub steps_per_s: f64,
    /// Greedy evaluation: mean return.
    pub eval_mean: f64,
    /// Greedy evaluation: standard deviation of the returns.
    pub eval_std: f64,
    /// Greedy evaluation episodes.
    pub eval_episodes: usize,
}

/// Trains `algorithm` on `env` with `seed` (preset) on `backend` for the preset's budget (or
/// `total_steps`) and evaluates it over `eval_episodes`. With `run_dir`, the run keeps its run
/// directory there (metrics for the learning curves); without, none.
pub fn run_one(
    algorithm: Algorithm,
    env: &str,
    seed: u64,
    total_steps: Option<u64>,
    eval_episodes: usize,
    backend: BackendKind,
    run_dir: Option<std::path::PathBuf>,
) -> Result<SuiteRun> {
    let mut sets = vec![format!("seed={seed}")];
    if let Some(steps) = total_steps {
        sets.push(format!("total_timesteps={steps}"));
    }
    let resolved = resolve(algorithm, env, None, &sets)?;
    let preset = resolved.preset_source.is_some();
    let start = Instant::now();
    let summary = runner::train(RunSpec {
        env_id: env.into(),
        algorithm,
        config: resolved.config,
        preset_source: resolved.preset_source,
        backend,
        out: run_dir,
        options: RunOptions {
            eval_episodes,
            checkpoint_every: 0,
            progress: false,
            ..RunOptions::default()
        },
    })?;
    let evaluation = summary
        .evaluation
        .ok_or_else(|| anyhow::anyhow!("the run was not evaluated"))?;
    Ok(SuiteRun {
        algorithm: algorithm.name().into(),
        env: env.into(),
        seed,
        preset,
        steps: summary.total_steps,
        train_s: summary.wall_seconds,
        wall_s: start.elapsed().as_secs_f64(),
        steps_per_s: summary.steps_per_second,
        eval_mean: evaluation.mean_return,
        eval_std: evaluation.std_return,
        eval_episodes: evaluation.episodes,
    })
}

/// Mean and population standard deviation.
fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len().max(1) as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// The markdown table: per algorithm and env, each seed's greedy mean ± std, the mean ± std of
/// the seeds' means, steps, median training time and steps/s, and the target and published
/// result where the algorithm has them ([`anchor`]).
pub fn markdown_table(runs: &[SuiteRun]) -> String {
    let mut t = String::from(
        "| algorithm | env | preset | per seed: greedy mean ± std | over seeds | target | \
         RL Zoo (same algorithm) | steps (median) | train s (median) | steps/s (median) |\n\
         |---|---|---|---|---|---|---|---:|---:|---:|\n",
    );
    let mut algorithms: Vec<&str> = Vec::new();
    for r in runs {
        if !algorithms.contains(&r.algorithm.as_str()) {
            algorithms.push(&r.algorithm);
        }
    }
    for algorithm in algorithms {
        for env in ENVS {
            let rs: Vec<&SuiteRun> = runs
                .iter()
                .filter(|r| r.algorithm == algorithm && r.env == env)
                .collect();
            if rs.is_empty() {
                continue;
            }
            let per_seed = rs
                .iter()
                .map(|r| format!("s{}: {:.1} ± {:.1}", r.seed, r.eval_mean, r.eval_std))
                .collect::<Vec<_>>()
                .join(", ");
            let (mean, std) = mean_std(&rs.iter().map(|r| r.eval_mean).collect::<Vec<_>>());
            let (target, anchor) = anchor(algorithm, env);
            let median = |f: &dyn Fn(&SuiteRun) -> f64| {
                crate::measure::median(rs.iter().map(|r| f(r)).collect())
            };
            t.push_str(&format!(
                "| {algorithm} | {env} | {} | {per_seed} | {mean:.1} ± {std:.1} | {target} | \
                 {anchor} | {:.0} | {:.1} | {:.0} |\n",
                if rs.iter().all(|r| r.preset) {
                    "yes"
                } else {
                    "defaults"
                },
                median(&|r| r.steps as f64),
                median(&|r| r.train_s),
                median(&|r| r.steps_per_s),
            ));
        }
    }
    t
}

/// One Stable-Baselines3 PPO run with the RL Zoo's hyperparameters (`shared/peers/ppo_sb3_zoo.py`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sb3Run {
    /// The env id.
    pub env: String,
    /// The seed.
    pub seed: u64,
    /// Env steps trained (the Zoo's budget).
    pub total_timesteps: u64,
    /// Training wall-clock seconds (`model.learn`).
    pub wall_s: f64,
    /// Training CPU seconds.
    pub cpu_s: f64,
    /// Greedy evaluation: mean return.
    pub eval_mean: f64,
    /// Greedy evaluation: standard deviation of the returns.
    pub eval_std: f64,
    /// PyTorch's version.
    pub torch: String,
}

/// Runs `script` (`shared/peers/ppo_sb3_zoo.py`) with `python` for `env` and `seed`, one torch
/// thread, evaluating over `episodes` greedy episodes.
pub fn run_sb3_zoo(
    python: &str,
    script: &std::path::Path,
    env: &str,
    seed: u64,
    episodes: usize,
) -> Result<Sb3Run> {
    use anyhow::{Context, bail};
    let out = std::env::temp_dir().join(format!(
        "cinder-sb3-{env}-{seed}-{}.json",
        std::process::id()
    ));
    let status = std::process::Command::new(python)
        .args(["-W", "ignore"])
        .arg(script)
        .args(["--env", env, "--seed", &seed.to_string(), "--threads", "1"])
        .args(["--episodes", &episodes.to_string()])
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    if !status.success() {
        bail!(
            "{} failed for {env} seed {seed} ({status})",
            script.display()
        );
    }
    let text = std::fs::read_to_string(&out).context("reading the SB3 result")?;
    let _ = std::fs::remove_file(&out);
    serde_json::from_str(&text).context("parsing the SB3 result")
}

/// Cinder's PPO presets against SB3 + RL Zoo, env by env: greedy returns (mean over seeds),
/// median training seconds and their ratio. Envs without runs on both sides are left out.
pub fn sb3_table(cinder: &[SuiteRun], sb3: &[Sb3Run]) -> String {
    use crate::measure::median;
    let mut t = String::from(
        "| env | seeds | Cinder greedy return | SB3 + Zoo greedy return | Cinder steps | SB3 steps | \
         Cinder train s (median) | SB3 train s (median) | SB3 ÷ Cinder (time) |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut envs: Vec<&str> = Vec::new();
    for run in sb3 {
        if !envs.contains(&run.env.as_str()) {
            envs.push(&run.env);
        }
    }
    for env in envs {
        let ours: Vec<&SuiteRun> = cinder
            .iter()
            .filter(|r| r.algorithm == "ppo" && r.env == env)
            .collect();
        let theirs: Vec<&Sb3Run> = sb3.iter().filter(|r| r.env == env).collect();
        if ours.is_empty() {
            continue;
        }
        let seeds: Vec<String> = ours.iter().map(|r| r.seed.to_string()).collect();
        let (our_return, _) = mean_std(&ours.iter().map(|r| r.eval_mean).collect::<Vec<_>>());
        let (their_return, _) = mean_std(&theirs.iter().map(|r| r.eval_mean).collect::<Vec<_>>());
        let our_s = median(ours.iter().map(|r| r.train_s).collect());
        let their_s = median(theirs.iter().map(|r| r.wall_s).collect());
        let our_steps = median(ours.iter().map(|r| r.steps as f64).collect());
        let their_steps = median(theirs.iter().map(|r| r.total_timesteps as f64).collect());
        t.push_str(&format!(
            "| {env} | {} | {our_return:.1} | {their_return:.1} | {our_steps:.0} | {their_steps:.0} | \
             {our_s:.1} | {their_s:.1} | {:.1}× |\n",
            seeds.join(", "),
            their_s / our_s
        ));
    }
    t
}
