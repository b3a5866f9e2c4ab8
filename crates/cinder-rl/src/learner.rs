//! The skeleton every learner of the family shares, written once: [`PolicyTrainer`], which holds
//! the actor-critic and its Adam optimiser and does what [`crate::ppo::Ppo`] and
//! [`crate::policy_gradient::PolicyGradient`] do the same way: build the policy for an env's
//! spaces, restore it (and Adam's state) from a checkpoint after checking that it fits, take a
//! gradient step (backward, global-norm clipping, Adam) whose loss and gradient norm are checked
//! at the end of the update, put everything back if that check fails, evaluate greedily, and
//! write itself into a checkpoint.

use crate::checkpoint::{Checkpoint, load_model};
use crate::error::{Result, RlError};
use crate::gradients::clip_grad_norm;
use crate::normalize::VecNormalize;
use crate::policy::{ActorCritic, ActorCriticConfig};
use crate::tensors::UpdateChecks;
use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer};
use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;
use std::path::Path;

/// Adam as the learners use it (ε = 1e-5: CleanRL's and SB3's PPO).
type PolicyOptimizer<B> = OptimizerAdaptor<Adam, ActorCritic<B>, B>;

/// A learner's policy and its optimiser (see the [module docs](self)).
pub struct PolicyTrainer<B: AutodiffBackend> {
    policy_config: ActorCriticConfig,
    device: B::Device,
    model: ActorCritic<B>,
    optimizer: PolicyOptimizer<B>,
    /// The policy and Adam's state before the current update's first gradient step.
    snapshot: Option<(ActorCritic<B>, PolicyOptimizer<B>)>,
}

impl<B: AutodiffBackend> PolicyTrainer<B> {
    /// A fresh policy of `policy_config` on `device` and a fresh Adam.
    pub fn new(policy_config: ActorCriticConfig, device: B::Device) -> Result<Self> {
        let model = policy_config.init::<B>(&device)?;
        Ok(Self {
            policy_config,
            device,
            model,
            optimizer: AdamConfig::new().with_epsilon(1e-5).init(),
            snapshot: None,
        })
    }

    /// Restores the policy (section `model`) and Adam's state (section `optimizer`) saved by
    /// [`PolicyTrainer::write`] in the checkpoint at `path`, after checking that the policy it
    /// holds (`saved`) is the one the envs need (`expected`).
    pub fn restore(
        path: &Path,
        checkpoint: &Checkpoint,
        saved: &ActorCriticConfig,
        expected: &ActorCriticConfig,
        device: B::Device,
    ) -> Result<Self> {
        if saved != expected {
            return Err(RlError::CheckpointMismatch {
                path: path.to_path_buf(),
                reason: format!(
                    "it holds a policy of {}; these envs and settings need {}",
                    describe(saved),
                    describe(expected)
                ),
            });
        }
        let model = load_model::<B>(path, checkpoint, "model", saved, &device)?;
        let fresh = AdamConfig::new().with_epsilon(1e-5).init();
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
    pub fn model(&self) -> &ActorCritic<B> {
        &self.model
    }

    /// The policy's configuration (its architecture).
    pub fn policy_config(&self) -> &ActorCriticConfig {
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
    pub(crate) fn replace_model(&mut self, model: ActorCritic<B>) {
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

/// A one-line description of a policy's input, output and layers.
pub(crate) fn describe(policy: &ActorCriticConfig) -> String {
    format!(
        "{} observations → {} {} actions, hidden layers {:?}",
        policy.obs_dim,
        policy.action_dim,
        if policy.continuous {
            "continuous"
        } else {
            "discrete"
        },
        policy.network.hidden_sizes
    )
}
