//! # cinder-bench
//!
//! Cinder's benchmarks, reproducible from one command each (see the README):
//!
//! - [`envs`]: environment steps per second, single and vectorised (8, 64 and 4096 envs), random
//!   actions, resets included, for our five classic-control envs, beside Gymnasium (measured in
//!   the same run through `tools/bench_gymnasium.py` when `gymnasium` is importable) and
//!   Operant (`operant-envs`, the fastest Rust env library we know of);
//! - [`ppo`]: PPO on CartPole-v1 with CleanRL's hyperparameters, Cinder (flex, the default CPU
//!   backend) against CleanRL's `ppo.py` in PyTorch and rl4burn's `ppo_cartpole`, seed by seed
//!   in the same run;
//! - [`methods`]: PPO, REINFORCE, GRPO and TRPO side by side on CartPole-v1 (flex), steps and
//!   time to solve over the same seeds;
//! - [`backends`]: the same RL workloads (policy inference, PPO update, full PPO iterations,
//!   training to solve) on every Burn backend compiled in (flex, ndarray, WGPU, CUDA), beside PyTorch
//!   in the same run, with a table and a plot ([`plot`]);
//! - [`sequence`]: the sequence pipeline (small transformer policy) on every backend: sampling
//!   tokens per second with and without the KV cache, GRPO's and PPO's step times.
//!
//! Timing lives here, never in tests. Each figure is the median of several repetitions, with
//! wall-clock and process CPU time.
//!
//! ```
//! use cinder_bench::measure::{Measurement, median_of};
//!
//! let m: Measurement = median_of(3, || {
//!     let mut sum = 0u64;
//!     for i in 0..1000 { sum = sum.wrapping_add(std::hint::black_box(i)); }
//!     1000
//! });
//! assert_eq!(m.steps, 1000);
//! assert!(m.steps_per_sec() > 0.0);
//! ```

pub mod backends;
pub mod envs;
pub mod measure;
pub mod methods;
pub mod plot;
pub mod ppo;
pub mod sequence;
pub mod suite;
