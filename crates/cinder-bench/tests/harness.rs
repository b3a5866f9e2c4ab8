//! The benchmark harnesses (`envs`, `ppo`, `methods`, `measure`): tiny runs finish with finite
//! figures and the tables have their rows. No timing thresholds.

use cinder::backend::BackendKind;
use cinder_bench::envs::{
    ENV_IDS, EnvRow, ThreadedRow, bench_cinder, bench_operant, bench_soa,
    markdown_table as envs_table, threaded_table,
};
use cinder_bench::measure::{Measurement, median_of};
use cinder_bench::methods::{Method, MethodRun, markdown_table as methods_table, run_method};
use cinder_bench::ppo::{
    PeerRuns, RL4BURN_STEPS, markdown_table as ppo_table, parse_rl4burn_line, run_cinder,
};
use cinder_bench::suite::{markdown_table as suite_table, run_one};

#[test]
fn measures_steps_and_positive_times() {
    let m = median_of(3, || {
        let mut x = 0.0f64;
        for i in 0..100_000 {
            x += std::hint::black_box(i as f64).sqrt();
        }
        std::hint::black_box(x);
        100_000
    });
    assert_eq!(m.steps, 100_000);
    assert!(m.wall_s > 0.0 && m.cpu_s >= 0.0);
    assert!(m.steps_per_sec().is_finite());
}

#[test]
fn every_workload_runs_and_gives_finite_rates() {
    for id in ENV_IDS {
        for n in [1, 8] {
            let m = bench_cinder(id, n, 2_000, 1);
            assert!(m.steps >= 2_000, "{id} {n}");
            assert!(m.steps_per_sec().is_finite() && m.steps_per_sec() > 0.0);
        }
        for threads in [1, 2] {
            let m = bench_soa(id, 8, threads, 2_000, 1);
            assert!(m.steps >= 2_000, "{id} {threads} threads");
            assert!(m.steps_per_sec().is_finite() && m.steps_per_cpu_sec().is_finite());
        }
        if let Some(m) = bench_operant(id, 8, 2_000, 1) {
            assert!(m.steps >= 2_000);
            assert!(m.steps_per_sec().is_finite());
        }
    }
}

#[test]
fn table_has_a_row_per_result() {
    let m = Measurement {
        steps: 10,
        wall_s: 1.0,
        cpu_s: 1.0,
    };
    let rows = vec![EnvRow {
        env_id: "CartPole-v1".into(),
        num_envs: 8,
        implementation: "SyncVectorEnv".into(),
        cinder: m,
        gymnasium: Some(Measurement { steps: 5, ..m }),
        operant: None,
    }];
    let table = envs_table(&rows);
    assert!(table.contains("| CartPole-v1 | vec8 | SyncVectorEnv |"));
    assert!(table.contains("2.0×"));
    assert_eq!(table.lines().count(), 3);
    // 3 M steps in 1 s of wall time and 2 s of CPU time, against envpool's 100 k.
    let cinder = Measurement {
        steps: 3_000_000,
        wall_s: 1.0,
        cpu_s: 2.0,
    };
    let envpool = Measurement {
        steps: 100_000,
        ..cinder
    };
    let rows = vec![ThreadedRow {
        env_id: "Pendulum-v1".into(),
        num_envs: 1024,
        threads: 2,
        cinder,
        envpool: Some(envpool),
    }];
    let table = threaded_table(&rows);
    assert!(
        table.contains("| Pendulum-v1 | 1024 | 2 | PendulumVec | 3.0 M | 100 k | 30.0× | 1.5 M |"),
        "{table}"
    );
}

#[test]
fn tiny_runs_of_each_method_give_finite_figures_and_a_table() {
    let runs: Vec<MethodRun> = Method::ALL
        .iter()
        .map(|&m| run_method(m, 1, 2048, BackendKind::cpu(), None).unwrap())
        .collect();
    for r in &runs {
        assert!(r.steps >= 2048, "{r:?}");
        assert!(r.wall_s.is_finite() && r.eval_mean.is_finite(), "{r:?}");
        // The harness is reproducible: the same seed gives the same run (timings aside).
        let again = run_method(r.method, 1, 2048, BackendKind::cpu(), None).unwrap();
        assert_eq!(
            (again.steps, again.updates, again.eval_mean),
            (r.steps, r.updates, r.eval_mean),
            "{:?}",
            r.method
        );
    }
    let table = methods_table(&runs);
    for m in Method::ALL {
        assert!(table.contains(&format!("| {} |", m.name())), "{table}");
    }
}

#[test]
fn a_tiny_run_gives_finite_figures_and_a_table() {
    let run = run_cinder(1, 1024).unwrap();
    assert_eq!(run.steps, 1024);
    assert!(run.wall_s.is_finite() && run.cpu_s >= 0.0);
    // The same seed gives the same evaluation: the figures come from the run, not noise.
    let again = run_cinder(1, 1024).unwrap();
    assert_eq!(run.eval_mean, again.eval_mean);
    assert!(run.eval_mean.is_some_and(f64::is_finite));
    let table = ppo_table("flex", std::slice::from_ref(&run), &[]);
    assert!(table.contains("| 1 | Cinder (flex) |"), "{table}");
    assert!(table.contains("Where Cinder's time goes"), "{table}");
}

#[test]
fn a_tiny_suite_runs_every_algorithm_through_the_presets() {
    use cinder::presets::Algorithm;
    let runs_dir =
        std::env::temp_dir().join(format!("cinder-bench-suite-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&runs_dir);
    let mut runs = Vec::new();
    let mut dirs = Vec::new();
    for algorithm in Algorithm::ALL {
        for seed in [1, 2] {
            let dir = runs_dir.join(format!("{algorithm}-s{seed}"));
            let run = run_one(
                algorithm,
                "CartPole-v1",
                seed,
                Some(1024),
                2,
                BackendKind::cpu(),
                Some(dir.clone()),
            )
            .unwrap();
            dirs.push(dir);
            assert!(run.preset, "CartPole-v1 has a {algorithm} preset");
            assert!(run.steps >= 256 && run.eval_mean.is_finite(), "{run:?}");
            assert_eq!(run.eval_episodes, 2);
            runs.push(run);
        }
    }
    // The runs kept their directories: their learning curves draw, one line per algorithm.
    let svg = runs_dir.join("curves.svg");
    cinder::plot::env_curves(&dirs, &svg, "tiny suite").unwrap();
    let drawn = std::fs::read_to_string(&svg).unwrap();
    for algorithm in Algorithm::ALL {
        assert!(
            drawn.contains(algorithm.name()),
            "{algorithm} missing from the curves"
        );
    }
    std::fs::remove_dir_all(&runs_dir).unwrap();
    let mountain_car = run_one(
        Algorithm::Reinforce,
        "MountainCar-v0",
        1,
        Some(400),
        1,
        BackendKind::cpu(),
        None,
    )
    .unwrap();
    assert!(
        !mountain_car.preset,
        "REINFORCE has no MountainCar-v0 preset: its defaults apply"
    );
    runs.push(mountain_car);
    let table = suite_table(&runs);
    assert!(
        table.contains("| ppo | CartPole-v1 | yes | s1: "),
        "{table}"
    );
    assert!(table.contains("| 500 | 500 ± 0 |"), "{table}");
    assert!(
        table.contains("| reinforce | MountainCar-v0 | defaults |"),
        "{table}"
    );
    // TRPO's row names its own published result, not PPO's.
    assert!(
        table.contains("| trpo | CartPole-v1 | yes | s1: "),
        "{table}"
    );
    assert_eq!(table.lines().count(), 2 + 4 + 1, "{table}");
}

#[test]
fn a_tiny_sequence_benchmark_measures_both_samplers_and_both_algorithms() {
    use cinder::backend::BackendKind;
    use cinder_bench::sequence::{SequenceArgs, SequenceReport, run};
    let args = SequenceArgs {
        backends: Some(vec![BackendKind::Flex]),
        batch: 4,
        lengths: vec![2, 4],
        repetitions: 1,
        rl_steps: 1,
        warmup: 0,
        out: None,
    };
    let report = run(&args).unwrap();
    assert_eq!(report.backends.len(), 1);
    let table = report.markdown();
    for length in [2, 4] {
        assert!(table.contains(&format!("| flex | {length} | ")), "{table}");
    }
    assert!(table.contains("| flex | grpo | 256 | "), "{table}");
    assert!(table.contains("| flex | ppo | 256 | "), "{table}");
    let dir = std::env::temp_dir().join(format!("cinder-sequence-bench-{}", std::process::id()));
    report.write(&dir).unwrap();
    let back: SequenceReport =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sequence.json")).unwrap()).unwrap();
    assert_eq!(back.backends[0].backend, "flex");
    assert_eq!(back.backends[0].report.sampling.len(), 4);
    assert_eq!(back.backends[0].report.run, report.backends[0].report.run);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rl4burn_progress_lines_parse_and_peers_get_their_ratios() {
    // rl4burn 0.1.1's PrintLogger line, and lines that are not the last-20 mean.
    assert_eq!(
        parse_rl4burn_line("[step    12800] rollout/avg_return: 187.4000"),
        Some((12800, 187.4))
    );
    assert_eq!(
        parse_rl4burn_line("[step    12800] loss/policy: 0.0100"),
        None
    );
    assert_eq!(parse_rl4burn_line("Training PPO on CartPole-v1"), None);
    assert_eq!(RL4BURN_STEPS, 499_712);
    let run = |seed, wall_s, cpu_s| cinder_bench::ppo::PpoRun {
        seed,
        steps: 499_712,
        wall_s,
        cpu_s,
        solved_step: None,
        solved_wall_s: None,
        timings: None,
        eval_mean: None,
    };
    let cinder = [run(1, 2.0, 2.0), run(2, 4.0, 4.0), run(3, 3.0, 3.0)];
    let peer = PeerRuns {
        name: "Peer".into(),
        runs: vec![run(1, 30.0, 60.0), run(2, 36.0, 72.0), run(3, 33.0, 66.0)],
    };
    let table = ppo_table("flex", &cinder, &[peer]);
    assert!(table.contains("| 2 | Cinder (flex) | 4.0 |"), "{table}");
    assert!(table.contains("| 2 | Peer | 36.0 |"), "{table}");
    // Medians 3 s against 33 s wall, 3 s against 66 s CPU.
    assert!(
        table.contains("Peer 33.0 s wall / 66.0 s CPU: Cinder is **11.0×** faster in wall-clock time and 22.0× in CPU time"),
        "{table}"
    );
}

#[test]
fn the_sb3_table_sets_presets_against_the_zoo() {
    use cinder_bench::suite::{Sb3Run, SuiteRun, sb3_table};
    let ours = |seed, eval_mean, train_s| SuiteRun {
        algorithm: "ppo".into(),
        env: "Pendulum-v1".into(),
        seed,
        preset: true,
        steps: 98_304,
        train_s,
        wall_s: train_s + 1.0,
        steps_per_s: 98_304.0 / train_s,
        eval_mean,
        eval_std: 1.0,
        eval_episodes: 20,
    };
    let theirs = |seed, eval_mean, wall_s| Sb3Run {
        env: "Pendulum-v1".into(),
        seed,
        total_timesteps: 100_000,
        wall_s,
        cpu_s: wall_s,
        eval_mean,
        eval_std: 1.0,
        torch: "2.x".into(),
    };
    // Cinder: returns -150 and -170 (mean -160), 4 s and 6 s (median 5); SB3: -180 and -200
    // (mean -190), 40 s and 60 s (median 50): 10× the time.
    let cinder = [ours(1, -150.0, 4.0), ours(2, -170.0, 6.0)];
    let sb3 = [theirs(1, -180.0, 40.0), theirs(2, -200.0, 60.0)];
    let table = sb3_table(&cinder, &sb3);
    assert!(
        table.contains(
            "| Pendulum-v1 | 1, 2 | -160.0 | -190.0 | 98304 | 100000 | 5.0 | 50.0 | 10.0× |"
        ),
        "{table}"
    );
    assert_eq!(table.lines().count(), 3);
}
