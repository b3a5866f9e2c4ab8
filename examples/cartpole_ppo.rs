//! PPO on CartPole-v1 with CleanRL's hyperparameters, on the CPU (ndarray).
//!
//! ```text
//! cargo run --release --example cartpole_ppo -- --seed 1 --total-steps 500000
//! ```
//!
//! Prints one line per 10 updates (steps, steps/s, mean return of the last 20 episodes, losses),
//! then a greedy evaluation over 20 episodes.

use anyhow::Result;
use burn::module::AutodiffModule;
use cinder::backend::{NdArray, NdArrayDevice};
use cinder::env::classic_control::CartPoleVec;
use cinder::env::{AutoresetMode, make};
use cinder::rl::ppo::{Ppo, PpoConfig, evaluate_greedy};
use clap::Parser;
use std::collections::VecDeque;
use std::time::Instant;

#[derive(Parser)]
#[command(about = "PPO on CartPole-v1 (CleanRL's defaults)")]
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
}

fn main() -> Result<()> {
    let args = Args::parse();
    let config = PpoConfig::new()
        .with_seed(args.seed)
        .with_total_timesteps(args.total_steps)
        .with_num_envs(args.num_envs);
    let envs = CartPoleVec::new(args.num_envs, AutoresetMode::SameStep)?;
    let device = NdArrayDevice::Cpu;
    let mut ppo = Ppo::<NdArray, _>::new(config, envs, device)?;
    let start = Instant::now();
    let mut recent: VecDeque<f64> = VecDeque::with_capacity(20);
    while !ppo.finished() {
        let m = ppo.iterate()?;
        for r in m.episode_returns.iter().copied() {
            if recent.len() == 20 {
                recent.pop_front();
            }
            recent.push_back(r);
        }
        if m.iteration % 10 == 0 || ppo.finished() {
            let mean = recent.iter().sum::<f64>() / recent.len().max(1) as f64;
            println!(
                "step {:>7}  {:>6.0} steps/s  return(last 20) {:>6.1}  pg {:+.4}  v {:.3}  ent {:.3}  kl {:.4}",
                m.global_step,
                m.global_step as f64 / start.elapsed().as_secs_f64(),
                mean,
                m.policy_loss,
                m.value_loss,
                m.entropy,
                m.approx_kl
            );
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let model = ppo.model().valid();
    let mut env = make("CartPole-v1")?;
    let returns = evaluate_greedy(&model, &mut env, 20, 10_000, &NdArrayDevice::Cpu)?;
    let mean = returns.iter().sum::<f64>() / returns.len() as f64;
    let std =
        (returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / returns.len() as f64).sqrt();
    println!(
        "\ndone: {} steps in {wall:.1} s ({:.0} steps/s); greedy evaluation over 20 episodes: {mean:.1} ± {std:.1}",
        ppo.config().num_iterations() * ppo.config().batch_size() as u64,
        (ppo.config().num_iterations() * ppo.config().batch_size() as u64) as f64 / wall,
    );
    Ok(())
}
