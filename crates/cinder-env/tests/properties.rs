//! Generated bad input against every env, wrapper (normalisation included) and vector env: any action (any `usize`, any
//! `f32` including NaN, ±inf, subnormals and 1e30, any length), `step` before `reset` and after
//! the end, any seed. Each call must return a typed error or a valid step, never panic, and the
//! env must still work afterwards (a seeded reset and a valid step succeed).
//!
//! Each target prints how many inputs it generated (run with `--nocapture` to see them) and
//! appends the count to `target/tmp/property_cases.txt`, which CI prints.

use cinder_env::classic_control::{
    AcrobotVec, CartPoleVec, MountainCarContinuousVec, MountainCarVec, PendulumVec,
};
use cinder_env::rng::NpRandom;
use cinder_env::vector::{AutoresetMode, SyncVectorEnv, VectorEnv};
use cinder_env::wrappers::{
    ClipAction, NormalizeObservation, NormalizeReward, RecordEpisodeStatistics, TimeLimit,
};
use cinder_env::{DynEnv, Env, Space, Value, make, registry};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRng, TestRunner};
use std::io::Write;

/// Cases per target: thousands in all, well within a minute in CI's test profile.
const CASES: u32 = 2000;

/// Records the number of generated inputs of one target.
fn report(target: &str, cases: u64) {
    report_count(target, cases, "generated inputs");
}

/// Records a count of `what` for one target.
fn report_count(target: &str, count: u64, what: &str) {
    let line = format!("properties: {target}: {count} {what}");
    eprintln!("{line}");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("property_cases.txt");
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(file, "{line}");
    }
}

/// Runs `test` on `cases` inputs of `strategy` (proptest shrinks a failure to a minimal input
/// and the panic shows it) and returns how many inputs were generated.
fn check<S: Strategy>(name: &str, cases: u32, strategy: S, test: impl Fn(S::Value)) -> u64
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
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    report(name, count.get());
    count.get()
}

/// Floats a careless or hostile caller can produce, weighted towards the special ones.
fn any_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        3 => proptest::num::f32::ANY,
        1 => Just(f32::NAN),
        1 => Just(f32::INFINITY),
        1 => Just(f32::NEG_INFINITY),
        1 => Just(f32::MIN_POSITIVE / 4.0),
        1 => Just(-f32::MIN_POSITIVE / 8.0),
        1 => Just(1e30f32),
        1 => Just(-1e30f32),
        1 => Just(f32::MAX),
        1 => Just(-0.0f32),
        2 => -3.0f32..3.0,
    ]
}

/// Any action value: a discrete index of any size, or a continuous vector of any length.
fn any_action() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => prop_oneof![0usize..4, any::<usize>()].prop_map(Value::Discrete),
        3 => proptest::collection::vec(any_f32(), 0..4).prop_map(Value::Continuous),
    ]
}

/// One call on an env.
#[derive(Debug, Clone)]
enum Op {
    Reset(Option<u64>),
    Step(Value),
    /// A valid action sampled from the action space with this seed.
    ValidStep(u64),
}

fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => proptest::option::of(any::<u64>()).prop_map(Op::Reset),
        4 => any_action().prop_map(Op::Step),
        3 => any::<u64>().prop_map(Op::ValidStep),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(any_op(), 1..40)
}

/// A valid step returns an observation of the space's size, finite floats and a finite reward.
fn check_step(env_name: &str, obs: &[f32], reward: f64, obs_dim: usize) {
    assert_eq!(obs.len(), obs_dim, "{env_name}: observation length");
    assert!(
        obs.iter().all(|x| x.is_finite()),
        "{env_name}: non-finite observation {obs:?}"
    );
    assert!(reward.is_finite(), "{env_name}: reward {reward}");
}

/// Runs `ops` on `env`; every call returns, and afterwards the env still resets and steps.
fn exercise(name: &str, env: &mut DynEnv, ops: &[Op]) {
    let action_space = env.action_space();
    let obs_dim = env.observation_space().flat_dim();
    for op in ops {
        match op {
            Op::Reset(seed) => {
                let (obs, _) = env
                    .reset(*seed)
                    .expect("reset never fails on a built-in env");
                check_step(name, &obs, 0.0, obs_dim);
            }
            Op::Step(action) => {
                if let Ok(step) = env.step(action) {
                    check_step(name, &step.obs, step.reward, obs_dim);
                }
            }
            Op::ValidStep(seed) => {
                let action = action_space.sample(&mut NpRandom::from_seed(*seed));
                if let Ok(step) = env.step(&action) {
                    check_step(name, &step.obs, step.reward, obs_dim);
                }
            }
        }
    }
    // Still usable.
    env.reset(Some(0)).expect("reset after generated input");
    let action = action_space.sample(&mut NpRandom::from_seed(0));
    let step = env.step(&action).expect("a valid step after a reset");
    check_step(name, &step.obs, step.reward, obs_dim);
}

/// The envs under test, each built fresh: every registered id as `make` gives it, every
/// unwrapped env, and the wrappers over them.
/// A named way to build an env from a registered id.
type Variant = (String, fn(&'static str) -> DynEnv, &'static str);

fn env_variants() -> Vec<Variant> {
    let mut out: Vec<Variant> = Vec::new();
    for spec in registry::REGISTRY {
        out.push((
            format!("make({})", spec.id),
            |id| make(id).expect("registered"),
            spec.id,
        ));
        out.push((
            format!(
                "{} unwrapped + RecordEpisodeStatistics + TimeLimit(7)",
                spec.id
            ),
            |id| {
                let inner = registry::spec(id).expect("registered").make_unwrapped();
                let limited = TimeLimit::new(RecordEpisodeStatistics::new(inner), 7).expect("7");
                cinder_env::env::Erased::boxed(limited)
            },
            spec.id,
        ));
        out.push((
            format!(
                "NormalizeReward(NormalizeObservation(make({})), clip 10)",
                spec.id
            ),
            |id| {
                let obs = NormalizeObservation::new(make(id).expect("registered")).expect("a Box");
                cinder_env::env::Erased::boxed(
                    NormalizeReward::with_options(obs, 0.99, 1e-8, Some(10.0)).expect("valid"),
                )
            },
            spec.id,
        ));
        if matches!(spec.make().action_space(), Space::Box(_)) {
            out.push((
                format!("ClipAction(make({}))", spec.id),
                |id| {
                    cinder_env::env::Erased::boxed(
                        ClipAction::new(make(id).expect("registered")).expect("a Box space"),
                    )
                },
                spec.id,
            ));
        }
    }
    out
}

#[test]
fn envs_and_wrappers_never_panic_on_generated_input() {
    let mut total = 0u64;
    for (name, build, id) in env_variants() {
        total += check(&name, CASES, ops(), |ops| {
            exercise(&name, &mut build(id), &ops)
        });
    }
    // Every variant ran its full budget of generated inputs (none was skipped or cut short).
    assert_eq!(total, env_variants().len() as u64 * u64::from(CASES));
    report("envs and wrappers (all)", total);
}

/// One call on a vector env.
#[derive(Debug, Clone)]
enum VecOp {
    Reset(Option<u64>),
    /// Actions for every sub-env (any values, any count).
    Step(Vec<Value>),
    /// Valid actions sampled with this seed.
    ValidStep(u64),
}

fn any_vec_op() -> impl Strategy<Value = VecOp> {
    prop_oneof![
        1 => proptest::option::of(any::<u64>()).prop_map(VecOp::Reset),
        3 => proptest::collection::vec(any_action(), 0..5).prop_map(VecOp::Step),
        4 => any::<u64>().prop_map(VecOp::ValidStep),
    ]
}

/// Runs `ops` on a vector env whose actions are built from [`Value`]s by `convert` (`None`:
/// the value has no representation in the action type, so the call is not made).
fn exercise_vec<V: VectorEnv>(
    name: &str,
    envs: &mut V,
    ops: &[VecOp],
    convert: impl Fn(Value) -> Option<V::Action>,
) {
    let n = envs.num_envs();
    let d = envs.obs_dim();
    let space = envs.single_action_space().clone();
    let valid = |seed: u64| {
        let mut rng = NpRandom::from_seed(seed);
        (0..n)
            .map(|_| convert(space.sample(&mut rng)).expect("a sample converts"))
            .collect::<Vec<_>>()
    };
    let check = |obs: &[f32], rewards: &[f64]| {
        assert_eq!(obs.len(), n * d, "{name}: observation buffer");
        assert!(obs.iter().all(|x| x.is_finite()), "{name}: {obs:?}");
        assert!(rewards.iter().all(|r| r.is_finite()), "{name}: {rewards:?}");
    };
    for op in ops {
        match op {
            VecOp::Reset(seed) => {
                let obs = envs.reset(*seed).expect("reset").to_vec();
                check(&obs, &[]);
            }
            VecOp::Step(values) => {
                let actions: Option<Vec<V::Action>> =
                    values.iter().cloned().map(&convert).collect();
                if let Some(actions) = actions {
                    if let Ok(step) = envs.step(&actions) {
                        check(step.obs, step.rewards);
                    }
                }
            }
            VecOp::ValidStep(seed) => {
                let actions = valid(*seed);
                if let Ok(step) = envs.step(&actions) {
                    check(step.obs, step.rewards);
                }
            }
        }
    }
    envs.reset(Some(1)).expect("reset after generated input");
    let step = envs.step(&valid(1)).expect("a valid step after a reset");
    check(step.obs, step.rewards);
}

#[test]
fn vector_envs_never_panic_on_generated_input() {
    let vec_ops = || proptest::collection::vec(any_vec_op(), 1..30);
    let mut total = 0u64;
    for mode in [AutoresetMode::SameStep, AutoresetMode::NextStep] {
        for spec in registry::REGISTRY {
            let name = format!("SyncVectorEnv<{}> x3, {mode:?}", spec.id);
            total += check(&name, CASES / 4, vec_ops(), |ops| {
                let envs: Vec<DynEnv> = (0..3).map(|_| spec.make()).collect();
                let mut vec_env = SyncVectorEnv::new(envs, mode).expect("same spaces");
                exercise_vec(&name, &mut vec_env, &ops, Some);
            });
        }
        // The struct-of-arrays envs, with a short time limit, one of them on two threads.
        let discrete = |v: Value| match v {
            Value::Discrete(a) => Some(a),
            Value::Continuous(_) => None,
        };
        let continuous = |v: Value| match v {
            Value::Continuous(a) if a.len() == 1 => Some([a[0]]),
            _ => None,
        };
        let name = format!("CartPoleVec x3 (time limit 9), {mode:?}");
        total += check(&name, CASES, vec_ops(), |ops| {
            let mut vec_env = CartPoleVec::with_time_limit(3, mode, 9).expect("3 envs");
            exercise_vec(&name, &mut vec_env, &ops, discrete);
        });
        let name = format!("AcrobotVec x3 (time limit 9), {mode:?}");
        total += check(&name, CASES / 4, vec_ops(), |ops| {
            let mut vec_env = AcrobotVec::with_time_limit(3, mode, 9).expect("3 envs");
            exercise_vec(&name, &mut vec_env, &ops, discrete);
        });
        let name = format!("MountainCarVec x3 (time limit 9, 2 threads), {mode:?}");
        total += check(&name, CASES / 4, vec_ops(), |ops| {
            let mut vec_env = MountainCarVec::with_time_limit(3, mode, 9)
                .and_then(|v| v.with_threads(2))
                .expect("3 envs");
            exercise_vec(&name, &mut vec_env, &ops, discrete);
        });
        let name = format!("MountainCarContinuousVec x3 (time limit 9), {mode:?}");
        total += check(&name, CASES / 4, vec_ops(), |ops| {
            let mut vec_env =
                MountainCarContinuousVec::with_time_limit(3, mode, 9).expect("3 envs");
            exercise_vec(&name, &mut vec_env, &ops, continuous);
        });
        let name = format!("PendulumVec x3 (time limit 9), {mode:?}");
        total += check(&name, CASES / 4, vec_ops(), |ops| {
            let mut vec_env = PendulumVec::with_time_limit(3, mode, 9).expect("3 envs");
            exercise_vec(&name, &mut vec_env, &ops, continuous);
        });
    }
    // In each of the two modes: 5 registered envs at CASES / 4, CartPoleVec at CASES and the
    // other four struct-of-arrays envs at CASES / 4.
    assert_eq!(total, 2 * (9 * u64::from(CASES / 4) + u64::from(CASES)));
    report("vector envs (all)", total);
}

/// A user env whose observations do not fit its space: a typed error from the vector env and
/// the type-erased adapter, not a panic in the flattening.
#[test]
fn observations_of_the_wrong_length_are_errors() {
    #[derive(Debug, Clone)]
    struct Liar {
        len: usize,
    }
    impl Env for Liar {
        type Obs = Vec<f32>;
        type Action = usize;
        fn observation_space(&self) -> Space {
            Space::Box(cinder_env::BoxSpace::new(vec![-1.0; 2], vec![1.0; 2]).expect("box"))
        }
        fn action_space(&self) -> Space {
            Space::Discrete(cinder_env::Discrete::new(2))
        }
        fn reset(
            &mut self,
            _seed: Option<u64>,
        ) -> cinder_env::Result<(Vec<f32>, cinder_env::Info)> {
            Ok((vec![0.0; self.len], cinder_env::Info::default()))
        }
        fn step(&mut self, _action: &usize) -> cinder_env::Result<cinder_env::Step<Vec<f32>>> {
            Ok(cinder_env::Step {
                obs: vec![0.0; self.len],
                reward: 0.0,
                terminated: false,
                truncated: false,
                info: cinder_env::Info::default(),
            })
        }
    }
    for len in [0, 1, 3, 100] {
        let mut envs =
            SyncVectorEnv::new(vec![Liar { len }, Liar { len }], AutoresetMode::SameStep)
                .expect("same spaces");
        let err = envs.reset(Some(0)).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("observation has {len} elements")),
            "{err}"
        );
        let mut erased = cinder_env::env::Erased::boxed(Liar { len });
        assert!(matches!(
            erased.reset(None).unwrap_err(),
            cinder_env::EnvError::ObservationShape { expected: 2, got } if got == len
        ));
    }
}
