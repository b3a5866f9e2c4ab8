//! PPO behaviour: configuration errors, vector envs it must refuse or survive, an identity env it
//! must solve quickly, determinism, and learning on CartPole-v1 across seeds.

use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use cinder_env::classic_control::CartPoleVec;
use cinder_env::vector::{AutoresetMode, SyncVectorEnv, VecStep, VectorEnv};
use cinder_env::wrappers::TimeLimit;
use cinder_env::{Env, make};
use cinder_rl::RlError;
use cinder_rl::policy::evaluate_greedy;
use cinder_rl::ppo::{Ppo, PpoConfig};

mod common;

use common::Identity;

type AB = Autodiff<NdArray<f32>>;

#[test]
fn invalid_configs_say_what_to_change() {
    let err = PpoConfig::new()
        .with_num_minibatches(3)
        .validate()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("num_minibatches (3) must divide num_envs × num_steps (512)")
    );
    let err = PpoConfig::new()
        .with_total_timesteps(100)
        .validate()
        .unwrap_err();
    assert!(err.to_string().contains("total_timesteps"));
    assert!(PpoConfig::new().with_gamma(1.5).validate().is_err());
    assert!(
        PpoConfig::new()
            .with_target_kl(Some(-1.0))
            .validate()
            .is_err()
    );
    assert!(
        PpoConfig::new()
            .with_learning_rate(f64::NAN)
            .validate()
            .is_err()
    );
    PpoConfig::new().validate().unwrap();
    let envs = CartPoleVec::new(2, AutoresetMode::SameStep).unwrap();
    let err = Ppo::<AB, _>::new(PpoConfig::new(), envs, Default::default())
        .err()
        .unwrap();
    assert!(matches!(err, RlError::InvalidConfig(ref m) if m.contains("num_envs")));
}

#[test]
fn solves_the_identity_env() {
    let config = PpoConfig::new()
        .with_total_timesteps(8_192)
        .with_learning_rate(1e-3)
        .with_num_envs(4)
        .with_num_steps(64);
    let envs = SyncVectorEnv::from_fn(4, AutoresetMode::SameStep, |_| Identity::default()).unwrap();
    let mut ppo = Ppo::<AB, _>::new(config, envs, Default::default()).unwrap();
    while !ppo.finished() {
        ppo.iterate().unwrap();
    }
    let model = ppo.model().valid();
    let mut env = cinder_env::env::Erased::boxed(Identity::default());
    let returns = evaluate_greedy(&model, &mut env, 40, 0, &Default::default()).unwrap();
    let accuracy = returns.iter().sum::<f64>() / returns.len() as f64;
    assert!(accuracy >= 0.95, "identity accuracy {accuracy}");
}

#[test]
fn nan_stops_training_with_an_error_naming_update_and_quantity() {
    let config = PpoConfig::new()
        .with_total_timesteps(1_024)
        .with_num_envs(2)
        .with_num_steps(64);
    let envs =
        SyncVectorEnv::from_fn(2, AutoresetMode::SameStep, |_| Identity::nan_after(0)).unwrap();
    let mut ppo = Ppo::<AB, _>::new(config, envs, Default::default()).unwrap();
    let before: Vec<f32> = ppo.model().valid().actor().layers()[0]
        .weight
        .val()
        .into_data()
        .to_vec()
        .unwrap();
    match ppo.iterate() {
        Err(RlError::NonFinite {
            iteration,
            quantity,
            ..
        }) => {
            assert_eq!(iteration, 1);
            assert_eq!(quantity, "loss");
        }
        other => panic!("expected a non-finite error, got {other:?}"),
    }
    // The bad update was not applied.
    let after: Vec<f32> = ppo.model().valid().actor().layers()[0]
        .weight
        .val()
        .into_data()
        .to_vec()
        .unwrap();
    assert_eq!(before, after);
}

fn metrics_of(seed: u64, iterations: usize) -> Vec<cinder_rl::ppo::UpdateMetrics> {
    let config = PpoConfig::new().with_seed(seed);
    let envs = CartPoleVec::new(4, AutoresetMode::SameStep).unwrap();
    let mut ppo = Ppo::<AB, _>::new(config, envs, Default::default()).unwrap();
    (0..iterations)
        .map(|_| ppo.iterate().unwrap().without_timings())
        .collect()
}

#[test]
fn same_seed_same_metrics() {
    assert_eq!(metrics_of(3, 3), metrics_of(3, 3));
    assert_ne!(metrics_of(3, 2), metrics_of(4, 2));
}

/// PPO (CleanRL's defaults) learns CartPole-v1 on every seed tried: the last-20 mean return
/// after 60k steps is at least 100 above that of the first update's episodes. Solving (a
/// greedy 500 within CleanRL's 500k budget) is measured by the benchmarks (`cinder-bench ppo`).
#[test]
fn learns_cartpole_across_seeds() {
    for seed in [1, 2, 3] {
        let config = PpoConfig::new()
            .with_seed(seed)
            .with_total_timesteps(60_000);
        let envs = CartPoleVec::new(config.num_envs, AutoresetMode::SameStep).unwrap();
        let mut ppo = Ppo::<AB, _>::new(config, envs, Default::default()).unwrap();
        let mut returns: Vec<f64> = Vec::new();
        let mut first = None;
        while !ppo.finished() {
            let metrics = ppo.iterate().unwrap();
            let episodes = &metrics.common.episode_returns;
            first.get_or_insert(episodes.iter().sum::<f64>() / episodes.len() as f64);
            returns.extend(episodes);
        }
        let first = first.unwrap();
        let tail = &returns[returns.len() - 20..];
        let last = tail.iter().sum::<f64>() / 20.0;
        eprintln!("PPO seed {seed}: first update {first:.1}, last 20 episodes {last:.1}");
        assert!(last >= first + 100.0, "seed {seed}: {first} -> {last}");
    }
}

/// A minibatch whose tensors disagree in length is an error naming the tensor.
#[test]
fn ppo_loss_refuses_mismatched_minibatches() {
    use burn::tensor::{Int, Tensor, TensorData};
    use cinder_rl::policy::{Actions, ActorCriticConfig};
    use cinder_rl::ppo::{Minibatch, ppo_loss};
    let device = Default::default();
    let model = ActorCriticConfig::new(4, 2).init::<AB>(&device).unwrap();
    let ones = |n: usize| Tensor::<AB, 1>::ones([n], &device);
    let minibatch = Minibatch {
        obs: Tensor::zeros([3, 4], &device),
        actions: Actions::Discrete(Tensor::<AB, 1, Int>::from_data(
            TensorData::new(vec![0i64, 1, 0], [3]),
            &device,
        )),
        old_log_probs: ones(3),
        advantages: ones(2),
        old_values: ones(3),
        returns: ones(3),
    };
    let err = ppo_loss(&model, minibatch, &PpoConfig::new(), None).unwrap_err();
    assert!(
        err.to_string()
            .contains("advantages has 2 rows, the batch has 3"),
        "{err}"
    );
}

/// Gymnasium 1.x's default NextStep autoreset would make PPO train on reset transitions: it is
/// refused with an error that says what to use, by `new` and by `resume`.
#[test]
fn next_step_autoreset_is_refused() {
    let config = PpoConfig::new().with_num_envs(2);
    let envs = CartPoleVec::new(2, AutoresetMode::NextStep).unwrap();
    let err = Ppo::<AB, _>::new(config.clone(), envs, Default::default())
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("AutoresetMode::SameStep") && err.to_string().contains("NextStep"),
        "{err}"
    );
    let envs = SyncVectorEnv::from_fn(2, AutoresetMode::NextStep, |_| make("CartPole-v1").unwrap())
        .unwrap();
    assert!(Ppo::<AB, _>::new(config, envs, Default::default()).is_err());
    let envs = CartPoleVec::new(2, AutoresetMode::NextStep).unwrap();
    let err = Ppo::<AB, _>::resume("no/such/checkpoint.ckpt", envs, Default::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("SameStep"), "{err}");
}

/// A user's vector env that returns fewer rewards and observations than it has sub-envs: a
/// typed error, not an index panic.
#[test]
fn a_vector_env_with_short_buffers_is_an_error() {
    struct Short(CartPoleVec);
    impl VectorEnv for Short {
        type Action = usize;
        fn num_envs(&self) -> usize {
            self.0.num_envs()
        }
        fn single_observation_space(&self) -> &cinder_env::Space {
            self.0.single_observation_space()
        }
        fn single_action_space(&self) -> &cinder_env::Space {
            self.0.single_action_space()
        }
        fn autoreset_mode(&self) -> AutoresetMode {
            AutoresetMode::SameStep
        }
        fn reset(&mut self, seed: Option<u64>) -> cinder_env::Result<&[f32]> {
            self.0.reset(seed)
        }
        fn step(&mut self, actions: &[usize]) -> cinder_env::Result<VecStep<'_>> {
            let step = self.0.step(actions)?;
            Ok(VecStep {
                rewards: &step.rewards[..1],
                obs: &step.obs[..3],
                ..step
            })
        }
    }
    let config = PpoConfig::new()
        .with_num_envs(2)
        .with_num_steps(8)
        .with_num_minibatches(1)
        .with_total_timesteps(16);
    let envs = Short(CartPoleVec::new(2, AutoresetMode::SameStep).unwrap());
    let mut ppo = Ppo::<AB, _>::new(config, envs, Default::default()).unwrap();
    let err = ppo.iterate().unwrap_err();
    assert!(matches!(err, RlError::UnsupportedSpace(_)), "{err}");
    assert!(err.to_string().contains("returned 3 observations"), "{err}");
}

/// Unnormalised observations of order 10³ (CartPole's scaled by 1000) train without a
/// non-finite gradient: the policy's tanh stays finite forward and backward.
#[test]
fn large_observations_train_without_nan() {
    #[derive(Debug, Clone)]
    struct Scaled(cinder_env::classic_control::CartPole);
    impl Env for Scaled {
        type Obs = Vec<f32>;
        type Action = usize;
        fn observation_space(&self) -> cinder_env::Space {
            cinder_env::Space::Box(cinder_env::BoxSpace::uniform_bounds(-1e6, 1e6, 4))
        }
        fn action_space(&self) -> cinder_env::Space {
            self.0.action_space()
        }
        fn reset(&mut self, seed: Option<u64>) -> cinder_env::Result<(Vec<f32>, cinder_env::Info)> {
            let (obs, info) = self.0.reset(seed)?;
            Ok((obs.iter().map(|x| x * 1000.0).collect(), info))
        }
        fn step(&mut self, action: &usize) -> cinder_env::Result<cinder_env::Step<Vec<f32>>> {
            let step = self.0.step(action)?;
            Ok(cinder_env::Step {
                obs: step.obs.iter().map(|x| x * 1000.0).collect(),
                reward: step.reward,
                terminated: step.terminated,
                truncated: step.truncated,
                info: step.info,
            })
        }
    }
    let config = PpoConfig::new()
        .with_num_envs(2)
        .with_num_steps(128)
        .with_total_timesteps(5 * 256);
    let envs = SyncVectorEnv::from_fn(2, AutoresetMode::SameStep, |_| {
        TimeLimit::new(Scaled(cinder_env::classic_control::CartPole::new()), 500).unwrap()
    })
    .unwrap();
    let mut ppo = Ppo::<AB, _>::new(config, envs, Default::default()).unwrap();
    while !ppo.finished() {
        let metrics = ppo.iterate().unwrap();
        assert!(metrics.grad_norm.is_finite(), "{metrics:?}");
    }
}
