//! Cinder's frames against Gymnasium's: `tools/gymnasium_render.py` rendered episodes of every
//! classic-control env with Gymnasium 1.4's `rgb_array` mode (pygame) into `tests/data/render`;
//! this test replays the same seeds and actions and compares frame by frame.
//!
//! Two measures, each pixel matching when every channel is within [`TOLERANCE`]:
//! - of all pixels, at least [`MIN_ALL`] match (anti-aliased edges may differ);
//! - of the drawn pixels (not white in either frame), at least [`MIN_DRAWN`] match — the
//!   measure that a shape in the wrong place fails, however small the shape (a pole drawn at
//!   the wrong angle changes under 1 % of CartPole's frame).
//!
//! Pendulum's torque arrow is an image in Gymnasium and a drawn arc in Cinder: the square it
//! occupies counts in the first measure only.

use cinder_env::{Env, Frame, Value, make};
use serde_json::Value as Json;
use std::path::PathBuf;

/// Largest per-channel difference of matching pixels.
const TOLERANCE: u8 = 40;
/// Fraction of all pixels that must match.
const MIN_ALL: f64 = 0.99;
/// Fraction of drawn pixels that must match.
const MIN_DRAWN: f64 = 0.92;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/render")
}

fn load_png(name: &str) -> Frame {
    let bytes = std::fs::read(data_dir().join(name)).unwrap();
    let pixmap = tiny_skia::Pixmap::decode_png(&bytes).unwrap();
    let rgb = pixmap
        .data()
        .chunks_exact(4)
        .flat_map(|px| [px[0], px[1], px[2]])
        .collect();
    Frame {
        width: pixmap.width(),
        height: pixmap.height(),
        rgb,
    }
}

/// Writes `frame` as a PNG (`CINDER_RENDER_DUMP=DIR` keeps Cinder's frames, to look at them).
fn save_png(frame: &Frame, path: &std::path::Path) {
    let mut pixmap = tiny_skia::Pixmap::new(frame.width, frame.height).unwrap();
    for (px, rgb) in pixmap
        .data_mut()
        .chunks_exact_mut(4)
        .zip(frame.rgb.chunks_exact(3))
    {
        px.copy_from_slice(&[rgb[0], rgb[1], rgb[2], 255]);
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    pixmap.save_png(path).unwrap();
}

/// `(fraction of all pixels that match, fraction of drawn pixels that match)`.
fn agreement(ours: &Frame, theirs: &Frame) -> (f64, f64) {
    agreement_outside(ours, theirs, None)
}

/// [`agreement`], the drawn pixels counted outside the square `(x0, y0, x1, y1)` only.
fn agreement_outside(
    ours: &Frame,
    theirs: &Frame,
    square: Option<(u32, u32, u32, u32)>,
) -> (f64, f64) {
    assert_eq!(
        (ours.width, ours.height),
        (theirs.width, theirs.height),
        "frame size"
    );
    let (mut matching, mut drawn, mut drawn_matching) = (0usize, 0usize, 0usize);
    let pixels = ours.rgb.chunks_exact(3).zip(theirs.rgb.chunks_exact(3));
    for (i, (a, b)) in pixels.enumerate() {
        let ok = a.iter().zip(b).all(|(x, y)| x.abs_diff(*y) <= TOLERANCE);
        let white = |p: &[u8]| p.iter().all(|&c| c == 255);
        matching += usize::from(ok);
        let (x, y) = (i as u32 % ours.width, i as u32 / ours.width);
        let inside =
            square.is_some_and(|(x0, y0, x1, y1)| (x0..=x1).contains(&x) && (y0..=y1).contains(&y));
        let drawn_here = !(white(a) && white(b));
        if drawn_here && !inside {
            drawn += 1;
            drawn_matching += usize::from(ok);
        }
    }
    let n = (ours.width * ours.height) as f64;
    (
        matching as f64 / n,
        drawn_matching as f64 / drawn.max(1) as f64,
    )
}

fn episodes() -> Vec<Json> {
    let text = std::fs::read_to_string(data_dir().join("episodes.json")).unwrap();
    let json: Json = serde_json::from_str(&text).unwrap();
    json["episodes"].as_array().unwrap().clone()
}

fn action(json: &Json) -> Value {
    match json {
        Json::Number(n) => Value::Discrete(n.as_u64().unwrap() as usize),
        Json::Array(xs) => {
            Value::Continuous(xs.iter().map(|x| x.as_f64().unwrap() as f32).collect())
        }
        other => panic!("unexpected action {other}"),
    }
}

/// Where Pendulum draws its torque arrow after a step with torque `u`: a square of side
/// `scale · |u| / 2` centred on the axle (with a pixel of margin).
fn arrow_square(u: f64) -> (u32, u32, u32, u32) {
    let half = (500.0 / 4.4 * u.abs().min(2.0) / 2.0 / 2.0).ceil() as u32 + 2;
    (250 - half, 250 - half, 250 + half, 250 + half)
}

/// Every recorded frame of every env: `(env id, step, ours, Gymnasium's, the square of
/// Pendulum's arrow)`.
#[allow(clippy::type_complexity)]
fn frames() -> Vec<(String, u64, Frame, Frame, Option<(u32, u32, u32, u32)>)> {
    let mut out = Vec::new();
    for episode in episodes() {
        let id = episode["id"].as_str().unwrap().to_string();
        let mut env = make(&id).unwrap();
        env.reset(Some(episode["seed"].as_u64().unwrap())).unwrap();
        let actions = episode["actions"].as_array().unwrap();
        let mut done = 0;
        for frame in episode["frames"].as_array().unwrap() {
            let step = frame["step"].as_u64().unwrap();
            while done < step {
                env.step(&action(&actions[done as usize])).unwrap();
                done += 1;
            }
            let ours = env.render().unwrap();
            let theirs = load_png(frame["file"].as_str().unwrap());
            let arrow = (id == "Pendulum-v1" && step > 0)
                .then(|| arrow_square(actions[step as usize - 1][0].as_f64().unwrap()));
            out.push((id.clone(), step, ours, theirs, arrow));
        }
    }
    out
}

#[test]
fn frames_match_gymnasium() {
    let frames = frames();
    assert_eq!(frames.len(), 19, "the recorded frames");
    let mut failures = Vec::new();
    for (id, step, ours, theirs, arrow) in &frames {
        if let Ok(dir) = std::env::var("CINDER_RENDER_DUMP") {
            save_png(ours, &PathBuf::from(dir).join(format!("{id}-{step}.png")));
        }
        let (all, drawn) = agreement_outside(ours, theirs, *arrow);
        println!(
            "{id} step {step}: {:.4} of all pixels, {:.4} of drawn pixels match",
            all, drawn
        );
        if all < MIN_ALL || drawn < MIN_DRAWN {
            failures.push(format!("{id} step {step}: all {all:.4}, drawn {drawn:.4}"));
        }
    }
    assert!(
        failures.is_empty(),
        "frames differ from Gymnasium's: {failures:?}"
    );
}

/// The comparison fails when the pole is drawn at the wrong angle: CartPole's frame with its
/// pole tilted 0.1 rad (5.7°) more than the state says.
#[test]
fn a_pole_at_the_wrong_angle_fails_the_comparison() {
    let episode = episodes()
        .into_iter()
        .find(|e| e["id"] == "CartPole-v1")
        .unwrap();
    let last = episode["frames"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let mut env = cinder_env::classic_control::CartPole::new();
    env.reset(Some(episode["seed"].as_u64().unwrap())).unwrap();
    for a in episode["actions"].as_array().unwrap() {
        env.step(&(a.as_u64().unwrap() as usize)).unwrap();
    }
    let theirs = load_png(last["file"].as_str().unwrap());
    let (_, drawn) = agreement(&env.render().unwrap(), &theirs);
    assert!(drawn >= MIN_DRAWN, "the true state matches: {drawn}");
    let mut state = env.save_state().unwrap();
    let theta = state["state"][2].as_f64().unwrap();
    state["state"][2] = serde_json::json!(theta + 0.1);
    env.load_state(&state).unwrap();
    let (all, drawn) = agreement(&env.render().unwrap(), &theirs);
    println!("pole 0.1 rad off: {all:.4} of all pixels, {drawn:.4} of drawn pixels match");
    assert!(
        drawn < MIN_DRAWN,
        "a pole 0.1 rad off must fail: {drawn} of drawn pixels match (and {all} of all)"
    );
}

/// A frame needs a state: before the first reset `render` is an error, not a blank image.
#[test]
fn render_before_reset_is_an_error() {
    for id in cinder_env::registry::ids() {
        let env = make(id).unwrap();
        assert!(env.render().is_err(), "{id}");
    }
}
