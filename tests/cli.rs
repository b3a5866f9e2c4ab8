//! The `cinder` command end to end (the binary cargo built for these tests): the env table,
//! short training runs of every algorithm on every env with evaluation from the run directory,
//! a run killed mid-way and resumed, partial configuration files, and the errors a user sees.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ENVS: [&str; 5] = [
    "CartPole-v1",
    "Acrobot-v1",
    "MountainCar-v0",
    "MountainCarContinuous-v0",
    "Pendulum-v1",
];

fn cinder(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cinder"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .output()
        .expect("the cinder binary runs")
}

fn ok(args: &[&str]) -> String {
    let out = cinder(args);
    assert!(
        out.status.success(),
        "cinder {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(args: &[&str]) -> String {
    let out = cinder(args);
    assert!(!out.status.success(), "cinder {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cinder-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A small budget and batch for each algorithm, whatever the env's preset says.
fn tiny(algo: &str) -> Vec<&'static str> {
    match algo {
        "ppo" => vec![
            "--set",
            "num_envs=2",
            "--set",
            "num_steps=64",
            "--set",
            "num_minibatches=2",
            "--set",
            "update_epochs=2",
            "--total-steps",
            "256",
        ],
        "reinforce" => vec!["--set", "episodes_per_batch=2", "--total-steps", "300"],
        "trpo" => vec![
            "--set",
            "num_envs=2",
            "--set",
            "num_steps=64",
            "--set",
            "batch_size=64",
            "--set",
            "n_critic_updates=2",
            "--total-steps",
            "256",
        ],
        _ => vec![
            "--set",
            "episodes_per_batch=4",
            "--set",
            "advantage.GroupRelative.group_size=2",
            "--total-steps",
            "300",
        ],
    }
}

/// `cinder envs | head -1`: a reader that has gone away ends the command quietly, without a
/// panic message (the pipe's read end is closed before the command writes anything).
#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    use std::os::unix::io::FromRawFd;
    use std::os::unix::process::ExitStatusExt;
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fds[0] is the read end just opened and closed once; fds[1] is owned by `writer`.
    let writer = unsafe {
        libc::close(fds[0]);
        std::fs::File::from_raw_fd(fds[1])
    };
    let out = Command::new(env!("CARGO_BIN_EXE_cinder"))
        .arg("envs")
        .stdout(writer)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        out.status.success() || out.status.signal() == Some(13),
        "{:?}: {stderr}",
        out.status
    );
}

#[test]
fn envs_lists_the_registry() {
    let out = ok(&["envs"]);
    for id in ENVS {
        assert!(out.contains(id), "{id} missing from:\n{out}");
    }
    assert!(out.contains("Discrete(3)") && out.contains("999"), "{out}");
}

/// Every algorithm on every env: the run directory, a summary with an evaluation, and
/// `cinder eval` reproducing it from the checkpoint.
#[test]
fn every_algorithm_trains_on_every_env_and_eval_reproduces_it() {
    for algo in ["ppo", "reinforce", "grpo", "trpo"] {
        for env in ENVS {
            let dir = scratch(&format!("{algo}-{env}"));
            let d = dir.to_str().unwrap();
            let mut args = vec!["train", "--algo", algo, "--env", env, "--out", d];
            args.extend(["--eval-episodes", "2", "--quiet", "--seed", "3"]);
            args.extend(tiny(algo));
            ok(&args);
            for file in [
                "config.json",
                "metrics.jsonl",
                "checkpoint.ckpt",
                "summary.json",
            ] {
                assert!(dir.join(file).is_file(), "{algo} {env}: no {file}");
            }
            let config = json(&dir.join("config.json"));
            assert_eq!(config["env"], env);
            assert_eq!(config[algo]["seed"], 3);
            let summary = json(&dir.join("summary.json"));
            let mean = summary["evaluation"]["mean_return"].as_f64().unwrap();
            let eval = ok(&["eval", d, "--episodes", "2"]);
            assert!(
                eval.contains(&format!("{mean:.2} ±")),
                "{algo} {env}: summary says {mean:.2}, eval printed {eval}"
            );
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}

/// A run killed after a checkpoint resumes to the end of its budget; a preset's normalisation
/// statistics travel with it.
#[test]
fn a_killed_run_resumes_to_its_budget() {
    let dir = scratch("resume");
    let d = dir.to_str().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cinder"))
        .args([
            "train",
            "--algo",
            "ppo",
            "--env",
            "Acrobot-v1",
            "--out",
            d,
            "--quiet",
        ])
        .args([
            "--set",
            "num_envs=2",
            "--set",
            "num_steps=32",
            "--set",
            "num_minibatches=2",
        ])
        .args([
            "--total-steps",
            "40000",
            "--checkpoint-every",
            "1",
            "--eval-episodes",
            "1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let checkpoint = dir.join("checkpoint.ckpt");
    let start = std::time::Instant::now();
    while !checkpoint.exists() {
        assert!(start.elapsed().as_secs() < 300, "no checkpoint appeared");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !dir.join("summary.json").exists(),
        "the run ended before it was killed"
    );
    let config = json(&dir.join("config.json"));
    assert_eq!(
        config["ppo"]["normalize_obs"], true,
        "the Acrobot preset normalises"
    );
    let out = ok(&[
        "train",
        "--algo",
        "ppo",
        "--resume",
        d,
        "--eval-episodes",
        "1",
        "--quiet",
    ]);
    assert!(out.contains("done"), "{out}");
    let summary = json(&dir.join("summary.json"));
    assert_eq!(summary["total_steps"], 40_000);
    let lines = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    assert_eq!(
        lines.lines().count(),
        40_000 / 64,
        "one metrics line per update"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A `--config` file names only what it changes; a table named after the env applies to it.
#[test]
fn partial_config_files_and_sets_override_the_preset() {
    let dir = scratch("config");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mine.toml");
    std::fs::write(
        &file,
        "learning_rate = 0.0005\nnetwork = { hidden_sizes = [16, 8] }\n\n[\"Pendulum-v1\"]\nnum_envs = 2\n\n\
         [\"Acrobot-v1\"]\nnum_envs = 7\n",
    )
    .unwrap();
    let run = dir.join("run");
    let (f, r) = (file.to_str().unwrap(), run.to_str().unwrap());
    ok(&[
        "train",
        "--algo",
        "ppo",
        "--env",
        "Pendulum-v1",
        "--config",
        f,
        "--set",
        "network.activation=relu",
        "--set",
        "num_steps=64",
        "--set",
        "num_minibatches=2",
        "--total-steps",
        "128",
        "--out",
        r,
        "--eval-episodes",
        "1",
        "--quiet",
    ]);
    let config = json(&run.join("config.json"));
    let ppo = &config["ppo"];
    assert_eq!(ppo["learning_rate"], 0.0005);
    assert_eq!(ppo["network"]["hidden_sizes"], serde_json::json!([16, 8]));
    assert_eq!(ppo["num_envs"], 2);
    assert_eq!(ppo["network"]["activation"], "relu");
    // The network table's other keys keep their defaults.
    assert_eq!(ppo["network"]["ortho_init"], true);
    // Kept from the Pendulum preset, and from the defaults.
    assert!((ppo["gamma"].as_f64().unwrap() - 0.9).abs() < 1e-6);
    assert_eq!(ppo["max_grad_norm"], 0.5);
    assert!(config["preset"].as_str().unwrap().contains("RL Zoo"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn errors_name_the_problem() {
    let err = fails(&["train", "--algo", "ppo", "--env", "CartPole-v2"]);
    assert!(
        err.contains("CartPole-v2") && err.contains("MountainCarContinuous-v0"),
        "{err}"
    );
    let err = fails(&[
        "train",
        "--algo",
        "ppo",
        "--env",
        "CartPole-v1",
        "--set",
        "lr=3",
    ]);
    assert!(
        err.contains("unknown key `lr`") && err.contains("learning_rate"),
        "{err}"
    );
    let err = fails(&[
        "train",
        "--algo",
        "ppo",
        "--env",
        "CartPole-v1",
        "--set",
        "num_envs=2.5",
    ]);
    assert!(err.contains("`num_envs` takes an integer"), "{err}");
    let err = fails(&[
        "train",
        "--algo",
        "ppo",
        "--env",
        "CartPole-v1",
        "--set",
        "norm_adv=3",
    ]);
    assert!(err.contains("`norm_adv` takes a boolean"), "{err}");
    let err = fails(&[
        "train",
        "--algo",
        "ppo",
        "--env",
        "CartPole-v1",
        "--set",
        "gamma=2",
    ]);
    assert!(err.contains("gamma (2) must be in [0, 1]"), "{err}");
    let err = fails(&[
        "train",
        "--algo",
        "ppo",
        "--env",
        "CartPole-v1",
        "--set",
        "num_envs",
    ]);
    assert!(err.contains("expected key=value"), "{err}");
    let err = fails(&[
        "train",
        "--algo",
        "grpo",
        "--env",
        "CartPole-v1",
        "--set",
        "clip_obs=5",
    ]);
    assert!(err.contains("unknown key `clip_obs`"), "{err}");
    let err = fails(&["train", "--algo", "dqn", "--env", "CartPole-v1"]);
    assert!(err.contains("ppo, reinforce, grpo"), "{err}");
    let err = fails(&[
        "train",
        "--algo",
        "ppo",
        "--env",
        "CartPole-v1",
        "--backend",
        "tpu",
    ]);
    assert!(err.contains("unknown backend"), "{err}");
    let missing = scratch("missing");
    let err = fails(&["eval", missing.to_str().unwrap()]);
    assert!(err.contains("config.json"), "{err}");
    let dir = scratch("bad-toml");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "learning_rate = [").unwrap();
    let err = fails(&[
        "train",
        "--algo",
        "ppo",
        "--env",
        "CartPole-v1",
        "--config",
        file.to_str().unwrap(),
    ]);
    assert!(err.contains("not valid TOML"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every preset of every algorithm resolves to a valid configuration and names its source;
/// without a preset the algorithm's defaults apply.
#[test]
fn every_preset_resolves_and_says_where_it_comes_from() {
    use cinder::presets::{
        Algorithm, AlgorithmConfig, preset, preset_envs, resolve, resolve_layers,
    };
    for algorithm in Algorithm::ALL {
        let envs = preset_envs(algorithm).unwrap();
        assert!(
            envs.iter().any(|e| e == "CartPole-v1"),
            "{algorithm}: {envs:?}"
        );
        for env in &envs {
            assert!(
                cinder::env::spec(env).is_ok(),
                "{algorithm}: preset for unknown env {env}"
            );
            let p = preset(algorithm, env).unwrap().unwrap();
            assert!(p.source.len() > 20, "{algorithm} {env}: {}", p.source);
            let resolved = resolve(algorithm, env, None, &[]).unwrap();
            assert_eq!(resolved.preset_source.as_deref(), Some(p.source.as_str()));
        }
    }
    let ppo = |use_preset| match resolve_layers(
        Algorithm::Ppo,
        "MountainCarContinuous-v0",
        use_preset,
        None,
        &[],
    )
    .unwrap()
    .config
    {
        AlgorithmConfig::Ppo(c) => c,
        other => panic!("{other:?}"),
    };
    let (tuned, plain) = (ppo(true), ppo(false));
    assert_eq!(
        (tuned.num_envs, tuned.num_steps, tuned.total_timesteps),
        (1, 8, 50_000)
    );
    assert!(tuned.use_sde && !tuned.network.ortho_init);
    assert_eq!(tuned.network.init_log_std, -3.29);
    assert!(tuned.normalize_obs && tuned.normalize_reward);
    assert_eq!(plain, cinder::rl::ppo::PpoConfig::new());
}

#[test]
fn a_task_trains_through_cinder_train_and_resumes() {
    let dir = scratch("task");
    let d = dir.to_str().unwrap();
    let small = [
        "--set",
        "sft.max_steps=20",
        "--set",
        "eval_problems=20",
        "--set",
        "pass_k=0",
        "--set",
        "grpo.prompts_per_step=2",
    ];
    let mut args = vec![
        "train",
        "--algo",
        "reinforce",
        "--task",
        "sort",
        "--length",
        "3",
        "--num-generations",
        "4",
        "--total-steps",
        "2",
        "--quiet",
        "--out",
        d,
    ];
    args.extend(small);
    let out = ok(&args);
    assert!(out.contains("sort: held-out exact match"), "{out}");
    let config = json(&dir.join("config.json"));
    assert_eq!(config["grpo"]["baseline"], "leave_one_out");
    assert_eq!(config["grpo"]["num_generations"], 4);
    let summary = json(&dir.join("summary.json"));
    assert_eq!(summary["rl_steps"], 2);
    let svg = std::fs::read_to_string(dir.join("curves.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("held-out exact match"));
    let plot = dir.with_extension("svg");
    let out = ok(&["plot", d, "--out", plot.to_str().unwrap()]);
    assert!(out.contains("wrote"), "{out}");
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.contains(dir.file_name().unwrap().to_str().unwrap()));
    std::fs::remove_file(&plot).unwrap();
    let err = fails(&["plot", dir.join("nowhere").to_str().unwrap()]);
    assert!(err.contains("nowhere"), "{err}");
    // The run directory is recognised as a task run and resumed (here: already at its budget,
    // so it re-evaluates and rewrites its summary).
    let out = ok(&["train", "--algo", "reinforce", "--resume", d, "--quiet"]);
    assert!(out.contains("sort: held-out exact match"), "{out}");
    assert_eq!(json(&dir.join("summary.json"))["rl_steps"], 2);
    // Knobs of task runs on an env run, PPO on a task: errors that say so.
    let err = fails(&[
        "train",
        "--algo",
        "ppo",
        "--env",
        "CartPole-v1",
        "--beta",
        "0.1",
    ]);
    assert!(err.contains("apply to --task runs"), "{err}");
    let err = fails(&[
        "train",
        "--algo",
        "ppo",
        "--task",
        "sort",
        "--num-generations",
        "4",
    ]);
    assert!(err.contains("--num-generations is a GRPO setting"), "{err}");
    let err = fails(&["train", "--algo", "trpo", "--task", "sort"]);
    assert!(err.contains("TRPO trains env policies"), "{err}");
    // PPO on a task: a value head, one completion per prompt.
    let ppo_dir = scratch("task-ppo");
    let mut args = vec![
        "train",
        "--algo",
        "ppo",
        "--task",
        "sort",
        "--length",
        "3",
        "--beta",
        "0.02",
        "--total-steps",
        "2",
        "--quiet",
        "--set",
        "ppo.prompts_per_step=8",
        "--out",
        ppo_dir.to_str().unwrap(),
    ];
    args.extend(&small[..6]);
    ok(&args);
    let config = json(&ppo_dir.join("config.json"));
    assert_eq!(config["algorithm"], "ppo");
    assert_eq!(config["ppo"]["kl_coef"], 0.02);
    let metrics = std::fs::read_to_string(ppo_dir.join("metrics.jsonl")).unwrap();
    assert!(metrics.contains("\"loss/value_avg\""), "{metrics}");
    std::fs::remove_dir_all(&ppo_dir).unwrap();
    let err = fails(&["train", "--algo", "grpo", "--task", "division"]);
    assert!(err.contains("division"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Seeing and hooking: periodic evaluation keeps `evaluations.jsonl` and `best.ckpt`,
/// `eval --best --gif` records an episode of the best policy, every run directory has a
/// TensorBoard file, and `--stop-at-return` stops training early.
#[test]
fn periodic_evaluation_best_policy_gif_and_early_stop() {
    let dir = scratch("evalgif");
    let dir_s = dir.to_str().unwrap();
    let mut args = vec![
        "train",
        "--algo",
        "ppo",
        "--env",
        "Pendulum-v1",
        "--seed",
        "2",
        "--quiet",
        "--out",
        dir_s,
        "--eval-every",
        "128",
        "--eval-every-episodes",
        "2",
        "--eval-episodes",
        "1",
    ];
    args.extend(tiny("ppo"));
    ok(&args);
    let evaluations = std::fs::read_to_string(dir.join("evaluations.jsonl")).unwrap();
    let steps: Vec<u64> = evaluations
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["global_step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(steps, [128, 256]);
    assert!(dir.join("best.ckpt").is_file());
    let events: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("events.out.tfevents.")
        })
        .collect();
    assert_eq!(events.len(), 1, "one TensorBoard file");

    let gif = dir.join("episode.gif");
    let out = ok(&[
        "eval",
        dir_s,
        "--best",
        "--episodes",
        "1",
        "--gif",
        gif.to_str().unwrap(),
    ]);
    // Pendulum-v1: the reset's frame and 200 steps', at Gymnasium's 30 fps.
    assert!(out.contains("201 frames at 30 fps"), "{out}");
    let bytes = std::fs::read(&gif).unwrap();
    assert_eq!(&bytes[..6], b"GIF89a");
    assert_eq!(u16::from_le_bytes([bytes[6], bytes[7]]), 500, "width");

    // No best policy without periodic evaluation; the error says how to get one.
    let plain = scratch("nobest");
    let mut args = vec![
        "train",
        "--algo",
        "ppo",
        "--env",
        "CartPole-v1",
        "--quiet",
        "--eval-episodes",
        "1",
        "--out",
        plain.to_str().unwrap(),
    ];
    args.extend(tiny("ppo"));
    ok(&args);
    let err = fails(&["eval", plain.to_str().unwrap(), "--best"]);
    assert!(
        err.contains("best.ckpt") && err.contains("--eval-every"),
        "{err}"
    );

    // A training-return threshold that 20 episodes reach at once stops the run early.
    let stop = scratch("stop");
    let args = vec![
        "train",
        "--algo",
        "ppo",
        "--env",
        "CartPole-v1",
        "--quiet",
        "--eval-episodes",
        "1",
        "--out",
        stop.to_str().unwrap(),
        "--stop-at-return",
        "5",
        "--set",
        "num_envs=2",
        "--set",
        "num_steps=64",
        "--total-steps",
        "2560",
    ];
    let out = ok(&args);
    assert!(out.contains("stopped early"), "{out}");
    let summary = json(&stop.join("summary.json"));
    assert!(summary["total_steps"].as_u64().unwrap() < 2560, "{summary}");
    assert!(
        summary["stopped_early"]
            .as_str()
            .unwrap()
            .contains("reached 5"),
        "{summary}"
    );

    // Learning curves of env runs: a panel per env, a line per algorithm over its runs.
    let svg = dir.join("curves.svg");
    ok(&[
        "plot",
        dir_s,
        plain.to_str().unwrap(),
        stop.to_str().unwrap(),
        "--out",
        svg.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"), "not an SVG");
    for label in ["Pendulum-v1", "CartPole-v1", "ppo (1 run)", "ppo (2 runs)"] {
        assert!(text.contains(label), "{label} missing from the plot");
    }

    // Task runs have their own evaluation schedule.
    let err = fails(&[
        "train",
        "--algo",
        "grpo",
        "--task",
        "sort",
        "--eval-every",
        "10",
    ]);
    assert!(err.contains("eval_every"), "{err}");
    for d in [dir, plain, stop] {
        std::fs::remove_dir_all(d).unwrap();
    }
}
