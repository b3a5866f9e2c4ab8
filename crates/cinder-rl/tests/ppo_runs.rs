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

/// The Python interpreter with TensorBoard (`CINDER_PYTHON`, else `python3`), or `None` when
/// `tensorboard` is not importable. With `CINDER_REQUIRE_TENSORBOARD=1` (CI) a missing reader
/// fails instead of skipping.
fn tensorboard_python() -> Option<String> {
    let python = std::env::var("CINDER_PYTHON").unwrap_or_else(|_| "python3".into());
    let found = std::process::Command::new(&python)
        .args(["-c", "import tensorboard"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found && std::env::var("CINDER_REQUIRE_TENSORBOARD").is_ok_and(|v| v == "1") {
        panic!("CINDER_REQUIRE_TENSORBOARD=1 but {python} cannot import tensorboard");
    }
    found.then_some(python)
}

/// Every scalar TensorBoard's reader finds in `dir`: tag → sorted `(step, value)`.
fn tensorboard_scalars(
    python: &str,
    dir: &std::path::Path,
) -> std::collections::BTreeMap<String, Vec<(i64, f32)>> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tools/tensorboard_scalars.py"
    );
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: std::collections::BTreeMap<String, Vec<(i64, f64)>> =
        serde_json::from_slice(&out.stdout).unwrap();
    parsed
        .into_iter()
        .map(|(tag, mut points)| {
            points.sort_by(|a, b| a.partial_cmp(b).unwrap());
            (
                tag,
                points.into_iter().map(|(s, v)| (s, v as f32)).collect(),
            )
        })
        .collect()
}

/// What the TensorBoard file must hold for `metrics.jsonl`'s lines, by the names CleanRL and
/// SB3 use (this table is the specification the README states).
fn expected_scalars(
    lines: &[serde_json::Value],
) -> std::collections::BTreeMap<String, Vec<(i64, f32)>> {
    let named = |key: &str| -> String {
        match key {
            "episode_returns" => "charts/episodic_return",
            "episode_lengths" => "charts/episodic_length",
            "learning_rate" => "charts/learning_rate",
            "steps_per_second" => "charts/SPS",
            "policy_loss" => "losses/policy_loss",
            "value_loss" => "losses/value_loss",
            "entropy" => "losses/entropy",
            "approx_kl" => "losses/approx_kl",
            "clip_fraction" => "losses/clipfrac",
            "explained_variance" => "losses/explained_variance",
            "iteration" => "time/iterations",
            "global_step" => "time/total_timesteps",
            "wall_seconds" => "time/wall_seconds",
            other => return format!("train/{other}"),
        }
        .to_string()
    };
    let mut expected: std::collections::BTreeMap<String, Vec<(i64, f32)>> = Default::default();
    for line in lines {
        let step = line["global_step"].as_i64().unwrap();
        for (key, value) in line.as_object().unwrap() {
            let mut add =
                |tag: String, v: f64| expected.entry(tag).or_default().push((step, v as f32));
            match value {
                serde_json::Value::Number(n) => add(named(key), n.as_f64().unwrap()),
                serde_json::Value::Bool(b) => add(named(key), f64::from(u8::from(*b))),
                serde_json::Value::Array(items) => {
                    for item in items {
                        add(named(key), item.as_f64().unwrap());
                    }
                }
                serde_json::Value::Object(fields) if key == "timings" => {
                    for (phase, seconds) in fields {
                        add(format!("time/{phase}_seconds"), seconds.as_f64().unwrap());
                    }
                }
                serde_json::Value::Null => {}
                other => panic!("unexpected metric {key}: {other}"),
            }
        }
    }
    for points in expected.values_mut() {
        points.sort_by(|a, b| a.partial_cmp(b).unwrap());
    }
    expected
}

/// TensorBoard's own reader (Python `tensorboard`) finds every scalar of `metrics.jsonl` at its
/// step, under CleanRL's names; a resume rewrites the file so that no dropped update lingers.
#[test]
fn tensorboard_reader_finds_every_scalar() {
    let dir = tmp_dir("tensorboard");
    let config = small_config(3, 4);
    let mut run_dir = RunDir::create(&dir, &config).unwrap();
    let mut ppo = cartpole_ppo(config);
    let options = TrainOptions {
        checkpoint_every: 2,
        progress: false,
        solve_threshold: None,
    };
    train(&mut ppo, Some(&mut run_dir), &options).unwrap();
    let read_lines = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.join(files::METRICS))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let lines = read_lines();
    assert_eq!(lines.len(), 4);
    // Cinder's own reader (checksums verified) sees what TensorBoard must see.
    let own: usize = cinder_rl::tensorboard::event_files(&dir)
        .unwrap()
        .iter()
        .map(|f| cinder_rl::tensorboard::read_scalars(f).unwrap().len())
        .sum();
    let expected = expected_scalars(&lines);
    assert_eq!(own, expected.values().map(Vec::len).sum::<usize>());
    assert!(expected["charts/episodic_return"].len() >= 4);
    let Some(python) = tensorboard_python() else {
        eprintln!(
            "skipped TensorBoard's reader: `tensorboard` is not importable (pip install tensorboard; CINDER_PYTHON names the interpreter)"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        return;
    };
    assert_eq!(tensorboard_scalars(&python, &dir), expected);

    // Reopened to resume after update 2: the file holds updates 1 and 2 only.
    drop(run_dir);
    let reopened = RunDir::reopen(&dir, 2).unwrap();
    let kept = read_lines();
    assert_eq!(kept.len(), 2);
    assert_eq!(
        cinder_rl::tensorboard::event_files(&dir).unwrap(),
        [reopened.events_path().to_path_buf()]
    );
    assert_eq!(tensorboard_scalars(&python, &dir), expected_scalars(&kept));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// SB3's `EvalCallback`: evaluations every `every_steps` on a separate env, `evaluations.jsonl`
/// and `best.ckpt` (the best so far, reloadable); its threshold stops training, checkpointed;
/// a resumed run drops the evaluations the dead run made after its checkpoint.
#[test]
fn eval_callback_keeps_the_best_policy_and_stops_at_a_threshold() {
    use cinder_rl::callbacks::{
        EvalCallback, EvalOptions, EvaluationRecord, StopOnTrainingReturn, files as cb_files,
    };
    let dir = tmp_dir("evalcb");
    let config = small_config(4, 12);
    let mut run_dir = RunDir::create(&dir, &config).unwrap();
    let mut ppo = cartpole_ppo(config.clone());
    let options = TrainOptions {
        checkpoint_every: 0,
        progress: false,
        solve_threshold: None,
    };
    let eval_options = EvalOptions {
        every_steps: 512,
        episodes: 3,
        seed: 10_000,
        stop_at_return: None,
    };
    let mut eval = EvalCallback::new(make("CartPole-v1").unwrap(), eval_options).unwrap();
    let report = cinder_rl::run::train_with_callbacks(
        &mut ppo,
        Some(&mut run_dir),
        &options,
        &mut [&mut eval],
    )
    .unwrap();
    assert_eq!(report.stopped_early, None);
    // 12 updates of 256 steps: evaluations at 512, 1024, ..., 3072.
    let records: Vec<EvaluationRecord> = std::fs::read_to_string(dir.join(cb_files::EVALUATIONS))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let steps: Vec<u64> = records.iter().map(|r| r.global_step).collect();
    assert_eq!(steps, [512, 1024, 1536, 2048, 2560, 3072]);
    assert_eq!(eval.history(), &records[..]);
    // The best-so-far column is the running maximum, and a new best is flagged where it rises.
    let mut best = f64::NEG_INFINITY;
    for r in &records {
        assert_eq!(r.new_best, r.evaluation.mean_return > best, "{r:?}");
        best = best.max(r.evaluation.mean_return);
        assert_eq!(r.best_mean_return, best);
        assert_eq!(r.evaluation.episodes, 3);
    }
    // best.ckpt is a checkpoint of the best evaluation's policy: reloaded, it plays the same
    // episodes to the same returns.
    let (model, _) =
        load_policy::<B>(dir.join(cb_files::BEST_CHECKPOINT), &Default::default()).unwrap();
    let mut env = make("CartPole-v1").unwrap();
    let replay =
        cinder_rl::policy::evaluate_greedy(&model, &mut env, 3, 10_000, &Default::default())
            .unwrap();
    let best_record = records.iter().rev().find(|r| r.new_best).unwrap();
    assert_eq!(replay, best_record.evaluation.returns);

    // A threshold the first evaluation reaches stops training after update 2, checkpointed.
    let dir2 = tmp_dir("evalcb-stop");
    let mut run_dir = RunDir::create(&dir2, &config).unwrap();
    let mut ppo = cartpole_ppo(config.clone());
    let mut stopper = EvalCallback::new(
        make("CartPole-v1").unwrap(),
        EvalOptions {
            stop_at_return: Some(records[0].evaluation.mean_return),
            ..eval_options
        },
    )
    .unwrap();
    let report = cinder_rl::run::train_with_callbacks(
        &mut ppo,
        Some(&mut run_dir),
        &options,
        &mut [&mut stopper],
    )
    .unwrap();
    assert!(
        report.stopped_early.as_deref().unwrap().contains("reached"),
        "{report:?}"
    );
    assert_eq!(ppo.iteration(), 2);
    let envs = CartPoleVec::new(4, AutoresetMode::SameStep).unwrap();
    let resumed =
        Ppo::<AB, _>::resume(dir2.join(files::CHECKPOINT), envs, Default::default()).unwrap();
    assert_eq!(resumed.iteration(), 2);

    // Resuming the first run from a checkpoint after update 4 (step 1024): the evaluations
    // made later are dropped, and those kept set the best.
    let mut straight = cartpole_ppo(config.clone());
    for _ in 0..4 {
        straight.iterate().unwrap();
    }
    straight
        .save_checkpoint(&dir.join(files::CHECKPOINT))
        .unwrap();
    let envs = CartPoleVec::new(4, AutoresetMode::SameStep).unwrap();
    let mut resumed =
        Ppo::<AB, _>::resume(dir.join(files::CHECKPOINT), envs, Default::default()).unwrap();
    let mut run_dir = RunDir::reopen(&dir, 4).unwrap();
    let mut eval = EvalCallback::new(make("CartPole-v1").unwrap(), eval_options).unwrap();
    let mut seen = Vec::new();
    let mut spy = Spy(&mut seen);
    cinder_rl::run::train_with_callbacks(
        &mut resumed,
        Some(&mut run_dir),
        &options,
        &mut [&mut eval, &mut spy],
    )
    .unwrap();
    // The first evaluation after the resume is at 1536: 512 and 1024 were kept.
    assert_eq!(eval.history()[..2], records[..2]);
    assert_eq!(seen.first().map(|s| s.0), Some(5));
    // Resumes are exact: the evaluations come out as in the uninterrupted run.
    let again: Vec<EvaluationRecord> = std::fs::read_to_string(dir.join(cb_files::EVALUATIONS))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(again, records);

    // The training-return stop: once 20 episodes ended with a mean of at least 10.
    let mut ppo = cartpole_ppo(config);
    let mut stop = StopOnTrainingReturn { threshold: 10.0 };
    let report =
        cinder_rl::run::train_with_callbacks(&mut ppo, None, &options, &mut [&mut stop]).unwrap();
    let reason = report.stopped_early.unwrap();
    assert!(reason.contains("last 20 training returns"), "{reason}");
    assert!(ppo.iteration() < 12 && report.episodes >= 20);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&dir2).unwrap();
}

/// A callback of a test's own: records `(iteration, global step)` of every update it sees.
struct Spy<'a>(&'a mut Vec<(u64, u64)>);

impl cinder_rl::callbacks::Callback for Spy<'_> {
    fn on_update(
        &mut self,
        event: &cinder_rl::callbacks::UpdateEvent<'_>,
        _learner: &dyn cinder_rl::callbacks::LearnerView,
    ) -> cinder_rl::Result<std::ops::ControlFlow<String>> {
        self.0.push((event.iteration, event.global_step));
        Ok(std::ops::ControlFlow::Continue(()))
    }
}
