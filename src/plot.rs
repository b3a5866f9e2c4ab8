//! Learning curves of sequence runs as SVG (`plotters`): the training reward (mean over each
//! step's completions, smoothed over 10 steps) and the held-out exact-match accuracy against
//! the RL step, one line per run directory (e.g. one per seed), the warm start's accuracy drawn
//! at step 0. Every sequence run writes its own `curves.svg`; `cinder plot DIR... --out F.svg`
//! draws several runs together.

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
    /// `(RL step, mean reward)`, smoothed over [`SMOOTHING`] steps.
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
