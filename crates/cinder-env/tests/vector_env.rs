//! The vector env against Gymnasium's `SyncVectorEnv`, in both autoreset modes, bit for bit
//! (recordings from `tools/gymnasium_vector_golden.py`).

use cinder_env::classic_control::{
    AcrobotVec, CartPoleVec, MountainCarContinuousVec, MountainCarVec, PendulumVec,
};
use cinder_env::vector::{AutoresetMode, SyncVectorEnv, VectorEnv};
use cinder_env::{DynEnv, EnvError, Value, make};
use serde::Deserialize;

/// The recorded envs (one file per env and mode).
const ENVS: [&str; 5] = [
    "CartPole-v1",
    "Acrobot-v1",
    "MountainCar-v0",
    "MountainCarContinuous-v0",
    "Pendulum-v1",
];

#[derive(Deserialize)]
struct Recording {
    env_id: String,
    num_envs: usize,
    mode: String,
    seed: u64,
    reset_obs: Vec<Vec<f64>>,
    steps: Vec<RecordedStep>,
}

#[derive(Deserialize)]
struct RecordedStep {
    actions: Vec<serde_json::Value>,
    obs: Vec<Vec<f64>>,
    rewards: Vec<f64>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    final_obs: Vec<Option<Vec<f64>>>,
}

fn flat(rows: &[Vec<f64>]) -> Vec<f32> {
    rows.iter().flatten().map(|&x| x as f32).collect()
}

fn action(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Number(n) => Value::Discrete(n.as_u64().unwrap() as usize),
        serde_json::Value::Array(xs) => {
            Value::Continuous(xs.iter().map(|x| x.as_f64().unwrap() as f32).collect())
        }
        other => panic!("bad action {other}"),
    }
}

fn replay(file: &str) {
    replay_with(
        file,
        |env_id, n, mode| {
            let envs: Vec<DynEnv> = (0..n).map(|_| make(env_id).unwrap()).collect();
            SyncVectorEnv::new(envs, mode).unwrap()
        },
        |a| a,
    );
}

fn replay_with<V: VectorEnv>(
    file: &str,
    make_vec: impl Fn(&str, usize, AutoresetMode) -> V,
    convert: impl Fn(Value) -> V::Action,
) {
    let path = format!("{}/tests/data/vector/{file}", env!("CARGO_MANIFEST_DIR"));
    let rec: Recording = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mode = match rec.mode.as_str() {
        "next_step" => AutoresetMode::NextStep,
        "same_step" => AutoresetMode::SameStep,
        other => panic!("unknown mode {other}"),
    };
    let mut vec_env = make_vec(&rec.env_id, rec.num_envs, mode);
    let d = vec_env.obs_dim();
    assert_eq!(vec_env.reset(Some(rec.seed)).unwrap(), flat(&rec.reset_obs));
    let mut ends = 0;
    for (t, expected) in rec.steps.iter().enumerate() {
        let actions: Vec<V::Action> = expected
            .actions
            .iter()
            .map(|a| convert(action(a)))
            .collect();
        let step = vec_env.step(&actions).unwrap();
        assert_eq!(step.obs, flat(&expected.obs), "{file} step {t} obs");
        assert_eq!(step.rewards, expected.rewards, "{file} step {t} rewards");
        assert_eq!(step.terminated, expected.terminated, "{file} step {t}");
        assert_eq!(step.truncated, expected.truncated, "{file} step {t}");
        for (i, final_obs) in expected.final_obs.iter().enumerate() {
            if let Some(final_obs) = final_obs {
                ends += 1;
                let ours = &step.final_obs[i * d..(i + 1) * d];
                let theirs: Vec<f32> = final_obs.iter().map(|&x| x as f32).collect();
                assert_eq!(ours, theirs, "{file} step {t} final obs of env {i}");
            }
        }
    }
    if mode == AutoresetMode::SameStep {
        assert!(ends > 0, "{file}: the recording has no episode end");
    }
}

#[test]
fn next_step_mode_matches_gymnasium() {
    for env in ENVS {
        replay(&format!("{env}_next_step.json"));
    }
}

#[test]
fn same_step_mode_matches_gymnasium() {
    for env in ENVS {
        replay(&format!("{env}_same_step.json"));
    }
}

fn discrete(a: Value) -> usize {
    match a {
        Value::Discrete(a) => a,
        other => panic!("{other:?}"),
    }
}

fn continuous(a: Value) -> [f32; 1] {
    match a {
        Value::Continuous(a) => [a[0]],
        other => panic!("{other:?}"),
    }
}

#[test]
fn struct_of_arrays_envs_match_gymnasium_in_both_modes() {
    for mode in ["next_step", "same_step"] {
        replay_with(
            &format!("CartPole-v1_{mode}.json"),
            |_, n, mode| CartPoleVec::new(n, mode).unwrap(),
            discrete,
        );
        replay_with(
            &format!("Acrobot-v1_{mode}.json"),
            |_, n, mode| AcrobotVec::new(n, mode).unwrap(),
            discrete,
        );
        replay_with(
            &format!("MountainCar-v0_{mode}.json"),
            |_, n, mode| MountainCarVec::new(n, mode).unwrap(),
            discrete,
        );
        replay_with(
            &format!("MountainCarContinuous-v0_{mode}.json"),
            |_, n, mode| MountainCarContinuousVec::new(n, mode).unwrap(),
            continuous,
        );
        // On two threads: the recording does not depend on how the sub-envs are shared out.
        replay_with(
            &format!("Pendulum-v1_{mode}.json"),
            |_, n, mode| PendulumVec::new(n, mode).unwrap().with_threads(2).unwrap(),
            continuous,
        );
    }
}

#[test]
fn misuse_is_reported() {
    let envs: Vec<DynEnv> = (0..2).map(|_| make("CartPole-v1").unwrap()).collect();
    let mut vec_env = SyncVectorEnv::new(envs, AutoresetMode::SameStep).unwrap();
    let actions = [Value::Discrete(0), Value::Discrete(1)];
    assert!(matches!(vec_env.step(&actions), Err(EnvError::ResetNeeded)));
    vec_env.reset(Some(0)).unwrap();
    assert!(matches!(
        vec_env.step(&actions[..1]),
        Err(EnvError::InvalidConfig(_))
    ));
    let err = vec_env
        .step(&[Value::Discrete(0), Value::Discrete(7)])
        .unwrap_err();
    assert!(
        matches!(&err, EnvError::SubEnv { index: 1, source } if matches!(**source, EnvError::ActionOutOfRange { action: 7, n: 2 })),
        "{err}"
    );
    assert!(SyncVectorEnv::<DynEnv>::new(Vec::new(), AutoresetMode::SameStep).is_err());
    let mixed = vec![make("CartPole-v1").unwrap(), make("Acrobot-v1").unwrap()];
    assert!(SyncVectorEnv::new(mixed, AutoresetMode::SameStep).is_err());
}
