//! Replays every episode recorded from Gymnasium in `tests/golden/*.json` through
//! `cinder::env::make(env_id)` and demands bit-for-bit equality: the reset observation, and for
//! every action the observation (float32 bits), the reward (float64 bits), `terminated` and
//! `truncated`.
//!
//! The files come from `tools/gymnasium_golden.py`; any file recorded the same way (other seeds,
//! other action sequences) must pass too. Set `CINDER_GOLDEN_DIR` to replay another directory:
//!
//! ```text
//! python tools/gymnasium_golden.py --seed-offset 5000 --out /tmp/fresh
//! CINDER_GOLDEN_DIR=/tmp/fresh cargo test --test gymnasium_conformance
//! ```

use cinder::env::{Env, Value, make};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
struct Episode {
    env_id: String,
    gymnasium_version: String,
    seed: u64,
    reset_obs: Vec<f64>,
    steps: Vec<GoldenStep>,
}

#[derive(Deserialize)]
struct GoldenStep {
    action: serde_json::Value,
    obs: Vec<f64>,
    reward: f64,
    terminated: bool,
    truncated: bool,
}

fn golden_files() -> Vec<PathBuf> {
    let dir = match std::env::var_os("CINDER_GOLDEN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden"),
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn parse_action(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Number(n) => {
            Value::Discrete(n.as_u64().expect("discrete action") as usize)
        }
        serde_json::Value::Array(xs) => Value::Continuous(
            xs.iter()
                .map(|x| {
                    let x = x.as_f64().expect("continuous action element");
                    let x32 = x as f32;
                    assert_eq!(f64::from(x32), x, "golden actions are float32 values");
                    x32
                })
                .collect(),
        ),
        other => panic!("unexpected action {other}"),
    }
}

/// Golden observations are float32 values written as float64; compare their float32 bits.
fn obs_bits(obs: &[f64]) -> Vec<u32> {
    obs.iter()
        .map(|&x| {
            let x32 = x as f32;
            assert_eq!(f64::from(x32), x, "golden observations are float32 values");
            x32.to_bits()
        })
        .collect()
}

fn ours_bits(obs: &[f32]) -> Vec<u32> {
    obs.iter().map(|x| x.to_bits()).collect()
}

/// Replays one file; returns a description of the first mismatch.
fn replay(path: &Path) -> Result<usize, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let episode: Episode = serde_json::from_str(&text).map_err(|e| format!("bad JSON: {e}"))?;
    assert!(episode.gymnasium_version.starts_with("1."));
    let mut env = make(&episode.env_id).map_err(|e| e.to_string())?;
    let (obs, _) = env.reset(Some(episode.seed)).map_err(|e| e.to_string())?;
    if ours_bits(&obs) != obs_bits(&episode.reset_obs) {
        return Err(format!(
            "reset(seed={}): ours {obs:?}, Gymnasium {:?}",
            episode.seed, episode.reset_obs
        ));
    }
    for (t, expected) in episode.steps.iter().enumerate() {
        let action = parse_action(&expected.action);
        let step = env
            .step(&action)
            .map_err(|e| format!("step {t}: error {e}"))?;
        let same = ours_bits(&step.obs) == obs_bits(&expected.obs)
            && step.reward.to_bits() == expected.reward.to_bits()
            && step.terminated == expected.terminated
            && step.truncated == expected.truncated;
        if !same {
            return Err(format!(
                "step {t} (action {action:?}): ours obs {:?} reward {:?} terminated {} truncated {}; \
                 Gymnasium obs {:?} reward {:?} terminated {} truncated {}",
                step.obs,
                step.reward,
                step.terminated,
                step.truncated,
                expected.obs,
                expected.reward,
                expected.terminated,
                expected.truncated
            ));
        }
    }
    Ok(episode.steps.len())
}

#[test]
fn every_golden_episode_replays_bit_for_bit() {
    let files = golden_files();
    assert!(!files.is_empty(), "no golden files in tests/golden");
    let mut failures = Vec::new();
    let mut steps = 0;
    let mut env_ids = std::collections::BTreeSet::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        match replay(path) {
            Ok(n) => steps += n,
            Err(e) => failures.push(format!("{name}: {e}")),
        }
        if let Some(id) = name.split('_').next() {
            env_ids.insert(id.to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden episodes differ from Gymnasium:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    println!("{} episodes, {steps} steps replayed exactly", files.len());
}

#[test]
fn golden_files_cover_every_registered_env() {
    let mut covered = std::collections::BTreeSet::new();
    for path in golden_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let episode: Episode = serde_json::from_str(&text).unwrap();
        covered.insert(episode.env_id);
    }
    for id in cinder::env::registry::ids() {
        assert!(covered.contains(id), "no golden episode for {id}");
    }
}
