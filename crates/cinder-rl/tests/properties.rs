//! Generated bad input against the learners' public surface:
//!
//! - every configuration (`PpoConfig`, `PolicyGradientConfig`, `ActorCriticConfig`) with random
//!   field values, NaN, negatives, 0 and huge ones included: `validate()` returns Ok or an
//!   error, and a validated config builds its learner (and runs an update) without a panic;
//! - checkpoints: byte flips, truncation at every length, appended garbage, another learner's
//!   file, and sections of random or mutated bytes re-wrapped with valid checksums: a typed
//!   error, never a panic, never a policy that loads wrong;
//! - a crash test: a child process training with a checkpoint after every update is killed with
//!   SIGKILL 20 times at random moments; the run directory's checkpoint always loads and
//!   resumes.
//!
//! Each target prints how many inputs it generated (`--nocapture` shows them) and appends the
//! count to `target/tmp/property_cases.txt`, which CI prints.

use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use cinder_env::classic_control::CartPoleVec;
use cinder_env::vector::AutoresetMode;
use cinder_env::{DynEnv, make};
use cinder_rl::RlError;
use cinder_rl::advantages::GroupScale;
use cinder_rl::checkpoint::{Checkpoint, load_policy};
use cinder_rl::losses::{KlEstimator, LossAggregation, ReferenceKl, Surrogate};
use cinder_rl::policy::NetworkConfig;
use cinder_rl::policy::{ActorCritic, ActorCriticConfig};
use cinder_rl::policy_gradient::{
    AdvantageEstimator, Baseline, PolicyGradient, PolicyGradientConfig, ReferenceKlConfig,
    ReferencePolicy,
};
use cinder_rl::ppo::{AdaptiveKlConfig, Ppo, PpoConfig};
use cinder_rl::run::{Learner, RunDir, TrainOptions, files, train};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRng, TestRunner};
use std::io::Write;
use std::path::{Path, PathBuf};

type AB = Autodiff<NdArray<f32>>;
type B = NdArray<f32>;

/// Records the number of generated inputs of one target.
fn report(target: &str, cases: u64) {
    report_count(target, cases, "generated inputs");
}

/// Records a count of `what` for one target.
fn report_count(target: &str, count: u64, what: &str) {
    let line = format!("properties: {target}: {count} {what}");
    eprintln!("{line}");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("property_cases.txt");
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(file, "{line}");
    }
}

thread_local! {
    /// How many learners this test's thread built from validated configs and ran (each test
    /// runs on its own thread).
    static BUILT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn built() {
    BUILT.with(|b| b.set(b.get() + 1));
}

/// Runs `test` on `cases` inputs of `strategy`, panicking with proptest's minimal failing
/// input, and reports the count.
fn check<S: Strategy>(target: &str, cases: u32, strategy: S, test: impl Fn(S::Value)) -> u64
where
    S::Value: std::fmt::Debug,
{
    // A fixed seed: every run tests the same inputs, so a failure in CI reproduces locally.
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::deterministic_rng(config.rng_algorithm);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let count = std::cell::Cell::new(0u64);
    runner
        .run(&strategy, |value| {
            count.set(count.get() + 1);
            test(value);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{target}: {e}"));
    let built = BUILT.with(|b| b.replace(0));
    if built > 0 {
        report_count(
            target,
            built,
            "learners built from validated configs and run",
        );
    }
    report(target, count.get());
    built
}

fn tmp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cinder-prop-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// --- Value strategies: ordinary values, edges and garbage.

fn any_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        4 => 0.0f32..1.0,
        1 => Just(0.0f32),
        1 => Just(1.0f32),
        1 => Just(-1.0f32),
        1 => Just(f32::NAN),
        1 => Just(f32::INFINITY),
        1 => Just(f32::NEG_INFINITY),
        1 => Just(1e30f32),
        1 => Just(f32::MIN_POSITIVE / 2.0),
        1 => proptest::num::f32::ANY,
    ]
}

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => 1e-5f64..1e-1,
        1 => Just(0.0),
        1 => Just(-1.0),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(1e300),
        1 => proptest::num::f64::ANY,
    ]
}

/// Sizes: mostly small (so that a validated config can be built), sometimes 0 or huge.
fn any_size() -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => 1usize..5,
        1 => Just(0usize),
        1 => Just(usize::MAX),
        1 => Just(usize::MAX / 2 + 1),
        1 => any::<usize>(),
    ]
}

fn any_steps() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 1u64..64, 1 => Just(0u64), 1 => Just(u64::MAX), 1 => any::<u64>()]
}

/// Whether a config's sizes are small enough to build and run here (memory, not validity).
fn small(sizes: &[usize]) -> bool {
    sizes.iter().all(|&s| s <= 8)
}

fn ppo_config() -> impl Strategy<Value = PpoConfig> {
    (
        (any::<u64>(), any_steps(), any_f64(), any_size(), any_size()),
        (any::<bool>(), any_f32(), any_f32(), any_size(), any_size()),
        (
            any::<bool>(),
            any_f32(),
            any::<bool>(),
            any_f32(),
            any_f32(),
            any_f32(),
        ),
        (
            proptest::option::of(any_f32()),
            any_size(),
            any_f64(),
            any::<bool>(),
            proptest::option::of((any_f32(), any_f32())),
        ),
    )
        .prop_map(|(a, b, c, d)| {
            let (seed, total, lr, num_envs, num_steps) = a;
            let (anneal, gamma, lambda, minibatches, epochs) = b;
            let (norm_adv, clip, clip_vloss, ent, vf, max_norm) = c;
            let (target_kl, hidden, log_std, clip_surrogate, adaptive) = d;
            PpoConfig::new()
                .with_seed(seed)
                .with_total_timesteps(total)
                .with_learning_rate(lr)
                .with_num_envs(num_envs)
                .with_num_steps(num_steps)
                .with_anneal_lr(anneal)
                .with_gamma(gamma)
                .with_gae_lambda(lambda)
                .with_num_minibatches(minibatches)
                .with_update_epochs(epochs)
                .with_norm_adv(norm_adv)
                .with_clip_coef(clip)
                .with_clip_vloss(clip_vloss)
                .with_ent_coef(ent)
                .with_vf_coef(vf)
                .with_max_grad_norm(max_norm)
                .with_target_kl(target_kl)
                .with_network(
                    NetworkConfig::new()
                        .with_hidden_sizes(vec![hidden, hidden])
                        .with_init_log_std(log_std),
                )
                .with_clip_surrogate(clip_surrogate)
                .with_adaptive_kl(adaptive.map(|(coef, target)| {
                    AdaptiveKlConfig::new()
                        .with_initial_coef(coef)
                        .with_target(target)
                }))
        })
}

/// Plausible values at the edges of the valid ranges (γ = 0 or 1, a learning rate of 10,
/// clip ranges of 1e-3 or 1e3, a log-std of ±20...): most configs validate, and run.
fn edge_f32(values: &'static [f32]) -> impl Strategy<Value = f32> {
    prop_oneof![proptest::sample::select(values), 0.0f32..1.0]
}

fn plausible_ppo_config() -> impl Strategy<Value = PpoConfig> {
    (
        (
            any::<u64>(),
            8u64..200,
            proptest::sample::select(&[1e-6, 2.5e-4, 1e-2, 10.0][..]),
        ),
        (1usize..4, 1usize..8, 1usize..4, 1usize..3, 1usize..8),
        (
            edge_f32(&[0.0, 1.0]),
            edge_f32(&[0.0, 1.0]),
            edge_f32(&[1e-3, 0.2, 1e3]),
        ),
        (
            edge_f32(&[0.0, 100.0]),
            edge_f32(&[0.0, 100.0]),
            edge_f32(&[1e-6, 0.5, 1e6]),
        ),
        (
            proptest::option::of(edge_f32(&[1e-8, 0.01])),
            proptest::sample::select(&[-20.0, 0.0, 5.0][..]),
            any::<(bool, bool, bool, bool, bool)>(),
            proptest::option::of((edge_f32(&[0.0, 10.0]), edge_f32(&[1e-6, 1.0]))),
        ),
    )
        .prop_map(|(a, b, c, d, e)| {
            let (seed, total, lr) = a;
            let (num_envs, num_steps, minibatches, epochs, hidden) = b;
            let (gamma, lambda, clip) = c;
            let (ent, vf, max_norm) = d;
            let (target_kl, log_std, (anneal, norm_adv, clip_vloss, clip_surrogate, _), adaptive) =
                e;
            PpoConfig::new()
                .with_seed(seed)
                .with_total_timesteps(total)
                .with_learning_rate(lr)
                .with_num_envs(num_envs)
                .with_num_steps(num_steps)
                .with_num_minibatches(minibatches)
                .with_update_epochs(epochs)
                .with_anneal_lr(anneal)
                .with_gamma(gamma)
                .with_gae_lambda(lambda)
                .with_norm_adv(norm_adv)
                .with_clip_coef(clip)
                .with_clip_vloss(clip_vloss)
                .with_ent_coef(ent)
                .with_vf_coef(vf)
                .with_max_grad_norm(max_norm)
                .with_target_kl(target_kl)
                .with_network(
                    NetworkConfig::new()
                        .with_hidden_sizes(vec![hidden, hidden])
                        .with_init_log_std(log_std),
                )
                .with_clip_surrogate(clip_surrogate)
                .with_adaptive_kl(adaptive.map(|(coef, target)| {
                    AdaptiveKlConfig::new()
                        .with_initial_coef(coef)
                        .with_target(target)
                }))
        })
}

#[test]
fn ppo_configs_validate_or_refuse_and_validated_ones_run() {
    let built = check(
        "PpoConfig (plausible values)",
        1000,
        plausible_ppo_config(),
        run_ppo_config,
    );
    // The plausible generator must reach the building path often, or the property says little.
    assert!(
        built >= 200,
        "only {built} plausible PPO configs validated and ran"
    );
    check("PpoConfig", 1500, ppo_config(), run_ppo_config);
}

/// `validate()` returns; a validated config of a size that fits here builds a learner on a
/// discrete and on a continuous env and runs an update (which may end in a typed error, e.g. a
/// non-finite loss from a learning rate of 10, but never panics).
fn run_ppo_config(config: PpoConfig) {
    {
        if config.validate().is_err() {
            return;
        }
        if !small(&[
            config.num_envs,
            config.num_steps,
            config
                .network
                .hidden_sizes
                .iter()
                .copied()
                .max()
                .unwrap_or(1),
            config.update_epochs,
            config.num_minibatches,
        ]) {
            return;
        }
        // Both action kinds: CartPole (discrete) and Pendulum (continuous).
        let envs = CartPoleVec::new(config.num_envs, AutoresetMode::SameStep).unwrap();
        let mut ppo = Ppo::<AB, _>::new(config.clone(), envs, Default::default())
            .expect("a validated config builds");
        let _ = ppo.iterate();
        let envs =
            cinder_env::SyncVectorEnv::from_fn(config.num_envs, AutoresetMode::SameStep, |_| {
                make("Pendulum-v1").unwrap()
            })
            .unwrap();
        let mut ppo =
            Ppo::<AB, _>::new(config, envs, Default::default()).expect("a validated config builds");
        let _ = ppo.iterate();
        built();
    }
}

fn advantage() -> impl Strategy<Value = AdvantageEstimator> {
    let baseline = prop_oneof![
        Just(Baseline::None),
        any_f64().prop_map(|alpha| Baseline::MovingAverage { alpha }),
        any_f32().prop_map(|vf_coef| Baseline::Critic { vf_coef }),
    ];
    prop_oneof![
        (baseline, any::<bool>()).prop_map(|(baseline, normalize)| {
            AdvantageEstimator::ReturnToGo {
                baseline,
                normalize,
            }
        }),
        (any_size(), any::<bool>()).prop_map(|(group_size, std)| {
            AdvantageEstimator::GroupRelative {
                group_size,
                scale: if std {
                    GroupScale::Std
                } else {
                    GroupScale::None
                },
            }
        }),
    ]
}

fn reference_kl() -> impl Strategy<Value = Option<ReferenceKlConfig>> {
    let kl = prop_oneof![
        Just(ReferenceKl::Estimator(KlEstimator::K1)),
        Just(ReferenceKl::Estimator(KlEstimator::K2)),
        Just(ReferenceKl::Estimator(KlEstimator::K3)),
        Just(ReferenceKl::ExactCategorical),
    ];
    let reference = prop_oneof![
        Just(ReferencePolicy::Initial),
        any_steps().prop_map(|updates| ReferencePolicy::RefreshEvery { updates }),
    ];
    proptest::option::of((any_f32(), kl, reference, any::<bool>()).prop_map(
        |(coef, kl, reference, in_reward)| {
            ReferenceKlConfig::new()
                .with_coef(coef)
                .with_kl(kl)
                .with_reference(reference)
                .with_in_reward(in_reward)
        },
    ))
}

fn pg_config() -> impl Strategy<Value = PolicyGradientConfig> {
    let surrogate = prop_oneof![
        Just(Surrogate::Vanilla),
        (any_f32(), any_f32()).prop_map(|(clip_low, clip_high)| Surrogate::Clipped {
            clip_low,
            clip_high
        }),
    ];
    let aggregation = prop_oneof![
        Just(LossAggregation::Grpo),
        Just(LossAggregation::Bnpo),
        any_size().prop_map(|max_length| LossAggregation::DrGrpo { max_length }),
    ];
    (
        (
            any::<u64>(),
            prop_oneof![1u64..400, any_steps()],
            any_f64(),
            any_size(),
            any_f32(),
        ),
        (advantage(), surrogate, any_size(), reference_kl()),
        (
            any_f32(),
            aggregation,
            proptest::option::of(any_f32()),
            any_size(),
            any_f64(),
        ),
    )
        .prop_map(|(a, b, c)| {
            let (seed, total, lr, episodes, gamma) = a;
            let (advantage, surrogate, iterations, reference_kl) = b;
            let (ent, aggregation, max_norm, hidden, log_std) = c;
            PolicyGradientConfig::new()
                .with_seed(seed)
                .with_total_timesteps(total)
                .with_learning_rate(lr)
                .with_episodes_per_batch(episodes)
                .with_gamma(gamma)
                .with_advantage(advantage)
                .with_surrogate(surrogate)
                .with_update_iterations(iterations)
                .with_reference_kl(reference_kl)
                .with_ent_coef(ent)
                .with_aggregation(aggregation)
                .with_max_grad_norm(max_norm)
                .with_network(
                    NetworkConfig::new()
                        .with_hidden_sizes(vec![hidden, hidden])
                        .with_init_log_std(log_std),
                )
        })
}

/// Registered envs wrapped in a short time limit, so that a generated update stays cheap.
fn short_envs(id: &str, n: usize) -> Vec<DynEnv> {
    (0..n)
        .map(|_| {
            cinder_env::env::Erased::boxed(
                cinder_env::wrappers::TimeLimit::new(make(id).unwrap(), 20).unwrap(),
            )
        })
        .collect()
}

fn plausible_pg_config() -> impl Strategy<Value = PolicyGradientConfig> {
    let advantage = prop_oneof![
        (
            prop_oneof![
                Just(Baseline::None),
                edge_f32(&[1.0]).prop_map(|a| Baseline::MovingAverage {
                    alpha: f64::from(a).max(1e-3)
                }),
                edge_f32(&[1e-3, 10.0]).prop_map(|v| Baseline::Critic {
                    vf_coef: v.max(1e-3)
                }),
            ],
            any::<bool>()
        )
            .prop_map(|(baseline, normalize)| AdvantageEstimator::ReturnToGo {
                baseline,
                normalize
            }),
        (2usize..4, any::<bool>()).prop_map(|(group_size, std)| {
            AdvantageEstimator::GroupRelative {
                group_size,
                scale: if std {
                    GroupScale::Std
                } else {
                    GroupScale::None
                },
            }
        }),
    ];
    let surrogate = prop_oneof![
        Just(Surrogate::Vanilla),
        (edge_f32(&[1e-3, 0.2]), edge_f32(&[1e-3, 1e3])).prop_map(|(low, high)| {
            Surrogate::Clipped {
                clip_low: low.clamp(1e-3, 0.99),
                clip_high: high.max(1e-3),
            }
        }),
    ];
    let reference_kl = proptest::option::of(
        (
            edge_f32(&[0.0, 50.0]),
            proptest::sample::select(
                &[
                    ReferenceKl::Estimator(KlEstimator::K1),
                    ReferenceKl::Estimator(KlEstimator::K2),
                    ReferenceKl::Estimator(KlEstimator::K3),
                    ReferenceKl::ExactCategorical,
                ][..],
            ),
            prop_oneof![
                Just(ReferencePolicy::Initial),
                (1u64..3).prop_map(|updates| ReferencePolicy::RefreshEvery { updates })
            ],
            any::<bool>(),
        )
            .prop_map(|(coef, kl, reference, in_reward)| {
                ReferenceKlConfig::new()
                    .with_coef(coef)
                    .with_kl(kl)
                    .with_reference(reference)
                    .with_in_reward(in_reward)
            }),
    );
    let aggregation = prop_oneof![
        Just(LossAggregation::Grpo),
        Just(LossAggregation::Bnpo),
        (1usize..40).prop_map(|max_length| LossAggregation::DrGrpo { max_length }),
    ];
    (
        (
            any::<u64>(),
            1u64..100,
            proptest::sample::select(&[1e-6, 3e-3, 10.0][..]),
        ),
        (
            1usize..4,
            edge_f32(&[0.0, 1.0]),
            advantage,
            surrogate,
            1usize..3,
        ),
        (reference_kl, edge_f32(&[0.0, 10.0]), aggregation),
        (proptest::option::of(edge_f32(&[1e-6, 1e6])), 1usize..8),
    )
        .prop_map(|(a, b, c, d)| {
            let (seed, total, lr) = a;
            let (groups, gamma, advantage, surrogate, iterations) = b;
            let (reference_kl, ent, aggregation) = c;
            let (max_norm, hidden) = d;
            let episodes = match advantage {
                AdvantageEstimator::GroupRelative { group_size, .. } => groups * group_size,
                AdvantageEstimator::ReturnToGo { .. } => groups,
            };
            PolicyGradientConfig::new()
                .with_seed(seed)
                .with_total_timesteps(total)
                .with_learning_rate(lr)
                .with_episodes_per_batch(episodes)
                .with_gamma(gamma)
                .with_advantage(advantage)
                .with_surrogate(surrogate)
                .with_update_iterations(iterations)
                .with_reference_kl(reference_kl)
                .with_ent_coef(ent)
                .with_aggregation(aggregation)
                .with_max_grad_norm(max_norm.map(|m| m.max(1e-6)))
                .with_network(NetworkConfig::new().with_hidden_sizes(vec![hidden, hidden]))
        })
}

#[test]
fn policy_gradient_configs_validate_or_refuse_and_validated_ones_run() {
    let built = check(
        "PolicyGradientConfig (plausible values)",
        1000,
        plausible_pg_config(),
        run_pg_config,
    );
    assert!(
        built >= 200,
        "only {built} plausible policy-gradient learners were built and ran"
    );
    check("PolicyGradientConfig", 1500, pg_config(), run_pg_config);
}

/// As [`run_ppo_config`], on CartPole and Pendulum with a 20-step time limit.
fn run_pg_config(config: PolicyGradientConfig) {
    {
        if config.validate().is_err() {
            return;
        }
        if !small(&[
            config.episodes_per_batch,
            config.update_iterations,
            config
                .network
                .hidden_sizes
                .iter()
                .copied()
                .max()
                .unwrap_or(1),
        ]) {
            return;
        }
        for id in ["CartPole-v1", "Pendulum-v1"] {
            let envs = short_envs(id, config.episodes_per_batch);
            // A config can still not fit an env (the exact KL on continuous actions): an error.
            if let Ok(mut learner) =
                PolicyGradient::<AB, _>::new(config.clone(), envs, Default::default())
            {
                let _ = learner.iterate();
                built();
            }
        }
    }
}

#[test]
fn policy_configs_validate_or_refuse_and_validated_ones_build() {
    let strategy = (
        any_size(),
        any_size(),
        any::<bool>(),
        any_size(),
        any_f64(),
        any::<u64>(),
    );
    check(
        "ActorCriticConfig",
        1500,
        strategy,
        |(obs, actions, continuous, hidden, log_std, seed)| {
            let config = ActorCriticConfig::new(obs, actions)
                .with_continuous(continuous)
                .with_network(
                    NetworkConfig::new()
                        .with_hidden_sizes(vec![hidden, hidden])
                        .with_init_log_std(log_std),
                )
                .with_seed(seed);
            if config.validate().is_ok() && small(&[obs, actions, hidden]) {
                config
                    .init::<B>(&Default::default())
                    .expect("a validated config builds");
                built();
            } else if !small(&[obs, actions, hidden]) {
                // Too large to build here; validation alone must not panic.
            } else {
                assert!(config.init::<B>(&Default::default()).is_err());
            }
        },
    );
}

// --- Checkpoints.

/// A PPO checkpoint of a small CartPole run (hidden 8: a file of a few kilobytes), its bytes,
/// and the policy's weights.
fn ppo_checkpoint(dir: &Path) -> (PathBuf, Vec<u8>, Vec<f32>) {
    let config = PpoConfig::new()
        .with_num_envs(2)
        .with_num_steps(16)
        .with_num_minibatches(2)
        .with_network(NetworkConfig::new().with_hidden_sizes(vec![8, 8]))
        .with_total_timesteps(64);
    let envs = CartPoleVec::new(2, AutoresetMode::SameStep).unwrap();
    let mut ppo = Ppo::<AB, _>::new(config, envs, Default::default()).unwrap();
    ppo.iterate().unwrap();
    let path = dir.join("ppo.ckpt");
    ppo.save_checkpoint(&path).unwrap();
    (
        path.clone(),
        std::fs::read(&path).unwrap(),
        weights(&ppo.model().valid()),
    )
}

fn weights(model: &ActorCritic<B>) -> Vec<f32> {
    let mut out = Vec::new();
    for layer in model.actor().layers().iter().chain(model.critic().layers()) {
        out.extend(layer.weight.val().into_data().to_vec::<f32>().unwrap());
        if let Some(bias) = &layer.bias {
            out.extend(bias.val().into_data().to_vec::<f32>().unwrap());
        }
    }
    out
}

/// Loading `bytes` as a checkpoint: an error, or exactly the policy that was saved.
fn loads_right_or_fails(path: &Path, bytes: &[u8], expected: &[f32]) -> bool {
    std::fs::write(path, bytes).unwrap();
    let loaded = load_policy::<B>(path, &Default::default());
    let envs = CartPoleVec::new(2, AutoresetMode::SameStep).unwrap();
    let resumed = Ppo::<AB, _>::resume(path, envs, Default::default());
    match (&loaded, &resumed) {
        (Ok((model, _)), _) => assert_eq!(weights(model), expected, "a policy loaded wrong"),
        (Err(e), _) => assert!(
            matches!(
                e,
                RlError::Checkpoint { .. } | RlError::CheckpointMismatch { .. }
            ),
            "{e}"
        ),
    }
    if let Ok(ppo) = &resumed {
        assert_eq!(
            weights(&ppo.model().valid()),
            expected,
            "a run resumed wrong"
        );
    }
    loaded.is_ok()
}

#[test]
fn damaged_checkpoints_fail_cleanly() {
    let dir = tmp_dir("damaged");
    let (path, good, expected) = ppo_checkpoint(&dir);
    let target = dir.join("damaged.ckpt");
    assert!(
        loads_right_or_fails(&target, &good, &expected),
        "the good file loads"
    );

    // Truncation at every length: always an error.
    for len in 0..good.len() {
        assert!(
            !loads_right_or_fails(&target, &good[..len], &expected),
            "truncated at {len}"
        );
    }
    report("checkpoint truncated at every length", good.len() as u64);

    // Byte flips anywhere (1 to 8 bytes, any mask): every one is caught by a checksum or a
    // check of the preamble.
    let n = good.len();
    let flips = proptest::collection::vec((0..n, 1u8..=255), 1..8);
    check("checkpoint byte flips", 1500, flips, |flips| {
        let mut bad = good.clone();
        for (at, mask) in flips {
            bad[at] ^= mask;
        }
        if bad != good {
            assert!(
                !loads_right_or_fails(&target, &bad, &expected),
                "a flip went unnoticed"
            );
        }
    });

    // Garbage appended.
    let garbage = proptest::collection::vec(any::<u8>(), 1..64);
    check("checkpoint with appended garbage", 300, garbage, |tail| {
        let mut bad = good.clone();
        bad.extend(tail);
        assert!(!loads_right_or_fails(&target, &bad, &expected));
    });

    // Another learner's file: a policy-gradient checkpoint given to PPO's resume.
    let config = PolicyGradientConfig::new()
        .with_episodes_per_batch(2)
        .with_network(NetworkConfig::new().with_hidden_sizes(vec![8, 8]))
        .with_total_timesteps(10);
    let mut learner =
        PolicyGradient::<AB, _>::new(config, short_envs("CartPole-v1", 2), Default::default())
            .unwrap();
    learner.iterate().unwrap();
    let other = dir.join("pg.ckpt");
    learner.save_checkpoint(&other).unwrap();
    let envs = CartPoleVec::new(2, AutoresetMode::SameStep).unwrap();
    let err = Ppo::<AB, _>::resume(&other, envs, Default::default())
        .err()
        .unwrap();
    assert!(matches!(err, RlError::CheckpointMismatch { .. }), "{err}");
    let err =
        PolicyGradient::<AB, _>::resume(&path, short_envs("CartPole-v1", 2), Default::default())
            .err()
            .unwrap();
    assert!(matches!(err, RlError::CheckpointMismatch { .. }), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Sections that pass their checksums but hold random or mutated bytes (a crafted or buggy
/// file): the decoder returns an error or a policy of the right architecture, never panics.
#[test]
fn crafted_sections_with_valid_checksums_never_panic() {
    let dir = tmp_dir("crafted");
    let (path, _, expected) = ppo_checkpoint(&dir);
    let original = Checkpoint::read(&path).unwrap();
    let target = dir.join("crafted.ckpt");
    let sections = ["model", "optimizer"];
    let mutation = (
        0..sections.len(),
        prop_oneof![
            // Random bytes of any length.
            proptest::collection::vec(any::<u8>(), 0..256).prop_map(Err),
            // The real section with a few bytes changed, cut or extended.
            (
                proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
                any::<i16>()
            )
                .prop_map(Ok),
        ],
    );
    check(
        "checkpoint sections re-wrapped with valid checksums",
        1500,
        mutation,
        |(s, change)| {
            let name = sections[s];
            let real = original.section(&path, name).unwrap().to_vec();
            let bytes = match change {
                Err(random) => random,
                Ok((edits, resize)) => {
                    let mut b = real.clone();
                    for (at, value) in edits {
                        if !b.is_empty() {
                            let i = at % b.len();
                            b[i] = value;
                        }
                    }
                    let len = (b.len() as i64 + i64::from(resize)).max(0) as usize;
                    b.resize(len, 0xab);
                    b
                }
            };
            let mut crafted = original.clone();
            crafted.put(name, bytes.clone());
            crafted.write_atomic(&target).unwrap();
            let loaded = load_policy::<B>(&target, &Default::default());
            let envs = CartPoleVec::new(2, AutoresetMode::SameStep).unwrap();
            let resumed = Ppo::<AB, _>::resume(&target, envs, Default::default());
            if let Ok((model, _)) = loaded {
                // Only an intact model section can load, and then it is the saved policy.
                let shapes_ok = weights(&model).len() == expected.len();
                assert!(shapes_ok, "a policy of the wrong size loaded");
                if name == "model" && bytes == real {
                    assert_eq!(weights(&model), expected);
                }
            }
            if let Ok(mut ppo) = resumed {
                // Whatever loaded still trains or stops with an error: no panic.
                let _ = ppo.iterate();
            }
        },
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

// --- The crash test.

const CRASH_DIR: &str = "CINDER_CRASH_TEST_DIR";

fn crash_config() -> PpoConfig {
    PpoConfig::new()
        .with_num_envs(2)
        .with_num_steps(32)
        .with_num_minibatches(2)
        .with_update_epochs(1)
        .with_network(NetworkConfig::new().with_hidden_sizes(vec![16, 16]))
        .with_total_timesteps(u64::MAX / 2)
}

/// The child of `a_killed_run_always_resumes_from_its_last_checkpoint`: trains in the run
/// directory named by `CINDER_CRASH_TEST_DIR` with a checkpoint after every update, resuming
/// when a checkpoint is there, until it is killed.
#[test]
#[ignore = "run as a child process by a_killed_run_always_resumes_from_its_last_checkpoint"]
fn crash_test_child_trains_until_killed() {
    let Ok(dir) = std::env::var(CRASH_DIR) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let checkpoint = dir.join(files::CHECKPOINT);
    let envs = CartPoleVec::new(2, AutoresetMode::SameStep).unwrap();
    let (mut ppo, mut run_dir) = if checkpoint.exists() {
        let ppo = Ppo::<AB, _>::resume(&checkpoint, envs, Default::default()).unwrap();
        let run_dir = RunDir::reopen(&dir, ppo.iteration()).unwrap();
        (ppo, run_dir)
    } else {
        let run_dir = RunDir::create(&dir, &crash_config()).unwrap();
        (
            Ppo::<AB, _>::new(crash_config(), envs, Default::default()).unwrap(),
            run_dir,
        )
    };
    let options = TrainOptions {
        checkpoint_every: 1,
        progress: false,
        solve_threshold: None,
    };
    train(&mut ppo, Some(&mut run_dir), &options).unwrap();
}

#[test]
fn a_killed_run_always_resumes_from_its_last_checkpoint() {
    let dir = tmp_dir("crash");
    let run = dir.join("run");
    let checkpoint = run.join(files::CHECKPOINT);
    let mut rng = cinder_env::rng::NpRandom::from_seed(11);
    let mut last_iteration = 0;
    let kills = 20;
    for kill in 0..kills {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_test_child_trains_until_killed",
                "--ignored",
                "--test-threads=1",
            ])
            .env(CRASH_DIR, &run)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Let it write at least one new checkpoint, then kill it at a random moment (the
        // updates take a few milliseconds each, so kills land in every phase, writes too).
        let start = std::time::Instant::now();
        let modified = || {
            std::fs::metadata(&checkpoint)
                .and_then(|m| m.modified())
                .ok()
        };
        let before = modified();
        while modified() == before && start.elapsed().as_secs() < 60 {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        std::thread::sleep(std::time::Duration::from_millis(rng.integers(150)));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();

        // The last complete checkpoint loads and resumes, and is not older than the last one.
        let envs = CartPoleVec::new(2, AutoresetMode::SameStep).unwrap();
        let mut ppo = Ppo::<AB, _>::resume(&checkpoint, envs, Default::default())
            .unwrap_or_else(|e| panic!("kill {kill}: the checkpoint does not resume: {e}"));
        assert!(
            ppo.iteration() >= last_iteration,
            "kill {kill}: went back in time"
        );
        last_iteration = ppo.iteration();
        RunDir::reopen(&run, ppo.iteration()).unwrap();
        ppo.iterate().unwrap();
    }
    assert!(
        last_iteration >= kills,
        "the child made progress: {last_iteration} updates"
    );
    report("crash test: SIGKILLs while writing checkpoints", kills);
    std::fs::remove_dir_all(&dir).unwrap();
}
