//! Learning curves as SVG (`plotters`), drawn by `cinder plot DIR... --out F.svg`:
//!
//! - env runs ([`env_curves`]): the mean of the last 20 training returns against env steps, one
//!   panel per env and one colour per algorithm, a line for the mean over the runs (seeds) and a
//!   band from their minimum to their maximum;
//! - sequence runs ([`sequence_curves`]): the training reward (mean over each step's
//!   completions, smoothed over 10 steps) and the held-out exact-match accuracy against the RL
//!   step, one line per run directory (e.g. one per seed), the warm start's accuracy drawn at
//!   step 0. Every sequence run writes its own `curves.svg`.

use crate::Error;
use plotters::prelude::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Steps the training reward is averaged over.
const SMOOTHING: usize = 10;

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(90, 90, 90),
];

/// One run's curves, read from its `metrics.jsonl` and `summary.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceCurves {
    /// The run's name in the legend (its directory's name).
    pub label: String,
    /// `(RL step, mean reward)`, smoothed over 10 steps.
    pub reward: Vec<(f64, f64)>,
    /// `(RL step, held-out greedy exact match)`: the warm start's at 0, then every evaluation.
    pub accuracy: Vec<(f64, f64)>,
}

impl SequenceCurves {
    /// Reads the curves of the run in `dir`: an error names a directory that is not a sequence
    /// run or a line that does not parse.
    pub fn read(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(cinder_rl::run::files::METRICS);
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let mut rewards = Vec::new();
        let mut accuracy = Vec::new();
        let mut warm_start = None;
        for (n, line) in text.lines().enumerate() {
            let v: Value = serde_json::from_str(line)
                .map_err(|e| Error::Config(format!("{} line {}: {e}", path.display(), n + 1)))?;
            let held_out = v["held_out_accuracy"].as_f64();
            match v["phase"].as_str() {
                Some("sft") => warm_start = held_out.or(warm_start),
                Some("rl") => {
                    let step = v["step"].as_f64().unwrap_or(0.0);
                    if let Some(r) = v["reward"].as_f64() {
                        rewards.push((step, r));
                    }
                    if let Some(a) = held_out {
                        accuracy.push((step, a));
                    }
                }
                _ => {
                    return Err(Error::Config(format!(
                        "{} is not a sequence run's metrics (line {} has no phase sft or rl)",
                        path.display(),
                        n + 1
                    )));
                }
            }
        }
        // The summary's warm-start accuracy is the one RL started from (the last check's).
        let summary = dir.join(cinder_rl::run::files::SUMMARY);
        let before = std::fs::read_to_string(&summary)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|s| s["accuracy_before"].as_f64())
            .or(warm_start);
        if let Some(a) = before {
            accuracy.insert(0, (0.0, a));
        }
        let reward = rewards
            .iter()
            .enumerate()
            .map(|(i, &(step, _))| {
                let window = &rewards[i.saturating_sub(SMOOTHING - 1)..=i];
                let mean = window.iter().map(|p| p.1).sum::<f64>() / window.len() as f64;
                (step, mean)
            })
            .collect();
        let label = dir
            .file_name()
            .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into());
        Ok(Self {
            label,
            reward,
            accuracy,
        })
    }
}

/// Draws the curves of the sequence runs in `dirs` into an SVG at `out`, titled `title`.
pub fn sequence_curves(dirs: &[PathBuf], out: &Path, title: &str) -> Result<(), Error> {
    let curves = dirs
        .iter()
        .map(|d| SequenceCurves::read(d))
        .collect::<Result<Vec<_>, _>>()?;
    draw(&curves, out, title).map_err(|e| Error::Config(format!("drawing {}: {e}", out.display())))
}

fn draw(curves: &[SequenceCurves], out: &Path, title: &str) -> Result<(), String> {
    let root = SVGBackend::new(out, (1200, 450)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root
        .titled(title, ("sans-serif", 18))
        .map_err(|e| e.to_string())?;
    let (left, right) = root.split_horizontally(600);
    let steps = curves
        .iter()
        .flat_map(|c| c.reward.iter().chain(&c.accuracy))
        .map(|p| p.0)
        .fold(1.0f64, f64::max);
    let reward_max = curves
        .iter()
        .flat_map(|c| &c.reward)
        .map(|p| p.1)
        .fold(1.0f64, f64::max);
    let panels = [
        (
            &left,
            format!("training reward (mean of {SMOOTHING} steps)"),
            "reward",
            reward_max * 1.05,
        ),
        (
            &right,
            "held-out exact match (greedy)".to_string(),
            "accuracy",
            1.0,
        ),
    ];
    for (k, (area, caption, y_desc, y_max)) in panels.into_iter().enumerate() {
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..steps, 0.0..y_max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("RL step")
            .y_desc(y_desc)
            .light_line_style(WHITE)
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, c) in curves.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let points = if k == 0 { &c.reward } else { &c.accuracy };
            let series = chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?;
            series.label(c.label.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
            if k == 1 {
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                    .map_err(|e| e.to_string())?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}

/// Episodes the training-return curve of an env run averages over (the last 20, as the
/// summary's `train_mean_return_last_20`).
const RETURN_WINDOW: usize = 20;

/// Points of each seed's curve sampled on a common grid of env steps.
const GRID_POINTS: usize = 200;

/// One env run's learning curve, read from its `config.json` and `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvCurve {
    /// The env id.
    pub env: String,
    /// The algorithm.
    pub algorithm: String,
    /// `(env step, mean of the last 20 training returns)` after every update that had ended
    /// an episode by then.
    pub points: Vec<(f64, f64)>,
}

impl EnvCurve {
    /// Reads the env run in `dir`: an error names a directory that is not one.
    pub fn read(dir: &Path) -> Result<Self, Error> {
        let info = crate::runner::RunInfo::read(dir)?;
        let path = dir.join(cinder_rl::run::files::METRICS);
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let mut window = std::collections::VecDeque::with_capacity(RETURN_WINDOW);
        let mut points = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let v: Value = serde_json::from_str(line)
                .map_err(|e| Error::Config(format!("{} line {}: {e}", path.display(), n + 1)))?;
            let step = v["global_step"].as_f64().ok_or_else(|| {
                Error::Config(format!(
                    "{} line {} has no global_step: not an env run's metrics",
                    path.display(),
                    n + 1
                ))
            })?;
            for r in v["episode_returns"].as_array().into_iter().flatten() {
                if let Some(r) = r.as_f64() {
                    if window.len() == RETURN_WINDOW {
                        window.pop_front();
                    }
                    window.push_back(r);
                }
            }
            if !window.is_empty() {
                points.push((step, window.iter().sum::<f64>() / window.len() as f64));
            }
        }
        Ok(Self {
            env: info.env_id,
            algorithm: info.algorithm.name().to_string(),
            points,
        })
    }

    /// The curve's value at `step`: the last point at or before it.
    fn at(&self, step: f64) -> Option<f64> {
        let k = self.points.partition_point(|p| p.0 <= step);
        k.checked_sub(1).map(|k| self.points[k].1)
    }
}

/// Whether `dir` holds an env run (its `config.json` names an env), not a sequence run.
fn is_env_run(dir: &Path) -> bool {
    crate::runner::RunInfo::read(dir).is_ok()
}

/// Draws the learning curves of the runs in `dirs` into an SVG at `out`: env runs as
/// [`env_curves`] draws them, sequence runs as [`sequence_curves`] does (the two kinds cannot
/// be mixed). `title` defaults to one naming the kind.
pub fn curves(dirs: &[PathBuf], out: &Path, title: Option<&str>) -> Result<(), Error> {
    let env_runs = dirs.iter().filter(|d| is_env_run(d)).count();
    match env_runs {
        0 => sequence_curves(dirs, out, title.unwrap_or("Sequence RL")),
        n if n == dirs.len() => env_curves(dirs, out, title.unwrap_or("Learning curves")),
        _ => Err(Error::Config(
            "cinder plot draws env runs or sequence runs, not both in one figure".into(),
        )),
    }
}

/// Draws env runs: one panel per env, one colour per algorithm; each algorithm's line is the
/// mean over its runs (seeds) of the last-20 training return against env steps, its band the
/// runs' minimum to maximum.
pub fn env_curves(dirs: &[PathBuf], out: &Path, title: &str) -> Result<(), Error> {
    let runs = dirs
        .iter()
        .map(|d| EnvCurve::read(d))
        .collect::<Result<Vec<_>, _>>()?;
    draw_env(&runs, out, title)
        .map_err(|e| Error::Config(format!("drawing {}: {e}", out.display())))
}

/// A point of an algorithm's curve: `(env step, mean, min, max)` over its runs.
type BandPoint = (f64, f64, f64, f64);

/// `(step, mean, min, max)` over the runs on a grid of steps up to the longest run, each grid
/// point over the runs that reached it and had a return by then.
fn band(runs: &[&EnvCurve]) -> Vec<BandPoint> {
    let last = runs
        .iter()
        .filter_map(|r| r.points.last().map(|p| p.0))
        .fold(0.0f64, f64::max);
    (0..=GRID_POINTS)
        .filter_map(|k| {
            let step = last * k as f64 / GRID_POINTS as f64;
            let values: Vec<f64> = runs
                .iter()
                .filter(|r| r.points.last().is_some_and(|p| p.0 >= step))
                .filter_map(|r| r.at(step))
                .collect();
            (!values.is_empty()).then(|| {
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                (step, mean, lo, hi)
            })
        })
        .collect()
}

fn draw_env(runs: &[EnvCurve], out: &Path, title: &str) -> Result<(), String> {
    let mut envs: Vec<&str> = Vec::new();
    let mut algorithms: Vec<&str> = Vec::new();
    for r in runs {
        if !envs.contains(&r.env.as_str()) {
            envs.push(&r.env);
        }
        if !algorithms.contains(&r.algorithm.as_str()) {
            algorithms.push(&r.algorithm);
        }
    }
    let cols = envs.len().min(3);
    let rows = envs.len().div_ceil(3);
    let (w, h) = (520 * cols as u32, 400 * rows as u32 + 40);
    let root = SVGBackend::new(out, (w, h)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root
        .titled(title, ("sans-serif", 18))
        .map_err(|e| e.to_string())?;
    let panels = root.split_evenly((rows, cols));
    for (env, area) in envs.iter().zip(&panels) {
        let groups: Vec<(usize, Vec<BandPoint>, usize)> = algorithms
            .iter()
            .enumerate()
            .filter_map(|(i, algorithm)| {
                let members: Vec<&EnvCurve> = runs
                    .iter()
                    .filter(|r| r.env == *env && r.algorithm == *algorithm)
                    .collect();
                (!members.is_empty()).then(|| (i, band(&members), members.len()))
            })
            .collect();
        let points = groups.iter().flat_map(|g| &g.1);
        let x_max = points.clone().map(|p| p.0).fold(1.0f64, f64::max);
        let y_min = points.clone().map(|p| p.2).fold(f64::INFINITY, f64::min);
        let y_max = points.map(|p| p.3).fold(f64::NEG_INFINITY, f64::max);
        let (y_min, y_max) = if y_min.is_finite() && y_max > y_min {
            let pad = (y_max - y_min) * 0.05;
            (y_min - pad, y_max + pad)
        } else {
            (y_min.min(0.0) - 1.0, y_max.max(0.0) + 1.0)
        };
        let mut chart = ChartBuilder::on(area)
            .caption(*env, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, y_min..y_max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("env steps")
            .y_desc(format!("return (last {RETURN_WINDOW} episodes)"))
            .light_line_style(WHITE)
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, band, seeds) in &groups {
            let color = COLORS[i % COLORS.len()];
            let outline: Vec<(f64, f64)> = band
                .iter()
                .map(|p| (p.0, p.3))
                .chain(band.iter().rev().map(|p| (p.0, p.2)))
                .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(
                    outline,
                    color.mix(0.2).filled(),
                )))
                .map_err(|e| e.to_string())?;
            let label = format!(
                "{} ({seeds} run{})",
                algorithms[*i],
                if *seeds == 1 { "" } else { "s" }
            );
            chart
                .draw_series(LineSeries::new(
                    band.iter().map(|p| (p.0, p.1)),
                    color.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}
