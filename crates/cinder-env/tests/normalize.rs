//! `NormalizeObservation` and `NormalizeReward` against Gymnasium 1.x's wrappers, bit for bit,
//! on recordings from `tools/gymnasium_normalize_golden.py`: the same seeded episodes through
//! both, with the statistics frozen part of the way through; and their saved state continuing a
//! run exactly.

use cinder_env::wrappers::{NormalizeObservation, NormalizeReward, RunningMeanStd};
use cinder_env::{DynEnv, Env, EnvError, Value, make};
use serde::Deserialize;

#[derive(Deserialize)]
struct Recording {
    env_id: String,
    gamma: f64,
    freeze_after: usize,
    events: Vec<Event>,
    obs_mean: Vec<f64>,
    obs_var: Vec<f64>,
    obs_count: f64,
    return_mean: f64,
    return_var: f64,
}

#[derive(Deserialize)]
struct Event {
    #[serde(default)]
    reset: bool,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    action: Option<serde_json::Value>,
    obs: Vec<f64>,
    #[serde(default)]
    reward: f64,
    #[serde(default)]
    terminated: bool,
    #[serde(default)]
    truncated: bool,
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

fn load(env_id: &str) -> Recording {
    let path = format!(
        "{}/tests/data/normalize/{env_id}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Replays a recording's events from `start` on; returns the number of steps replayed.
fn replay(
    rec: &Recording,
    obs_env: &mut NormalizeObservation<DynEnv>,
    reward_env: &mut NormalizeReward<DynEnv>,
    start: usize,
    mut steps: usize,
) -> usize {
    for (k, event) in rec.events.iter().enumerate().skip(start) {
        let expected: Vec<f32> = event.obs.iter().map(|&x| x as f32).collect();
        let where_ = format!("{} event {k}", rec.env_id);
        if event.reset {
            let (obs, _) = obs_env.reset(event.seed).unwrap();
            reward_env.reset(event.seed).unwrap();
            assert_eq!(obs, expected, "{where_}: reset observation");
            continue;
        }
        if steps == rec.freeze_after {
            obs_env.set_update_running_mean(false);
            reward_env.set_update_running_mean(false);
        }
        let a = action(event.action.as_ref().unwrap());
        let step = obs_env.step(&a).unwrap();
        let rstep = reward_env.step(&a).unwrap();
        steps += 1;
        assert_eq!(step.obs, expected, "{where_}: observation");
        assert_eq!(
            rstep.reward.to_bits(),
            event.reward.to_bits(),
            "{where_}: reward {} vs {}",
            rstep.reward,
            event.reward
        );
        assert_eq!(
            (step.terminated, step.truncated),
            (event.terminated, event.truncated)
        );
    }
    steps
}

fn wrapped(rec: &Recording) -> (NormalizeObservation<DynEnv>, NormalizeReward<DynEnv>) {
    (
        NormalizeObservation::new(make(&rec.env_id).unwrap()).unwrap(),
        NormalizeReward::new(make(&rec.env_id).unwrap(), rec.gamma).unwrap(),
    )
}

const ENVS: [&str; 5] = [
    "CartPole-v1",
    "Acrobot-v1",
    "MountainCar-v0",
    "MountainCarContinuous-v0",
    "Pendulum-v1",
];

#[test]
fn matches_gymnasium_bit_for_bit() {
    for id in ENVS {
        let rec = load(id);
        let (mut obs_env, mut reward_env) = wrapped(&rec);
        replay(&rec, &mut obs_env, &mut reward_env, 0, 0);
        let stats = obs_env.statistics();
        let f32s = |xs: &[f64]| xs.iter().map(|&x| x as f32).collect::<Vec<_>>();
        assert_eq!(stats.mean, f32s(&rec.obs_mean), "{id}: observation mean");
        assert_eq!(stats.var, f32s(&rec.obs_var), "{id}: observation variance");
        assert_eq!(stats.count, rec.obs_count, "{id}: count");
        // The statistics stopped at freeze_after steps (plus the resets before it).
        assert!(stats.count < rec.events.len() as f64);
        let returns = reward_env.statistics();
        assert_eq!(returns.mean, [rec.return_mean], "{id}: return mean");
        assert_eq!(returns.var, [rec.return_var], "{id}: return variance");
    }
}

#[test]
fn saved_state_continues_exactly() {
    for id in ENVS {
        let rec = load(id);
        let (mut obs_env, mut reward_env) = wrapped(&rec);
        // Replay the first half, save, and continue in fresh wrappers.
        let half = rec.events.len() / 2;
        let head = Recording {
            events: rec.events[..half].iter().map(clone_event).collect(),
            ..load(id)
        };
        let steps = replay(&head, &mut obs_env, &mut reward_env, 0, 0);
        let (obs_state, reward_state) = (
            obs_env.save_state().unwrap(),
            reward_env.save_state().unwrap(),
        );
        let (mut obs_fresh, mut reward_fresh) = wrapped(&rec);
        obs_fresh.load_state(&obs_state).unwrap();
        reward_fresh.load_state(&reward_state).unwrap();
        replay(&rec, &mut obs_fresh, &mut reward_fresh, half, steps);
        // A state of the other wrapper, or of another size, is refused.
        assert!(obs_fresh.load_state(&reward_state).is_err());
        let mut acrobot = NormalizeObservation::new(make("Acrobot-v1").unwrap()).unwrap();
        if id != "Acrobot-v1" {
            assert!(matches!(
                acrobot.load_state(&obs_state),
                Err(EnvError::BadState(_))
            ));
        }
    }
}

fn clone_event(e: &Event) -> Event {
    Event {
        reset: e.reset,
        seed: e.seed,
        action: e.action.clone(),
        obs: e.obs.clone(),
        reward: e.reward,
        terminated: e.terminated,
        truncated: e.truncated,
    }
}

#[test]
fn options_are_checked_and_clipping_bounds_the_output() {
    let err = NormalizeObservation::with_options(make("CartPole-v1").unwrap(), 0.0, None)
        .err()
        .unwrap();
    assert!(err.to_string().contains("epsilon > 0"), "{err}");
    let err = NormalizeReward::new(make("CartPole-v1").unwrap(), 1.5)
        .err()
        .unwrap();
    assert!(err.to_string().contains("gamma in [0, 1]"), "{err}");
    let err = NormalizeReward::with_options(make("CartPole-v1").unwrap(), 0.99, 1e-8, Some(-1.0))
        .err()
        .unwrap();
    assert!(err.to_string().contains("clip > 0"), "{err}");

    // With clipping at 0.5 every normalised value stays within it, and the space says so.
    let mut env =
        NormalizeObservation::with_options(make("MountainCar-v0").unwrap(), 1e-8, Some(0.5))
            .unwrap();
    match env.observation_space() {
        cinder_env::Space::Box(b) => assert!(b.low.iter().chain(&b.high).all(|x| x.abs() == 0.5)),
        other => panic!("{other}"),
    }
    let mut rewards =
        NormalizeReward::with_options(make("MountainCar-v0").unwrap(), 0.99, 1e-8, Some(0.5))
            .unwrap();
    env.reset(Some(0)).unwrap();
    rewards.reset(Some(0)).unwrap();
    for t in 0..150 {
        let a = Value::Discrete(t % 3);
        let step = env.step(&a).unwrap();
        assert!(step.obs.iter().all(|x| x.abs() <= 0.5), "{:?}", step.obs);
        let r = rewards.step(&a).unwrap().reward;
        assert!(r.abs() <= 0.5, "{r}");
    }
}

#[test]
fn running_statistics_match_the_two_pass_formulas() {
    // Known answer, by hand: after the samples 1, 2, 3, 4 (count 4 + 1e-4, starting from mean
    // 0 and variance 1 with weight 1e-4), the mean and variance are those of the data with a
    // 1e-4-weighted pseudo-sample of mean 0 and variance 1.
    let mut rms = RunningMeanStd::<f64>::new(1);
    for x in [1.0, 2.0, 3.0, 4.0] {
        rms.update(&[x]);
    }
    let w = 1e-4;
    let n = 4.0 + w;
    let mean = (1.0 + 2.0 + 3.0 + 4.0) / n;
    let second = (1.0 + 4.0 + 9.0 + 16.0 + w * (1.0 + 0.0)) / n;
    assert!((rms.mean[0] - mean).abs() < 1e-12, "{:?}", rms.mean);
    assert!(
        (rms.var[0] - (second - mean * mean)).abs() < 1e-12,
        "{:?}",
        rms.var
    );
    assert_eq!(rms.count, n);
    // A sample of the wrong size changes nothing.
    let before = rms.clone();
    rms.update(&[1.0, 2.0]);
    assert_eq!(rms, before);
}
