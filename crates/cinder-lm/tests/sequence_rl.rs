//! GRPO and PPO on a sequence task learn, deterministically, resume exactly, and refuse bad
//! settings with typed errors.

use burn::backend::{Autodiff, NdArray};
use cinder_lm::LmError;
use cinder_lm::grpo::GrpoConfig;
use cinder_lm::ppo::PpoConfig;
use cinder_lm::run::{SequenceAlgorithm, SequenceRunConfig, resume, run};
use cinder_lm::task::Task;

type B = Autodiff<NdArray>;

/// Sorting 3 digits: a warm start stopped at 30 % held-out accuracy, then 40 GRPO steps.
fn sort_run(rl_steps: usize) -> SequenceRunConfig {
    SequenceRunConfig::new()
        .with_task(Task::Sort)
        .with_length(3)
        .with_min_length(3)
        .with_eval_problems(100)
        .with_pass_k(0)
        .with_rl_steps(rl_steps)
        .with_eval_every(20)
        .with_sft(
            cinder_lm::sft::SftConfig::new()
                .with_stop_at_accuracy(0.3)
                .with_eval_every(5),
        )
}

#[test]
fn grpo_raises_held_out_accuracy_on_sorting() {
    let dir = std::env::temp_dir().join(format!("cinder-lm-grpo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let summary = run::<B>(&sort_run(40), &Default::default(), Some(&dir), &mut |_| {}).unwrap();
    eprintln!(
        "GRPO on sorting: {} -> {}",
        summary.accuracy_before, summary.accuracy_after
    );
    // Measured: 0.49 -> 0.93 with seed 1; the margin asked for here is 0.15, well above the
    // held-out set's noise for 100 problems at this accuracy.
    assert!(
        summary.accuracy_before <= 0.6,
        "the warm start should solve the task only sometimes: {summary:?}"
    );
    assert!(
        summary.accuracy_after >= summary.accuracy_before + 0.15,
        "GRPO did not improve enough: {} -> {}",
        summary.accuracy_before,
        summary.accuracy_after
    );
    // The run directory: config, one metrics line per warm-start step and RL step (TRL's
    // names), the summary with the keys users look for.
    let metrics = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let rl: Vec<serde_json::Value> = metrics
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["phase"] == "rl")
        .collect();
    assert_eq!(rl.len(), 40);
    for key in [
        "reward",
        "reward_std",
        "rewards/exact_match/mean",
        "rewards/partial_credit/mean",
        "frac_reward_zero_std",
        "completions/mean_length",
        "completions/clipped_ratio",
        "clip_ratio/low_mean",
        "clip_ratio/high_mean",
        "kl",
        "entropy",
        "grad_norm",
    ] {
        assert!(
            rl[0][key].is_number(),
            "metrics.jsonl lacks {key}: {}",
            rl[0]
        );
    }
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    for key in [
        "accuracy_before",
        "accuracy_after",
        "ood_accuracy_before",
        "ood_accuracy_after",
    ] {
        assert!(saved[key].is_number(), "summary.json lacks {key}");
    }
    assert!(dir.join("config.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ppo_raises_held_out_accuracy_on_sorting() {
    // Measured: 0.49 -> 0.88 with seed 1 after 40 steps of 128 prompts; the margin asked for
    // is 0.15, as for GRPO.
    let config = sort_run(40)
        .with_algorithm(SequenceAlgorithm::Ppo)
        .with_ppo(PpoConfig::new().with_prompts_per_step(128));
    let summary = run::<B>(&config, &Default::default(), None, &mut |_| {}).unwrap();
    eprintln!(
        "PPO on sorting: {} -> {}",
        summary.accuracy_before, summary.accuracy_after
    );
    assert!(
        summary.accuracy_before <= 0.6,
        "the warm start should solve the task only sometimes: {summary:?}"
    );
    assert!(
        summary.accuracy_after >= summary.accuracy_before + 0.15,
        "PPO did not improve enough: {} -> {}",
        summary.accuracy_before,
        summary.accuracy_after
    );
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let config = sort_run(3).with_sft(
        cinder_lm::sft::SftConfig::new()
            .with_max_steps(20)
            .with_eval_every(10),
    );
    let a = run::<B>(&config, &Default::default(), None, &mut |_| {}).unwrap();
    let b = run::<B>(&config, &Default::default(), None, &mut |_| {}).unwrap();
    assert_eq!(a.held_out_after, b.held_out_after);
    assert_eq!(a.accuracy_before, b.accuracy_before);
}

/// The metric lines of a run directory without their timings.
fn metric_lines(dir: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("tokens_per_second");
            o.remove("step_seconds");
            v
        })
        .collect()
}

#[test]
fn a_resumed_run_continues_exactly() {
    resumes_exactly(SequenceAlgorithm::Grpo);
}

#[test]
fn a_resumed_ppo_run_continues_exactly() {
    resumes_exactly(SequenceAlgorithm::Ppo);
}

fn resumes_exactly(algorithm: SequenceAlgorithm) {
    let device = Default::default();
    // A reference (β > 0) and μ = 2 so that every part of the state matters: the policy, Adam's
    // moments, the reference, the problem sampler's and the sampling generator's states.
    let config = |steps| {
        sort_run(steps)
            .with_sft(
                cinder_lm::sft::SftConfig::new()
                    .with_max_steps(30)
                    .with_eval_every(10),
            )
            .with_grpo(
                GrpoConfig::new()
                    .with_beta(0.04)
                    .with_num_iterations(2)
                    .with_prompts_per_step(4),
            )
            .with_ppo(
                PpoConfig::new()
                    .with_kl_coef(0.04)
                    .with_prompts_per_step(16)
                    .with_num_mini_batches(2),
            )
            .with_algorithm(algorithm)
            .with_checkpoint_every(2)
            .with_eval_every(3)
    };
    let root = std::env::temp_dir().join(format!(
        "cinder-lm-resume-{algorithm:?}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&root);
    let (straight, stopped) = (root.join("straight"), root.join("stopped"));
    let a = run::<B>(&config(5), &device, Some(&straight), &mut |_| {}).unwrap();
    // The same run killed at step 3 (by its log callback, after the step-2 checkpoint and
    // before step 3's line and checkpoint are written).
    let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run::<B>(&config(5), &device, Some(&stopped), &mut |line| {
            assert!(!line.starts_with("RL step 3:"), "killed");
        })
    }));
    assert!(killed.is_err());
    // A line written after the checkpoint (by a run killed before its next one) is dropped.
    let mut text = std::fs::read_to_string(stopped.join("metrics.jsonl")).unwrap();
    text.push_str("{\"phase\":\"rl\",\"iteration\":3,\"reward\":9}\n");
    std::fs::write(stopped.join("metrics.jsonl"), text).unwrap();
    let b = resume::<B>(&stopped, None, &device, &mut |_| {}).unwrap();
    assert_eq!(a.held_out_after, b.held_out_after);
    assert_eq!(a.ood_after, b.ood_after);
    assert_eq!(a.rl_steps, 5);
    assert_eq!(b.rl_steps, 5);
    assert_eq!(metric_lines(&straight), metric_lines(&stopped));
    let policy = |dir: &std::path::Path| {
        let c = cinder_rl::checkpoint::Checkpoint::read(&dir.join("checkpoint.ckpt")).unwrap();
        c.section(dir, "policy").unwrap().to_vec()
    };
    assert_eq!(policy(&straight), policy(&stopped));
    // A larger budget extends a finished run and is written to its configuration.
    let c = resume::<B>(&stopped, Some(6), &device, &mut |_| {}).unwrap();
    assert_eq!(c.rl_steps, 6);
    let config_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stopped.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(config_json["rl_steps"], 6);
    // A damaged checkpoint is an error naming the file, not a panic or a fresh start.
    let ckpt = stopped.join("checkpoint.ckpt");
    let mut bytes = std::fs::read(&ckpt).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF;
    std::fs::write(&ckpt, bytes).unwrap();
    let err = resume::<B>(&stopped, None, &device, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("checkpoint.ckpt"), "{err}");
    // A directory without a checkpoint says so.
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(
        empty.join("config.json"),
        serde_json::to_string(&config(1)).unwrap(),
    )
    .unwrap();
    let err = resume::<B>(&empty, None, &device, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("no checkpoint"), "{err}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn bad_settings_are_typed_errors() {
    let device = Default::default();
    let one = sort_run(1).with_grpo(GrpoConfig::new().with_num_generations(1));
    assert!(matches!(
        run::<B>(&one, &device, None, &mut |_| {}),
        Err(LmError::InvalidConfig(m)) if m.contains("num_generations")
    ));
    let short = sort_run(1).with_grpo(GrpoConfig::new().with_max_completion_length(2));
    assert!(matches!(
        run::<B>(&short, &device, None, &mut |_| {}),
        Err(LmError::InvalidConfig(m)) if m.contains("max_completion_length")
    ));
    let unknown = sort_run(1).with_reward_funcs(vec!["nope".into()]);
    assert!(run::<B>(&unknown, &device, None, &mut |_| {}).is_err());
    // Every 1-digit sorting problem held out: an error naming the cause, not a hang.
    let covered = sort_run(1).with_length(1).with_min_length(1);
    let err = run::<B>(&covered, &device, None, &mut |_| {}).unwrap_err();
    assert!(
        err.to_string().contains("nothing is left to train on"),
        "{err}"
    );
}
