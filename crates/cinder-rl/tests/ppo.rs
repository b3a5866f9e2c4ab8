//! PPO behaviour: configuration errors, an identity env it must solve quickly, determinism, and
//! CartPole-v1 solved within CleanRL's budget.

use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use cinder_env::classic_control::CartPoleVec;
use cinder_env::make;
use cinder_env::vector::{AutoresetMode, SyncVectorEnv};
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

#[test]
fn solves_cartpole_within_cleanrl_budget() {
    let config = PpoConfig::new().with_seed(1);
    let total = config.total_timesteps;
    let envs = CartPoleVec::new(config.num_envs, AutoresetMode::SameStep).unwrap();
    let mut ppo = Ppo::<AB, _>::new(config, envs, Default::default()).unwrap();
    let mut last = None;
    while !ppo.finished() {
        last = Some(ppo.iterate().unwrap());
    }
    let last = last.unwrap();
    assert_eq!(last.global_step, total - total % 512);
    let model = ppo.model().valid();
    let mut env = make("CartPole-v1").unwrap();
    let returns = evaluate_greedy(&model, &mut env, 20, 10_000, &Default::default()).unwrap();
    let mean = returns.iter().sum::<f64>() / returns.len() as f64;
    assert!(
        mean >= 475.0,
        "evaluation mean return {mean} over 20 episodes: {returns:?}"
    );
}
