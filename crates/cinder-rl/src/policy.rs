//! The actor-critic policy: an MLP actor (categorical or diagonal-Gaussian head) and an MLP
//! critic. By default shaped and initialised as in CleanRL's `ppo.py` and Stable-Baselines3's
//! `MlpPolicy` (two hidden layers of 64 tanh units each, separate actor and critic, orthogonal
//! weights with gain √2 on hidden layers, 0.01 on the policy head, 1.0 on the value head; zero
//! biases); hidden sizes, activation and initialisation are configurable
//! ([`ActorCriticConfig`]), as SB3's `policy_kwargs` (`net_arch`, `activation_fn`,
//! `ortho_init`, `log_std_init`).
//!
//! The learners do not depend on that network: they train any [`Policy`] (an actor and a
//! critic behind one trait, built from a [`PolicyConfig`]), so a user's own
//! `#[derive(Module)]` network takes its place.

use crate::distributions::{
    Categorical, DiagGaussian, HALF_LN_2PI, sample_categorical, standard_normal,
};
use crate::error::{Result, RlError};
use crate::host_policy::{HostLinear, HostMlp, HostPolicy};
use crate::tensors::{read, tensor2};
use burn::config::Config;
use burn::module::{AutodiffModule, Initializer, Module, Param};
use burn::nn::Linear;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, Tensor, TensorData, backend::Backend};
use cinder_env::rng::NpRandom;
use cinder_env::{Space, Value};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// What the learners need from a policy: an actor (the action distribution `π(·|s)`) and a
/// critic (the value `V(s)`), for a batch of observations. The built-in [`ActorCritic`]
/// implements it; so can a user's own `#[derive(Module)]` network (a shared trunk with two
/// heads, a different activation, ...), which PPO ([`crate::ppo::Ppo::with_policy`]) and the
/// policy-gradient family ([`crate::policy_gradient::PolicyGradient::with_policy`]) then train
/// unchanged. (TRPO's natural-gradient step works on the built-in actor's flat parameter
/// vector and takes [`ActorCritic`] only.)
///
/// A policy is built from its [`Policy::Config`], which checkpoints record, so that a run
/// resumes and a trained policy loads ([`crate::checkpoint::load_custom_policy`],
/// [`crate::predict::Predictor`]) with the same architecture. Burn's initialisers draw from
/// the backend's process-wide generator: a network that should start the same on every run
/// seeds it in [`Policy::init`] (`B::seed(device, seed)`, the seed kept in the config) and
/// draws the parameters there (Burn draws them lazily, at first use: one forward pass does).
///
/// ```
/// use burn::backend::NdArray;
/// use burn::config::Config;
/// use burn::module::Module;
/// use burn::nn::{Linear, LinearConfig};
/// use burn::tensor::{Tensor, activation::relu, backend::Backend};
/// use cinder_rl::distributions::Categorical;
/// use cinder_rl::policy::{Policy, PolicyConfig, PolicyDistribution};
///
/// /// A shared trunk and two heads, for `actions` discrete actions.
/// #[derive(Config, Debug, PartialEq)]
/// pub struct TwoHeadConfig {
///     obs_dim: usize,
///     actions: usize,
///     #[config(default = 32)]
///     hidden: usize,
/// }
///
/// impl PolicyConfig for TwoHeadConfig {
///     fn obs_dim(&self) -> usize { self.obs_dim }
///     fn action_dim(&self) -> usize { self.actions }
///     fn continuous(&self) -> bool { false }
/// }
///
/// #[derive(Module, Debug)]
/// pub struct TwoHead<B: Backend> {
///     trunk: Linear<B>,
///     logits: Linear<B>,
///     value: Linear<B>,
/// }
///
/// impl<B: Backend> Policy<B> for TwoHead<B> {
///     type Config = TwoHeadConfig;
///
///     fn init(c: &TwoHeadConfig, device: &B::Device) -> cinder_rl::Result<Self> {
///         Ok(Self {
///             trunk: LinearConfig::new(c.obs_dim, c.hidden).init(device),
///             logits: LinearConfig::new(c.hidden, c.actions).init(device),
///             value: LinearConfig::new(c.hidden, 1).init(device),
///         })
///     }
///
///     fn obs_dim(&self) -> usize {
///         self.trunk.weight.dims()[0]
///     }
///
///     fn forward(&self, obs: Tensor<B, 2>) -> (PolicyDistribution<B>, Tensor<B, 1>) {
///         let h = relu(self.trunk.forward(obs));
///         let dist = Categorical::from_logits(self.logits.forward(h.clone()));
///         (PolicyDistribution::Categorical(dist), self.value.forward(h).squeeze_dim(1))
///     }
/// }
///
/// let device = Default::default();
/// let net = TwoHead::<NdArray>::init(&TwoHeadConfig::new(4, 2), &device)?;
/// let (dist, values) = net.forward(Tensor::zeros([3, 4], &device));
/// assert_eq!(values.dims(), [3]);
/// assert_eq!(dist.width(), 2);
/// # Ok::<(), cinder_rl::RlError>(())
/// ```
pub trait Policy<B: Backend>: Module<B> {
    /// The architecture (sizes, initialisation): what a checkpoint records to build the
    /// policy again.
    type Config: PolicyConfig;

    /// A fresh policy of `config` on `device`. Errors name what is wrong with the config.
    fn init(config: &Self::Config, device: &B::Device) -> Result<Self>;

    /// Floats per observation the policy takes.
    fn obs_dim(&self) -> usize;

    /// The action distribution and the values `[batch]` for `obs` `[batch, obs_dim]`.
    fn forward(&self, obs: Tensor<B, 2>) -> (PolicyDistribution<B>, Tensor<B, 1>);

    /// The action distribution alone (override when the critic can be skipped).
    fn distribution(&self, obs: Tensor<B, 2>) -> PolicyDistribution<B> {
        self.forward(obs).0
    }

    /// The values `V(s)` alone, `[batch]` (override when the actor can be skipped).
    fn value(&self, obs: Tensor<B, 2>) -> Tensor<B, 1> {
        self.forward(obs).1
    }

    /// Stable-Baselines3's `evaluate_actions`: `(log_probs, entropy, values)`, each `[batch]`,
    /// for the actions taken in `obs`, after checking that observations, actions and the
    /// policy's outputs fit together ([`RlError::InvalidInput`] otherwise).
    fn evaluate_actions(
        &self,
        obs: Tensor<B, 2>,
        actions: Actions<B>,
    ) -> Result<(Tensor<B, 1>, Tensor<B, 1>, Tensor<B, 1>)> {
        let batch = check_obs(&obs, self.obs_dim())?;
        let (dist, values) = self.forward(obs);
        check_outputs(&dist, &values, batch)?;
        dist.check_actions(&actions)?;
        let log_probs = dist.log_prob(actions)?;
        Ok((log_probs, dist.entropy(), values))
    }

    /// gSDE's `σ = exp(log_std)`, `[features, action_dim]`, for a policy with state-dependent
    /// exploration; `None` (the default) for the others, which then cannot train with
    /// `use_sde`.
    fn sde_std(&self) -> Option<Tensor<B, 2>> {
        None
    }

    /// The action distribution and, for gSDE, the features `[batch, features]` its noise is
    /// built from (`None` by default).
    fn distribution_and_features(
        &self,
        obs: Tensor<B, 2>,
    ) -> (PolicyDistribution<B>, Option<Tensor<B, 2>>) {
        (self.distribution(obs), None)
    }

    /// A copy of the policy on the host for the rollouts' small batches
    /// ([`crate::host_policy`]), or `None` (the default): the rollouts then run the policy on
    /// the backend. Offer one only when it computes what [`Policy::forward`] computes.
    fn host_policy(&self) -> Option<HostPolicy> {
        None
    }
}

/// A [`Policy`]'s architecture, as a checkpoint records it (JSON): with Burn's
/// `#[derive(Config, Debug, PartialEq)]` a config struct has everything but these three sizes,
/// which the learners check against the env's spaces.
pub trait PolicyConfig:
    Clone + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// Floats per observation.
    fn obs_dim(&self) -> usize;
    /// Number of discrete actions, or the dimension of a continuous action.
    fn action_dim(&self) -> usize;
    /// Whether the actions are continuous (a Gaussian) rather than discrete (a categorical).
    fn continuous(&self) -> bool;
    /// A one-line description for error messages (default: the three sizes).
    fn describe(&self) -> String {
        format!(
            "{} observations → {} {} actions",
            self.obs_dim(),
            self.action_dim(),
            if self.continuous() {
                "continuous"
            } else {
                "discrete"
            }
        )
    }
}

/// A [`Policy`] the learners can train on an autodiff backend `B`: its inner module (what the
/// rollout runs, without autodiff) is the same kind of policy with the same config. Every
/// `#[derive(Module)]` struct generic over its backend that implements [`Policy`] for all
/// backends is one.
pub trait TrainPolicy<B: AutodiffBackend>:
    Policy<B>
    + AutodiffModule<B, InnerModule: Policy<B::InnerBackend, Config = <Self as Policy<B>>::Config>>
{
}

impl<B: AutodiffBackend, P> TrainPolicy<B> for P
where
    P: Policy<B> + AutodiffModule<B>,
    P::InnerModule: Policy<B::InnerBackend, Config = P::Config>,
{
}

/// `Ok(batch)` when `obs` is `[batch, obs_dim]`.
pub fn check_obs<B: Backend>(obs: &Tensor<B, 2>, obs_dim: usize) -> Result<usize> {
    let [batch, width] = obs.dims();
    if width != obs_dim {
        return Err(RlError::InvalidInput(format!(
            "observations of width {width}, the policy takes {obs_dim}"
        )));
    }
    Ok(batch)
}

/// `Ok` when a policy's outputs for `batch` observations have `batch` rows: a custom policy
/// whose forward pass returns other shapes gets an error naming them.
pub fn check_outputs<B: Backend>(
    dist: &PolicyDistribution<B>,
    values: &Tensor<B, 1>,
    batch: usize,
) -> Result<()> {
    if dist.rows() != batch || values.dims() != [batch] {
        return Err(RlError::InvalidInput(format!(
            "the policy gave {} action distributions and values of shape {:?} for {batch} \
             observations (expected {batch} and [{batch}])",
            dist.rows(),
            values.dims()
        )));
    }
    Ok(())
}

/// The nonlinearity between hidden layers (SB3's `activation_fn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// `tanh` (CleanRL's and SB3's default for PPO).
    #[default]
    Tanh,
    /// `max(0, x)`.
    Relu,
}

impl Activation {
    fn apply<B: Backend>(self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        match self {
            Self::Tanh => tanh(x),
            Self::Relu => burn::tensor::activation::relu(x),
        }
    }
}

/// The shape and initialisation of an [`ActorCritic`].
#[derive(Config, Debug, PartialEq)]
pub struct ActorCriticConfig {
    /// Floats per observation.
    pub obs_dim: usize,
    /// Number of discrete actions, or the dimension of a continuous action.
    pub action_dim: usize,
    /// Whether actions are continuous (diagonal Gaussian) rather than discrete (categorical).
    #[config(default = false)]
    pub continuous: bool,
    /// Layers, activation, initialisation and initial log-std.
    #[config(default = "NetworkConfig::new()")]
    pub network: NetworkConfig,
    /// Generalised state-dependent exploration (gSDE; SB3's `use_sde`, continuous actions
    /// only): the exploration noise is `z(s) · E`, with `z(s)` the actor's last hidden features
    /// (not trained through the noise) and `E` a `[features, action_dim]` matrix of
    /// `N(0, σ²)` entries drawn from time to time, so that consecutive actions explore in a
    /// consistent direction. The learned log-std is then `[features, action_dim]` and the
    /// policy is the Gaussian of mean `μ(s)` and variance `Σ_j z_j(s)² σ_jk² + 1e-6`.
    #[config(default = false)]
    pub use_sde: bool,
    /// Seed of the weight initialisation. Weights are drawn on the host from this seed alone,
    /// so the same seed gives the same network on every backend and in every thread (Burn's
    /// backend generator is process-wide).
    #[config(default = 0)]
    pub seed: u64,
}

/// The policy network's shape and initialisation (Stable-Baselines3's `policy_kwargs`): an actor
/// and a critic MLP with the same hidden sizes, each its own layers (SB3's default for PPO,
/// CleanRL's `Agent`).
#[derive(Config, Debug, PartialEq)]
pub struct NetworkConfig {
    /// Units of each hidden layer, first to last, of the actor and of the critic (SB3's
    /// `net_arch`; CleanRL and SB3: `[64, 64]`). Empty: linear heads on the observation.
    #[config(default = "vec![64, 64]")]
    pub hidden_sizes: Vec<usize>,
    /// The nonlinearity after each hidden layer (SB3's `activation_fn`).
    #[config(default = "Activation::Tanh")]
    pub activation: Activation,
    /// Orthogonal initialisation (gain √2 on hidden layers, 0.01 on the policy head, 1 on the
    /// value head, zero biases: CleanRL, SB3's `ortho_init=True`); otherwise PyTorch's default
    /// for `nn.Linear` (weights and biases uniform in ±1/√fan_in: SB3's `ortho_init=False`).
    #[config(default = true)]
    pub ortho_init: bool,
    /// Initial log standard deviation of a Gaussian policy (CleanRL and SB3: 0; SB3's
    /// `log_std_init`).
    #[config(default = 0.0)]
    pub init_log_std: f64,
}

impl NetworkConfig {
    /// Checks the values; the error says what to change.
    pub fn validate(&self) -> Result<()> {
        if let Some(i) = self.hidden_sizes.iter().position(|&h| h == 0) {
            return Err(RlError::InvalidConfig(format!(
                "network.hidden_sizes[{i}] is 0: every hidden layer needs at least 1 unit"
            )));
        }
        if !self.init_log_std.is_finite() {
            return Err(RlError::InvalidConfig(format!(
                "network.init_log_std ({}) must be finite",
                self.init_log_std
            )));
        }
        Ok(())
    }

    /// The actor-critic of this network for an env's observation and action spaces,
    /// initialised from `seed`.
    pub fn actor_critic(
        &self,
        observation_space: &Space,
        action_space: &Space,
        seed: u64,
    ) -> Result<ActorCriticConfig> {
        Ok(
            ActorCriticConfig::for_spaces(observation_space, action_space)?
                .with_network(self.clone())
                .with_seed(seed),
        )
    }
}

impl ActorCriticConfig {
    /// A config for an env's observation and action spaces (a `Box` observation space; a
    /// `Discrete` or one-dimensional `Box` action space).
    pub fn for_spaces(observation_space: &Space, action_space: &Space) -> Result<Self> {
        let obs_dim = match observation_space {
            Space::Box(b) => b.size(),
            other => {
                return Err(RlError::UnsupportedSpace(format!(
                    "the actor-critic MLP needs a Box observation space, the env has {other}"
                )));
            }
        };
        Ok(match action_space {
            Space::Discrete(d) => Self::new(obs_dim, d.n),
            Space::Box(b) => Self::new(obs_dim, b.size()).with_continuous(true),
        })
    }

    /// Checks the sizes.
    pub fn validate(&self) -> Result<()> {
        for (name, value) in [("obs_dim", self.obs_dim), ("action_dim", self.action_dim)] {
            if value == 0 {
                return Err(RlError::InvalidConfig(format!("{name} must be at least 1")));
            }
        }
        self.network.validate()?;
        if !self.continuous && self.action_dim < 2 {
            return Err(RlError::InvalidConfig(format!(
                "a discrete policy needs action_dim >= 2 actions, got {}",
                self.action_dim
            )));
        }
        Ok(())
    }

    /// Builds the module on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<ActorCritic<B>> {
        self.validate()?;
        let mut rng = NpRandom::from_seed(self.seed);
        let init = if self.network.ortho_init {
            LayerInit::Orthogonal
        } else {
            LayerInit::TorchDefault
        };
        let actor = Mlp::new(
            &self.layers(self.action_dim, 0.01),
            init,
            self.network.activation,
            &mut rng,
            device,
        );
        let critic = Mlp::new(
            &self.layers(1, 1.0),
            init,
            self.network.activation,
            &mut rng,
            device,
        );
        let use_sde = self.use_sde && self.continuous;
        let rows = if use_sde { self.sde_features() } else { 1 };
        let log_std = self.continuous.then(|| {
            Initializer::Constant {
                value: self.network.init_log_std,
            }
            .init([rows, self.action_dim], device)
        });
        Ok(ActorCritic {
            actor,
            critic,
            log_std,
            use_sde,
        })
    }
}

impl ActorCriticConfig {
    /// The size of the features gSDE's noise is built from: the actor's last hidden layer (the
    /// observation when there is none).
    pub fn sde_features(&self) -> usize {
        self.network
            .hidden_sizes
            .last()
            .copied()
            .unwrap_or(self.obs_dim)
    }

    /// `(d_in, d_out, orthogonal gain)` of each layer of a network ending in `head` outputs.
    fn layers(&self, head: usize, head_gain: f64) -> Vec<(usize, usize, f64)> {
        let sqrt2 = std::f64::consts::SQRT_2;
        let mut d_in = self.obs_dim;
        let mut layers = Vec::with_capacity(self.network.hidden_sizes.len() + 1);
        for &h in &self.network.hidden_sizes {
            layers.push((d_in, h, sqrt2));
            d_in = h;
        }
        layers.push((d_in, head, head_gain));
        layers
    }
}

/// How [`Mlp::new`] draws a layer's parameters.
#[derive(Debug, Clone, Copy)]
enum LayerInit {
    /// Orthogonal weights with the layer's gain, zero biases.
    Orthogonal,
    /// PyTorch's `nn.Linear` default: weights and biases uniform in `±1/√fan_in`.
    TorchDefault,
}

/// A stack of linear layers with an activation between them.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    layers: Vec<Linear<B>>,
    #[module(skip)]
    activation: Activation,
}

impl<B: Backend> Mlp<B> {
    /// Layers `(d_in, d_out, gain)` drawn from `rng` as `init` says.
    fn new(
        layers: &[(usize, usize, f64)],
        init: LayerInit,
        activation: Activation,
        rng: &mut NpRandom,
        device: &B::Device,
    ) -> Self {
        let layers = layers
            .iter()
            .map(|&(d_in, d_out, gain)| {
                let (w, b) = match init {
                    LayerInit::Orthogonal => {
                        (orthogonal(d_in, d_out, gain, rng), vec![0f32; d_out])
                    }
                    LayerInit::TorchDefault => {
                        let bound = 1.0 / (d_in as f64).sqrt();
                        let mut draw = |n: usize| -> Vec<f32> {
                            (0..n).map(|_| rng.uniform(-bound, bound) as f32).collect()
                        };
                        (draw(d_in * d_out), draw(d_out))
                    }
                };
                Linear {
                    weight: Param::from_tensor(Tensor::from_data(
                        TensorData::new(w, [d_in, d_out]),
                        device,
                    )),
                    bias: Some(Param::from_tensor(Tensor::from_data(
                        TensorData::new(b, [d_out]),
                        device,
                    ))),
                }
            })
            .collect();
        Self { layers, activation }
    }

    /// # Shapes
    /// - input: `[batch, d_in]`
    /// - output: `[batch, d_out]`
    pub fn forward(&self, input: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward_features(input).1
    }

    /// The input of the last layer (the last hidden features, or `input` itself for a single
    /// layer) and the output.
    ///
    /// # Shapes
    /// - input: `[batch, d_in]`
    /// - output: `([batch, features], [batch, d_out])`
    pub fn forward_features(&self, input: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let last = self.layers.len().saturating_sub(1);
        let mut x = input;
        let mut features = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            if i == last {
                features = x.clone();
            }
            x = layer.forward(x);
            if i < last {
                x = self.activation.apply(x);
            }
        }
        (features, x)
    }

    /// The layers, first to last.
    pub fn layers(&self) -> &[Linear<B>] {
        &self.layers
    }

    /// A copy on the host (one read of every weight), for [`crate::host_policy`].
    pub fn to_host(&self) -> Result<HostMlp> {
        let layers = self
            .layers
            .iter()
            .map(|layer| {
                let [d_in, d_out] = layer.weight.val().dims();
                HostLinear {
                    weight: read(layer.weight.val()),
                    bias: layer
                        .bias
                        .as_ref()
                        .map_or_else(|| vec![0.0; d_out], |b| read(b.val())),
                    d_in,
                    d_out,
                }
            })
            .collect();
        HostMlp::new(layers, self.activation)
    }
}

/// A `rows × cols` matrix (row-major) with orthonormal columns (if `rows >= cols`) or rows
/// (otherwise), scaled by `gain`: Gram-Schmidt on a standard normal matrix, as PyTorch's
/// `orthogonal_` (QR of a Gaussian matrix) in distribution.
pub fn orthogonal(rows: usize, cols: usize, gain: f64, rng: &mut NpRandom) -> Vec<f32> {
    let (long, short) = (rows.max(cols), rows.min(cols));
    // `short` orthonormal vectors of length `long`.
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(short);
    while basis.len() < short {
        let mut v: Vec<f64> = (0..long).map(|_| standard_normal(rng)).collect();
        for _ in 0..2 {
            // Twice, for numerical orthogonality.
            for b in &basis {
                let dot: f64 = v.iter().zip(b).map(|(x, y)| x * y).sum();
                v.iter_mut().zip(b).for_each(|(x, y)| *x -= dot * y);
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 1e-6 {
            basis.push(v.into_iter().map(|x| x / norm).collect());
        }
    }
    let mut out = vec![0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            let value = if rows >= cols {
                basis[c][r]
            } else {
                basis[r][c]
            };
            out[r * cols + c] = (gain * value) as f32;
        }
    }
    out
}

/// Pre-activations above `TANH_CLAMP` are clamped before [`tanh_by_exp`]'s exponential: `tanh(15)`
/// rounds to 1 in `f32` and `1 − tanh²(15) ≈ 3.7e-13`, so nothing representable is lost, while
/// `exp(2x)` stays far from `f32`'s overflow at `x ≈ 44`.
pub const TANH_CLAMP: f32 = 15.0;

/// `tanh(x)`, the hidden layers' activation: one fused operation on a backend with
/// [`crate::host_kernels`] installed (the `cinder` facade installs them for flex and
/// ndarray), else [`tanh_by_exp`]. The two agree to float32 rounding (~1e-7).
pub fn tanh<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    match crate::host_kernels::try_tanh(x) {
        Ok(y) => y,
        Err(x) => tanh_by_exp(x),
    }
}

/// `tanh(x) = 1 − 2 / (exp(2 · min(x, 15)) + 1)` from Burn operations, for every backend: the
/// same values as `tanh` to float precision, built from `exp`, which Burn's ndarray backend
/// vectorises (its `tanh` is scalar libm and dominated the update time; see BURN_NOTES).
///
/// Finite everywhere, forward and backward: without the clamp, `exp(2x)` overflows to ∞ once
/// `x > 44` and the backward pass multiplies ∞ by 0 (NaN gradients from unnormalised inputs of
/// order 10²). Above the clamp the gradient is 0, where the true derivative is below 4e-13.
/// Only the upper side needs it: for very negative `x`, `exp(2x)` underflows to 0 and both
/// passes stay finite. The clamp is only needed where a backward pass can follow: on a backend
/// without autodiff (rollout inference) the forward pass is finite without it (`exp` gives ∞,
/// `1/∞` gives 0, the result 1), and it is skipped there, as it costs two masked ops per call.
pub fn tanh_by_exp<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let x = if B::ad_enabled(&x.device()) {
        x.clamp_max(TANH_CLAMP)
    } else {
        x
    };
    x.mul_scalar(2.0)
        .exp()
        .add_scalar(1.0)
        .recip()
        .mul_scalar(-2.0)
        .add_scalar(1.0)
}

/// A batch of actions of either kind.
#[derive(Debug, Clone)]
pub enum Actions<B: Backend> {
    /// Discrete action indices, `[batch]`.
    Discrete(Tensor<B, 1, Int>),
    /// Continuous action vectors, `[batch, action_dim]`.
    Continuous(Tensor<B, 2>),
}

/// The action distribution a policy gives for a batch of observations.
#[derive(Debug, Clone)]
pub enum PolicyDistribution<B: Backend> {
    /// Discrete actions.
    Categorical(Categorical<B>),
    /// Continuous actions.
    Gaussian(DiagGaussian<B>),
}

impl<B: Backend> PolicyDistribution<B> {
    /// The number of distributions (rows of the batch).
    pub fn rows(&self) -> usize {
        match self {
            Self::Categorical(d) => d.log_probs.dims()[0],
            Self::Gaussian(d) => d.mean.dims()[0],
        }
    }

    /// The number of discrete actions, or the dimension of a continuous action.
    pub fn width(&self) -> usize {
        match self {
            Self::Categorical(d) => d.log_probs.dims()[1],
            Self::Gaussian(d) => d.mean.dims()[1],
        }
    }

    /// Whether the actions are continuous.
    pub fn is_continuous(&self) -> bool {
        matches!(self, Self::Gaussian(_))
    }

    /// `Ok` when `actions` are of this distribution's kind and shape: `[rows]` indices for a
    /// categorical, `[rows, width]` for a Gaussian ([`RlError::InvalidInput`] otherwise).
    pub fn check_actions(&self, actions: &Actions<B>) -> Result<()> {
        let (rows, width) = (self.rows(), self.width());
        let fits = match (self, actions) {
            (Self::Categorical(_), Actions::Discrete(a)) => a.dims() == [rows],
            (Self::Gaussian(_), Actions::Continuous(a)) => a.dims() == [rows, width],
            _ => false,
        };
        if fits {
            return Ok(());
        }
        Err(RlError::InvalidInput(if self.is_continuous() {
            format!(
                "actions do not fit {rows} observations of this continuous policy (expected [{rows}, {width}])"
            )
        } else {
            format!(
                "actions do not fit {rows} observations of this discrete policy (expected [{rows}] indices)"
            )
        }))
    }

    /// The most likely action of each row (one read from the device), continuous ones clipped
    /// to `bounds` `(low, high)` when given (SB3's `predict(deterministic=True)`).
    pub fn mode_actions(self, bounds: Option<(&[f32], &[f32])>) -> Result<Vec<Value>> {
        match self {
            Self::Categorical(c) => {
                let modes: Vec<i64> =
                    c.mode()
                        .into_data()
                        .convert::<i64>()
                        .to_vec()
                        .map_err(|e| {
                            RlError::InvalidInput(format!("unreadable greedy action: {e:?}"))
                        })?;
                modes
                    .into_iter()
                    .map(|i| {
                        usize::try_from(i).map(Value::Discrete).map_err(|_| {
                            RlError::InvalidInput(format!("a negative greedy action index {i}"))
                        })
                    })
                    .collect()
            }
            Self::Gaussian(g) => {
                let width = g.mean.dims()[1];
                Ok(clipped_actions(&read(g.mode()), width, bounds))
            }
        }
    }

    /// `log π(a|s)`, `[batch]`. Errors if the actions are of the other kind.
    pub fn log_prob(&self, actions: Actions<B>) -> Result<Tensor<B, 1>> {
        match (self, actions) {
            (Self::Categorical(d), Actions::Discrete(a)) => Ok(d.log_prob(a)),
            (Self::Gaussian(d), Actions::Continuous(a)) => Ok(d.log_prob_sum(a)),
            _ => Err(RlError::InvalidConfig(
                "actions are of the other kind than the policy's (discrete vs continuous)".into(),
            )),
        }
    }

    /// Entropy, `[batch]`.
    pub fn entropy(&self) -> Tensor<B, 1> {
        match self {
            Self::Categorical(d) => d.entropy(),
            Self::Gaussian(d) => d.entropy(),
        }
    }

    /// Draws one action per row on the host with `rng` (one read of the distribution's
    /// parameters): inverse CDF for a categorical, `mean + exp(log_std) · z` for a Gaussian.
    pub fn sample(self, rng: &mut NpRandom) -> SampledActions {
        match self {
            Self::Categorical(c) => {
                let [_, k] = c.log_probs.dims();
                SampledActions::categorical(&read(c.log_probs), k, rng)
            }
            Self::Gaussian(g) => {
                let [_, w] = g.mean.dims();
                SampledActions::gaussian(&read(g.mean), &read(g.log_std), w, rng)
            }
        }
    }
}

impl<B: Backend> PolicyDistribution<B> {
    /// gSDE's draw: row `e`'s action is `μ_e + z_e · E_e`, with `z_e` its features `[batch,
    /// features]` and `E_e` its exploration matrix (`noise` holds `[batch, features,
    /// action_dim]`, row-major), with its log-probability under this (state-dependent)
    /// Gaussian. One read of the distribution and the features.
    ///
    /// Errors: a categorical distribution, or `noise` of the wrong length.
    pub fn sample_sde(self, features: Tensor<B, 2>, noise: &[f32]) -> Result<SampledActions> {
        let Self::Gaussian(g) = self else {
            return Err(RlError::InvalidConfig(
                "gSDE needs continuous actions (a Gaussian policy)".into(),
            ));
        };
        let [rows, w] = g.mean.dims();
        let [_, f] = features.dims();
        if noise.len() != rows * f * w {
            return Err(RlError::InvalidInput(format!(
                "gSDE noise of {} floats for {rows} rows of {f} features and {w} actions",
                noise.len()
            )));
        }
        let (mean, log_std, z) = (read(g.mean), read(g.log_std), read(features));
        let mut sampled = SampledActions::with_capacity(rows, w);
        for e in 0..rows {
            let mut log_prob = 0.0f32;
            let start = sampled.flat.len();
            for k in 0..w {
                let eps: f32 = (0..f)
                    .map(|j| z[e * f + j] * noise[(e * f + j) * w + k])
                    .sum();
                let (mu, ls) = (mean[e * w + k], log_std[e * w + k]);
                sampled.flat.push(mu + eps);
                let u = eps / ls.exp();
                log_prob += -0.5 * u * u - ls - HALF_LN_2PI;
            }
            sampled.log_probs.push(log_prob);
            sampled
                .actions
                .push(Value::Continuous(sampled.flat[start..].to_vec()));
        }
        Ok(sampled)
    }
}

/// gSDE's exploration matrices: `count` draws of `E` with `E_jk ~ N(0, σ_jk²)`, `σ` given
/// row-major (`[features, action_dim]`), drawn on `rng`; `[count, features, action_dim]`.
pub fn sde_noise(std: &[f32], count: usize, rng: &mut NpRandom) -> Vec<f32> {
    let mut noise = Vec::with_capacity(count * std.len());
    for _ in 0..count {
        noise.extend(std.iter().map(|&s| s * standard_normal(rng) as f32));
    }
    noise
}

/// Actions drawn by [`PolicyDistribution::sample`], one per row.
#[derive(Debug, Clone, PartialEq)]
pub struct SampledActions {
    /// The actions, for the envs.
    pub actions: Vec<Value>,
    /// The actions as rows of floats, `[rows, width]` (width 1: the index, for discrete ones),
    /// for rollout storage.
    pub flat: Vec<f32>,
    /// `log π(a|s)` of each, `[rows]`.
    pub log_probs: Vec<f32>,
}

impl SampledActions {
    fn with_capacity(rows: usize, width: usize) -> Self {
        Self {
            actions: Vec::with_capacity(rows),
            flat: Vec::with_capacity(rows * width),
            log_probs: Vec::with_capacity(rows),
        }
    }

    /// One action per row of a categorical's log-probabilities `[rows, k]` (row-major), by
    /// inverse CDF on `rng` (one uniform per row).
    pub fn categorical(log_probs: &[f32], k: usize, rng: &mut NpRandom) -> Self {
        let rows = log_probs.len() / k.max(1);
        let mut sampled = Self::with_capacity(rows, 1);
        let mut probs = vec![0f32; k];
        for row in log_probs.chunks_exact(k.max(1)) {
            probs.iter_mut().zip(row).for_each(|(p, l)| *p = l.exp());
            let a = sample_categorical(&probs, rng);
            sampled.flat.push(a as f32);
            sampled.log_probs.push(row[a]);
            sampled.actions.push(Value::Discrete(a));
        }
        sampled
    }

    /// One action per row of a diagonal Gaussian, `mean + exp(log_std) · z` with `z` standard
    /// normal on `rng` (one per dimension, row by row). `mean` is `[rows, w]`; `log_std` is
    /// `[rows, w]` or one row `[w]` shared by all.
    pub fn gaussian(mean: &[f32], log_std: &[f32], w: usize, rng: &mut NpRandom) -> Self {
        let rows = mean.len() / w.max(1);
        let shared = log_std.len() == w;
        let mut sampled = Self::with_capacity(rows, w);
        for (e, mean) in mean.chunks_exact(w.max(1)).enumerate() {
            let log_std = if shared {
                log_std
            } else {
                &log_std[e * w..(e + 1) * w]
            };
            let mut log_prob = 0.0f32;
            let start = sampled.flat.len();
            for (&mu, &ls) in mean.iter().zip(log_std) {
                let z = standard_normal(rng) as f32;
                sampled.flat.push(mu + ls.exp() * z);
                log_prob += -0.5 * z * z - ls - HALF_LN_2PI;
            }
            sampled.log_probs.push(log_prob);
            sampled
                .actions
                .push(Value::Continuous(sampled.flat[start..].to_vec()));
        }
        sampled
    }
}

/// An actor and a critic that share nothing but their input (CleanRL's `Agent`).
#[derive(Module, Debug)]
pub struct ActorCritic<B: Backend> {
    actor: Mlp<B>,
    critic: Mlp<B>,
    /// Log standard deviation (continuous actions only): state-independent `[1, action_dim]`,
    /// or gSDE's `[features, action_dim]`.
    log_std: Option<Param<Tensor<B, 2>>>,
    /// Whether the Gaussian's noise is state-dependent (gSDE).
    #[module(skip)]
    use_sde: bool,
}

/// The variance floor gSDE adds (SB3's `epsilon`).
pub const SDE_EPSILON: f32 = 1e-6;

impl<B: Backend> ActorCritic<B> {
    /// The action distribution for `obs` `[batch, obs_dim]`.
    pub fn distribution(&self, obs: Tensor<B, 2>) -> PolicyDistribution<B> {
        self.distribution_and_features(obs).0
    }

    /// The action distribution and the actor's last hidden features `[batch, features]` (gSDE
    /// builds its noise from them).
    pub fn distribution_and_features(
        &self,
        obs: Tensor<B, 2>,
    ) -> (PolicyDistribution<B>, Tensor<B, 2>) {
        let (features, out) = self.actor.forward_features(obs);
        let dist = match &self.log_std {
            None => PolicyDistribution::Categorical(Categorical::from_logits(out)),
            Some(log_std) if self.use_sde => {
                // Var[a_k] = Σ_j z_j² σ_jk² (+ ε), with z not trained through the noise.
                let variance = features
                    .clone()
                    .detach()
                    .square()
                    .matmul(log_std.val().mul_scalar(2.0).exp());
                let log_sigma = variance.add_scalar(SDE_EPSILON).log().mul_scalar(0.5);
                PolicyDistribution::Gaussian(DiagGaussian::new(out, log_sigma))
            }
            Some(log_std) => PolicyDistribution::Gaussian(DiagGaussian::new(out, log_std.val())),
        };
        (dist, features)
    }

    /// gSDE's `σ = exp(log_std)`, `[features, action_dim]`, when the policy uses it.
    pub fn sde_std(&self) -> Option<Tensor<B, 2>> {
        match &self.log_std {
            Some(log_std) if self.use_sde => Some(log_std.val().exp()),
            _ => None,
        }
    }

    /// The learned log standard deviation of a Gaussian policy (`[1, action_dim]`, or gSDE's
    /// `[features, action_dim]`); `None` for a categorical one.
    pub fn log_std(&self) -> Option<Tensor<B, 2>> {
        self.log_std.as_ref().map(Param::val)
    }

    /// The critic's values `V(s)`, `[batch]`.
    pub fn value(&self, obs: Tensor<B, 2>) -> Tensor<B, 1> {
        self.critic.forward(obs).squeeze_dim(1)
    }

    /// Stable-Baselines3's `evaluate_actions`: `(log_probs, entropy, values)`, each `[batch]`,
    /// for the actions taken in `obs`.
    ///
    /// Errors ([`RlError::InvalidInput`]): observations that are not `[batch, obs_dim]`, or
    /// actions that are not `[batch]` (discrete) or `[batch, action_dim]` (continuous).
    pub fn evaluate_actions(
        &self,
        obs: Tensor<B, 2>,
        actions: Actions<B>,
    ) -> Result<(Tensor<B, 1>, Tensor<B, 1>, Tensor<B, 1>)> {
        self.check_batch(&obs, &actions)?;
        let dist = self.distribution(obs.clone());
        let log_probs = dist.log_prob(actions)?;
        Ok((log_probs, dist.entropy(), self.value(obs)))
    }

    /// Checks that `obs` is `[batch, obs_dim]` and `actions` fit it; returns `batch`.
    pub fn check_batch(&self, obs: &Tensor<B, 2>, actions: &Actions<B>) -> Result<usize> {
        let [batch, width] = obs.dims();
        if width != self.obs_dim() {
            return Err(RlError::InvalidInput(format!(
                "observations of width {width}, the policy takes {}",
                self.obs_dim()
            )));
        }
        let action_dim = self.action_dim();
        let fits = match (actions, &self.log_std) {
            (Actions::Discrete(a), None) => a.dims() == [batch],
            (Actions::Continuous(a), Some(_)) => a.dims() == [batch, action_dim],
            _ => false,
        };
        if !fits {
            return Err(RlError::InvalidInput(format!(
                "actions do not fit {batch} observations of this {} policy (expected [{batch}]{})",
                if self.log_std.is_some() {
                    "continuous"
                } else {
                    "discrete"
                },
                if self.log_std.is_some() {
                    format!(" rows of {action_dim}")
                } else {
                    " indices".into()
                }
            )));
        }
        Ok(batch)
    }

    /// Number of discrete actions, or the dimension of a continuous action.
    pub fn action_dim(&self) -> usize {
        self.actor
            .layers
            .last()
            .map_or(0, |layer| layer.weight.val().dims()[1])
    }

    /// Floats per observation the policy takes.
    pub fn obs_dim(&self) -> usize {
        self.actor
            .layers
            .first()
            .map_or(0, |layer| layer.weight.val().dims()[0])
    }

    /// The actor network.
    pub fn actor(&self) -> &Mlp<B> {
        &self.actor
    }

    /// The critic network.
    pub fn critic(&self) -> &Mlp<B> {
        &self.critic
    }

    /// A copy of the policy on the host (one read of every weight) for the rollouts' small
    /// batches ([`crate::host_policy`]); `None` with gSDE, whose noise the rollout builds from
    /// the backend's features.
    pub fn host_policy(&self) -> Option<HostPolicy> {
        if self.use_sde {
            return None;
        }
        let log_std = self.log_std.as_ref().map(|p| read(p.val()));
        HostPolicy::new(
            self.actor.to_host().ok()?,
            self.critic.to_host().ok()?,
            log_std,
        )
        .ok()
    }
}

impl PolicyConfig for ActorCriticConfig {
    fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    fn action_dim(&self) -> usize {
        self.action_dim
    }

    fn continuous(&self) -> bool {
        self.continuous
    }

    fn describe(&self) -> String {
        format!(
            "{} observations → {} {} actions, hidden layers {:?}",
            self.obs_dim,
            self.action_dim,
            if self.continuous {
                "continuous"
            } else {
                "discrete"
            },
            self.network.hidden_sizes
        )
    }
}

impl<B: Backend> Policy<B> for ActorCritic<B> {
    type Config = ActorCriticConfig;

    fn init(config: &ActorCriticConfig, device: &B::Device) -> Result<Self> {
        config.init(device)
    }

    fn obs_dim(&self) -> usize {
        ActorCritic::obs_dim(self)
    }

    fn forward(&self, obs: Tensor<B, 2>) -> (PolicyDistribution<B>, Tensor<B, 1>) {
        (
            ActorCritic::distribution(self, obs.clone()),
            ActorCritic::value(self, obs),
        )
    }

    fn distribution(&self, obs: Tensor<B, 2>) -> PolicyDistribution<B> {
        ActorCritic::distribution(self, obs)
    }

    fn value(&self, obs: Tensor<B, 2>) -> Tensor<B, 1> {
        ActorCritic::value(self, obs)
    }

    fn evaluate_actions(
        &self,
        obs: Tensor<B, 2>,
        actions: Actions<B>,
    ) -> Result<(Tensor<B, 1>, Tensor<B, 1>, Tensor<B, 1>)> {
        ActorCritic::evaluate_actions(self, obs, actions)
    }

    fn sde_std(&self) -> Option<Tensor<B, 2>> {
        ActorCritic::sde_std(self)
    }

    fn distribution_and_features(
        &self,
        obs: Tensor<B, 2>,
    ) -> (PolicyDistribution<B>, Option<Tensor<B, 2>>) {
        let (dist, features) = ActorCritic::distribution_and_features(self, obs);
        (dist, Some(features))
    }

    fn host_policy(&self) -> Option<HostPolicy> {
        ActorCritic::host_policy(self)
    }
}

impl<B: Backend> PolicyDistribution<B> {
    /// The exact mean `KL(self ‖ other)` over the batch, `[1]` (TRPO's constraint). Errors if
    /// the two are of different kinds.
    pub fn mean_kl(&self, other: &Self) -> Result<Tensor<B, 1>> {
        match (self, other) {
            (Self::Categorical(p), Self::Categorical(q)) => Ok(p.kl(q).mean()),
            (Self::Gaussian(p), Self::Gaussian(q)) => Ok(p.kl(q).mean()),
            _ => Err(RlError::InvalidInput(
                "a KL between a categorical and a Gaussian policy".into(),
            )),
        }
    }

    /// The same distribution with its parameters detached from any autodiff graph.
    pub fn detach(self) -> Self {
        match self {
            Self::Categorical(d) => Self::Categorical(Categorical {
                log_probs: d.log_probs.detach(),
            }),
            Self::Gaussian(d) => Self::Gaussian(DiagGaussian {
                mean: d.mean.detach(),
                log_std: d.log_std.detach(),
            }),
        }
    }
}

/// The actor's parameters as one flat vector, and the actor as a function of it: what TRPO's
/// natural-gradient step (gradients, Fisher-vector products, the line search) works on.
///
/// The vector holds, for each actor layer first to last, its weight `[d_in, d_out]` row by row
/// and then its bias `[d_out]`; then, for a Gaussian policy, the log-std (`[1, action_dim]`, or
/// gSDE's `[features, action_dim]`) row by row. [`ActorLayout::distribution`] computes exactly
/// what [`ActorCritic::distribution`] computes, from such a vector, on any backend — also on a
/// nested autodiff backend, for second derivatives.
#[derive(Debug, Clone, PartialEq)]
pub struct ActorLayout {
    /// `(d_in, d_out)` of each layer.
    layers: Vec<(usize, usize)>,
    activation: Activation,
    /// The log-std's shape (Gaussian policies).
    log_std: Option<[usize; 2]>,
    use_sde: bool,
}

impl ActorLayout {
    /// Floats in the flat vector.
    pub fn len(&self) -> usize {
        self.layers.iter().map(|(i, o)| i * o + o).sum::<usize>()
            + self.log_std.map_or(0, |[r, c]| r * c)
    }

    /// Whether the actor has no parameters (never, for a policy built by [`ActorCriticConfig`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The action distribution for `obs` `[batch, obs_dim]` of the actor whose parameters are
    /// `theta` `[len]`.
    pub fn distribution<Bk: Backend>(
        &self,
        theta: Tensor<Bk, 1>,
        obs: Tensor<Bk, 2>,
    ) -> Result<PolicyDistribution<Bk>> {
        let [n] = theta.dims();
        if n != self.len() {
            return Err(RlError::InvalidInput(format!(
                "a flat actor parameter vector of {n} floats; this actor has {}",
                self.len()
            )));
        }
        let last = self.layers.len().saturating_sub(1);
        let mut offset = 0;
        let mut take = |rows: usize, cols: usize| {
            let t = theta
                .clone()
                .slice(offset..offset + rows * cols)
                .reshape([rows, cols]);
            offset += rows * cols;
            t
        };
        let mut x = obs;
        let mut features = x.clone();
        for (i, &(d_in, d_out)) in self.layers.iter().enumerate() {
            if i == last {
                features = x.clone();
            }
            let weight = take(d_in, d_out);
            let bias = take(1, d_out);
            x = x.matmul(weight) + bias;
            if i < last {
                x = self.activation.apply(x);
            }
        }
        Ok(match self.log_std {
            None => PolicyDistribution::Categorical(Categorical::from_logits(x)),
            Some([rows, cols]) => {
                let log_std = take(rows, cols);
                if self.use_sde {
                    // The features are constants here (SB3 detaches them), at every autodiff
                    // level: `detach` would leave them tracked by the inner level of a nested
                    // backend, and the Fisher product would differentiate through them. A copy
                    // through the host cuts every level.
                    let device = features.device();
                    let features = Tensor::<Bk, 2>::from_data(features.into_data(), &device);
                    let variance = features.square().matmul(log_std.mul_scalar(2.0).exp());
                    let log_sigma = variance.add_scalar(SDE_EPSILON).log().mul_scalar(0.5);
                    PolicyDistribution::Gaussian(DiagGaussian::new(x, log_sigma))
                } else {
                    PolicyDistribution::Gaussian(DiagGaussian::new(x, log_std))
                }
            }
        })
    }
}

impl<B: Backend> ActorCritic<B> {
    /// The actor's shape, for its flat parameter vector (see [`ActorLayout`]).
    pub fn actor_layout(&self) -> ActorLayout {
        ActorLayout {
            layers: self
                .actor
                .layers
                .iter()
                .map(|layer| {
                    let [d_in, d_out] = layer.weight.val().dims();
                    (d_in, d_out)
                })
                .collect(),
            activation: self.actor.activation,
            log_std: self.log_std.as_ref().map(|p| p.val().dims()),
            use_sde: self.use_sde,
        }
    }

    /// The actor's parameters as one flat vector, `[layout.len()]` (see [`ActorLayout`]).
    pub fn actor_parameters(&self) -> Tensor<B, 1> {
        let mut parts = Vec::new();
        for layer in &self.actor.layers {
            parts.push(layer.weight.val().flatten::<1>(0, 1));
            if let Some(bias) = &layer.bias {
                parts.push(bias.val());
            }
        }
        if let Some(log_std) = &self.log_std {
            parts.push(log_std.val().flatten::<1>(0, 1));
        }
        Tensor::cat(parts, 0)
    }

    /// The same policy with the actor's parameters taken from `theta` (laid out as
    /// [`ActorCritic::actor_parameters`] gives them); the critic, the parameters' identities
    /// (an optimiser's state stays attached) and gradient tracking are kept.
    ///
    /// Errors ([`RlError::InvalidInput`]): `theta` of another length than the actor's.
    pub fn with_actor_parameters(mut self, theta: Tensor<B, 1>) -> Result<Self> {
        let layout = self.actor_layout();
        let [n] = theta.dims();
        if n != layout.len() {
            return Err(RlError::InvalidInput(format!(
                "a flat actor parameter vector of {n} floats; this actor has {}",
                layout.len()
            )));
        }
        let mut offset = 0;
        let mut take = |dims: [usize; 2]| {
            let count = dims[0] * dims[1];
            let t = theta.clone().slice(offset..offset + count).reshape(dims);
            offset += count;
            t
        };
        let replace = |param: Param<Tensor<B, 2>>, value: Tensor<B, 2>| {
            let track = param.is_require_grad();
            param.map(|_| value.detach().set_require_grad(track))
        };
        let layers = std::mem::take(&mut self.actor.layers);
        self.actor.layers = layers
            .into_iter()
            .map(|layer| {
                let dims = layer.weight.val().dims();
                let weight = replace(layer.weight, take(dims));
                let bias = layer.bias.map(|b| {
                    let track = b.is_require_grad();
                    let value = take([1, dims[1]]).reshape([dims[1]]);
                    b.map(|_| value.detach().set_require_grad(track))
                });
                Linear { weight, bias }
            })
            .collect();
        if let Some(log_std) = self.log_std.take() {
            let dims = log_std.val().dims();
            self.log_std = Some(replace(log_std, take(dims)));
        }
        Ok(self)
    }
}

/// Runs `episodes` episodes of the greedy (most likely action) policy on `env`, seeding episode
/// `k` with `seed + k`, and returns their undiscounted returns. Continuous actions are clipped
/// to the action space (as SB3's `predict`). A policy that offers a host copy
/// ([`Policy::host_policy`]) steps on it, one observation at a time, without the backend's
/// per-call cost.
///
/// Errors: an env without a time limit ([`cinder_env::Env::max_episode_steps`] is `None`: an
/// episode might never end; wrap it in `TimeLimit`), an episode that runs past its time limit
/// anyway, a policy whose input or output does not fit the env, and env errors.
pub fn evaluate_greedy<
    Bk: Backend,
    P: Policy<Bk>,
    E: cinder_env::Env<Obs = Vec<f32>, Action = cinder_env::Value> + ?Sized,
>(
    model: &P,
    env: &mut E,
    episodes: usize,
    seed: u64,
    device: &Bk::Device,
) -> Result<Vec<f64>> {
    evaluate_greedy_normalized(model, env, episodes, seed, device, None)
}

/// [`evaluate_greedy`] for a policy trained on normalised observations: each observation goes
/// through `normalize`'s frozen statistics before the policy sees it (returns stay the env's).
pub fn evaluate_greedy_normalized<
    Bk: Backend,
    P: Policy<Bk>,
    E: cinder_env::Env<Obs = Vec<f32>, Action = cinder_env::Value> + ?Sized,
>(
    model: &P,
    env: &mut E,
    episodes: usize,
    seed: u64,
    device: &Bk::Device,
    normalize: Option<&crate::normalize::VecNormalize>,
) -> Result<Vec<f64>> {
    let bounds = match env.action_space() {
        Space::Box(b) => Some((b.low, b.high)),
        Space::Discrete(_) => None,
    };
    let limit = env.max_episode_steps().ok_or_else(|| {
        RlError::InvalidConfig(
            "evaluation needs episodes that end: the env has no time limit; wrap it in TimeLimit"
                .into(),
        )
    })?;
    let obs_dim = model.obs_dim();
    // Batch-1 steps: the host copy where the policy offers one (crate::host_policy).
    let host = model.host_policy();
    let bounds = bounds.as_ref().map(|(low, high)| (&low[..], &high[..]));
    let mut returns = Vec::with_capacity(episodes);
    for k in 0..episodes {
        let (mut obs, _) = env.reset(Some(seed.wrapping_add(k as u64)))?;
        let mut total = 0.0;
        let mut steps = 0u64;
        loop {
            if let Some(normalize) = normalize {
                normalize.normalize_obs(&mut obs);
            }
            if obs.len() != obs_dim {
                return Err(RlError::UnsupportedSpace(format!(
                    "the env gives observations of {} floats, the policy takes {obs_dim}",
                    obs.len()
                )));
            }
            if steps >= limit {
                return Err(RlError::InvalidConfig(format!(
                    "an evaluation episode ran past the env's time limit of {limit} steps"
                )));
            }
            steps += 1;
            let action = match &host {
                Some(host) => host.greedy(&obs, 1, bounds),
                None => model
                    .distribution(tensor2::<Bk>(obs.clone(), 1, obs_dim, device))
                    .mode_actions(bounds)?,
            }
            .pop()
            .ok_or_else(|| RlError::InvalidInput("the policy gave no action".into()))?;
            let step = env.step(&action)?;
            total += step.reward;
            obs = step.obs;
            if step.terminated || step.truncated {
                break;
            }
        }
        returns.push(total);
    }
    Ok(returns)
}

/// One continuous action per row of `flat` (`[rows, width]`), each clipped to `bounds`
/// (`(low, high)`) when given: the greedy actions of a Gaussian policy from its means.
pub(crate) fn clipped_actions(
    flat: &[f32],
    width: usize,
    bounds: Option<(&[f32], &[f32])>,
) -> Vec<Value> {
    flat.chunks(width.max(1))
        .map(|row| {
            let mut a = row.to_vec();
            if let Some((low, high)) = bounds {
                clip_to_bounds(&mut a, low, high);
            }
            Value::Continuous(a)
        })
        .collect()
}

/// Clips each element of `action` to `[low, high]` (bounds shorter than the action leave the
/// rest unchanged; a NaN stays NaN for the env to reject).
pub fn clip_to_bounds(action: &mut [f32], low: &[f32], high: &[f32]) {
    for ((a, &lo), &hi) in action.iter_mut().zip(low).zip(high) {
        if *a < lo {
            *a = lo;
        } else if *a > hi {
            *a = hi;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use cinder_env::make;

    type B = NdArray<f32>;

    fn data2(t: Tensor<B, 2>) -> (Vec<f32>, [usize; 2]) {
        let dims = t.dims();
        (t.into_data().to_vec::<f32>().unwrap(), dims)
    }

    /// `W^T W` (or `W W^T`, whichever is the smaller square) is `gain² I`.
    fn assert_orthogonal(w: Tensor<B, 2>, gain: f32) {
        let [rows, cols] = w.dims();
        let gram = if rows >= cols {
            w.clone().transpose().matmul(w)
        } else {
            w.clone().matmul(w.transpose())
        };
        let (g, [n, _]) = data2(gram);
        for i in 0..n {
            for j in 0..n {
                let expected = if i == j { gain * gain } else { 0.0 };
                assert!(
                    (g[i * n + j] - expected).abs() < 1e-4 * (1.0 + gain * gain),
                    "gram[{i},{j}] = {} (gain {gain})",
                    g[i * n + j]
                );
            }
        }
    }

    #[test]
    fn init_follows_cleanrl() {
        let device = Default::default();
        let env = make("CartPole-v1").unwrap();
        let config =
            ActorCriticConfig::for_spaces(&env.observation_space(), &env.action_space()).unwrap();
        assert_eq!(
            (config.obs_dim, config.action_dim, config.continuous),
            (4, 2, false)
        );
        let model = config.init::<B>(&device).unwrap();
        let gains = [std::f32::consts::SQRT_2, std::f32::consts::SQRT_2, 0.01];
        for (layer, gain) in model.actor().layers().iter().zip(gains) {
            assert_orthogonal(layer.weight.val(), gain);
            let bias: Vec<f32> = layer
                .bias
                .as_ref()
                .unwrap()
                .val()
                .into_data()
                .to_vec()
                .unwrap();
            assert!(bias.iter().all(|&b| b == 0.0));
        }
        assert_orthogonal(model.critic().layers()[2].weight.val(), 1.0);
        assert_eq!(model.critic().layers()[2].weight.dims(), [64, 1]);
    }

    #[test]
    fn evaluate_actions_shapes_and_consistency() {
        let device = Default::default();
        let model = ActorCriticConfig::new(4, 3).init::<B>(&device).unwrap();
        let obs = Tensor::<B, 2>::random([5, 4], burn::tensor::Distribution::Default, &device);
        let actions =
            Tensor::<B, 1, Int>::from_data(TensorData::new(vec![0i64, 1, 2, 1, 0], [5]), &device);
        let (log_probs, entropy, values) = model
            .evaluate_actions(obs.clone(), Actions::Discrete(actions.clone()))
            .unwrap();
        assert_eq!(log_probs.dims(), [5]);
        assert_eq!(entropy.dims(), [5]);
        assert_eq!(values.dims(), [5]);
        // A fresh policy head (gain 0.01) is nearly uniform.
        let h: Vec<f32> = entropy.into_data().to_vec().unwrap();
        assert!(h.iter().all(|&h| (h - 3f32.ln()).abs() < 1e-3), "{h:?}");
        let lp: Vec<f32> = log_probs.into_data().to_vec().unwrap();
        assert!(lp.iter().all(|&l| (l + 3f32.ln()).abs() < 0.05), "{lp:?}");
        let wrong = model.evaluate_actions(
            obs.clone(),
            Actions::Continuous(Tensor::zeros([5, 3], &device)),
        );
        assert!(wrong.is_err());
        // Shapes that do not fit are errors, not panics inside Burn.
        let narrow = Tensor::<B, 2>::zeros([5, 3], &device);
        let err = model
            .evaluate_actions(narrow, Actions::Discrete(actions.clone()))
            .unwrap_err();
        assert!(err.to_string().contains("observations of width 3"), "{err}");
        let short = actions.narrow(0, 0, 4);
        let err = model
            .evaluate_actions(obs, Actions::Discrete(short))
            .unwrap_err();
        assert!(
            err.to_string().contains("do not fit 5 observations"),
            "{err}"
        );
    }

    #[test]
    fn gaussian_policy_for_pendulum() {
        let device = Default::default();
        let env = make("Pendulum-v1").unwrap();
        let config = ActorCriticConfig::for_spaces(&env.observation_space(), &env.action_space())
            .unwrap()
            .with_network(NetworkConfig::new().with_init_log_std(-0.5));
        let model = config.init::<B>(&device).unwrap();
        let obs = Tensor::<B, 2>::zeros([2, 3], &device);
        let (_, entropy, _) = model
            .evaluate_actions(obs, Actions::Continuous(Tensor::zeros([2, 1], &device)))
            .unwrap();
        let h: Vec<f32> = entropy.into_data().to_vec().unwrap();
        let expected = 0.5 + 0.5 * (2.0 * std::f32::consts::PI).ln() - 0.5;
        assert!(h.iter().all(|&h| (h - expected).abs() < 1e-5), "{h:?}");
    }

    #[test]
    fn same_seed_same_weights_other_seed_others() {
        let device = Default::default();
        let weights = |seed| -> Vec<f32> {
            let m = ActorCriticConfig::new(4, 2)
                .with_seed(seed)
                .init::<B>(&device)
                .unwrap();
            m.actor().layers()[0]
                .weight
                .val()
                .into_data()
                .to_vec()
                .unwrap()
        };
        assert_eq!(weights(7), weights(7));
        assert_ne!(weights(7), weights(8));
        // Wide matrices have orthonormal rows.
        let mut rng = NpRandom::from_seed(0);
        let w = orthogonal(2, 5, 1.0, &mut rng);
        let dot: f32 = (0..5).map(|c| w[c] * w[5 + c]).sum();
        let n0: f32 = (0..5).map(|c| w[c] * w[c]).sum();
        assert!(dot.abs() < 1e-6 && (n0 - 1.0).abs() < 1e-6);
    }

    /// Forward and gradient against f64 `tanh` and `1 − tanh²`, from 0 to far past the point
    /// where the unclamped formula's `exp(2x)` overflows (x ≈ 44).
    #[test]
    fn tanh_and_its_gradient_match_f64_everywhere() {
        type AB = burn::backend::Autodiff<B>;
        let device = Default::default();
        let xs = [
            0.0f32, 1.0, -1.0, 0.25, -3.0, 20.0, -20.0, 44.5, -44.5, 50.0, -50.0, 1e4, -1e4,
        ];
        let x = Tensor::<AB, 1>::from_data(TensorData::new(xs.to_vec(), [xs.len()]), &device)
            .require_grad();
        let y = tanh_by_exp(x.clone());
        let ys: Vec<f32> = y.clone().into_data().to_vec().unwrap();
        let grads = y.sum().backward();
        let gs: Vec<f32> = x.grad(&grads).unwrap().into_data().to_vec().unwrap();
        // Without autodiff (rollout inference) the clamp is skipped: the same values.
        let plain: Vec<f32> = tanh_by_exp(Tensor::<B, 1>::from_data(
            TensorData::new(xs.to_vec(), [xs.len()]),
            &device,
        ))
        .into_data()
        .to_vec()
        .unwrap();
        assert_eq!(plain, ys, "inference and training tanh differ");
        for ((&x, y), g) in xs.iter().zip(ys).zip(gs) {
            let exact = f64::from(x).tanh();
            let derivative = 1.0 - exact * exact;
            assert!(
                (f64::from(y) - exact).abs() < 1e-6,
                "tanh({x}) = {y}, not {exact}"
            );
            assert!(
                g.is_finite() && (f64::from(g) - derivative).abs() < 1e-6,
                "tanh'({x}) = {g}, not {derivative}"
            );
        }
    }

    /// Observations of order 10²–10⁴ (an unnormalised env) give finite gradients through the
    /// whole policy.
    #[test]
    fn large_observations_give_finite_gradients() {
        type AB = burn::backend::Autodiff<B>;
        let device = Default::default();
        let model = ActorCriticConfig::new(3, 2).init::<AB>(&device).unwrap();
        let obs = Tensor::<AB, 2>::from_data(
            TensorData::new(vec![300.0f32, -250.0, 1e4, -1e4, 80.0, 5e3], [2, 3]),
            &device,
        );
        let actions = Tensor::<AB, 1, Int>::from_data(TensorData::new(vec![0i64, 1], [2]), &device);
        let (log_probs, entropy, values) = model
            .evaluate_actions(obs, Actions::Discrete(actions))
            .unwrap();
        let loss = log_probs.sum() + entropy.sum() + values.sum();
        let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &model);
        let norm = crate::gradients::global_grad_norm::<AB, _>(&model, &grads);
        assert!(norm.is_finite(), "gradient norm {norm}");
    }

    /// gSDE without hidden layers (the features are the observation): the variance is
    /// `Σ_j obs_j² σ_j²` (+ 1e-6), and an action drawn with an exploration matrix has the
    /// log-probability the distribution gives it.
    #[test]
    fn gsde_variance_and_sampled_log_probs_follow_the_formulas() {
        let device = Default::default();
        let config = ActorCriticConfig::new(2, 1)
            .with_continuous(true)
            .with_network(
                NetworkConfig::new()
                    .with_hidden_sizes(vec![])
                    .with_init_log_std(0.5f64.ln()),
            )
            .with_use_sde(true);
        assert_eq!(config.sde_features(), 2);
        let model = config.init::<B>(&device).unwrap();
        assert_eq!(model.sde_std().unwrap().dims(), [2, 1]);
        let obs = Tensor::<B, 2>::from_data(TensorData::new(vec![1.0f32, 2.0], [1, 2]), &device);
        let (dist, features) = model.distribution_and_features(obs);
        assert_eq!(read(features.clone()), vec![1.0, 2.0]);
        let PolicyDistribution::Gaussian(g) = dist.clone() else {
            panic!("a Gaussian")
        };
        let variance = (1.0f64 + 4.0) * 0.25 + 1e-6;
        let log_sigma = read(g.log_std.clone())[0];
        assert!(
            (f64::from(log_sigma) - 0.5 * variance.ln()).abs() < 1e-6,
            "{log_sigma}"
        );
        // E = [0.5, −1]: the noise is 1·0.5 + 2·(−1) = −1.5.
        let mean = read(g.mode())[0];
        let sampled = dist.clone().sample_sde(features, &[0.5, -1.0]).unwrap();
        assert!((sampled.flat[0] - (mean - 1.5)).abs() < 1e-6);
        let expected = -0.5 * 1.5f64.powi(2) / variance
            - 0.5 * variance.ln()
            - 0.5 * (2.0 * std::f64::consts::PI).ln();
        assert!((f64::from(sampled.log_probs[0]) - expected).abs() < 1e-5);
        let again = dist
            .log_prob(Actions::Continuous(Tensor::from_data(
                TensorData::new(sampled.flat.clone(), [1, 1]),
                &device,
            )))
            .unwrap();
        assert!((read(again)[0] - sampled.log_probs[0]).abs() < 1e-5);
        // Noise of the wrong size is an error, not a panic.
        let (dist, features) = model.distribution_and_features(Tensor::zeros([1, 2], &device));
        assert!(dist.sample_sde(features, &[1.0]).is_err());
        // Matrices are σ-scaled normals, one per env.
        let mut rng = NpRandom::from_seed(3);
        let noise = sde_noise(&[0.5, 2.0], 3, &mut rng);
        assert_eq!(noise.len(), 6);
    }

    #[test]
    fn bad_configs_say_what_to_change() {
        let device = burn::backend::ndarray::NdArrayDevice::Cpu;
        let err = ActorCriticConfig::new(0, 2).init::<B>(&device).unwrap_err();
        assert!(err.to_string().contains("obs_dim"));
        let err = ActorCriticConfig::new(4, 1).init::<B>(&device).unwrap_err();
        assert!(err.to_string().contains("action_dim >= 2"));
        let discrete_obs = Space::Discrete(cinder_env::Discrete::new(3));
        assert!(ActorCriticConfig::for_spaces(&discrete_obs, &discrete_obs).is_err());
    }
}
