//! # Cinder
//!
//! Reinforcement learning in Rust. This facade crate re-exports Cinder's member crates so that a
//! user depends on one crate:
//!
//! - [`env`](mod@env) (crate `cinder-env`): a Gymnasium-style environment API (spaces, wrappers, a
//!   registry, a vector env with automatic reset, an env checker) and the five classic-control
//!   environments, bit-for-bit identical to Gymnasium 1.x for the same seed and actions;
//! - [`rl`] (crate `cinder-rl`): policy-gradient building blocks, PPO, TRPO, and REINFORCE and GRPO
//!   as configurations of one policy-gradient learner, generic over Burn's backend;
//! - [`backend`]: the concrete Burn backends compiled in, chosen by cargo features;
//! - [`runner`]: the training pipeline behind the `cinder` command, the examples and the
//!   benchmarks — env id, algorithm, configuration and backend in, a trained and evaluated run
//!   (and its run directory) out, with [`presets`] of tuned hyperparameters per env and
//!   [`cli`], the flags they share.
//!
//! Training an env with its preset, as `cinder train --algo ppo --env Acrobot-v1` does:
//!
//! ```no_run
//! use cinder::backend::BackendKind;
//! use cinder::presets::{Algorithm, resolve};
//! use cinder::runner::{RunOptions, RunSpec, train};
//!
//! let resolved = resolve(Algorithm::Ppo, "Acrobot-v1", None, &["seed=2".into()])?;
//! let summary = train(RunSpec {
//!     env_id: "Acrobot-v1".into(),
//!     algorithm: Algorithm::Ppo,
//!     config: resolved.config,
//!     preset_source: resolved.preset_source,
//!     backend: BackendKind::cpu(),
//!     out: Some("runs/acrobot".into()),
//!     options: RunOptions::default(),
//! })?;
//! println!("greedy return: {:?}", summary.evaluation.map(|e| e.mean_return));
//! # Ok::<(), cinder::Error>(())
//! ```
//!
//! The learners themselves, for your own envs:
//!
//! ```
//! use cinder::env::{make, Value};
//!
//! let mut env = make("CartPole-v1")?;
//! let (obs, _info) = env.reset(Some(42))?;
//! assert_eq!(obs.len(), 4);
//! let step = env.step(&Value::Discrete(1))?;
//! assert_eq!(step.reward, 1.0);
//! # Ok::<(), cinder::env::EnvError>(())
//! ```
//!
//! Training PPO on CartPole with a run directory (config, metrics, checkpoints, summary):
//!
//! ```no_run
//! use cinder::backend::Cpu;
//! use cinder::env::{AutoresetMode, classic_control::CartPoleVec};
//! use cinder::rl::ppo::{Ppo, PpoConfig};
//! use cinder::rl::run::{RunDir, TrainOptions, train};
//!
//! let config = PpoConfig::new().with_seed(1).with_total_timesteps(100_000);
//! let envs = CartPoleVec::new(config.num_envs, AutoresetMode::SameStep)?;
//! let mut ppo = Ppo::<Cpu, _>::new(config.clone(), envs, Default::default())?;
//! let mut run = RunDir::create("runs/mine", &config)?;
//! let report = train(&mut ppo, Some(&mut run), &TrainOptions::default())?;
//! println!("mean of the last 20 returns: {:?}", report.mean_last_returns());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! GRPO (or REINFORCE: `cinder::rl::reinforce::config()`) takes one env per episode of a batch:
//!
//! ```no_run
//! use cinder::backend::Cpu;
//! use cinder::rl::grpo;
//! use cinder::rl::policy_gradient::PolicyGradient;
//! use cinder::rl::run::{TrainOptions, train};
//!
//! let config = grpo::config().with_total_timesteps(200_000);
//! let envs = (0..config.episodes_per_batch)
//!     .map(|_| cinder::env::make("CartPole-v1"))
//!     .collect::<Result<Vec<_>, _>>()?;
//! let mut learner = PolicyGradient::<Cpu, _>::new(config, envs, Default::default())?;
//! train(&mut learner, None, &TrainOptions::default())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use cinder_env as env;
pub use cinder_lm as lm;
pub use cinder_rl as rl;

pub mod allocator;
pub mod cli;
pub mod plot;
pub mod presets;
pub mod runner;

use std::path::PathBuf;

/// What the runner, the presets and the `cinder` command can fail with; each message names
/// the problem and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An env error (an unknown id lists the known ones).
    #[error(transparent)]
    Env(#[from] cinder_env::EnvError),
    /// A training, checkpoint or run-directory error.
    #[error(transparent)]
    Rl(#[from] cinder_rl::RlError),
    /// A sequence-task error (tasks, the transformer policy, sampling, GRPO on sequences).
    #[error(transparent)]
    Lm(#[from] cinder_lm::LmError),
    /// A configuration, preset or command-line value that cannot be used.
    #[error("{0}")]
    Config(String),
    /// A backend that is unknown or not compiled in.
    #[error(transparent)]
    Backend(#[from] backend::BackendUnavailable),
    /// A file that cannot be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The Burn backends compiled in (cargo features), as the autodiff backends training uses. This
/// is the one place that names a concrete backend: code elsewhere is generic over
/// `B: AutodiffBackend` and picks a backend at run time through [`backend::dispatch`].
///
/// ```
/// use cinder::backend::{BackendKind, BackendTask, dispatch};
/// use burn::tensor::backend::AutodiffBackend;
///
/// struct Name;
/// impl BackendTask for Name {
///     type Output = String;
///     fn run<B: AutodiffBackend>(self, device: B::Device) -> String {
///         B::name(&device)
///     }
/// }
/// let name = dispatch(BackendKind::best(), Name).unwrap();
/// assert!(!name.is_empty());
/// ```
pub mod backend {
    use burn::tensor::backend::AutodiffBackend;
    use std::fmt;
    use std::str::FromStr;

    /// Burn's ndarray CPU backend (feature `ndarray`), with autodiff.
    #[cfg(feature = "ndarray")]
    pub type NdArray = burn::backend::Autodiff<burn::backend::NdArray<f32>>;

    /// The ndarray device.
    #[cfg(feature = "ndarray")]
    pub type NdArrayDevice = burn::backend::ndarray::NdArrayDevice;

    /// Burn's `flex` CPU backend (feature `flex`, on by default: gemm-based matrix products,
    /// SIMD kernels), with autodiff.
    ///
    /// It is the default CPU backend: faster than ndarray at every batch size measured (a PPO
    /// update at minibatch 128: 0.25 vs 0.37 ms; CleanRL's CartPole iteration 4.9 vs 6.9 ms on
    /// the reference machine, `cinder-bench backends`, both with Cinder's host kernels), and as
    /// reproducible (single-threaded: the same seed gives the same weights, bit for bit).
    #[cfg(feature = "flex")]
    pub type Flex = burn::backend::Autodiff<burn::backend::Flex<f32, i32>>;

    /// The flex device.
    #[cfg(feature = "flex")]
    pub type FlexDevice = burn::backend::flex::FlexDevice;

    /// The default CPU backend with autodiff: [`Flex`] when the `flex` feature is on (the
    /// default), else `NdArray`. Library code names it where a concrete CPU backend is wanted.
    #[cfg(feature = "flex")]
    pub type Cpu = Flex;

    /// The default CPU backend with autodiff: `Flex` when the `flex` feature is on (the
    /// default), else [`NdArray`].
    #[cfg(all(feature = "ndarray", not(feature = "flex")))]
    pub type Cpu = NdArray;

    /// The WGPU backend (feature `wgpu`: Vulkan, Metal, DX12; Mesa's lavapipe on a CPU), with
    /// autodiff.
    #[cfg(feature = "wgpu")]
    pub type Wgpu = burn::backend::Autodiff<burn::backend::Wgpu<f32, i32>>;

    /// The WGPU device.
    #[cfg(feature = "wgpu")]
    pub type WgpuDevice = burn::backend::wgpu::WgpuDevice;

    /// The CUDA backend (feature `cuda`), with autodiff.
    #[cfg(feature = "cuda")]
    pub type Cuda = burn::backend::Autodiff<burn::backend::Cuda<f32, i32>>;

    /// The CUDA device.
    #[cfg(feature = "cuda")]
    pub type CudaDevice = burn::backend::cuda::CudaDevice;

    /// A backend chosen by name at run time.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum BackendKind {
        /// CPU, `burn::backend::NdArray` (feature `ndarray`).
        NdArray,
        /// CPU, [`burn::backend::Flex`] (feature `flex`, on by default).
        Flex,
        /// WGPU (feature `wgpu`).
        Wgpu,
        /// CUDA (feature `cuda`).
        Cuda,
    }

    impl BackendKind {
        /// Every backend, compiled in or not.
        pub const ALL: [BackendKind; 4] = [Self::Flex, Self::NdArray, Self::Wgpu, Self::Cuda];

        /// The name used on command lines: `flex`, `ndarray`, `wgpu` or `cuda`.
        pub fn name(self) -> &'static str {
            match self {
                Self::NdArray => "ndarray",
                Self::Flex => "flex",
                Self::Wgpu => "wgpu",
                Self::Cuda => "cuda",
            }
        }

        /// Whether this build has the backend's cargo feature.
        pub fn is_compiled(self) -> bool {
            match self {
                Self::NdArray => cfg!(feature = "ndarray"),
                Self::Flex => cfg!(feature = "flex"),
                Self::Wgpu => cfg!(feature = "wgpu"),
                Self::Cuda => cfg!(feature = "cuda"),
            }
        }

        /// The backends compiled into this build.
        pub fn compiled() -> Vec<BackendKind> {
            Self::ALL.into_iter().filter(|b| b.is_compiled()).collect()
        }

        /// The most capable backend compiled in: cuda, then wgpu, then [`Self::cpu`].
        pub fn best() -> BackendKind {
            [Self::Cuda, Self::Wgpu]
                .into_iter()
                .find(|b| b.is_compiled())
                .unwrap_or_else(Self::cpu)
        }

        /// The default CPU backend, which the `cinder` command uses when `--backend` is not
        /// given: flex if compiled in (the default features), else ndarray (a build with neither
        /// gets flex, which [`dispatch`] then reports as not compiled in).
        pub fn cpu() -> BackendKind {
            if !cfg!(feature = "flex") && cfg!(feature = "ndarray") {
                Self::NdArray
            } else {
                Self::Flex
            }
        }

        /// Whether the backend runs on the CPU (ndarray, flex) rather than a GPU API.
        pub fn is_cpu(self) -> bool {
            matches!(self, Self::NdArray | Self::Flex)
        }
    }

    impl fmt::Display for BackendKind {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.name())
        }
    }

    /// A backend name that is unknown or not compiled in.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct BackendUnavailable {
        /// The name asked for.
        pub requested: String,
        /// Whether it is a known backend whose feature is off.
        pub known: bool,
    }

    impl fmt::Display for BackendUnavailable {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let compiled: Vec<_> = BackendKind::compiled().iter().map(|b| b.name()).collect();
            if self.known {
                write!(
                    f,
                    "backend {:?} is not compiled in: rebuild with `--features {}` (this build has: {})",
                    self.requested,
                    self.requested,
                    compiled.join(", ")
                )
            } else {
                write!(
                    f,
                    "unknown backend {:?}: choose one of {}",
                    self.requested,
                    compiled.join(", ")
                )
            }
        }
    }

    impl std::error::Error for BackendUnavailable {}

    impl FromStr for BackendKind {
        type Err = BackendUnavailable;

        /// Parses `flex`, `ndarray`, `wgpu` or `cuda`; errors for an unknown name or a backend whose
        /// feature is off.
        fn from_str(s: &str) -> Result<Self, Self::Err> {
            let kind = Self::ALL
                .into_iter()
                .find(|b| b.name().eq_ignore_ascii_case(s.trim()))
                .ok_or_else(|| BackendUnavailable {
                    requested: s.to_string(),
                    known: false,
                })?;
            if kind.is_compiled() {
                Ok(kind)
            } else {
                Err(BackendUnavailable {
                    requested: kind.name().to_string(),
                    known: true,
                })
            }
        }
    }

    /// Work generic over the backend, run on a backend chosen at run time by [`dispatch`].
    pub trait BackendTask {
        /// What the work returns.
        type Output;
        /// Runs on backend `B` and its default `device`.
        fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output;
    }

    /// Installs Cinder's host kernels for the CPU backends this build has (flex, ndarray):
    /// the policy's `tanh`, a categorical's log-softmax and entropy, and PPO's loss each
    /// become one fused operation, forward and backward ([`cinder_rl::host_kernels`],
    /// [`cinder_rl::host_loss`]); on flex Adam's step and the gradient norm also run on the
    /// host ([`cinder_rl::host_kernels::install_host_optimizer`]; on ndarray reading a shared
    /// tensor is slower than the tensor operations it would replace). [`dispatch`] calls it;
    /// call it yourself before training on [`Flex`] or `NdArray` by name. Without it those
    /// backends compute the same values (to float32 rounding) with Burn operations, more
    /// slowly: `assets/bench/host_kernels` measures both.
    /// `CINDER_HOST_KERNELS=0` in the environment leaves them out (to compare, or to replay a
    /// run recorded without them bit for bit).
    pub fn install_cpu_kernels() {
        if std::env::var_os("CINDER_HOST_KERNELS").is_some_and(|v| v == "0") {
            return;
        }
        #[cfg(feature = "flex")]
        {
            cinder_rl::host_kernels::install::<burn::backend::Flex<f32, i32>>();
            cinder_rl::host_kernels::install_host_optimizer::<burn::backend::Flex<f32, i32>>();
        }
        #[cfg(feature = "ndarray")]
        cinder_rl::host_kernels::install::<burn::backend::NdArray<f32>>();
    }

    /// Runs `task` on `kind`'s backend with its default device (CPU backends with their
    /// [host kernels](install_cpu_kernels)).
    pub fn dispatch<T: BackendTask>(
        kind: BackendKind,
        task: T,
    ) -> Result<T::Output, BackendUnavailable> {
        install_cpu_kernels();
        #[allow(unreachable_patterns)]
        match kind {
            #[cfg(feature = "ndarray")]
            BackendKind::NdArray => Ok(task.run::<NdArray>(NdArrayDevice::Cpu)),
            #[cfg(feature = "flex")]
            BackendKind::Flex => Ok(task.run::<Flex>(burn::backend::flex::FlexDevice)),
            #[cfg(feature = "wgpu")]
            BackendKind::Wgpu => Ok(task.run::<Wgpu>(WgpuDevice::default())),
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => Ok(task.run::<Cuda>(CudaDevice::default())),
            other => Err(BackendUnavailable {
                requested: other.name().to_string(),
                known: true,
            }),
        }
    }
}
