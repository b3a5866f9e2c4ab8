//! GRPO on a sequence task learns, deterministically, and refuses bad settings with typed errors.

use burn::backend::{Autodiff, NdArray};
use cinder_lm::LmError;
use cinder_lm::grpo::GrpoConfig;
use cinder_lm::run::{SequenceRunConfig, run};
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
    // Measured: 0.51 -> 0.80 with seed 1 (and 0.91 after 60 steps); the margin asked for here is
    // 0.15, well above the held-out set's noise for 100 problems at this accuracy.
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
