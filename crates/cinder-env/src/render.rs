//! Frames: the classic-control envs draw themselves as Gymnasium does in `rgb_array` mode —
//! the same size (600×400 for CartPole and the mountain cars, 500×500 for Acrobot and
//! Pendulum), geometry and colours — rasterised by `tiny-skia`, with no window system.
//!
//! Gymnasium draws with pygame in a y-up frame and flips the surface at the end; the painters
//! here take the same coordinates (a point `(x, y)` lands on pixel `(x, height − 1 − y)`), so
//! each env's drawing reads like Gymnasium's. Anti-aliased edges differ from pygame's by a
//! shade at most one pixel wide; `crates/cinder-env/tests/render.rs` compares whole frames with
//! frames Gymnasium rendered from the same states.
//!
//! ```
//! use cinder_env::{Env, classic_control::CartPole};
//!
//! let mut env = CartPole::new();
//! env.reset(Some(0))?;
//! let frame = env.render()?;
//! assert_eq!((frame.width, frame.height), (600, 400));
//! // The track is a black line 100 pixels above the bottom edge.
//! assert_eq!(frame.pixel(10, 399 - 100), [0, 0, 0]);
//! # Ok::<(), cinder_env::EnvError>(())
//! ```

use crate::error::{EnvError, Result};
use std::path::Path;
use tiny_skia::{FillRule, Paint, PathBuilder, Pixmap, Rect, Stroke, Transform};

/// An RGB image, rows from the top, 3 bytes per pixel: Gymnasium's `rgb_array`
/// (`height × width × 3`, `uint8`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `height * width * 3` bytes: row 0 is the top row.
    pub rgb: Vec<u8>,
}

impl Frame {
    /// The colour at column `x`, row `y` (from the top); black outside the frame.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        if x >= self.width || y >= self.height {
            return [0, 0, 0];
        }
        let i = ((y * self.width + x) * 3) as usize;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}

/// Writes `frames` as an animated GIF at `fps` frames per second (looping), each frame with its
/// own palette (exact when it has at most 256 colours, as the classic-control frames do).
/// Errors: no frames, frames of different sizes or larger than 65535 pixels, a file that cannot
/// be written.
pub fn save_gif(path: &Path, frames: &[Frame], fps: u32) -> Result<()> {
    let io = |reason: String| EnvError::Io {
        path: path.to_path_buf(),
        reason,
    };
    let first = frames
        .first()
        .ok_or_else(|| EnvError::InvalidConfig("a GIF needs at least one frame".into()))?;
    let (width, height) = (
        u16::try_from(first.width).map_err(|_| io("frames wider than 65535 pixels".into()))?,
        u16::try_from(first.height).map_err(|_| io("frames taller than 65535 pixels".into()))?,
    );
    if let Some(odd) = frames.iter().find(|f| {
        (f.width, f.height) != (first.width, first.height) || f.rgb.len() != first.rgb.len()
    }) {
        return Err(EnvError::InvalidConfig(format!(
            "GIF frames must share one size: {}×{} and {}×{}",
            first.width, first.height, odd.width, odd.height
        )));
    }
    if first.rgb.len() != usize::from(width) * usize::from(height) * 3 {
        return Err(EnvError::InvalidConfig(format!(
            "a {width}×{height} frame needs {} bytes of RGB, not {}",
            usize::from(width) * usize::from(height) * 3,
            first.rgb.len()
        )));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| io(e.to_string()))?;
    }
    let file = std::fs::File::create(path).map_err(|e| io(e.to_string()))?;
    let mut encoder = gif::Encoder::new(std::io::BufWriter::new(file), width, height, &[])
        .map_err(|e| io(e.to_string()))?;
    encoder
        .set_repeat(gif::Repeat::Infinite)
        .map_err(|e| io(e.to_string()))?;
    // GIF delays are in hundredths of a second.
    let delay = u16::try_from((100 + fps.max(1) / 2) / fps.max(1))
        .unwrap_or(u16::MAX)
        .max(2);
    for frame in frames {
        let mut gif_frame = gif::Frame::from_rgb_speed(width, height, &frame.rgb, 10);
        gif_frame.delay = delay;
        encoder
            .write_frame(&gif_frame)
            .map_err(|e| io(e.to_string()))?;
    }
    Ok(())
}

/// An opaque colour.
pub(crate) type Rgb = (u8, u8, u8);

/// A white canvas painted in Gymnasium's (pygame's) coordinates; [`Canvas::finish`] flips it
/// as Gymnasium does.
pub(crate) struct Canvas {
    pixmap: Pixmap,
}

/// pygame fills pixel `(i, j)` when the point `(i, j)` is inside a shape; tiny-skia samples
/// pixel centres `(i + ½, j + ½)`: shapes move by half a pixel to land on the same pixels.
const HALF: f32 = 0.5;

fn paint(color: Rgb, anti_alias: bool) -> Paint<'static> {
    let mut paint = Paint::default();
    paint.set_color_rgba8(color.0, color.1, color.2, 255);
    paint.anti_alias = anti_alias;
    paint
}

impl Canvas {
    /// A white `width × height` canvas.
    pub(crate) fn new(width: u32, height: u32) -> Result<Self> {
        let mut pixmap = Pixmap::new(width, height).ok_or_else(|| {
            EnvError::InvalidConfig(format!("a {width}×{height} frame cannot be drawn"))
        })?;
        pixmap.fill(tiny_skia::Color::WHITE);
        Ok(Self { pixmap })
    }

    /// A filled polygon with an anti-aliased outline (`gfxdraw.filled_polygon` +
    /// `gfxdraw.aapolygon`): like pygame, on the vertices truncated to whole pixels, the fill
    /// reaching the outline's pixels.
    pub(crate) fn polygon(&mut self, points: &[(f64, f64)], color: Rgb) {
        let whole: Vec<(f64, f64)> = points
            .iter()
            .map(|&(x, y)| (x.trunc(), y.trunc()))
            .collect();
        if let Some(path) = Self::path(&whole, true) {
            self.fill(&path, color);
            self.stroke_path(&path, 1.0, color, true);
        }
    }

    /// A path through `points` (pygame coordinates, moved to pixel centres).
    fn path(points: &[(f64, f64)], close: bool) -> Option<tiny_skia::Path> {
        let mut path = PathBuilder::new();
        for (k, &(x, y)) in points.iter().enumerate() {
            let (x, y) = (x as f32 + HALF, y as f32 + HALF);
            if k == 0 {
                path.move_to(x, y);
            } else {
                path.line_to(x, y);
            }
        }
        if close {
            path.close();
        }
        path.finish()
    }

    /// Fills `path`, anti-aliased.
    fn fill(&mut self, path: &tiny_skia::Path, color: Rgb) {
        self.pixmap.fill_path(
            path,
            &paint(color, true),
            FillRule::Winding,
            Transform::identity(),
            None,
        );
    }

    /// Strokes `path` `width` pixels wide.
    fn stroke_path(&mut self, path: &tiny_skia::Path, width: f32, color: Rgb, aa: bool) {
        let stroke = Stroke {
            width,
            ..Stroke::default()
        };
        self.pixmap.stroke_path(
            path,
            &paint(color, aa),
            &stroke,
            Transform::identity(),
            None,
        );
    }

    /// A filled disc of integer centre and radius with an anti-aliased rim
    /// (`gfxdraw.filled_circle` + `gfxdraw.aacircle`).
    pub(crate) fn circle(&mut self, cx: i32, cy: i32, radius: i32, color: Rgb) {
        let (x, y) = (cx as f32 + HALF, cy as f32 + HALF);
        if let Some(path) = PathBuilder::from_circle(x, y, radius.max(0) as f32 + HALF) {
            self.fill(&path, color);
        }
    }

    /// Pixels `x0..=x1` of row `y`, one pixel high (`gfxdraw.hline`).
    pub(crate) fn hline(&mut self, x0: i32, x1: i32, y: i32, color: Rgb) {
        self.rect(x0.min(x1), y, (x1 - x0).abs() + 1, 1, color);
    }

    /// Pixels `y0..=y1` of column `x`, one pixel wide (`gfxdraw.vline`).
    pub(crate) fn vline(&mut self, x: i32, y0: i32, y1: i32, color: Rgb) {
        self.rect(x, y0.min(y1), 1, (y1 - y0).abs() + 1, color);
    }

    fn rect(&mut self, x: i32, y: i32, w: i32, h: i32, color: Rgb) {
        if let Some(rect) = Rect::from_xywh(x as f32, y as f32, w as f32, h as f32) {
            self.pixmap
                .fill_rect(rect, &paint(color, false), Transform::identity(), None);
        }
    }

    /// A polyline one pixel wide, anti-aliased (`pygame.draw.aalines`).
    pub(crate) fn polyline(&mut self, points: &[(f64, f64)], color: Rgb) {
        self.stroke(points, 1.0, color, true);
    }

    /// A stroked open path of `width` pixels.
    pub(crate) fn stroke(&mut self, points: &[(f64, f64)], width: f32, color: Rgb, aa: bool) {
        if let Some(path) = Self::path(points, false) {
            self.stroke_path(&path, width, color, aa);
        }
    }

    /// The frame as Gymnasium returns it: the canvas flipped upside down
    /// (`pygame.transform.flip(surf, False, True)`), as RGB.
    pub(crate) fn finish(self) -> Frame {
        let (width, height) = (self.pixmap.width(), self.pixmap.height());
        let rgba = self.pixmap.data();
        let mut rgb = Vec::with_capacity((width * height * 3) as usize);
        for row in (0..height as usize).rev() {
            let start = row * width as usize * 4;
            for px in rgba[start..start + width as usize * 4].chunks_exact(4) {
                // Opaque everywhere (a white background): premultiplied = straight colour.
                rgb.extend_from_slice(&px[..3]);
            }
        }
        Frame { width, height, rgb }
    }
}

/// pygame's `Vector2(x, y).rotate_rad(angle)`: counter-clockwise by `angle` in the y-up frame.
pub(crate) fn rotate((x, y): (f64, f64), angle: f64) -> (f64, f64) {
    let (s, c) = angle.sin_cos();
    (x * c - y * s, x * s + y * c)
}

const BLACK: Rgb = (0, 0, 0);

/// CartPole-v1 at `[x, x_dot, theta, theta_dot]` (Gymnasium's `CartPoleEnv.render`): 600×400,
/// 125 pixels per metre, the cart's top 100 pixels up, the pole from the axle.
pub(crate) fn cartpole(state: &[f64; 4]) -> Result<Frame> {
    use crate::classic_control::constants::cartpole::{LENGTH, X_THRESHOLD};
    let (width, height) = (600u32, 400u32);
    let scale = f64::from(width) / (X_THRESHOLD * 2.0);
    let pole_width = 10.0;
    let pole_len = scale * (2.0 * LENGTH);
    let (cart_width, cart_height) = (50.0, 30.0);
    let mut canvas = Canvas::new(width, height)?;

    let (l, r, t, b) = (
        -cart_width / 2.0,
        cart_width / 2.0,
        cart_height / 2.0,
        -cart_height / 2.0,
    );
    let axle_offset = cart_height / 4.0;
    let cart_x = state[0] * scale + f64::from(width) / 2.0;
    let cart_y = 100.0;
    let cart = [(l, b), (l, t), (r, t), (r, b)].map(|(x, y)| (x + cart_x, y + cart_y));
    canvas.polygon(&cart, BLACK);

    let (l, r, t, b) = (
        -pole_width / 2.0,
        pole_width / 2.0,
        pole_len - pole_width / 2.0,
        -pole_width / 2.0,
    );
    let pole = [(l, b), (l, t), (r, t), (r, b)].map(|c| {
        let (x, y) = rotate(c, -state[2]);
        (x + cart_x, y + cart_y + axle_offset)
    });
    canvas.polygon(&pole, (202, 152, 101));
    canvas.circle(
        cart_x as i32,
        (cart_y + axle_offset) as i32,
        (pole_width / 2.0) as i32,
        (129, 132, 203),
    );
    canvas.hline(0, width as i32, cart_y as i32, BLACK);
    Ok(canvas.finish())
}

/// Acrobot-v1 at `[theta1, theta2, dtheta1, dtheta2]` (Gymnasium's `AcrobotEnv.render`):
/// 500×500, the two links from the centre, the target line one link length above it.
pub(crate) fn acrobot(state: &[f64; 4]) -> Result<Frame> {
    use crate::classic_control::constants::acrobot::LINK_LENGTH_1;
    use std::f64::consts::FRAC_PI_2;
    const LINK_LENGTH_2: f64 = 1.0;
    let dim = 500u32;
    let bound = LINK_LENGTH_1 + LINK_LENGTH_2 + 0.2;
    let scale = f64::from(dim) / (bound * 2.0);
    let offset = f64::from(dim) / 2.0;
    let mut canvas = Canvas::new(dim, dim)?;

    // The first link's end, (y, x) swapped as Gymnasium's `[:, ::-1]` does.
    let p1 = (
        LINK_LENGTH_1 * state[0].sin() * scale,
        -LINK_LENGTH_1 * state[0].cos() * scale,
    );
    let joints = [(0.0, 0.0), p1];
    let thetas = [state[0] - FRAC_PI_2, state[0] + state[1] - FRAC_PI_2];
    let lengths = [LINK_LENGTH_1 * scale, LINK_LENGTH_2 * scale];

    // pygame.draw.line: one pixel, not anti-aliased, at the truncated coordinates.
    let line_y = (scale + offset) as i32;
    canvas.hline(
        (-2.2 * scale + offset) as i32,
        (2.2 * scale + offset) as i32,
        line_y,
        BLACK,
    );
    for ((jx, jy), (theta, len)) in joints.into_iter().zip(thetas.into_iter().zip(lengths)) {
        let (x, y) = (jx + offset, jy + offset);
        let (l, r, t, b) = (0.0, len, 0.1 * scale, -0.1 * scale);
        let link = [(l, b), (l, t), (r, t), (r, b)].map(|c| {
            let (cx, cy) = rotate(c, theta);
            (cx + x, cy + y)
        });
        canvas.polygon(&link, (0, 204, 204));
        canvas.circle(x as i32, y as i32, (0.1 * scale) as i32, (204, 204, 0));
    }
    Ok(canvas.finish())
}

/// The mountain's height at `x`: `sin(3x) · 0.45 + 0.55`.
fn mountain_height(x: f64) -> f64 {
    (3.0 * x).sin() * 0.45 + 0.55
}

/// MountainCar-v0 and MountainCarContinuous-v0 at `position` (Gymnasium's `render`, the same
/// for both but for the flag at `goal_position`): 600×400, the mountain as 100 anti-aliased
/// segments, the car tilted along the slope, the flag.
pub(crate) fn mountain_car(position: f64, goal_position: f64) -> Result<Frame> {
    use crate::classic_control::constants::mountain_car::{MAX_POSITION, MIN_POSITION};
    let (width, height) = (600u32, 400u32);
    let scale = f64::from(width) / (MAX_POSITION - MIN_POSITION);
    let (car_width, car_height) = (40.0, 20.0);
    let mut canvas = Canvas::new(width, height)?;

    // np.linspace(min, max, 100).
    let track: Vec<(f64, f64)> = (0..100)
        .map(|k| {
            let x = MIN_POSITION + (MAX_POSITION - MIN_POSITION) * f64::from(k) / 99.0;
            ((x - MIN_POSITION) * scale, mountain_height(x) * scale)
        })
        .collect();
    canvas.polyline(&track, BLACK);

    let clearance = 10.0;
    let tilt = (3.0 * position).cos();
    let base = (
        (position - MIN_POSITION) * scale,
        clearance + mountain_height(position) * scale,
    );
    let (l, r, t, b) = (-car_width / 2.0, car_width / 2.0, car_height, 0.0);
    let car = [(l, b), (l, t), (r, t), (r, b)].map(|c| {
        let (x, y) = rotate(c, tilt);
        (x + base.0, y + base.1)
    });
    canvas.polygon(&car, BLACK);
    for c in [(car_width / 4.0, 0.0), (-car_width / 4.0, 0.0)] {
        let (x, y) = rotate(c, tilt);
        canvas.circle(
            (x + base.0) as i32,
            (y + base.1) as i32,
            (car_height / 2.5) as i32,
            (128, 128, 128),
        );
    }

    let flag_x = ((goal_position - MIN_POSITION) * scale) as i32;
    let flag_y1 = (mountain_height(goal_position) * scale) as i32;
    let flag_y2 = flag_y1 + 50;
    canvas.vline(flag_x, flag_y1, flag_y2, BLACK);
    let flag = [
        (flag_x, flag_y2),
        (flag_x, flag_y2 - 10),
        (flag_x + 25, flag_y2 - 5),
    ]
    .map(|(x, y)| (f64::from(x), f64::from(y)));
    canvas.polygon(&flag, (204, 204, 0));
    Ok(canvas.finish())
}

/// Pendulum-v1 at angle `theta` with the last torque `last_u` (Gymnasium's
/// `PendulumEnv.render`): 500×500, the rod from the centre with round ends, the axle, and —
/// after a step — a circular arrow whose size is proportional to |torque|, clockwise for a
/// negative torque. Gymnasium blits an image of the arrow (`assets/clockwise.png`); Cinder draws
/// a three-quarter arc with a head in the same place and size.
pub(crate) fn pendulum(theta: f64, last_u: Option<f32>) -> Result<Frame> {
    use std::f64::consts::{FRAC_PI_2, PI};
    let dim = 500u32;
    let bound = 2.2;
    let scale = f64::from(dim) / (bound * 2.0);
    let offset = i32::try_from(dim / 2).unwrap_or(250);
    let centre = f64::from(offset);
    let mut canvas = Canvas::new(dim, dim)?;
    let red = (204, 77, 77);

    let rod_length = scale;
    let rod_width = 0.2 * scale;
    let (l, r, t, b) = (0.0, rod_length, rod_width / 2.0, -rod_width / 2.0);
    let rod = [(l, b), (l, t), (r, t), (r, b)].map(|c| {
        let (x, y) = rotate(c, theta + FRAC_PI_2);
        (x + centre, y + centre)
    });
    canvas.polygon(&rod, red);
    canvas.circle(offset, offset, (rod_width / 2.0) as i32, red);
    let (ex, ey) = rotate((rod_length, 0.0), theta + FRAC_PI_2);
    canvas.circle(
        (ex + centre) as i32,
        (ey + centre) as i32,
        (rod_width / 2.0) as i32,
        red,
    );

    if let Some(u) = last_u {
        // The image is `size` pixels square, centred on the axle. In the final (flipped)
        // frame it shows as drawn for u < 0 (clockwise), mirrored left-right for u > 0; on
        // the canvas (before the flip) it is therefore upside down.
        let size = scale * f64::from(u.abs()) / 2.0;
        if size >= 1.0 {
            let mirror = if u > 0.0 { -1.0 } else { 1.0 };
            // Points of the image (x right, y down, in units of `size`, origin at its centre)
            // to canvas coordinates.
            let at = |x: f64, y: f64| (centre + mirror * x * size, centre - y * size);
            let (cx, cy, radius) = (0.017, -0.003, 0.456);
            // From the top (12 o'clock) clockwise through 3, 6, to 9 o'clock (image frame).
            let arc: Vec<(f64, f64)> = (0..=54)
                .map(|k| {
                    let a = -FRAC_PI_2 + 1.5 * PI * f64::from(k) / 54.0;
                    at(cx + radius * a.cos(), cy + radius * a.sin())
                })
                .collect();
            canvas.stroke(&arc, (0.027 * size) as f32, BLACK, true);
            let head = [at(-0.43, -0.15), at(-0.5, 0.04), at(-0.36, 0.04)];
            canvas.polygon(&head, BLACK);
        }
    }

    canvas.circle(offset, offset, (0.05 * scale) as i32, BLACK);
    Ok(canvas.finish())
}
