//! Bring your own network: a user's `#[derive(Module)]` policy (a shared trunk with a policy
//! head and a value head) trains with PPO and with the policy-gradient family (REINFORCE,
//! GRPO) through the public API alone, resumes exactly, loads for deployment, and gets clear
//! errors when it does not fit its env or its config. Deployment's `Predictor` replays the
//! learners' own greedy evaluations.

use burn::backend::{Autodiff, NdArray};
use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, activation::tanh};
use cinder_env::classic_control::CartPoleVec;
use cinder_env::vector::AutoresetMode;
use cinder_env::{DynEnv, make};
use cinder_rl::RlError;
use cinder_rl::checkpoint::{load_custom_policy, load_policy};
use cinder_rl::distributions::Categorical;
use cinder_rl::policy::{Policy, PolicyConfig, PolicyDistribution};
use cinder_rl::policy_gradient::PolicyGradient;
use cinder_rl::ppo::{Ppo, PpoConfig, UpdateMetrics};
use cinder_rl::predict::Predictor;
use cinder_rl::run::Learner;
use cinder_rl::{grpo, reinforce};
use std::path::PathBuf;

type AB = Autodiff<NdArray<f32>>;
type B = NdArray<f32>;

/// A shared trunk and two heads (each a hidden layer and an output layer) for discrete actions.
#[derive(Config, Debug, PartialEq)]
struct SharedTrunkConfig {
    obs_dim: usize,
    actions: usize,
    #[config(default = 64)]
    hidden: usize,
    /// A deliberately broken network: its policy head has this many extra outputs.
    #[config(default = 0)]
    extra_outputs: usize,
    /// Seed of the initialisation.
    #[config(default = 0)]
    seed: u64,
}

/// Burn's initialisers draw from the backend's process-wide generator (lazily, at a
/// parameter's first use): seeding it and drawing the weights happen under one lock, so tests
/// running in parallel threads build the same network from the same seed.
static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl PolicyConfig for SharedTrunkConfig {
    fn obs_dim(&self) -> usize {
        self.obs_dim
    }
    fn action_dim(&self) -> usize {
        self.actions
    }
    fn continuous(&self) -> bool {
        false
    }
}

#[derive(Module, Debug)]
struct SharedTrunk<B: Backend> {
    trunk: Linear<B>,
    policy_hidden: Linear<B>,
    logits: Linear<B>,
    value_hidden: Linear<B>,
    value: Linear<B>,
}

impl<B: Backend> Policy<B> for SharedTrunk<B> {
    type Config = SharedTrunkConfig;

    fn init(c: &SharedTrunkConfig, device: &B::Device) -> cinder_rl::Result<Self> {
        let _lock = INIT.lock().unwrap_or_else(|e| e.into_inner());
        B::seed(device, c.seed);
        let net = Self {
            trunk: LinearConfig::new(c.obs_dim, c.hidden).init(device),
            policy_hidden: LinearConfig::new(c.hidden, c.hidden).init(device),
            logits: LinearConfig::new(c.hidden, c.actions + c.extra_outputs).init(device),
            value_hidden: LinearConfig::new(c.hidden, c.hidden).init(device),
            value: LinearConfig::new(c.hidden, 1).init(device),
        };
        // Burn draws parameters lazily, at their first use: draw them now, under the lock.
        let _ = net.forward(Tensor::zeros([1, c.obs_dim], device));
        Ok(net)
    }

    fn obs_dim(&self) -> usize {
        self.trunk.weight.dims()[0]
    }

    fn forward(&self, obs: Tensor<B, 2>) -> (PolicyDistribution<B>, Tensor<B, 1>) {
        let h = tanh(self.trunk.forward(obs));
        let pi = tanh(self.policy_hidden.forward(h.clone()));
        let v = tanh(self.value_hidden.forward(h));
        let dist = Categorical::from_logits(self.logits.forward(pi));
        (
            PolicyDistribution::Categorical(dist),
            self.value.forward(v).squeeze_dim(1),
        )
    }
}

fn cartpole_net() -> SharedTrunkConfig {
    SharedTrunkConfig::new(4, 2)
}

fn tmp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cinder-custom-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ppo_config(seed: u64, iterations: u64) -> PpoConfig {
    PpoConfig::new()
        .with_seed(seed)
        .with_num_envs(4)
        .with_num_steps(128)
        .with_learning_rate(1e-3)
        .with_total_timesteps(iterations * 512)
}

fn custom_ppo(config: PpoConfig) -> Ppo<AB, CartPoleVec, SharedTrunk<AB>> {
    let envs = CartPoleVec::new(config.num_envs, AutoresetMode::SameStep).unwrap();
    let net = cartpole_net().with_seed(config.seed);
    Ppo::with_policy(config, envs, net, Default::default()).unwrap()
}

fn cartpoles(n: usize) -> Vec<DynEnv> {
    (0..n).map(|_| make("CartPole-v1").unwrap()).collect()
}

/// Mean of the first update's episodes and of the last 20 episodes of a run.
fn improvement<L: Learner>(learner: &mut L) -> (f64, f64)
where
    L::Report: cinder_rl::run::UpdateReport,
{
    use cinder_rl::run::UpdateReport;
    let mut returns: Vec<f64> = Vec::new();
    let mut first = None;
    while !learner.finished() {
        let report = learner.iterate().unwrap();
        let episodes = &report.common().episode_returns;
        if !episodes.is_empty() {
            first.get_or_insert(episodes.iter().sum::<f64>() / episodes.len() as f64);
        }
        returns.extend(episodes);
    }
    let last = &returns[returns.len().saturating_sub(20)..];
    (first.unwrap(), last.iter().sum::<f64>() / last.len() as f64)
}

/// PPO trains the user's network on CartPole-v1: after 100 updates of 512 steps (51k steps)
/// the last-20 mean return is at least 100 above the first update's (a random policy scores
/// about 22), on three seeds.
#[test]
fn ppo_trains_a_shared_trunk_network() {
    for seed in [1, 2, 3] {
        let (first, last) = improvement(&mut custom_ppo(ppo_config(seed, 100)));
        eprintln!("PPO, shared trunk, seed {seed}: first update {first:.1}, last 20 {last:.1}");
        assert!(last >= first + 100.0, "seed {seed}: {first} -> {last}");
    }
}

/// REINFORCE (learned baseline: the network's value head) and GRPO (no critic: the value head
/// is unused) train the same network, through the same learner as the built-in policy.
#[test]
fn reinforce_and_grpo_train_a_shared_trunk_network() {
    for (name, config, steps) in [
        ("REINFORCE", reinforce::config(), 60_000),
        ("GRPO", grpo::config(), 80_000),
    ] {
        for seed in [1, 2] {
            let config = config.clone().with_seed(seed).with_total_timesteps(steps);
            let n = config.episodes_per_batch;
            let mut learner = PolicyGradient::<AB, _, SharedTrunk<AB>>::with_policy(
                config,
                cartpoles(n),
                cartpole_net().with_seed(seed),
                Default::default(),
            )
            .unwrap();
            let (first, last) = improvement(&mut learner);
            eprintln!(
                "{name}, shared trunk, seed {seed}: first batch {first:.1}, last 20 {last:.1}"
            );
            assert!(
                last >= first + 100.0,
                "{name} seed {seed}: {first} -> {last}"
            );
        }
    }
}

/// A run of a custom policy resumes exactly from its checkpoint; the checkpoint loads as that
/// policy (not as the built-in one, with an error that says so), and deployment's Predictor
/// replays the learner's greedy evaluation episode for episode.
#[test]
fn custom_policy_runs_resume_exactly_and_deploy() {
    let dir = tmp_dir("resume");
    let path = dir.join("checkpoint.ckpt");
    let config = ppo_config(7, 5);
    let mut straight = custom_ppo(config.clone());
    let expected: Vec<UpdateMetrics> = (0..5)
        .map(|_| straight.iterate().unwrap().without_timings())
        .collect();
    let mut first = custom_ppo(config.clone());
    for (k, expected) in expected.iter().take(2).enumerate() {
        let metrics = first.iterate().unwrap().without_timings();
        assert_eq!(&metrics, expected, "update {k}");
    }
    first.save_checkpoint(&path).unwrap();
    let envs = CartPoleVec::new(4, AutoresetMode::SameStep).unwrap();
    let mut resumed =
        Ppo::<AB, _, SharedTrunk<AB>>::resume_with_policy(&path, envs, Default::default()).unwrap();
    let after: Vec<UpdateMetrics> = (0..3)
        .map(|_| resumed.iterate().unwrap().without_timings())
        .collect();
    assert_eq!(after, expected[2..]);

    // The checkpoint holds a SharedTrunk, not the built-in actor-critic.
    let (net, net_config) =
        load_custom_policy::<B, SharedTrunk<B>>(&path, &Default::default()).unwrap();
    assert_eq!(net_config, cartpole_net().with_seed(7));
    assert_eq!(Policy::<B>::obs_dim(&net), 4);
    let err = load_policy::<B>(&path, &Default::default()).unwrap_err();
    assert!(
        matches!(err, RlError::Checkpoint { .. }) && err.to_string().contains("not a"),
        "{err}"
    );
    let envs = CartPoleVec::new(4, AutoresetMode::SameStep).unwrap();
    let err = Ppo::<AB, _>::resume(&path, envs, Default::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("policy architecture"), "{err}");

    // Deployment: the same greedy episodes as the learner's own evaluation.
    first.save_checkpoint(&path).unwrap();
    let learner_returns = first
        .evaluate(&mut make("CartPole-v1").unwrap(), 3, 100)
        .unwrap();
    let mut agent =
        Predictor::<B, SharedTrunk<B>>::load_policy(&path, &Default::default()).unwrap();
    assert_eq!(replay(&mut agent, "CartPole-v1", 3, 100), learner_returns);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Greedy episodes of `agent` on `env_id`, episode `k` seeded `seed + k`.
fn replay<P: Policy<B>>(
    agent: &mut Predictor<B, P>,
    env_id: &str,
    episodes: u64,
    seed: u64,
) -> Vec<f64> {
    let mut env = make(env_id).unwrap();
    (0..episodes)
        .map(|k| {
            let (mut obs, _) = env.reset(Some(seed + k)).unwrap();
            let mut total = 0.0;
            loop {
                let action = agent.predict(&obs, true).unwrap();
                let step = env.step(&action).unwrap();
                total += step.reward;
                if step.terminated || step.truncated {
                    break total;
                }
                obs = step.obs;
            }
        })
        .collect()
}

/// A run that normalised its observations deploys with its statistics: the Predictor loaded
/// from the checkpoint acts as the learner's own evaluation does (Pendulum-v1, clipped
/// continuous actions), and differs from the same policy without the statistics.
#[test]
fn predictor_applies_the_runs_observation_statistics() {
    let dir = tmp_dir("normalized");
    let path = dir.join("checkpoint.ckpt");
    let config = PpoConfig::new()
        .with_seed(3)
        .with_num_envs(2)
        .with_num_steps(256)
        .with_total_timesteps(2048)
        .with_normalize_obs(true);
    let envs = cinder_env::vector::SyncVectorEnv::new(
        (0..2).map(|_| make("Pendulum-v1").unwrap()).collect(),
        AutoresetMode::SameStep,
    )
    .unwrap();
    let mut ppo = Ppo::<AB, _>::new(config, envs, Default::default()).unwrap();
    for _ in 0..3 {
        ppo.iterate().unwrap();
    }
    ppo.save_checkpoint(&path).unwrap();
    let learner_returns = ppo
        .evaluate(&mut make("Pendulum-v1").unwrap(), 2, 40)
        .unwrap();
    let space = make("Pendulum-v1").unwrap().action_space();
    let mut agent = Predictor::<B>::load(&path, &Default::default())
        .unwrap()
        .with_action_space(&space)
        .unwrap();
    assert!(agent.normalization().is_some());
    assert_eq!(replay(&mut agent, "Pendulum-v1", 2, 40), learner_returns);
    let mut raw = Predictor::<B>::load(&path, &Default::default())
        .unwrap()
        .with_normalization(None)
        .with_action_space(&space)
        .unwrap();
    assert_ne!(replay(&mut raw, "Pendulum-v1", 2, 40), learner_returns);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Clear errors: a network too small for the env's observations, a network whose outputs do
/// not match its own config, gSDE asked of a policy without it, a bad observation for
/// deployment.
#[test]
fn policies_that_do_not_fit_get_clear_errors() {
    let envs = || CartPoleVec::new(4, AutoresetMode::SameStep).unwrap();
    let config = ppo_config(1, 2);
    let err = Ppo::<AB, _, SharedTrunk<AB>>::with_policy(
        config.clone(),
        envs(),
        SharedTrunkConfig::new(3, 2),
        Default::default(),
    )
    .err()
    .unwrap();
    assert!(matches!(err, RlError::UnsupportedSpace(_)), "{err}");
    assert!(err.to_string().contains("3 observations"), "{err}");

    let err = Ppo::<AB, _, SharedTrunk<AB>>::with_policy(
        config.clone(),
        envs(),
        cartpole_net().with_extra_outputs(1),
        Default::default(),
    )
    .err()
    .unwrap();
    assert!(matches!(err, RlError::InvalidConfig(_)), "{err}");
    assert!(err.to_string().contains("over 3 actions"), "{err}");

    let err = PolicyGradient::<AB, _, SharedTrunk<AB>>::with_policy(
        reinforce::config(),
        cartpoles(8),
        cartpole_net().with_extra_outputs(2),
        Default::default(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("over 4 actions"), "{err}");

    let err = Ppo::<AB, _, SharedTrunk<AB>>::with_policy(
        config.with_use_sde(true),
        envs(),
        cartpole_net(),
        Default::default(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("use_sde"), "{err}");

    let dev = Default::default();
    let net = <SharedTrunk<B> as Policy<B>>::init(&cartpole_net(), &dev).unwrap();
    let mut agent = Predictor::new(net, cartpole_net(), dev);
    let err = agent.predict(&[0.0; 3], true).unwrap_err();
    assert!(err.to_string().contains("not whole observations"), "{err}");
    assert!(agent.predict(&[0.0; 4], false).is_ok());
}
