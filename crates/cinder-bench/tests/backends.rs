//! The backend comparison harness: flags, result schema, and a tiny run of every workload on
//! flex (the default CPU backend) that must finish with finite figures. No timing thresholds: timings are checked for
//! being finite and positive only.

use cinder::backend::BackendKind;
use cinder_bench::backends::{
    BackendResult, BackendsArgs, BackendsReport, BenchConfig, Environment, IterationSetting,
    Progress, Repetitions, Timing, TorchResult, UpdateBreakdown, bench_backend, time_calls,
    update_flops,
};
use cinder_bench::measure::percentile;
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: BackendsArgs,
}

fn parse(flags: &[&str]) -> Result<BackendsArgs, clap::Error> {
    Cli::try_parse_from(std::iter::once("backends").chain(flags.iter().copied())).map(|c| c.args)
}

#[test]
fn default_flags_measure_every_compiled_backend_with_the_issue_sizes() {
    let args = parse(&[]).unwrap();
    assert_eq!(args.backends(), BackendKind::compiled());
    assert_eq!(args.e2e_backends(), BackendKind::compiled());
    let config = args.config();
    assert_eq!(config.inference_batches, [1, 8, 64, 512, 4096]);
    assert_eq!(config.update_batches, [64, 256, 1024, 4096]);
    assert_eq!(config.e2e_seeds, [1, 2, 3]);
    assert_eq!(config.iteration_settings.len(), 2);
    assert_eq!(config.iteration_settings[0].batch_size(), 512);
    assert_eq!(config.iteration_settings[1].minibatch_size(), 4096);
    config.validate().unwrap();
}

#[test]
fn flags_set_sizes_backends_and_end_to_end_runs() {
    let args = parse(&[
        "--backends",
        "flex",
        "--inference-batches",
        "1,32",
        "--update-batches",
        "16",
        "--budget",
        "0.25",
        "--min-reps",
        "4",
        "--warmup",
        "0",
        "--iterations",
        "2",
        "--settings",
        "cleanrl",
        "--e2e-seeds",
        "7,8",
        "--e2e-total-steps",
        "2048",
        "--python",
        "/opt/py/bin/python",
        "--out",
        "somewhere",
    ])
    .unwrap();
    assert_eq!(args.backends(), [BackendKind::Flex]);
    assert_eq!(args.e2e_backends(), [BackendKind::Flex]);
    assert_eq!(args.python, "/opt/py/bin/python");
    assert_eq!(args.out.as_deref(), Some(std::path::Path::new("somewhere")));
    let config = args.config();
    assert_eq!(config.inference_batches, [1, 32]);
    assert_eq!(config.update_batches, [16]);
    assert_eq!(config.repetitions.min, 4);
    assert_eq!(config.repetitions.warmup, 0);
    assert_eq!(config.repetitions.budget_s, 0.25);
    assert_eq!(config.iterations, 2);
    assert_eq!(config.iteration_settings, [IterationSetting::cleanrl()]);
    assert_eq!(config.e2e_seeds, [7, 8]);
    assert_eq!(config.e2e_total_steps, 2048);

    let args = parse(&["--from", "assets/bench/backends.json"]).unwrap();
    assert_eq!(
        args.from.as_deref(),
        Some(std::path::Path::new("assets/bench/backends.json"))
    );
    let args = parse(&["--no-e2e"]).unwrap();
    assert!(args.e2e_backends().is_empty());
    let args = parse(&["--e2e-backends", "flex"]).unwrap();
    assert_eq!(args.e2e_backends(), [BackendKind::Flex]);
}

#[test]
fn bad_flags_are_rejected_with_the_reason() {
    let err = parse(&["--backends", "tpu"]).unwrap_err().to_string();
    assert!(err.contains("unknown backend"), "{err}");
    if !BackendKind::Cuda.is_compiled() {
        let err = parse(&["--backends", "cuda"]).unwrap_err().to_string();
        assert!(err.contains("--features cuda"), "{err}");
    }
    assert!(parse(&["--inference-batches", "1,x"]).is_err());
    assert!(parse(&["--settings", "huge"]).is_err());
    let mut config = parse(&["--inference-batches", "0"]).unwrap().config();
    assert!(config.validate().is_err());
    config.inference_batches = vec![1];
    config.iteration_settings.push(IterationSetting {
        name: "uneven".into(),
        num_envs: 3,
        num_steps: 5,
        num_minibatches: 4,
    });
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("do not divide"), "{err}");
}

#[test]
fn percentiles_interpolate_like_numpy() {
    let xs = [1.0, 2.0, 3.0, 4.0, 10.0];
    assert_eq!(percentile(&xs, 50.0), 3.0);
    assert_eq!(percentile(&xs, 0.0), 1.0);
    assert_eq!(percentile(&xs, 100.0), 10.0);
    assert!((percentile(&xs, 90.0) - 7.6).abs() < 1e-12);
    assert!((percentile(&xs, 10.0) - 1.4).abs() < 1e-12);
    assert_eq!(percentile(&[5.0], 90.0), 5.0);
    assert!(percentile(&[], 50.0).is_nan());
}

#[test]
fn timing_counts_the_first_call_apart_and_repeats_at_least_min_times() {
    let mut calls = 0;
    let reps = Repetitions {
        warmup: 2,
        min: 5,
        max: 7,
        budget_s: 0.0,
    };
    let t = time_calls(3, &reps, || {
        calls += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(t.batch, 3);
    assert_eq!(t.repetitions, 5);
    assert_eq!(calls, 1 + 2 + 5);
    assert!(t.p10_s <= t.median_s && t.median_s <= t.p90_s);
    // An error in the workload stops the measurement.
    assert!(time_calls(1, &reps, || anyhow::bail!("broken")).is_err());
}

fn tiny_config() -> BenchConfig {
    BenchConfig {
        inference_batches: vec![1, 8],
        update_batches: vec![16, 32],
        breakdown_batches: vec![16],
        repetitions: Repetitions {
            warmup: 1,
            min: 3,
            max: 3,
            budget_s: 0.0,
        },
        iteration_settings: vec![IterationSetting {
            name: "tiny (2 envs × 16 steps)".into(),
            num_envs: 2,
            num_steps: 16,
            num_minibatches: 2,
        }],
        iterations: 2,
        e2e_seeds: vec![1],
        e2e_total_steps: 512,
    }
}

fn assert_timings(timings: &[Timing], batches: &[usize]) {
    assert_eq!(timings.iter().map(|t| t.batch).collect::<Vec<_>>(), batches);
    for t in timings {
        assert!(t.first_call_s.is_finite() && t.first_call_s > 0.0, "{t:?}");
        assert!(t.median_s.is_finite() && t.median_s > 0.0, "{t:?}");
        assert!(t.p10_s <= t.median_s && t.median_s <= t.p90_s, "{t:?}");
        assert_eq!(t.repetitions, 3);
    }
}

#[test]
fn a_tiny_run_of_every_workload_on_flex_gives_finite_figures_a_table_and_a_plot() {
    let config = tiny_config();
    let mut progress = Progress::new(Progress::steps_per_backend(&config, true), true);
    let result = bench_backend(BackendKind::Flex, &config, true, &mut progress).unwrap();
    assert_eq!(result.backend, "flex");
    assert_timings(&result.inference, &[1, 8]);
    assert_timings(&result.update, &[16, 32]);
    let [breakdown] = result.breakdown.as_slice() else {
        panic!("one breakdown size")
    };
    assert_eq!(breakdown.batch, 16);
    assert_eq!(breakdown.flops, 16.0 * 52_352.0);
    for (phase, seconds) in breakdown.phases() {
        assert!(seconds.is_finite() && seconds > 0.0, "{phase}: {seconds}");
    }
    let phases: f64 = breakdown.phases().iter().map(|&(_, s)| s).sum();
    assert!(breakdown.total_s > 0.0 && breakdown.total_s.is_finite());
    assert!(phases > 0.0, "{breakdown:?}");
    assert!(
        result
            .matmul_gflops
            .is_some_and(|g| g.is_finite() && g > 0.0)
    );
    let [it] = result.iterations.as_slice() else {
        panic!("one iteration setting")
    };
    assert_eq!(it.iterations, 2);
    assert!(it.steps_per_sec.is_finite() && it.steps_per_sec > 0.0);
    assert!(it.first_iteration_s > 0.0);
    let shares = it.env_share + it.inference_share + it.update_share;
    assert!(shares > 0.5 && shares <= 1.0 + 1e-9, "{it:?}");
    let [run] = result.e2e.as_slice() else {
        panic!("one end-to-end run")
    };
    assert_eq!(run.seed, 1);
    assert_eq!(run.steps, 512); // one iteration of CleanRL's 4 envs × 128 steps
    assert!(run.wall_s > 0.0 && run.eval_mean.is_some_and(f64::is_finite));

    let report = BackendsReport {
        environment: Environment::detect("test machine".into()),
        config: config.clone(),
        backends: vec![result],
        torch: vec![],
    };
    // The JSON schema round-trips.
    let json = serde_json::to_string(&report).unwrap();
    let back: BackendsReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    for key in ["environment", "config", "backends", "torch"] {
        assert!(value.get(key).is_some(), "missing {key}");
    }
    assert_eq!(
        value["environment"]["burn"]
            .as_str()
            .unwrap()
            .split('.')
            .next(),
        Some("0")
    );

    let md = report.markdown();
    for needle in [
        "**Policy inference**",
        "**PPO update**",
        "**Full PPO iteration**",
        "**End to end**",
        "**Where the time goes**",
        "| 8 |",
        "Machine: test machine",
    ] {
        assert!(md.contains(needle), "{needle} missing from\n{md}");
    }
    let dir = std::env::temp_dir().join(format!("cinder-bench-backends-{}", std::process::id()));
    report.write(&dir).unwrap();
    let svg = std::fs::read_to_string(dir.join("backends.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("Cinder flex"),
        "{svg:.200}"
    );
    assert!(dir.join("backends.md").exists());
    // `--from`: the saved report reads back as it was.
    assert_eq!(
        BackendsReport::read(&dir.join("backends.json")).unwrap(),
        report
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn timing(batch: usize, ms: f64) -> Timing {
    Timing {
        batch,
        first_call_s: ms * 1e-3,
        median_s: ms * 1e-3,
        p10_s: ms * 1e-3,
        p90_s: ms * 1e-3,
        repetitions: 10,
    }
}

fn synthetic(backend: &str, inference: &[(usize, f64)], update: &[(usize, f64)]) -> BackendResult {
    BackendResult {
        backend: backend.into(),
        device: backend.into(),
        inference: inference.iter().map(|&(b, ms)| timing(b, ms)).collect(),
        update: update.iter().map(|&(b, ms)| timing(b, ms)).collect(),
        iterations: vec![],
        e2e: vec![],
        breakdown: vec![],
        matmul_gflops: None,
        cpu_s: 1.0,
        wall_s: 1.0,
    }
}

#[test]
fn the_guidance_names_the_crossover_and_the_tables_the_ratio_to_pytorch() {
    let config = BenchConfig {
        inference_batches: vec![1, 64, 4096],
        update_batches: vec![64, 4096],
        ..BenchConfig::default()
    };
    // A GPU-like backend: slow at small batches, fast at large ones.
    let report = BackendsReport {
        environment: Environment::detect("test machine".into()),
        config,
        backends: vec![
            synthetic(
                "ndarray",
                &[(1, 0.01), (64, 0.1), (4096, 10.0)],
                &[(64, 1.0), (4096, 40.0)],
            ),
            synthetic(
                "cuda",
                &[(1, 0.2), (64, 0.2), (4096, 0.5)],
                &[(64, 2.0), (4096, 50.0)],
            ),
        ],
        torch: vec![TorchResult {
            torch: "2.x".into(),
            device: "cpu".into(),
            threads: 1,
            gpu: None,
            inference: vec![timing(1, 0.05), timing(64, 0.2), timing(4096, 5.0)],
            update: vec![timing(64, 2.0), timing(4096, 20.0)],
        }],
    };
    let lines = report.crossovers();
    assert!(
        lines.iter().any(|l| l.starts_with("Inference: cuda")
            && l.contains("slower than ndarray up to batch 64 and faster from batch 4096")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("PPO update: cuda")
            && l.contains("slower than ndarray at every size")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("PPO update: PyTorch CPU (1 thread)")
                && l.contains("faster from batch 4096")),
        "{lines:#?}"
    );
    let md = report.markdown();
    // ndarray at batch 1: 0.010 ms against PyTorch's 0.050 ms.
    assert!(
        md.contains("| 1 | 0.010 (5.00×) | 0.200 (0.25×) | 0.050 |"),
        "{md}"
    );

    // With flex measured too, flex (the default CPU backend) is the reference, listed first or
    // not, and ndarray is compared with it.
    let mut with_flex = report.clone();
    with_flex.backends.push(synthetic(
        "flex",
        &[(1, 0.005), (64, 0.05), (4096, 5.0)],
        &[(64, 0.5), (4096, 20.0)],
    ));
    let lines = with_flex.crossovers();
    assert!(
        lines.iter().any(|l| l.starts_with("Inference: ndarray")
            && l.contains("slower than flex at every size measured (2.0× slower at 1")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .all(|l| !l.contains("than ndarray") && !l.starts_with("Inference: flex")),
        "{lines:#?}"
    );
}

#[test]
fn the_pytorch_script_output_parses_into_the_schema() {
    // The shape `tools/bench_backends_torch.py` prints.
    let text = r#"{"torch": "2.15.0", "device": "cpu", "threads": 2, "gpu": null,
        "inference": [{"batch": 1, "first_call_s": 0.01, "median_s": 5e-05, "p10_s": 4e-05,
                       "p90_s": 6e-05, "repetitions": 100}],
        "update": [{"batch": 64, "first_call_s": 0.02, "median_s": 0.001, "p10_s": 0.0009,
                    "p90_s": 0.0012, "repetitions": 50}]}"#;
    let t: TorchResult = serde_json::from_str(text).unwrap();
    assert_eq!(t.label(), "PyTorch CPU (2 threads)");
    assert_eq!(t.inference[0].batch, 1);
    assert_eq!(t.update[0].repetitions, 50);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tools/bench_backends_torch.py"
    );
    let source = std::fs::read_to_string(script).unwrap();
    for key in [
        "first_call_s",
        "median_s",
        "p10_s",
        "p90_s",
        "repetitions",
        "batch=",
    ] {
        assert!(source.contains(key), "the script no longer writes {key}");
    }
}

/// The update's arithmetic, counted by hand: per sample, the actor's 4·64 + 64·64 + 64·2 and
/// the critic's 4·64 + 64·64 + 64·1 multiply-adds forward (8,896); backward, as many again for
/// the weights' gradients and as many less the two first layers (2·4·64) for the inputs'.
#[test]
fn the_update_arithmetic_and_the_where_the_time_goes_table_are_as_counted_by_hand() {
    assert_eq!(update_flops(1), 2.0 * (3.0 * 8_896.0 - 512.0));
    assert_eq!(update_flops(128), 6_701_056.0);
    let mut flex = synthetic("flex", &[(1, 0.01)], &[(4096, 12.0)]);
    flex.breakdown = vec![UpdateBreakdown {
        batch: 4096,
        upload_s: 0.5e-3,
        forward_s: 3.0e-3,
        backward_s: 6.0e-3,
        clip_s: 1.0e-3,
        optimizer_s: 1.5e-3,
        total_s: 12.0e-3,
        flops: update_flops(4096),
    }];
    flex.matmul_gflops = Some(50.0);
    let report = BackendsReport {
        environment: Environment::detect("test machine".into()),
        config: BenchConfig::default(),
        backends: vec![flex],
        torch: vec![],
    };
    // 214,433,792 FLOP at 50 GFLOP/s: 4.29 ms; 12 ms is 2.8× that.
    let table = report.breakdown_table();
    assert!(
        table.contains(
            "| flex | 4096 | 0.500 | 3.00 | 6.00 | 1.00 | 1.50 | 12.00 | 214.43 | 50.0 | 4.29 | 2.8× |"
        ),
        "{table}"
    );
}
