//! The skeleton every learner of the family shares, written once: [`PolicyTrainer`], which holds
//! the actor-critic and its Adam optimiser and does what [`crate::ppo::Ppo`] and
//! [`crate::policy_gradient::PolicyGradient`] do the same way: build the policy for an env's
//! spaces, restore it (and Adam's state) from a checkpoint after checking that it fits, take a
//! gradient step (backward, global-norm clipping, Adam) whose loss and gradient norm are checked
//! at the end of the update, put everything back if that check fails, evaluate greedily, and
//! write itself into a checkpoint.

use crate::adam::{PolicyOptimizer, fused_adam};
use crate::checkpoint::{Checkpoint, load_model};
use crate::error::{Result, RlError};
use crate::gradients::clip_grad_norm;
use crate::normalize::VecNormalize;
use crate::policy::{ActorCritic, Policy, PolicyConfig, TrainPolicy, check_outputs};
use crate::tensors::UpdateChecks;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;
use std::path::Path;

/// Adam's ε in the learners (CleanRL's and SB3's PPO).
const ADAM_EPSILON: f32 = 1e-5;

/// A learner's policy (the built-in [`ActorCritic`] unless a custom [`Policy`] is given) and
/// its optimiser (see the [module docs](self)).
pub struct PolicyTrainer<B: AutodiffBackend, P: TrainPolicy<B> = ActorCritic<B>> {
    policy_config: P::Config,
    device: B::Device,
    model: P,
    optimizer: PolicyOptimizer<B, P>,
    /// The policy and Adam's state before the current update's first gradient step.
    snapshot: Option<(P, PolicyOptimizer<B, P>)>,
}

impl<B: AutodiffBackend, P: TrainPolicy<B>> PolicyTrainer<B, P> {
    /// A fresh policy of `policy_config` on `device` and a fresh Adam. Errors: a policy whose
    /// outputs do not fit its config's sizes (see [`check_policy`]).
    pub fn new(policy_config: P::Config, device: B::Device) -> Result<Self> {
        let model = P::init(&policy_config, &device)?;
        check_policy(&model.valid(), &policy_config, &device)?;
        Ok(Self {
            policy_config,
            device,
            model,
            optimizer: fused_adam(ADAM_EPSILON),
            snapshot: None,
        })
    }

    /// Restores the policy (section `model`) and Adam's state (section `optimizer`) saved by
    /// [`PolicyTrainer::write`] in the checkpoint at `path`, after checking that the policy it
    /// holds (`saved`) is the one the envs need (`expected`).
    pub fn restore(
        path: &Path,
        checkpoint: &Checkpoint,
        saved: &P::Config,
        expected: &P::Config,
        device: B::Device,
    ) -> Result<Self> {
        if saved != expected {
            return Err(RlError::CheckpointMismatch {
                path: path.to_path_buf(),
                reason: format!(
                    "it holds a policy of {}; these envs and settings need {}",
                    saved.describe(),
                    expected.describe()
                ),
            });
        }
        let model = load_model::<B, P>(path, checkpoint, "model", saved, &device)?;
        check_policy(&model.valid(), saved, &device)?;
        let fresh = fused_adam(ADAM_EPSILON);
        let optimizer = checkpoint.adam(path, "optimizer", &model, fresh, &device)?;
        Ok(Self {
            policy_config: saved.clone(),
            device,
            model,
            optimizer,
            snapshot: None,
        })
    }

    /// Writes the policy and Adam's state into `checkpoint`.
    pub fn write(&self, checkpoint: &mut Checkpoint) {
        checkpoint.put_module::<B, _>("model", &self.model);
        checkpoint.put_adam("optimizer", &self.model, &self.optimizer);
    }

    /// The current policy.
    pub fn model(&self) -> &P {
        &self.model
    }

    /// The policy's configuration (its architecture).
    pub fn policy_config(&self) -> &P::Config {
        &self.policy_config
    }

    /// The device training runs on.
    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// Keeps the policy and Adam's state as they are before an update's gradient steps, for
    /// [`PolicyTrainer::rollback`].
    pub(crate) fn begin_update(&mut self) {
        self.snapshot = Some((self.model.clone(), self.optimizer.clone()));
    }

    /// Puts the policy and Adam's state back as they were at [`PolicyTrainer::begin_update`]
    /// (an update whose loss or gradients were not finite).
    pub(crate) fn rollback(&mut self) {
        if let Some((model, optimizer)) = self.snapshot.take() {
            self.model = model;
            self.optimizer = optimizer;
        }
    }

    /// Replaces the policy (TRPO's line search sets the actor's parameters directly); Adam's
    /// state stays attached to the parameters' identities.
    pub(crate) fn replace_model(&mut self, model: P) {
        self.model = model;
    }

    /// One gradient step on `loss`: backward, global-norm clipping at `max_grad_norm`
    /// (infinite: measured, not clipped), Adam at `learning_rate`. The loss and the gradient
    /// norm go into `checks`, read once at the end of the update.
    pub(crate) fn gradient_step(
        &mut self,
        loss: Tensor<B, 1>,
        max_grad_norm: f32,
        learning_rate: f64,
        checks: &mut UpdateChecks<B::InnerBackend>,
    ) {
        let value = loss.clone().detach().inner();
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        let (grads, norm) = clip_grad_norm::<B, _>(&self.model, grads, max_grad_norm, &self.device);
        checks.push(value, norm);
        self.model = self
            .optimizer
            .step(learning_rate, self.model.clone(), grads);
    }

    /// The greedy policy's returns on `env` (see [`crate::policy::evaluate_greedy`]), on the
    /// inner backend, observations normalised by `normalize` when given.
    pub fn evaluate(
        &self,
        env: &mut cinder_env::DynEnv,
        episodes: usize,
        seed: u64,
        normalize: Option<&VecNormalize>,
    ) -> Result<Vec<f64>> {
        crate::policy::evaluate_greedy_normalized(
            &self.model.valid(),
            env,
            episodes,
            seed,
            &self.device,
            normalize,
        )
    }
}

/// Checks that `policy` fits its `config`: on a probe batch of two zero observations of
/// `config.obs_dim()` floats it must give two distributions over `config.action_dim()`
/// actions of the config's kind and two values. A custom policy whose layers disagree with its
/// config gets an [`RlError::InvalidConfig`] naming the difference, not a shape panic later.
pub fn check_policy<Bk: burn::tensor::backend::Backend, P: Policy<Bk>>(
    policy: &P,
    config: &P::Config,
    device: &Bk::Device,
) -> Result<()> {
    let invalid =
        |what: String| RlError::InvalidConfig(format!("the policy ({}) {what}", config.describe()));
    if policy.obs_dim() != config.obs_dim() {
        return Err(invalid(format!(
            "takes observations of {} floats",
            policy.obs_dim()
        )));
    }
    let probe = Tensor::<Bk, 2>::zeros([2, config.obs_dim()], device);
    let (dist, values) = policy.forward(probe);
    check_outputs(&dist, &values, 2).map_err(|e| invalid(e.to_string()))?;
    if dist.is_continuous() != config.continuous() || dist.width() != config.action_dim() {
        return Err(invalid(format!(
            "gives {} distributions over {} actions",
            if dist.is_continuous() {
                "Gaussian"
            } else {
                "categorical"
            },
            dist.width()
        )));
    }
    Ok(())
}

/// Checks that a policy of `config` fits an env's spaces: a `Box` observation space of
/// `config.obs_dim()` floats, and a `Discrete` action space of `config.action_dim()` actions or
/// a `Box` one of that many dimensions, as the config's kind says.
pub fn check_policy_fits_spaces(
    config: &impl PolicyConfig,
    observation_space: &cinder_env::Space,
    action_space: &cinder_env::Space,
) -> Result<()> {
    let obs_ok =
        matches!(observation_space, cinder_env::Space::Box(b) if b.size() == config.obs_dim());
    if obs_ok && check_action_space(config, action_space).is_ok() {
        return Ok(());
    }
    Err(RlError::UnsupportedSpace(format!(
        "a policy of {} does not fit the env's spaces ({observation_space} → {action_space})",
        config.describe()
    )))
}

/// Checks that a policy of `config` can act in `action_space`: a `Discrete` space of
/// `config.action_dim()` actions or a `Box` of that many dimensions, as the config's kind says.
pub fn check_action_space(
    config: &impl PolicyConfig,
    action_space: &cinder_env::Space,
) -> Result<()> {
    let fits = match action_space {
        cinder_env::Space::Discrete(d) => !config.continuous() && d.n == config.action_dim(),
        cinder_env::Space::Box(b) => config.continuous() && b.size() == config.action_dim(),
    };
    if fits {
        return Ok(());
    }
    Err(RlError::UnsupportedSpace(format!(
        "a policy of {} cannot act in the action space {action_space}",
        config.describe()
    )))
}
