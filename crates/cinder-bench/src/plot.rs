//! The backend comparison's plot: time against batch size, one line per backend and per PyTorch
//! configuration, inference and update side by side, both axes logarithmic (SVG, `plotters`).
//! Each point is a median; its bar spans the 10th to the 90th percentile.

use crate::backends::{BackendsReport, Timing, Workload};
use anyhow::{Result, anyhow};
use plotters::prelude::*;
use std::path::Path;

/// One line of a panel: a label, a colour, dashed or not, `(batch, milliseconds)` medians and
/// the `(batch, p10, median, p90)` spread around them.
struct Line {
    label: String,
    color: RGBColor,
    dashed: bool,
    points: Vec<(f64, f64)>,
    spread: Vec<(f64, f64, f64, f64)>,
}

const BACKEND_COLORS: [RGBColor; 3] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
];
const TORCH_COLORS: [RGBColor; 3] = [
    RGBColor(90, 90, 90),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
];

fn plottable(timings: &[Timing]) -> impl Iterator<Item = &Timing> {
    timings.iter().filter(|t| {
        [t.median_s, t.p10_s, t.p90_s]
            .iter()
            .all(|s| s.is_finite() && *s > 0.0)
    })
}

fn points(timings: &[Timing]) -> Vec<(f64, f64)> {
    plottable(timings)
        .map(|t| (t.batch as f64, t.median_s * 1e3))
        .collect()
}

fn spread(timings: &[Timing]) -> Vec<(f64, f64, f64, f64)> {
    plottable(timings)
        .map(|t| {
            (
                t.batch as f64,
                t.p10_s * 1e3,
                t.median_s * 1e3,
                t.p90_s * 1e3,
            )
        })
        .collect()
}

fn lines(report: &BackendsReport, workload: Workload) -> Vec<Line> {
    let backends = report.backends.iter().enumerate().map(|(i, b)| Line {
        label: format!("Cinder {}", b.backend),
        color: BACKEND_COLORS[i % BACKEND_COLORS.len()],
        dashed: false,
        points: points(workload.of_backend(b)),
        spread: spread(workload.of_backend(b)),
    });
    let torch = report.torch.iter().enumerate().map(|(i, t)| Line {
        label: t.label(),
        color: TORCH_COLORS[i % TORCH_COLORS.len()],
        dashed: true,
        points: points(workload.of_torch(t)),
        spread: spread(workload.of_torch(t)),
    });
    backends
        .chain(torch)
        .filter(|l| !l.points.is_empty())
        .collect()
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_label: &str,
    lines: &[Line],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let all = lines.iter().flat_map(|l| l.spread.iter());
    let (mut x_min, mut x_max) = (f64::INFINITY, 1.0f64);
    let (mut y_min, mut y_max) = (f64::INFINITY, 0.0f64);
    for &(x, low, _, high) in all {
        x_min = x_min.min(x);
        x_max = x_max.max(x);
        y_min = y_min.min(low);
        y_max = y_max.max(high);
    }
    if !y_min.is_finite() {
        (x_min, y_min, y_max) = (1.0, 0.001, 1.0);
    }
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing the plot: {e}");
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (x_min / 1.25..x_max * 1.25).log_scale(),
            (y_min / 1.5..y_max * 1.5).log_scale(),
        )
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc("milliseconds (log scale)")
        .light_line_style(WHITE)
        .y_labels(12)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| {
            if *y >= 1.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.3}")
            }
        })
        .draw()
        .map_err(err)?;
    for line in lines {
        let style = line.color.stroke_width(2);
        let series = chart.draw_series(
            line.points
                .iter()
                .map(|&p| Circle::new(p, 3, style.filled())),
        );
        series.map_err(err)?;
        chart
            .draw_series(line.spread.iter().map(|&(x, low, median, high)| {
                ErrorBar::new_vertical(x, low, median, high, style, 8)
            }))
            .map_err(err)?;
        let anno = if line.dashed {
            chart.draw_series(DashedLineSeries::new(
                line.points.iter().copied(),
                8,
                5,
                style,
            ))
        } else {
            chart.draw_series(LineSeries::new(line.points.iter().copied(), style))
        }
        .map_err(err)?;
        let color = line.color;
        anno.label(line.label.clone()).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
        });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Draws inference latency and update time against batch size into an SVG at `path`.
pub fn backends_svg(report: &BackendsReport, path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (1280, 550)).into_drawing_area();
    root.fill(&WHITE)
        .map_err(|e| anyhow!("drawing the plot: {e}"))?;
    let title = format!(
        "Cinder's backends (solid) and PyTorch (dashed) on {}",
        report.environment.machine
    );
    let root = root
        .titled(&title, ("sans-serif", 18))
        .map_err(|e| anyhow!("drawing the plot: {e}"))?;
    let (left, right) = root.split_horizontally(640);
    panel(
        &left,
        "Policy inference (per call)",
        "batch size (log scale)",
        &lines(report, Workload::Inference),
    )?;
    panel(
        &right,
        "PPO update (per minibatch)",
        "minibatch size (log scale)",
        &lines(report, Workload::Update),
    )?;
    root.present()
        .map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
    Ok(())
}
