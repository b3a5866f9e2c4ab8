//! PPO on CartPole-v1 with CleanRL's hyperparameters: Cinder against CleanRL's `ppo.py` in
//! PyTorch (`shared/peers/ppo_cleanrl.py`, one torch thread) and rl4burn 0.1.1's `ppo_cartpole`
//! example (Burn 0.20, ndarray; built by `tools/rl4burn_ppo.sh`), seed by seed in the same run,
//! so that all see the machine in the same state.
//!
//! For each seed: wall and CPU time of the whole budget, steps/s, the first step (and the time)
//! at which the mean of the last 20 training returns reaches 475, and for Cinder where the time
//! went (env stepping, rollout inference, update).

use crate::measure::{children_cpu_time, median, process_cpu_time};
use anyhow::{Context, Result, bail};
use cinder::backend::BackendKind;
use cinder::presets::{Algorithm, AlgorithmConfig};
use cinder::runner::{self, RunOptions, RunSpec};
use cinder_rl::ppo::PpoConfig;
use cinder_rl::run::Timings;
use serde::{Deserialize, Serialize};
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Mean of the last 20 training returns that counts as solved (CartPole-v1's threshold).
pub const SOLVE_THRESHOLD: f64 = 475.0;

/// One training run's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PpoRun {
    /// The seed.
    pub seed: u64,
    /// Env steps.
    pub steps: u64,
    /// Wall-clock seconds for the whole budget.
    pub wall_s: f64,
    /// Process CPU seconds for the whole budget.
    pub cpu_s: f64,
    /// First env step at which the mean of the last 20 returns reached 475.
    pub solved_step: Option<u64>,
    /// Wall-clock seconds at that point.
    pub solved_wall_s: Option<f64>,
    /// Seconds in env stepping, rollout inference and updates (Cinder only).
    pub timings: Option<Timings>,
    /// Greedy evaluation over 20 episodes at the end (Cinder only).
    pub eval_mean: Option<f64>,
}

impl PpoRun {
    /// Steps per wall-clock second.
    pub fn steps_per_sec(&self) -> f64 {
        self.steps as f64 / self.wall_s.max(1e-12)
    }
}

/// A peer implementation's runs, seed by seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerRuns {
    /// How the table names it.
    pub name: String,
    /// One run per seed, in the order of Cinder's.
    pub runs: Vec<PpoRun>,
}

/// Trains Cinder's PPO on CartPole-v1 (the default CPU backend, CleanRL's defaults) for
/// `total_steps`.
pub fn run_cinder(seed: u64, total_steps: u64) -> Result<PpoRun> {
    run_cinder_on(BackendKind::cpu(), seed, total_steps)
}

/// Trains Cinder's PPO on CartPole-v1 (CleanRL's defaults) for `total_steps` on `backend`,
/// through Cinder's runner (no run directory), and evaluates it greedily over 20 episodes.
pub fn run_cinder_on(backend: BackendKind, seed: u64, total_steps: u64) -> Result<PpoRun> {
    let config = PpoConfig::new()
        .with_seed(seed)
        .with_total_timesteps(total_steps);
    let cpu0 = process_cpu_time();
    let start = Instant::now();
    let summary = runner::train(RunSpec {
        env_id: "CartPole-v1".into(),
        algorithm: Algorithm::Ppo,
        config: AlgorithmConfig::Ppo(config),
        preset_source: None,
        backend,
        out: None,
        options: RunOptions {
            eval_episodes: 20,
            checkpoint_every: 0,
            progress: false,
            ..RunOptions::default()
        },
    })?;
    let wall_s = start.elapsed().as_secs_f64();
    let cpu_s = process_cpu_time() - cpu0;
    Ok(PpoRun {
        seed,
        steps: summary.total_steps,
        wall_s,
        cpu_s,
        solved_step: summary.solved_at_step,
        solved_wall_s: summary.solved_at_seconds,
        timings: Some(summary.timings),
        eval_mean: summary.evaluation.map(|e| e.mean_return),
    })
}

#[derive(Deserialize)]
struct CleanRlSolved {
    global_step: u64,
    wall_s: f64,
}

#[derive(Deserialize)]
struct CleanRlResult {
    total_timesteps: u64,
    wall_s: f64,
    cpu_s: f64,
    solved: Option<CleanRlSolved>,
    torch: String,
}

/// Runs `script` (`shared/peers/ppo_cleanrl.py`) with `python` for one seed, one torch thread.
/// Returns the run and PyTorch's version.
pub fn run_cleanrl(
    python: &str,
    script: &Path,
    seed: u64,
    total_steps: u64,
) -> Result<(PpoRun, String)> {
    let out =
        std::env::temp_dir().join(format!("cinder-cleanrl-{seed}-{}.json", std::process::id()));
    let status = Command::new(python)
        .args(["-W", "ignore"])
        .arg(script)
        .args(["--seed", &seed.to_string(), "--threads", "1"])
        .args(["--total-timesteps", &total_steps.to_string()])
        .args(["--max-wall", "100000"])
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    if !status.success() {
        bail!("{} failed ({status})", script.display());
    }
    let text = std::fs::read_to_string(&out).context("reading the CleanRL result")?;
    let _ = std::fs::remove_file(&out);
    let r: CleanRlResult = serde_json::from_str(&text).context("parsing the CleanRL result")?;
    Ok((
        PpoRun {
            seed,
            steps: r.total_timesteps,
            wall_s: r.wall_s,
            cpu_s: r.cpu_s,
            solved_step: r.solved.as_ref().map(|s| s.global_step),
            solved_wall_s: r.solved.as_ref().map(|s| s.wall_s),
            timings: None,
            eval_mean: None,
        },
        r.torch,
    ))
}

/// The env steps rl4burn 0.1.1's `ppo_cartpole` takes: 500,000 rounded down to whole iterations
/// of 4 envs × 128 steps (its budget is fixed in the example).
pub const RL4BURN_STEPS: u64 = 500_000 / 512 * 512;

/// Parses one of rl4burn's progress lines, `[step    12800] rollout/avg_return: 187.4000`,
/// into the step and the mean of the last (up to) 20 training returns.
pub fn parse_rl4burn_line(line: &str) -> Option<(u64, f64)> {
    let rest = line.trim().strip_prefix("[step")?;
    let (step, rest) = rest.split_once(']')?;
    let value = rest.trim().strip_prefix("rollout/avg_return:")?;
    Some((step.trim().parse().ok()?, value.trim().parse().ok()?))
}

/// Runs rl4burn 0.1.1's `ppo_cartpole` example (`bin`, built by `tools/rl4burn_ppo.sh`) for one
/// seed. Its wall time is the process's, its CPU time the child's; the solve step and time are
/// read from its progress lines as they arrive (it logs the last-20 mean every 5 iterations,
/// 2,560 steps, so the step is that of the first log line at or above 475).
pub fn run_rl4burn(bin: &Path, seed: u64) -> Result<PpoRun> {
    let cpu0 = children_cpu_time();
    let start = Instant::now();
    let mut child = Command::new(bin)
        .env("RL4BURN_SEED", seed.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", bin.display()))?;
    let stderr = child.stderr.take().context("rl4burn's stderr")?;
    let (mut solved_step, mut solved_wall_s, mut last_step) = (None, None, 0);
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.context("reading rl4burn's output")?;
        if let Some((step, mean)) = parse_rl4burn_line(&line) {
            last_step = step;
            if solved_step.is_none() && mean >= SOLVE_THRESHOLD {
                solved_step = Some(step);
                solved_wall_s = Some(start.elapsed().as_secs_f64());
            }
        }
    }
    let status = child.wait().context("waiting for rl4burn")?;
    let wall_s = start.elapsed().as_secs_f64();
    if !status.success() {
        bail!("{} failed ({status})", bin.display());
    }
    if last_step == 0 {
        bail!(
            "{} printed no `rollout/avg_return` lines: is it rl4burn 0.1.1's ppo_cartpole?",
            bin.display()
        );
    }
    Ok(PpoRun {
        seed,
        steps: RL4BURN_STEPS,
        wall_s,
        cpu_s: children_cpu_time() - cpu0,
        solved_step,
        solved_wall_s,
        timings: None,
        eval_mean: None,
    })
}

fn opt<T: std::fmt::Display>(x: Option<T>) -> String {
    x.map_or_else(|| "not reached".into(), |v| v.to_string())
}

/// The markdown table: one row per seed and implementation, then the medians and ratios.
/// `label` names Cinder's backend; each peer's runs follow Cinder's seed by seed.
pub fn markdown_table(label: &str, cinder: &[PpoRun], peers: &[PeerRuns]) -> String {
    let mut t = String::from(
        "| seed | implementation | wall (s) | CPU (s) | steps/s | steps to 475 | time to 475 (s) | greedy eval |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut row = |name: &str, r: &PpoRun| {
        t.push_str(&format!(
            "| {} | {name} | {:.1} | {:.1} | {:.0} | {} | {} | {} |\n",
            r.seed,
            r.wall_s,
            r.cpu_s,
            r.steps_per_sec(),
            opt(r.solved_step),
            opt(r.solved_wall_s.map(|s| format!("{s:.1}"))),
            opt(r.eval_mean.map(|m| format!("{m:.1}"))).replace("not reached", "–"),
        ));
    };
    let cinder_name = format!("Cinder ({label})");
    for (i, c) in cinder.iter().enumerate() {
        row(&cinder_name, c);
        for peer in peers {
            if let Some(p) = peer.runs.get(i) {
                row(&peer.name, p);
            }
        }
    }
    let wall = |rs: &[PpoRun]| median(rs.iter().map(|r| r.wall_s).collect());
    let cpu = |rs: &[PpoRun]| median(rs.iter().map(|r| r.cpu_s).collect());
    t.push_str(&format!(
        "\nMedians: Cinder {:.1} s wall / {:.1} s CPU",
        wall(cinder),
        cpu(cinder)
    ));
    for peer in peers.iter().filter(|p| !p.runs.is_empty()) {
        t.push_str(&format!(
            "; {} {:.1} s wall / {:.1} s CPU: Cinder is **{:.1}×** faster in wall-clock time and {:.1}× in CPU time",
            peer.name,
            wall(&peer.runs),
            cpu(&peer.runs),
            wall(&peer.runs) / wall(cinder),
            cpu(&peer.runs) / cpu(cinder),
        ));
    }
    t.push_str(".\n");
    let sum = |f: fn(&Timings) -> f64| {
        cinder
            .iter()
            .filter_map(|r| r.timings.as_ref())
            .map(f)
            .sum::<f64>()
    };
    let (env, inference, update) = (sum(|t| t.env), sum(|t| t.inference), sum(|t| t.update));
    let total = env + inference + update;
    if total > 0.0 {
        t.push_str(&format!(
            "Where Cinder's time goes: update {:.0}%, rollout inference {:.0}%, env stepping {:.1}%.\n",
            100.0 * update / total,
            100.0 * inference / total,
            100.0 * env / total
        ));
    }
    t
}
