//! The same RL workloads on every backend compiled in (flex, ndarray, WGPU, CUDA), beside PyTorch.
//!
//! Four workloads, all on CartPole-v1's actor-critic (CleanRL's 64-64 tanh actor and critic):
//!
//! 1. **Policy inference**, the rollout path on the inner (non-autodiff) backend: upload a batch
//!    of observations, sample actions on the host from the policy's probabilities, read the
//!    values back. Latency per call at each batch size.
//! 2. **PPO update**: one minibatch of CleanRL's loss (clipped surrogate, clipped value loss,
//!    entropy), backward, global gradient-norm clipping and an Adam step, with the loss and
//!    gradient norm read back as [`Ppo`] reads them. Time per update.
//! 3. **A full PPO iteration** (rollout, GAE, all epochs and minibatches) for a few sizes:
//!    steps per second and the share of time in env stepping, inference and update.
//! 4. **End to end**: wall time and steps until the mean of the last 20 returns reaches 475.
//!
//! Method: the first call of each size is timed on its own (it carries kernel compilation and
//! autotuning on WGPU and CUDA), then a few warm-up calls, then repetitions until a time budget
//! is spent; the median and the 10th/90th percentiles are reported. Every call ends with
//! [`Backend::sync`], so the clock stops after the device has finished. The PyTorch side
//! (`tools/bench_backends_torch.py`) times the same micro-workloads the same way.

use crate::measure::{median, percentile, process_cpu_time};
use crate::ppo::{PpoRun, run_cinder_on};
use anyhow::{Context, Result, anyhow, bail, ensure};
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use cinder::backend::{BackendKind, BackendTask, dispatch};
use cinder_env::AutoresetMode;
use cinder_env::classic_control::CartPoleVec;
use cinder_env::rng::NpRandom;
use cinder_rl::gradients::clip_grad_norm;
use cinder_rl::policy::{Actions, ActorCritic, ActorCriticConfig};
use cinder_rl::ppo::{Minibatch, Ppo, PpoConfig, ppo_loss};
use cinder_rl::run::{Timings, UpdateReport};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// CartPole-v1's observation size and number of actions.
const OBS_DIM: usize = 4;
const NUM_ACTIONS: usize = 2;

/// `cinder-bench backends`: inference, update, full PPO iterations and training to solve on
/// each backend, PyTorch's micro-workloads beside them.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct BackendsArgs {
    /// Backends to measure (default: every backend compiled in).
    #[arg(long, value_delimiter = ',')]
    pub backends: Option<Vec<BackendKind>>,
    /// Batch sizes of the inference workload.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64,512,4096")]
    pub inference_batches: Vec<usize>,
    /// Minibatch sizes of the update workload.
    #[arg(long, value_delimiter = ',', default_value = "64,256,1024,4096")]
    pub update_batches: Vec<usize>,
    /// Minibatch sizes of the update's phase-by-phase breakdown ("where the time goes"; none:
    /// skip it, and the matrix-product peak it is compared with).
    #[arg(long, value_delimiter = ',', default_value = "128,4096")]
    pub breakdown_batches: Vec<usize>,
    /// Seconds of timed calls per size (at least --min-reps calls).
    #[arg(long, default_value_t = 1.0)]
    pub budget: f64,
    /// Timed calls per size, at least.
    #[arg(long, default_value_t = 10)]
    pub min_reps: usize,
    /// Untimed warm-up calls per size, after the first call (timed on its own).
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Full-iteration sizes: `cleanrl` (4 envs × 128 steps, minibatch 128) and `large` (64 envs
    /// × 256 steps, minibatch 4096).
    #[arg(long, value_delimiter = ',', default_value = "cleanrl,large")]
    pub settings: Vec<SettingName>,
    /// Timed PPO iterations per setting, after a first untimed one.
    #[arg(long, default_value_t = 5)]
    pub iterations: usize,
    /// Seeds of the end-to-end PPO runs.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub e2e_seeds: Vec<u64>,
    /// Env steps per end-to-end run.
    #[arg(long, default_value_t = 500_000)]
    pub e2e_total_steps: u64,
    /// Backends that also train end to end (default: all measured; on a CPU-only machine WGPU
    /// runs through software Vulkan at about 30 minutes per seed).
    #[arg(long, value_delimiter = ',')]
    pub e2e_backends: Option<Vec<BackendKind>>,
    /// Skip the end-to-end runs.
    #[arg(long)]
    pub no_e2e: bool,
    /// Python interpreter with torch (`shared/peers/setup.sh` makes one).
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Skip PyTorch even if it is importable.
    #[arg(long)]
    pub no_torch: bool,
    /// Directory for `backends.json`, `backends.md` and `backends.svg`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Measure nothing: render the table and plot of a saved `backends.json` (for example one
    /// measured on another machine) into `--out`.
    #[arg(long, value_name = "JSON")]
    pub from: Option<PathBuf>,
}

impl BackendsArgs {
    /// What to measure.
    pub fn config(&self) -> BenchConfig {
        BenchConfig {
            inference_batches: self.inference_batches.clone(),
            update_batches: self.update_batches.clone(),
            breakdown_batches: self.breakdown_batches.clone(),
            repetitions: Repetitions {
                warmup: self.warmup,
                min: self.min_reps,
                max: Repetitions::default().max.max(self.min_reps),
                budget_s: self.budget,
            },
            e2e_seeds: self.e2e_seeds.clone(),
            e2e_total_steps: self.e2e_total_steps,
            iterations: self.iterations,
            iteration_settings: self.settings.iter().map(|s| s.setting()).collect(),
        }
    }

    /// The backends to measure: those asked for, or every backend compiled in.
    pub fn backends(&self) -> Vec<BackendKind> {
        self.backends.clone().unwrap_or_else(BackendKind::compiled)
    }

    /// The backends that also train end to end.
    pub fn e2e_backends(&self) -> Vec<BackendKind> {
        if self.no_e2e {
            return Vec::new();
        }
        self.e2e_backends.clone().unwrap_or_else(|| self.backends())
    }
}

/// The named full-iteration sizes of the command line.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingName {
    /// [`IterationSetting::cleanrl`].
    Cleanrl,
    /// [`IterationSetting::large`].
    Large,
}

impl SettingName {
    /// The setting it names.
    pub fn setting(self) -> IterationSetting {
        match self {
            Self::Cleanrl => IterationSetting::cleanrl(),
            Self::Large => IterationSetting::large(),
        }
    }
}

/// How each micro-workload size is repeated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Repetitions {
    /// Untimed calls after the (separately timed) first call.
    pub warmup: usize,
    /// Timed calls at least.
    pub min: usize,
    /// Timed calls at most.
    pub max: usize,
    /// Seconds of timed calls to aim for (between `min` and `max` calls).
    pub budget_s: f64,
}

impl Default for Repetitions {
    fn default() -> Self {
        Self {
            warmup: 3,
            min: 10,
            max: 2000,
            budget_s: 1.0,
        }
    }
}

/// One size of a full PPO iteration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IterationSetting {
    /// A short name for tables.
    pub name: String,
    /// Parallel envs.
    pub num_envs: usize,
    /// Steps per env per rollout.
    pub num_steps: usize,
    /// Minibatches per epoch.
    pub num_minibatches: usize,
}

impl IterationSetting {
    /// CleanRL's CartPole PPO: 4 envs × 128 steps, 4 minibatches of 128.
    pub fn cleanrl() -> Self {
        Self {
            name: "CleanRL CartPole (4 envs × 128 steps, minibatch 128)".into(),
            num_envs: 4,
            num_steps: 128,
            num_minibatches: 4,
        }
    }

    /// A large rollout: 64 envs × 256 steps, 4 minibatches of 4096.
    pub fn large() -> Self {
        Self {
            name: "large (64 envs × 256 steps, minibatch 4096)".into(),
            num_envs: 64,
            num_steps: 256,
            num_minibatches: 4,
        }
    }

    /// Env steps per iteration.
    pub fn batch_size(&self) -> usize {
        self.num_envs * self.num_steps
    }

    /// Samples per minibatch.
    pub fn minibatch_size(&self) -> usize {
        self.batch_size() / self.num_minibatches.max(1)
    }
}

/// What to measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchConfig {
    /// Batch sizes of the inference workload.
    pub inference_batches: Vec<usize>,
    /// Minibatch sizes of the update workload.
    pub update_batches: Vec<usize>,
    /// Minibatch sizes of the update's phase-by-phase breakdown.
    #[serde(default)]
    pub breakdown_batches: Vec<usize>,
    /// Repetitions of each micro-workload size.
    pub repetitions: Repetitions,
    /// Full-iteration sizes.
    pub iteration_settings: Vec<IterationSetting>,
    /// Timed iterations per setting (after one untimed first iteration).
    pub iterations: usize,
    /// Seeds of the end-to-end runs (none: skip them).
    pub e2e_seeds: Vec<u64>,
    /// Env steps per end-to-end run.
    pub e2e_total_steps: u64,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            inference_batches: vec![1, 8, 64, 512, 4096],
            update_batches: vec![64, 256, 1024, 4096],
            breakdown_batches: vec![128, 4096],
            repetitions: Repetitions::default(),
            iteration_settings: vec![IterationSetting::cleanrl(), IterationSetting::large()],
            iterations: 5,
            e2e_seeds: vec![1, 2, 3],
            e2e_total_steps: 500_000,
        }
    }
}

impl BenchConfig {
    /// Checks sizes and counts.
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.inference_batches
                .iter()
                .chain(&self.update_batches)
                .chain(&self.breakdown_batches)
                .all(|&b| b > 0),
            "batch sizes must be positive"
        );
        let r = &self.repetitions;
        ensure!(
            r.min >= 1 && r.max >= r.min,
            "repetitions: need 1 ≤ min ≤ max (min {}, max {})",
            r.min,
            r.max
        );
        ensure!(
            r.budget_s.is_finite() && r.budget_s >= 0.0,
            "the time budget per size must be a non-negative number of seconds"
        );
        ensure!(self.iterations >= 1, "time at least one PPO iteration");
        for s in &self.iteration_settings {
            ensure!(
                s.num_envs > 0 && s.num_steps > 0 && s.num_minibatches > 0,
                "iteration setting {:?}: sizes must be positive",
                s.name
            );
            ensure!(
                s.batch_size() % s.num_minibatches == 0,
                "iteration setting {:?}: {} minibatches do not divide a batch of {}",
                s.name,
                s.num_minibatches,
                s.batch_size()
            );
        }
        Ok(())
    }
}

/// Timing of one workload size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// The workload's batch (or minibatch) size.
    pub batch: usize,
    /// Seconds of the very first call (kernel compilation and autotuning included).
    pub first_call_s: f64,
    /// Median seconds per call after warm-up.
    pub median_s: f64,
    /// 10th percentile.
    pub p10_s: f64,
    /// 90th percentile.
    pub p90_s: f64,
    /// Timed calls.
    pub repetitions: usize,
}

/// Times `call` (which must leave the device idle when it returns): the first call alone, then
/// `warmup` untimed calls, then timed calls until the budget is spent.
pub fn time_calls(
    batch: usize,
    reps: &Repetitions,
    mut call: impl FnMut() -> Result<()>,
) -> Result<Timing> {
    let t0 = Instant::now();
    call()?;
    let first_call_s = t0.elapsed().as_secs_f64();
    for _ in 0..reps.warmup {
        call()?;
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < reps.min
        || (times.len() < reps.max && start.elapsed().as_secs_f64() < reps.budget_s)
    {
        let t0 = Instant::now();
        call()?;
        times.push(t0.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(Timing {
        batch,
        first_call_s,
        median_s: percentile(&times, 50.0),
        p10_s: percentile(&times, 10.0),
        p90_s: percentile(&times, 90.0),
        repetitions: times.len(),
    })
}

/// A full PPO iteration's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IterationResult {
    /// The setting measured.
    pub setting: IterationSetting,
    /// Seconds of the first iteration (kernel compilation included).
    pub first_iteration_s: f64,
    /// Median seconds per iteration.
    pub median_s: f64,
    /// Env steps per second at the median.
    pub steps_per_sec: f64,
    /// Timed iterations.
    pub iterations: usize,
    /// Share of the timed iterations' wall time spent stepping envs.
    pub env_share: f64,
    /// Share in rollout inference (policy forward, sampling, values).
    pub inference_share: f64,
    /// Share in the update (GAE, epochs × minibatches).
    pub update_share: f64,
}

/// End-to-end figures of one seed.
pub type EndToEnd = PpoRun;

/// Everything measured on one backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendResult {
    /// `flex`, `ndarray`, `wgpu` or `cuda`.
    pub backend: String,
    /// Burn's name for the backend and device.
    pub device: String,
    /// Inference latency per batch size.
    pub inference: Vec<Timing>,
    /// Update time per minibatch size.
    pub update: Vec<Timing>,
    /// Full PPO iterations.
    pub iterations: Vec<IterationResult>,
    /// End-to-end training runs.
    pub e2e: Vec<EndToEnd>,
    /// The update phase by phase, per breakdown size.
    #[serde(default)]
    pub breakdown: Vec<UpdateBreakdown>,
    /// The backend's square matrix-product throughput, GFLOP/s ([`MATMUL_PEAK_SIZE`]).
    #[serde(default)]
    pub matmul_gflops: Option<f64>,
    /// Process CPU seconds this backend's measurements used.
    pub cpu_s: f64,
    /// Wall seconds they took.
    pub wall_s: f64,
}

/// Progress lines on stderr: `[k/n] what`.
#[derive(Debug, Default)]
pub struct Progress {
    done: usize,
    total: usize,
    quiet: bool,
}

impl Progress {
    /// A counter over `total` steps; `quiet` prints nothing.
    pub fn new(total: usize, quiet: bool) -> Self {
        Self {
            done: 0,
            total,
            quiet,
        }
    }

    /// Announces the next step.
    pub fn step(&mut self, what: &str) {
        self.done += 1;
        if !self.quiet {
            eprintln!("[{:>2}/{}] {what}", self.done, self.total);
        }
    }

    /// Steps one backend takes for `config` (`e2e`: with the end-to-end runs).
    pub fn steps_per_backend(config: &BenchConfig, e2e: bool) -> usize {
        config.inference_batches.len()
            + config.update_batches.len()
            + config.breakdown_batches.len()
            + usize::from(!config.breakdown_batches.is_empty())
            + config.iteration_settings.len()
            + if e2e { config.e2e_seeds.len() } else { 0 }
    }
}

fn cartpole_policy<B: Backend>(device: &B::Device) -> Result<ActorCritic<B>> {
    Ok(ActorCriticConfig::new(OBS_DIM, NUM_ACTIONS).init::<B>(device)?)
}

fn uniform(rng: &mut NpRandom, n: usize, low: f64, high: f64) -> Vec<f32> {
    (0..n).map(|_| rng.uniform(low, high) as f32).collect()
}

fn sync<B: Backend>(device: &B::Device) -> Result<()> {
    B::sync(device).map_err(|e| anyhow!("synchronising the device: {e:?}"))
}

/// Inference latency at `batch`: upload observations, sample on the host from the policy's
/// probabilities, read the values back (what one rollout step does).
pub fn bench_inference<B: Backend>(
    batch: usize,
    reps: &Repetitions,
    device: &B::Device,
) -> Result<Timing> {
    let policy = cartpole_policy::<B>(device)?;
    let mut rng = NpRandom::from_seed(0);
    let obs = uniform(&mut rng, batch * OBS_DIM, -1.0, 1.0);
    time_calls(batch, reps, || {
        let obs_t =
            Tensor::<B, 2>::from_data(TensorData::new(obs.clone(), [batch, OBS_DIM]), device);
        let sampled = policy.distribution(obs_t.clone()).sample(&mut rng);
        let values = policy
            .value(obs_t)
            .into_data()
            .to_vec::<f32>()
            .map_err(|e| anyhow!("reading values: {e:?}"))?;
        ensure!(
            sampled.log_probs.len() == batch && values.len() == batch,
            "inference returned the wrong number of rows"
        );
        std::hint::black_box((sampled, values));
        sync::<B>(device)
    })
}

/// The side of the square matrix product whose throughput stands for the backend's peak.
pub const MATMUL_PEAK_SIZE: usize = 1024;

/// The phases of one PPO minibatch update, in the order they run.
const PHASES: usize = 5;

/// One PPO minibatch update's inputs and state: CartPole's actor-critic, Adam, and a fixed
/// minibatch of random data (CleanRL's loss does not care what the numbers mean).
struct UpdateFixture<B: AutodiffBackend> {
    batch: usize,
    config: PpoConfig,
    model: ActorCritic<B>,
    optimizer: cinder_rl::adam::PolicyOptimizer<B, ActorCritic<B>>,
    obs: Vec<f32>,
    actions: Vec<i64>,
    old_log_probs: Vec<f32>,
    advantages: Vec<f32>,
    old_values: Vec<f32>,
    returns: Vec<f32>,
    device: B::Device,
}

impl<B: AutodiffBackend> UpdateFixture<B> {
    fn new(batch: usize, device: &B::Device) -> Result<Self> {
        let mut rng = NpRandom::from_seed(1);
        Ok(Self {
            batch,
            config: PpoConfig::new(),
            model: cartpole_policy::<B>(device)?,
            optimizer: cinder_rl::adam::fused_adam(1e-5),
            obs: uniform(&mut rng, batch * OBS_DIM, -1.0, 1.0),
            actions: (0..batch)
                .map(|_| rng.integers(NUM_ACTIONS as u64) as i64)
                .collect(),
            old_log_probs: uniform(&mut rng, batch, -0.8, -0.6),
            advantages: uniform(&mut rng, batch, -1.0, 1.0),
            old_values: uniform(&mut rng, batch, -1.0, 1.0),
            returns: uniform(&mut rng, batch, -1.0, 1.0),
            device: device.clone(),
        })
    }

    /// One update: upload the minibatch, loss (read back), backward, global norm clipping (the
    /// norm read back), Adam. With `phases`, the device is synchronised after each phase and
    /// its seconds added to `phases` (upload, forward and loss, backward, clipping, Adam);
    /// without, only at the end.
    fn step(&mut self, mut phases: Option<&mut [f64; PHASES]>) -> Result<()> {
        let (batch, device) = (self.batch, &self.device.clone());
        let mut clock = Instant::now();
        let mut lap = |phase: usize, phases: &mut Option<&mut [f64; PHASES]>| -> Result<()> {
            if let Some(phases) = phases.as_deref_mut() {
                sync::<B>(device)?;
                let now = Instant::now();
                phases[phase] += (now - clock).as_secs_f64();
                clock = now;
            }
            Ok(())
        };
        let vector =
            |v: &Vec<f32>| Tensor::<B, 1>::from_data(TensorData::new(v.clone(), [batch]), device);
        let minibatch = Minibatch {
            obs: Tensor::from_data(TensorData::new(self.obs.clone(), [batch, OBS_DIM]), device),
            actions: Actions::Discrete(Tensor::<B, 1, Int>::from_data(
                TensorData::new(self.actions.clone(), [batch]),
                device,
            )),
            old_log_probs: vector(&self.old_log_probs),
            advantages: vector(&self.advantages),
            old_values: vector(&self.old_values),
            returns: vector(&self.returns),
        };
        lap(0, &mut phases)?;
        let loss = ppo_loss(&self.model, minibatch, &self.config, None)?.loss;
        let loss_value = loss
            .clone()
            .into_data()
            .to_vec::<f32>()
            .map_err(|e| anyhow!("reading the loss: {e:?}"))?[0];
        ensure!(loss_value.is_finite(), "non-finite loss {loss_value}");
        lap(1, &mut phases)?;
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        lap(2, &mut phases)?;
        let (grads, norm) =
            clip_grad_norm::<B, _>(&self.model, grads, self.config.max_grad_norm, device);
        let norm = norm
            .into_data()
            .to_vec::<f32>()
            .map_err(|e| anyhow!("reading the gradient norm: {e:?}"))?[0];
        ensure!(norm.is_finite(), "non-finite gradient norm {norm}");
        lap(3, &mut phases)?;
        self.model = self
            .optimizer
            .step(self.config.learning_rate, self.model.clone(), grads);
        sync::<B>(device)?;
        lap(4, &mut phases)
    }
}

/// PPO update time at minibatch `batch`: CleanRL's loss, backward, global norm clipping, Adam.
pub fn bench_update<B: AutodiffBackend>(
    batch: usize,
    reps: &Repetitions,
    device: &B::Device,
) -> Result<Timing> {
    let mut fixture = UpdateFixture::<B>::new(batch, device)?;
    time_calls(batch, reps, || fixture.step(None))
}

/// The widths of CartPole's actor-critic layers, from the config the benchmarks build it with:
/// observations, the hidden layers (CleanRL's 64, 64), then `out` (2 logits, or 1 value).
fn layer_widths(out: usize) -> Vec<usize> {
    let hidden = ActorCriticConfig::new(OBS_DIM, NUM_ACTIONS)
        .network
        .hidden_sizes;
    std::iter::once(OBS_DIM)
        .chain(hidden)
        .chain(std::iter::once(out))
        .collect()
}

/// Floating-point operations of the matrix products of one PPO update at minibatch `batch`
/// (2 per multiply-add): the forward pass of the actor and the critic, and in the backward pass
/// the weights' gradients (as many as forward) and the inputs' gradients of every layer but the
/// first (whose input, the observations, needs none). Element-wise work (tanh, softmax, the
/// loss, Adam: a few operations per activation or parameter) is left out: at these sizes it is
/// bound by memory, not arithmetic.
pub fn update_flops(batch: usize) -> f64 {
    let macs_per_sample: usize = [layer_widths(NUM_ACTIONS), layer_widths(1)]
        .iter()
        .map(|widths| {
            let forward: usize = widths.windows(2).map(|w| w[0] * w[1]).sum();
            3 * forward - widths[0] * widths[1]
        })
        .sum();
    2.0 * batch as f64 * macs_per_sample as f64
}

/// One minibatch update split into phases (medians over the timed calls, seconds), with the
/// arithmetic it does.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UpdateBreakdown {
    /// Minibatch size.
    pub batch: usize,
    /// The minibatch from the host to the device (six tensors).
    pub upload_s: f64,
    /// The policy's forward pass and CleanRL's loss, the loss read back to the host.
    pub forward_s: f64,
    /// The backward pass, gradients collected per parameter.
    pub backward_s: f64,
    /// Global gradient-norm clipping, the norm read back to the host.
    pub clip_s: f64,
    /// The Adam step.
    pub optimizer_s: f64,
    /// Median of the whole update, phases together (with a device sync after each phase).
    pub total_s: f64,
    /// Floating-point operations of its matrix products ([`update_flops`]).
    pub flops: f64,
}

impl UpdateBreakdown {
    /// The phases as (name, median seconds), in order.
    pub fn phases(&self) -> [(&'static str, f64); PHASES] {
        [
            ("upload", self.upload_s),
            ("forward + loss", self.forward_s),
            ("backward", self.backward_s),
            ("clip", self.clip_s),
            ("Adam", self.optimizer_s),
        ]
    }
}

/// The update at minibatch `batch`, phase by phase: upload, forward and loss, backward,
/// clipping, Adam, with a device sync after each.
pub fn bench_update_breakdown<B: AutodiffBackend>(
    batch: usize,
    reps: &Repetitions,
    device: &B::Device,
) -> Result<UpdateBreakdown> {
    let mut fixture = UpdateFixture::<B>::new(batch, device)?;
    let mut samples: Vec<[f64; PHASES]> = Vec::new();
    time_calls(batch, reps, || {
        let mut phases = [0.0; PHASES];
        fixture.step(Some(&mut phases))?;
        samples.push(phases);
        Ok(())
    })?;
    // The first call and the warm-up calls are not part of the medians.
    let timed = &samples[1 + reps.warmup..];
    let median_of = |f: &dyn Fn(&[f64; PHASES]) -> f64| median(timed.iter().map(f).collect());
    Ok(UpdateBreakdown {
        batch,
        upload_s: median_of(&|p| p[0]),
        forward_s: median_of(&|p| p[1]),
        backward_s: median_of(&|p| p[2]),
        clip_s: median_of(&|p| p[3]),
        optimizer_s: median_of(&|p| p[4]),
        total_s: median_of(&|p| p.iter().sum()),
        flops: update_flops(batch),
    })
}

/// The backend's matrix-product throughput in GFLOP/s: the median time of a square `size`
/// product of `f32`s (what the update's arithmetic could reach at best on this backend).
pub fn bench_matmul_peak<B: Backend>(
    size: usize,
    reps: &Repetitions,
    device: &B::Device,
) -> Result<f64> {
    let mut rng = NpRandom::from_seed(2);
    let data = |rng: &mut NpRandom| {
        Tensor::<B, 2>::from_data(
            TensorData::new(uniform(rng, size * size, -1.0, 1.0), [size, size]),
            device,
        )
    };
    let (a, b) = (data(&mut rng), data(&mut rng));
    let timing = time_calls(size, reps, || {
        std::hint::black_box(a.clone().matmul(b.clone()));
        sync::<B>(device)
    })?;
    Ok(2.0 * (size as f64).powi(3) / timing.median_s / 1e9)
}

/// A full PPO iteration (CartPole-v1, CleanRL's hyperparameters at `setting`'s sizes): one
/// untimed first iteration, then `iterations` timed ones.
pub fn bench_iteration<B: AutodiffBackend>(
    setting: &IterationSetting,
    iterations: usize,
    device: &B::Device,
) -> Result<IterationResult> {
    let batch = setting.batch_size() as u64;
    let config = PpoConfig::new()
        .with_seed(1)
        .with_num_envs(setting.num_envs)
        .with_num_steps(setting.num_steps)
        .with_num_minibatches(setting.num_minibatches)
        .with_total_timesteps(batch * (iterations as u64 + 1));
    let envs = CartPoleVec::new(config.num_envs, AutoresetMode::SameStep)?;
    let mut ppo = Ppo::<B, _>::new(config, envs, device.clone())?;
    let t0 = Instant::now();
    ppo.iterate()?;
    sync::<B>(device)?;
    let first_iteration_s = t0.elapsed().as_secs_f64();
    let (mut walls, mut timings) = (Vec::new(), Timings::default());
    for _ in 0..iterations {
        let t0 = Instant::now();
        let metrics = ppo.iterate()?;
        sync::<B>(device)?;
        walls.push(t0.elapsed().as_secs_f64());
        timings += metrics.timings();
    }
    let total: f64 = walls.iter().sum();
    let median_s = median(walls);
    Ok(IterationResult {
        setting: setting.clone(),
        first_iteration_s,
        median_s,
        steps_per_sec: batch as f64 / median_s,
        iterations,
        env_share: timings.env / total,
        inference_share: timings.inference / total,
        update_share: timings.update / total,
    })
}

/// All workloads of `config` on one backend, as a [`BackendTask`].
struct BackendBench<'a> {
    kind: BackendKind,
    config: &'a BenchConfig,
    e2e: bool,
    progress: &'a mut Progress,
}

impl BackendTask for BackendBench<'_> {
    type Output = Result<BackendResult>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<BackendResult> {
        let Self {
            kind,
            config,
            e2e,
            progress,
        } = self;
        let (cpu0, wall0) = (process_cpu_time(), Instant::now());
        let mut result = BackendResult {
            backend: kind.name().into(),
            device: B::InnerBackend::name(&device),
            inference: Vec::new(),
            update: Vec::new(),
            iterations: Vec::new(),
            e2e: Vec::new(),
            breakdown: Vec::new(),
            matmul_gflops: None,
            cpu_s: 0.0,
            wall_s: 0.0,
        };
        for &batch in &config.inference_batches {
            progress.step(&format!("{kind}: inference, batch {batch}"));
            result.inference.push(
                bench_inference::<B::InnerBackend>(batch, &config.repetitions, &device)
                    .with_context(|| format!("{kind} inference at batch {batch}"))?,
            );
        }
        for &batch in &config.update_batches {
            progress.step(&format!("{kind}: PPO update, minibatch {batch}"));
            result.update.push(
                bench_update::<B>(batch, &config.repetitions, &device)
                    .with_context(|| format!("{kind} update at minibatch {batch}"))?,
            );
        }
        for &batch in &config.breakdown_batches {
            progress.step(&format!(
                "{kind}: PPO update phase by phase, minibatch {batch}"
            ));
            result.breakdown.push(
                bench_update_breakdown::<B>(batch, &config.repetitions, &device)
                    .with_context(|| format!("{kind} update breakdown at minibatch {batch}"))?,
            );
        }
        if !config.breakdown_batches.is_empty() {
            progress.step(&format!(
                "{kind}: matrix-product peak, {MATMUL_PEAK_SIZE}×{MATMUL_PEAK_SIZE}"
            ));
            result.matmul_gflops = Some(
                bench_matmul_peak::<B::InnerBackend>(
                    MATMUL_PEAK_SIZE,
                    &config.repetitions,
                    &device,
                )
                .with_context(|| format!("{kind} matrix-product peak"))?,
            );
        }
        for setting in &config.iteration_settings {
            progress.step(&format!("{kind}: PPO iterations, {}", setting.name));
            result.iterations.push(
                bench_iteration::<B>(setting, config.iterations, &device)
                    .with_context(|| format!("{kind} PPO iterations, {}", setting.name))?,
            );
        }
        if e2e {
            for &seed in &config.e2e_seeds {
                progress.step(&format!(
                    "{kind}: PPO on CartPole-v1 end to end, seed {seed} ({} steps)",
                    config.e2e_total_steps
                ));
                result.e2e.push(
                    run_cinder_on(kind, seed, config.e2e_total_steps)
                        .with_context(|| format!("{kind} end-to-end run, seed {seed}"))?,
                );
            }
        }
        result.cpu_s = process_cpu_time() - cpu0;
        result.wall_s = wall0.elapsed().as_secs_f64();
        Ok(result)
    }
}

/// Runs every workload of `config` on `kind`'s backend (`e2e`: with the end-to-end runs).
pub fn bench_backend(
    kind: BackendKind,
    config: &BenchConfig,
    e2e: bool,
    progress: &mut Progress,
) -> Result<BackendResult> {
    config.validate()?;
    dispatch(
        kind,
        BackendBench {
            kind,
            config,
            e2e,
            progress,
        },
    )?
}

/// PyTorch's figures for the micro-workloads (`tools/bench_backends_torch.py`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TorchResult {
    /// PyTorch's version.
    pub torch: String,
    /// `cpu` or `cuda`.
    pub device: String,
    /// Intra-op threads.
    pub threads: usize,
    /// The GPU's name on CUDA.
    pub gpu: Option<String>,
    /// Inference latency per batch size.
    pub inference: Vec<Timing>,
    /// Update time per minibatch size.
    pub update: Vec<Timing>,
}

impl TorchResult {
    /// A column label, e.g. `PyTorch CPU (1 thread)`.
    pub fn label(&self) -> String {
        match self.device.as_str() {
            "cpu" => format!(
                "PyTorch CPU ({} thread{})",
                self.threads,
                if self.threads == 1 { "" } else { "s" }
            ),
            other => format!("PyTorch {}", other.to_uppercase()),
        }
    }
}

/// Whether `python` can import torch, and whether it sees a CUDA device.
pub fn torch_available(python: &str) -> Option<bool> {
    let out = Command::new(python)
        .args(["-c", "import torch; print(torch.cuda.is_available())"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim() == "True")
}

/// Runs the PyTorch side on `device` (`cpu` or `cuda`) with `threads` intra-op threads.
pub fn run_torch(
    python: &str,
    script: &Path,
    device: &str,
    threads: usize,
    config: &BenchConfig,
) -> Result<TorchResult> {
    let join = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    let r = &config.repetitions;
    let output = Command::new(python)
        .args(["-W", "ignore"])
        .arg(script)
        .args(["--device", device, "--threads", &threads.to_string()])
        .args(["--inference-batches", &join(&config.inference_batches)])
        .args(["--update-batches", &join(&config.update_batches)])
        .args(["--budget", &r.budget_s.to_string()])
        .args(["--warmup", &r.warmup.to_string()])
        .args(["--min-reps", &r.min.to_string()])
        .args(["--max-reps", &r.max.to_string()])
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("parsing the output of {}", script.display()))
}

/// Versions and settings recorded with every result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// CPU model, cores, architecture.
    pub machine: String,
    /// Cinder's version.
    pub cinder: String,
    /// Burn's version (from the lock file at build time).
    pub burn: String,
    /// The compiler that built the harness.
    pub rustc: String,
    /// Threads each side may use.
    pub threads: String,
    /// Vulkan drivers (ICD files) installed: which device WGPU can find.
    pub vulkan_icds: Vec<String>,
}

impl Environment {
    /// Describes this machine and build.
    pub fn detect(machine: String) -> Self {
        let mut vulkan_icds: Vec<String> = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"]
            .iter()
            .filter_map(|dir| std::fs::read_dir(dir).ok())
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        vulkan_icds.sort();
        let lavapipe_threads = std::env::var("LP_NUM_THREADS")
            .map(|n| format!("LP_NUM_THREADS={n}"))
            .unwrap_or_else(|_| "one thread per core (LP_NUM_THREADS unset)".into());
        Self {
            machine,
            cinder: env!("CARGO_PKG_VERSION").into(),
            burn: env!("CINDER_BENCH_BURN_VERSION").into(),
            rustc: env!("CINDER_BENCH_RUSTC_VERSION").into(),
            threads: format!(
                "flex and ndarray: 1 thread (rayon off); WGPU through Mesa's lavapipe (when that is \
                 the Vulkan device): {lavapipe_threads}; \
                 PyTorch: as labelled"
            ),
            vulkan_icds,
        }
    }
}

/// The whole comparison, as written to `backends.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendsReport {
    /// Machine, versions, threads.
    pub environment: Environment,
    /// What was measured.
    pub config: BenchConfig,
    /// One entry per backend.
    pub backends: Vec<BackendResult>,
    /// PyTorch's figures (empty when torch is not importable).
    pub torch: Vec<TorchResult>,
}

fn ms(seconds: f64) -> String {
    let ms = seconds * 1e3;
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else if ms >= 1.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.3}")
    }
}

fn find(timings: &[Timing], batch: usize) -> Option<&Timing> {
    timings.iter().find(|t| t.batch == batch)
}

impl BackendsReport {
    /// The PyTorch result a backend is compared with: CUDA for GPU backends when PyTorch ran on
    /// CUDA; otherwise the faster PyTorch CPU configuration at each size.
    fn peer_time(&self, backend: &str, workload: Workload, batch: usize) -> Option<(f64, String)> {
        let gpu_backend = !matches!(backend, "ndarray" | "flex");
        let candidates: Vec<&TorchResult> = match self.torch.iter().find(|t| t.device == "cuda") {
            Some(cuda) if gpu_backend => vec![cuda],
            _ => self.torch.iter().filter(|t| t.device == "cpu").collect(),
        };
        candidates
            .into_iter()
            .filter_map(|t| {
                find(workload.of_torch(t), batch).map(|timing| (timing.median_s, t.label()))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0))
    }

    fn micro_table(&self, workload: Workload) -> String {
        let batches = workload.batches(&self.config);
        let mut header = String::from("| batch |");
        let mut rule = String::from("|---:|");
        for b in &self.backends {
            header.push_str(&format!(" {} |", b.backend));
            rule.push_str("---:|");
        }
        for t in &self.torch {
            header.push_str(&format!(" {} |", t.label()));
            rule.push_str("---:|");
        }
        let mut table = format!("{header}\n{rule}\n");
        for &batch in batches {
            table.push_str(&format!("| {batch} |"));
            for b in &self.backends {
                let cell = find(workload.of_backend(b), batch).map_or("–".into(), |t| {
                    let ratio = self
                        .peer_time(&b.backend, workload, batch)
                        .map(|(peer, _)| format!(" ({:.2}×)", peer / t.median_s))
                        .unwrap_or_default();
                    format!("{}{ratio}", ms(t.median_s))
                });
                table.push_str(&format!(" {cell} |"));
            }
            for t in &self.torch {
                let cell =
                    find(workload.of_torch(t), batch).map_or("–".into(), |t| ms(t.median_s));
                table.push_str(&format!(" {cell} |"));
            }
            table.push('\n');
        }
        table
    }

    /// "Where the time goes": each backend's update phase by phase, against the time its
    /// matrix products would take at the backend's measured matrix-product peak.
    pub fn breakdown_table(&self) -> String {
        if self.backends.iter().all(|b| b.breakdown.is_empty()) {
            return String::new();
        }
        let mut md = String::from(
            "\n**Where the time goes**: one PPO update phase by phase, milliseconds (medians; \
             the device is synchronised after each phase, so the phases add up to a little more \
             than the update above). Arithmetic: the matrix products' floating-point operations \
             (forward, and backward's weight and input gradients); bound: the time they take at \
             the backend's own peak, a 1024×1024 matrix product's GFLOP/s on the same backend:\n\n\
             | backend | minibatch | upload | forward + loss | backward | clip | Adam | total | \
             arithmetic (MFLOP) | peak (GFLOP/s) | bound | total ÷ bound |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for b in &self.backends {
            for d in &b.breakdown {
                let phases: Vec<String> = d.phases().iter().map(|&(_, s)| ms(s)).collect();
                let (peak, bound, ratio) = match b.matmul_gflops {
                    Some(gflops) if gflops > 0.0 => {
                        let bound_s = d.flops / (gflops * 1e9);
                        (
                            format!("{gflops:.1}"),
                            ms(bound_s),
                            format!("{:.1}×", d.total_s / bound_s),
                        )
                    }
                    _ => ("–".into(), "–".into(), "–".into()),
                };
                md.push_str(&format!(
                    "| {} | {} | {} | {} | {:.2} | {peak} | {bound} | {ratio} |\n",
                    b.backend,
                    d.batch,
                    phases.join(" | "),
                    ms(d.total_s),
                    d.flops / 1e6,
                ));
            }
        }
        md
    }

    /// Plain-words guidance: where each other backend overtakes the CPU reference (flex, the
    /// default CPU backend, when it was measured, else ndarray), and where PyTorch does.
    pub fn crossovers(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let Some(cpu) = ["flex", "ndarray"]
            .into_iter()
            .find_map(|name| self.backends.iter().find(|b| b.backend == name))
        else {
            return lines;
        };
        let reference = cpu.backend.as_str();
        for workload in [Workload::Inference, Workload::Update] {
            let sizes = workload.batches(&self.config);
            let mut compare = |name: &str, times: &dyn Fn(usize) -> Option<f64>| {
                let ratios: Vec<(usize, f64)> = sizes
                    .iter()
                    .filter_map(|&batch| {
                        let base = find(workload.of_backend(cpu), batch)?.median_s;
                        Some((batch, times(batch)? / base))
                    })
                    .collect();
                let Some(&(first_batch, first_ratio)) = ratios.first() else {
                    return;
                };
                let &(last_batch, last_ratio) = ratios.last().expect("non-empty");
                let say = |r: f64| {
                    if r >= 1.0 {
                        format!("{r:.1}× slower")
                    } else {
                        format!("{:.1}× faster", 1.0 / r)
                    }
                };
                let range = if ratios.len() == 1 {
                    format!("{} at {first_batch}", say(first_ratio))
                } else {
                    format!(
                        "{} at {first_batch}, {} at {last_batch}",
                        say(first_ratio),
                        say(last_ratio)
                    )
                };
                let title = workload.title();
                let line = match ratios.iter().position(|&(_, r)| r < 1.0) {
                    None => format!(
                        "{title}: {name} is slower than {reference} at every size measured ({range})."
                    ),
                    Some(0) if ratios.iter().all(|&(_, r)| r < 1.0) => format!(
                        "{title}: {name} is faster than {reference} at every size measured ({range})."
                    ),
                    Some(0) => format!(
                        "{title}: {name} is faster than {reference} at {first_batch} but not at every size ({range})."
                    ),
                    Some(i) => format!(
                        "{title}: {name} is slower than {reference} up to batch {} and faster from batch {} on: the crossover lies between them ({range}).",
                        ratios[i - 1].0,
                        ratios[i].0,
                    ),
                };
                lines.push(line);
            };
            for b in self.backends.iter().filter(|b| b.backend != reference) {
                compare(&b.backend, &|batch| {
                    find(workload.of_backend(b), batch).map(|t| t.median_s)
                });
            }
            for t in &self.torch {
                compare(&t.label(), &|batch| {
                    find(workload.of_torch(t), batch).map(|t| t.median_s)
                });
            }
        }
        lines
    }

    /// The markdown tables and notes.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        md.push_str(
            "**Policy inference**, milliseconds per call (batch of CartPole observations in, \
             sampled actions and values out). In brackets: PyTorch's time ÷ ours, against \
             the fastest PyTorch configuration measured (PyTorch on CUDA for GPU backends when \
             it ran there, else on the CPU; above 1: faster than PyTorch):\n\n",
        );
        md.push_str(&self.micro_table(Workload::Inference));
        md.push_str(
            "\n**PPO update**, milliseconds per minibatch (loss, backward, gradient clipping, \
             Adam step; ours uploads the minibatch from the host as its PPO does, PyTorch's \
             indexes tensors already on the device as CleanRL's does), PyTorch's time ÷ ours in \
             brackets:\n\n",
        );
        md.push_str(&self.micro_table(Workload::Update));
        md.push_str(&self.breakdown_table());
        md.push_str(
            "\n**First call** (kernel compilation and autotuning on GPU backends), seconds, \
             summed over all sizes of each workload:\n\n| backend | inference | update | first PPO iterations |\n|---|---:|---:|---:|\n",
        );
        for b in &self.backends {
            let sum = |ts: &[Timing]| ts.iter().map(|t| t.first_call_s).sum::<f64>();
            let iters: f64 = b.iterations.iter().map(|i| i.first_iteration_s).sum();
            md.push_str(&format!(
                "| {} | {:.2} | {:.2} | {:.2} |\n",
                b.backend,
                sum(&b.inference),
                sum(&b.update),
                iters
            ));
        }
        md.push_str(
            "\n**Full PPO iteration** on CartPole-v1 (rollout, GAE, 4 epochs): \n\n| backend | setting | steps/s | ms per iteration | first iteration (s) | env | inference | update |\n|---|---|---:|---:|---:|---:|---:|---:|\n",
        );
        for b in &self.backends {
            for it in &b.iterations {
                md.push_str(&format!(
                    "| {} | {} | {:.0} | {} | {:.2} | {:.1}% | {:.0}% | {:.0}% |\n",
                    b.backend,
                    it.setting.name,
                    it.steps_per_sec,
                    ms(it.median_s),
                    it.first_iteration_s,
                    100.0 * it.env_share,
                    100.0 * it.inference_share,
                    100.0 * it.update_share
                ));
            }
        }
        if self.backends.iter().any(|b| !b.e2e.is_empty()) {
            md.push_str(
                "\n**End to end**: PPO on CartPole-v1 with CleanRL's hyperparameters:\n\n| backend | seed | env steps | wall (s) | steps to 475 | time to 475 (s) | greedy eval |\n|---|---:|---:|---:|---:|---:|---:|\n",
            );
            for b in &self.backends {
                for r in &b.e2e {
                    md.push_str(&format!(
                        "| {} | {} | {} | {:.1} | {} | {} | {} |\n",
                        b.backend,
                        r.seed,
                        r.steps,
                        r.wall_s,
                        r.solved_step
                            .map_or("not reached".into(), |s| s.to_string()),
                        r.solved_wall_s.map_or("–".into(), |s| format!("{s:.1}")),
                        r.eval_mean.map_or("–".into(), |m| format!("{m:.1}")),
                    ));
                }
            }
        }
        let crossovers = self.crossovers();
        if !crossovers.is_empty() {
            md.push_str("\nWhere each backend wins:\n\n");
            for line in crossovers {
                md.push_str(&format!("- {line}\n"));
            }
        }
        let env = &self.environment;
        let torch = self
            .torch
            .first()
            .map(|t| format!(", PyTorch {}", t.torch))
            .unwrap_or_default();
        let devices: Vec<String> = self
            .backends
            .iter()
            .map(|b| format!("{} = `{}`", b.backend, b.device))
            .collect();
        md.push_str(&format!(
            "\nMachine: {}. Cinder {}, Burn {}, {}{torch}. Devices: {}. Threads: {}. Vulkan \
             drivers installed: {}. Micro-workloads: median of at least {} calls after {} \
             warm-up calls, about {} s per size; the device is synchronised before each clock \
             stops. The spread (10th to 90th percentile) of every figure is in `backends.json` \
             and drawn as bars in `backends.svg`.\n",
            env.machine,
            env.cinder,
            env.burn,
            env.rustc,
            devices.join(", "),
            env.threads,
            if env.vulkan_icds.is_empty() {
                "none".into()
            } else {
                env.vulkan_icds.join(", ")
            },
            self.config.repetitions.min,
            self.config.repetitions.warmup,
            self.config.repetitions.budget_s,
        ));
        md
    }

    /// Reads a report written by [`BackendsReport::write`].
    pub fn read(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a backends.json report", path.display()))
    }

    /// Writes `backends.json`, `backends.md` and `backends.svg` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(
            dir.join("backends.json"),
            serde_json::to_string_pretty(self)?,
        )?;
        std::fs::write(dir.join("backends.md"), self.markdown())?;
        crate::plot::backends_svg(self, &dir.join("backends.svg"))?;
        Ok(())
    }
}

/// The two micro-workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Policy inference.
    Inference,
    /// PPO minibatch update.
    Update,
}

impl Workload {
    /// `inference` or `update` as a title.
    pub fn title(self) -> &'static str {
        match self {
            Self::Inference => "Inference",
            Self::Update => "PPO update",
        }
    }

    /// The sizes measured.
    pub fn batches(self, config: &BenchConfig) -> &[usize] {
        match self {
            Self::Inference => &config.inference_batches,
            Self::Update => &config.update_batches,
        }
    }

    /// A backend's timings of this workload.
    pub fn of_backend(self, b: &BackendResult) -> &[Timing] {
        match self {
            Self::Inference => &b.inference,
            Self::Update => &b.update,
        }
    }

    /// PyTorch's timings of this workload.
    pub fn of_torch(self, t: &TorchResult) -> &[Timing] {
        match self {
            Self::Inference => &t.inference,
            Self::Update => &t.update,
        }
    }
}
