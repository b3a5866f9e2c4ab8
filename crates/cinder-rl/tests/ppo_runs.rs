//! Runs a user can keep: run directories, checkpoints that reload and resume exactly, clear
//! errors for corrupt or foreign checkpoints, and a NaN that leaves the last checkpoint intact.
//! Also continuous actions and the adaptive KL penalty in the PPO loop.

use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use cinder_env::classic_control::CartPoleVec;
use cinder_env::make;
use cinder_env::vector::{AutoresetMode, SyncVectorEnv};
use cinder_rl::RlError;
use cinder_rl::checkpoint::{load_policy, load_policy_into};
use cinder_rl::policy::ActorCriticConfig;
use cinder_rl::policy::NetworkConfig;
use cinder_rl::ppo::{AdaptiveKlConfig, Ppo, PpoConfig, UpdateMetrics};
use cinder_rl::run::{Learner, RunDir, TrainOptions, files, train};
use common::{Identity, Target};
use std::path::PathBuf;

mod common;

type AB = Autodiff<NdArray<f32>>;
type B = NdArray<f32>;

fn tmp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cinder-ppo-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn small_config(seed: u64, iterations: u64) -> PpoConfig {
    PpoConfig::new()
        .with_seed(seed)
        .with_num_envs(4)
        .with_num_steps(64)
        .with_total_timesteps(iterations * 256)
}

fn cartpole_ppo(config: PpoConfig) -> Ppo<AB, CartPoleVec> {
    let envs = CartPoleVec::new(config.num_envs, AutoresetMode::SameStep).unwrap();
    Ppo::new(config, envs, Default::default()).unwrap()
}

fn weights(ppo_model: &cinder_rl::policy::ActorCritic<B>) -> Vec<f32> {
    ppo_model
        .actor()
        .layers()
        .iter()
        .chain(ppo_model.critic().layers())
        .flat_map(|l| l.weight.val().into_data().to_vec::<f32>().unwrap())
        .collect()
}

#[test]
fn resume_continues_exactly_as_the_uninterrupted_run() {
    let config = small_config(5, 6);
    let mut straight = cartpole_ppo(config.clone());
    let expected: Vec<UpdateMetrics> = (0..6)
        .map(|_| straight.iterate().unwrap().without_timings())
        .collect();

    let dir = tmp_dir("resume");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(files::CHECKPOINT);
    let mut first = cartpole_ppo(config.clone());
    for m in &expected[..3] {
        assert_eq!(&first.iterate().unwrap().without_timings(), m);
    }
    first.save_checkpoint(&path).unwrap();
    // Keep going after the checkpoint, then throw that away: the checkpoint must not share
    // state with the live learner.
    first.iterate().unwrap();
    drop(first);

    let envs = CartPoleVec::new(4, AutoresetMode::SameStep).unwrap();
    let mut resumed = Ppo::<AB, _>::resume(&path, envs, Default::default()).unwrap();
    assert_eq!(resumed.iteration(), 3);
    assert_eq!(resumed.global_step(), 3 * 256);
    let after: Vec<UpdateMetrics> = (0..3)
        .map(|_| resumed.iterate().unwrap().without_timings())
        .collect();
    assert_eq!(after, expected[3..]);
    assert!(resumed.finished());
    assert_eq!(
        weights(&resumed.model().valid()),
        weights(&straight.model().valid())
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_directory_holds_config_metrics_checkpoint_and_policy_reloads() {
    let dir = tmp_dir("rundir");
    let config = small_config(2, 4);
    let mut run_dir = RunDir::create(&dir, &config).unwrap();
    let mut ppo = cartpole_ppo(config.clone());
    let options = TrainOptions {
        checkpoint_every: 2,
        progress: false,
        solve_threshold: Some(475.0),
    };
    let report = train(&mut ppo, Some(&mut run_dir), &options).unwrap();
    assert!(report.episodes > 0);
    // A second run in the same directory is refused.
    assert!(
        matches!(RunDir::create(&dir, &config), Err(RlError::InvalidConfig(m)) if m.contains("already holds a run"))
    );

    let saved: PpoConfig = RunDir::read_config(&dir).unwrap();
    assert_eq!(saved, config);
    let text = std::fs::read_to_string(dir.join(files::METRICS)).unwrap();
    let raw_lines: Vec<&str> = text.lines().collect();
    let lines: Vec<serde_json::Value> = raw_lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    for (k, (line, raw)) in lines.iter().zip(&raw_lines).enumerate() {
        assert_eq!(line["iteration"], k as u64 + 1);
        for key in [
            "policy_loss",
            "value_loss",
            "entropy",
            "approx_kl",
            "clip_fraction",
            "explained_variance",
            "grad_norm",
            "learning_rate",
            "steps_per_second",
        ] {
            assert!(line[key].as_f64().unwrap().is_finite(), "{key} in {line}");
        }
        // The fields every learner reports sit at the top level of the line, and the line
        // reads back as the metrics it was written from.
        assert!(line["episode_returns"].is_array() && line["timings"]["update"].is_f64());
        let typed: UpdateMetrics = serde_json::from_str(raw).unwrap();
        assert_eq!(typed.iteration, k as u64 + 1);
        assert_eq!(serde_json::to_string(&typed).unwrap(), *raw);
    }

    // The checkpoint's policy evaluates to the same returns as the live one.
    let (model, policy_config) =
        load_policy::<B>(dir.join(files::CHECKPOINT), &Default::default()).unwrap();
    assert_eq!(&policy_config, ppo.policy_config());
    let mut env = make("CartPole-v1").unwrap();
    let live = ppo.evaluate(&mut env, 5, 77).unwrap();
    let loaded =
        cinder_rl::policy::evaluate_greedy(&model, &mut env, 5, 77, &Default::default()).unwrap();
    assert_eq!(live, loaded);

    // Reopening for a resume after update 2 drops the later metric lines.
    let reopened = RunDir::reopen(&dir, 2).unwrap();
    drop(reopened);
    let kept = std::fs::read_to_string(dir.join(files::METRICS)).unwrap();
    assert_eq!(kept.lines().count(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn corrupt_and_foreign_checkpoints_give_clear_errors() {
    let dir = tmp_dir("corrupt");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(files::CHECKPOINT);
    let mut ppo = cartpole_ppo(small_config(1, 2));
    ppo.iterate().unwrap();
    ppo.save_checkpoint(&path).unwrap();
    let good = std::fs::read(&path).unwrap();

    // Flipped bytes in the middle of the weights.
    let mut bad = good.clone();
    let mid = bad.len() - 2000;
    bad[mid] ^= 0x5a;
    let corrupt = dir.join("corrupt.ckpt");
    std::fs::write(&corrupt, &bad).unwrap();
    let envs = CartPoleVec::new(4, AutoresetMode::SameStep).unwrap();
    let err = Ppo::<AB, _>::resume(&corrupt, envs, Default::default())
        .err()
        .unwrap();
    assert!(matches!(err, RlError::Checkpoint { .. }), "{err}");
    assert!(err.to_string().contains("corrupt"), "{err}");
    let err = load_policy::<B>(&corrupt, &Default::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("corrupt"), "{err}");

    // Truncated.
    std::fs::write(&corrupt, &good[..good.len() / 2]).unwrap();
    let err = load_policy::<B>(&corrupt, &Default::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("truncated"), "{err}");

    // Another env: Acrobot has 6 observations and 3 actions.
    let acrobot =
        SyncVectorEnv::from_fn(4, AutoresetMode::SameStep, |_| make("Acrobot-v1").unwrap())
            .unwrap();
    let err = Ppo::<AB, _>::resume(&path, acrobot, Default::default())
        .err()
        .unwrap();
    assert!(matches!(err, RlError::CheckpointMismatch { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("4 observations → 2 discrete actions"),
        "{err}"
    );

    // Another architecture: a policy with 32 hidden units.
    let small = ActorCriticConfig::new(4, 2)
        .with_network(NetworkConfig::new().with_hidden_sizes(vec![32, 32]))
        .init::<B>(&Default::default())
        .unwrap();
    let err = load_policy_into(&path, small, &Default::default())
        .err()
        .unwrap();
    assert!(matches!(err, RlError::CheckpointMismatch { .. }), "{err}");
    assert!(err.to_string().contains("shapes"), "{err}");
    // A continuous policy's record has a log-std the checkpoint lacks.
    let continuous = ActorCriticConfig::new(4, 2)
        .with_continuous(true)
        .init::<B>(&Default::default())
        .unwrap();
    assert!(load_policy_into(&path, continuous, &Default::default()).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn nan_stops_training_and_leaves_the_last_checkpoint_intact() {
    let dir = tmp_dir("nan");
    let config = PpoConfig::new()
        .with_num_envs(2)
        .with_num_steps(64)
        .with_total_timesteps(10 * 128);
    let mut run_dir = RunDir::create(&dir, &config).unwrap();
    // Each sub-env steps 64 times per update: NaN rewards start in update 3.
    let envs =
        SyncVectorEnv::from_fn(2, AutoresetMode::SameStep, |_| Identity::nan_after(128)).unwrap();
    let mut ppo = Ppo::<AB, _>::new(config, envs, Default::default()).unwrap();
    let options = TrainOptions {
        checkpoint_every: 1,
        progress: false,
        solve_threshold: None,
    };
    let err = train(&mut ppo, Some(&mut run_dir), &options).unwrap_err();
    assert!(
        matches!(
            err,
            RlError::NonFinite {
                iteration: 3,
                quantity: "loss",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("update 3"), "{err}");
    // The checkpoint is the one after update 2, and it resumes.
    let envs = SyncVectorEnv::from_fn(2, AutoresetMode::SameStep, |_| Identity::default()).unwrap();
    let resumed =
        Ppo::<AB, _>::resume(dir.join(files::CHECKPOINT), envs, Default::default()).unwrap();
    assert_eq!(resumed.iteration(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn continuous_actions_learn_a_target() {
    let config = PpoConfig::new()
        .with_num_envs(4)
        .with_num_steps(128)
        .with_total_timesteps(40 * 512)
        .with_learning_rate(3e-3)
        .with_ent_coef(0.0)
        .with_network(NetworkConfig::new().with_init_log_std(-0.5));
    let envs = SyncVectorEnv::from_fn(4, AutoresetMode::SameStep, |_| Target::default()).unwrap();
    let mut ppo = Ppo::<AB, _>::new(config, envs, Default::default()).unwrap();
    let mut first_mean = None;
    let mut last = None;
    while !ppo.finished() {
        let m = ppo.iterate().unwrap();
        assert!(m.policy_loss.is_finite() && m.value_loss.is_finite());
        let returns = &m.common.episode_returns;
        let mean = returns.iter().sum::<f64>() / returns.len() as f64;
        first_mean.get_or_insert(mean);
        last = Some(m);
    }
    // The greedy (mean) action lands near the target.
    let mut env = cinder_env::env::Erased::boxed(Target::default());
    let returns = ppo.evaluate(&mut env, 50, 3).unwrap();
    let greedy_mse = -returns.iter().sum::<f64>() / returns.len() as f64;
    assert!(greedy_mse < 0.02, "greedy squared error {greedy_mse}");
    // Sampling noise shrank: the entropy went down from its initial value.
    let entropy = last.unwrap().entropy;
    assert!(entropy < 0.5 + 0.918_938_5 - 0.5, "entropy {entropy}");
    assert!(first_mean.unwrap() < -0.3);
}

/// gSDE (state-dependent exploration) learns the target too, and its exploration noise
/// shrinks; a discrete env is refused.
#[test]
fn gsde_learns_a_target() {
    let config = PpoConfig::new()
        .with_num_envs(4)
        .with_num_steps(128)
        .with_total_timesteps(40 * 512)
        .with_learning_rate(3e-3)
        .with_ent_coef(0.0)
        .with_use_sde(true)
        .with_sde_sample_freq(Some(4))
        .with_network(NetworkConfig::new().with_init_log_std(-1.0));
    let envs = SyncVectorEnv::from_fn(4, AutoresetMode::SameStep, |_| Target::default()).unwrap();
    let mut ppo = Ppo::<AB, _>::new(config.clone(), envs, Default::default()).unwrap();
    let mut first = None;
    while !ppo.finished() {
        let m = ppo.iterate().unwrap();
        assert!(m.policy_loss.is_finite() && m.value_loss.is_finite() && m.approx_kl.is_finite());
        let returns = &m.common.episode_returns;
        first.get_or_insert(returns.iter().sum::<f64>() / returns.len() as f64);
    }
    let mut env = cinder_env::env::Erased::boxed(Target::default());
    let returns = ppo.evaluate(&mut env, 50, 3).unwrap();
    let greedy_mse = -returns.iter().sum::<f64>() / returns.len() as f64;
    assert!(greedy_mse < 0.05, "greedy squared error {greedy_mse}");
    assert!(
        first.unwrap() < -0.3,
        "the first rollouts were already good: {first:?}"
    );
    let discrete = CartPoleVec::new(4, AutoresetMode::SameStep).unwrap();
    let err = Ppo::<AB, _>::new(config, discrete, Default::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("use_sde"), "{err}");
}

#[test]
fn adaptive_kl_coefficient_follows_the_rule() {
    // A tiny target: every update overshoots it, so β doubles each time.
    let config = small_config(1, 4).with_adaptive_kl(Some(
        AdaptiveKlConfig::new()
            .with_initial_coef(0.5)
            .with_target(1e-12),
    ));
    let mut ppo = cartpole_ppo(config);
    let betas: Vec<f32> = (0..4)
        .map(|_| ppo.iterate().unwrap().kl_coef.unwrap())
        .collect();
    assert_eq!(betas, [0.5, 1.0, 2.0, 4.0]);
    assert_eq!(ppo.kl_coef(), Some(8.0));
    // A huge target: β halves.
    let config = small_config(1, 3).with_adaptive_kl(Some(
        AdaptiveKlConfig::new()
            .with_initial_coef(1.0)
            .with_target(1e3),
    ));
    let mut ppo = cartpole_ppo(config);
    let betas: Vec<f32> = (0..3)
        .map(|_| ppo.iterate().unwrap().kl_coef.unwrap())
        .collect();
    assert_eq!(betas, [1.0, 0.5, 0.25]);
    // The rule itself, at and around the band's edges (target 0.01: the band is
    // [0.01 / 1.5, 0.015]): inside it β stays.
    let rule = AdaptiveKlConfig::new().with_target(0.01);
    assert_eq!(rule.adapt(0.8, 0.01), 0.8);
    assert_eq!(rule.adapt(0.8, 0.0067), 0.8);
    assert_eq!(rule.adapt(0.8, 0.0149), 0.8);
    assert_eq!(rule.adapt(0.8, 0.0066), 0.4);
    assert_eq!(rule.adapt(0.8, 0.0151), 1.6);
    assert_eq!(rule.adapt(0.8, 0.0), 0.4);
    // Bad penalty settings are refused.
    let err = PpoConfig::new()
        .with_adaptive_kl(Some(AdaptiveKlConfig::new().with_target(0.0)))
        .validate()
        .unwrap_err();
    assert!(err.to_string().contains("adaptive_kl.target"), "{err}");
}

#[test]
fn adaptive_kl_without_clipping_still_learns_the_identity_env() {
    let config = PpoConfig::new()
        .with_total_timesteps(8_192)
        .with_learning_rate(1e-3)
        .with_num_envs(4)
        .with_num_steps(64)
        .with_clip_surrogate(false)
        .with_adaptive_kl(Some(AdaptiveKlConfig::new()));
    let envs = SyncVectorEnv::from_fn(4, AutoresetMode::SameStep, |_| Identity::default()).unwrap();
    let mut ppo = Ppo::<AB, _>::new(config, envs, Default::default()).unwrap();
    let mut betas = Vec::new();
    while !ppo.finished() {
        betas.push(ppo.iterate().unwrap().kl_coef.unwrap());
    }
    // With no clipping, the adaptive penalty is the only brake: it must have acted.
    assert!(
        betas.windows(2).any(|w| w[0] != w[1]),
        "β never moved: {betas:?}"
    );
    let mut env = cinder_env::env::Erased::boxed(Identity::default());
    let returns = ppo.evaluate(&mut env, 40, 0).unwrap();
    let accuracy = returns.iter().sum::<f64>() / returns.len() as f64;
    assert!(accuracy >= 0.95, "identity accuracy {accuracy}");
}
