//! Spaces: the sets observations and actions live in (`Discrete(n)` and `Box`), Gymnasium-style.

use crate::rng::NpRandom;
use std::fmt;

/// A finite set of actions or observations `{0, 1, ..., n - 1}` (Gymnasium's `Discrete(n)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Discrete {
    /// Number of elements.
    pub n: usize,
}

impl Discrete {
    /// `Discrete(n)`.
    pub fn new(n: usize) -> Self {
        Self { n }
    }

    /// A uniform sample, `rng.integers(n)` as Gymnasium's `Discrete.sample` draws it.
    pub fn sample(&self, rng: &mut NpRandom) -> usize {
        rng.integers(self.n as u64) as usize
    }

    /// Whether `x` is in `0..n`.
    pub fn contains(&self, x: usize) -> bool {
        x < self.n
    }
}

/// A box in `R^shape` with per-element bounds (Gymnasium's `Box` with `dtype=float32`).
/// Bounds may be infinite.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxSpace {
    /// Lower bounds, one per element (row-major over `shape`).
    pub low: Vec<f32>,
    /// Upper bounds, one per element.
    pub high: Vec<f32>,
    /// The shape; the product of its dimensions is `low.len()`.
    pub shape: Vec<usize>,
}

impl BoxSpace {
    /// A one-dimensional box with the given bounds. Returns `None` if the bounds differ in
    /// length, are NaN, or have `low > high`.
    pub fn new(low: Vec<f32>, high: Vec<f32>) -> Option<Self> {
        let shape = vec![low.len()];
        Self::with_shape(low, high, shape)
    }

    /// A box with an explicit shape. Returns `None` if the bounds do not match the shape, are
    /// NaN, or have `low > high`.
    pub fn with_shape(low: Vec<f32>, high: Vec<f32>, shape: Vec<usize>) -> Option<Self> {
        let size: usize = shape.iter().product();
        let ok =
            low.len() == size && high.len() == size && low.iter().zip(&high).all(|(l, h)| l <= h);
        ok.then_some(Self { low, high, shape })
    }

    /// The same bounds `[low, high]` for every element of a one-dimensional box of `size`.
    pub fn uniform_bounds(low: f32, high: f32, size: usize) -> Self {
        Self {
            low: vec![low; size],
            high: vec![high; size],
            shape: vec![size],
        }
    }

    /// Number of elements.
    pub fn size(&self) -> usize {
        self.low.len()
    }

    /// Whether every bound is finite.
    pub fn is_bounded(&self) -> bool {
        self.low.iter().chain(&self.high).all(|b| b.is_finite())
    }

    /// A sample as Gymnasium's `Box.sample` draws it for float boxes: uniform on bounded
    /// elements, normal on unbounded ones (not reproduced bit for bit: Gymnasium draws all
    /// elements of a kind at once), exponential on half-bounded ones.
    pub fn sample(&self, rng: &mut NpRandom) -> Vec<f32> {
        self.low
            .iter()
            .zip(&self.high)
            .map(|(&low, &high)| {
                let (low, high) = (f64::from(low), f64::from(high));
                match (low.is_finite(), high.is_finite()) {
                    (true, true) => rng.uniform(low, high) as f32,
                    (false, false) => standard_normal(rng) as f32,
                    (true, false) => (low + standard_exponential(rng)) as f32,
                    (false, true) => (high - standard_exponential(rng)) as f32,
                }
            })
            .collect()
    }

    /// Whether `x` has the box's size and every element lies within its bounds (NaN never does).
    pub fn contains(&self, x: &[f32]) -> bool {
        x.len() == self.size()
            && x.iter()
                .zip(self.low.iter().zip(&self.high))
                .all(|(v, (l, h))| *l <= *v && *v <= *h)
    }

    /// Clips `x` into the box element-wise (NaN stays NaN).
    pub fn clip(&self, x: &mut [f32]) {
        for (v, (l, h)) in x.iter_mut().zip(self.low.iter().zip(&self.high)) {
            if *v < *l {
                *v = *l;
            } else if *v > *h {
                *v = *h;
            }
        }
    }
}

fn standard_normal(rng: &mut NpRandom) -> f64 {
    // Box-Muller; good enough for sampling unbounded boxes in checks.
    let u1 = 1.0 - rng.next_f64();
    let u2 = rng.next_f64();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn standard_exponential(rng: &mut NpRandom) -> f64 {
    -(1.0 - rng.next_f64()).ln()
}

/// Either kind of space, for code that handles any env (the registry, the checker, the vector
/// env, the learning algorithms).
#[derive(Debug, Clone, PartialEq)]
pub enum Space {
    /// `Discrete(n)`.
    Discrete(Discrete),
    /// A float box.
    Box(BoxSpace),
}

impl Space {
    /// A sample from the space.
    pub fn sample(&self, rng: &mut NpRandom) -> Value {
        match self {
            Space::Discrete(d) => Value::Discrete(d.sample(rng)),
            Space::Box(b) => Value::Continuous(b.sample(rng)),
        }
    }

    /// Whether `value` is of the space's kind and lies in it.
    pub fn contains(&self, value: ValueRef<'_>) -> bool {
        match (self, value) {
            (Space::Discrete(d), ValueRef::Discrete(x)) => d.contains(x),
            (Space::Box(b), ValueRef::Continuous(x)) => b.contains(x),
            _ => false,
        }
    }

    /// Number of floats a value takes once flattened (1 for a discrete space).
    pub fn flat_dim(&self) -> usize {
        match self {
            Space::Discrete(_) => 1,
            Space::Box(b) => b.size(),
        }
    }

    /// Checks that the space is well formed: `n > 0`, bounds of matching size, no NaN, no
    /// `low > high`. Returns what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Space::Discrete(d) if d.n == 0 => Err("Discrete(0) has no elements".into()),
            Space::Discrete(_) => Ok(()),
            Space::Box(b) => {
                let size: usize = b.shape.iter().product();
                if b.low.len() != size || b.high.len() != size {
                    return Err(format!(
                        "Box bounds have {} and {} elements but shape {:?} has {size}",
                        b.low.len(),
                        b.high.len(),
                        b.shape
                    ));
                }
                if let Some(i) = (0..size).find(|&i| {
                    matches!(
                        b.low[i].partial_cmp(&b.high[i]),
                        None | Some(std::cmp::Ordering::Greater)
                    )
                }) {
                    return Err(format!(
                        "Box element {i} has low {} and high {}",
                        b.low[i], b.high[i]
                    ));
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Space {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Space::Discrete(d) => write!(f, "Discrete({})", d.n),
            Space::Box(b) => write!(f, "Box(shape={:?})", b.shape),
        }
    }
}

/// An owned value of either kind of space: what type-erased envs take as actions.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An element of a `Discrete` space.
    Discrete(usize),
    /// An element of a `Box` space, flattened.
    Continuous(Vec<f32>),
}

/// A borrowed view of a value of either kind of space.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// An element of a `Discrete` space.
    Discrete(usize),
    /// An element of a `Box` space, flattened.
    Continuous(&'a [f32]),
}

impl ValueRef<'_> {
    /// `"discrete"` or `"continuous"`, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            ValueRef::Discrete(_) => "discrete",
            ValueRef::Continuous(_) => "continuous",
        }
    }
}

/// Types that are values of a space: actions and observations of an [`Env`](crate::Env).
///
/// Implemented for `usize` (discrete), `Vec<f32>` and `[f32; N]` (boxes), and [`Value`].
pub trait SpaceValue: Clone + fmt::Debug {
    /// A borrowed view of the value.
    fn as_value(&self) -> ValueRef<'_>;
    /// Builds the value from a sample of its space; `None` if the kind or size does not fit.
    fn from_value(value: Value) -> Option<Self>;

    /// Writes the value, flattened to floats, into `out` (a discrete value becomes one float).
    /// `out` must have exactly the value's length: an observation longer or shorter than its
    /// space is [`EnvError::ObservationShape`](crate::EnvError::ObservationShape), not a panic.
    fn write_flat(&self, out: &mut [f32]) -> crate::Result<()> {
        let shape_error = |got| crate::EnvError::ObservationShape {
            expected: out.len(),
            got,
        };
        match self.as_value() {
            ValueRef::Discrete(x) => match out {
                [slot] => *slot = x as f32,
                _ => return Err(shape_error(1)),
            },
            ValueRef::Continuous(x) => {
                if x.len() != out.len() {
                    return Err(shape_error(x.len()));
                }
                out.copy_from_slice(x);
            }
        }
        Ok(())
    }
}

impl SpaceValue for usize {
    fn as_value(&self) -> ValueRef<'_> {
        ValueRef::Discrete(*self)
    }
    fn from_value(value: Value) -> Option<Self> {
        match value {
            Value::Discrete(x) => Some(x),
            Value::Continuous(_) => None,
        }
    }
}

impl SpaceValue for Vec<f32> {
    fn as_value(&self) -> ValueRef<'_> {
        ValueRef::Continuous(self)
    }
    fn from_value(value: Value) -> Option<Self> {
        match value {
            Value::Continuous(x) => Some(x),
            Value::Discrete(_) => None,
        }
    }
}

impl<const N: usize> SpaceValue for [f32; N] {
    fn as_value(&self) -> ValueRef<'_> {
        ValueRef::Continuous(self)
    }
    fn from_value(value: Value) -> Option<Self> {
        match value {
            Value::Continuous(x) => x.try_into().ok(),
            Value::Discrete(_) => None,
        }
    }
}

impl SpaceValue for Value {
    fn as_value(&self) -> ValueRef<'_> {
        match self {
            Value::Discrete(x) => ValueRef::Discrete(*x),
            Value::Continuous(x) => ValueRef::Continuous(x),
        }
    }
    fn from_value(value: Value) -> Option<Self> {
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discrete_samples_stay_in_range_and_cover_it() {
        let space = Discrete::new(3);
        let mut rng = NpRandom::from_seed(1);
        let mut seen = [0usize; 3];
        for _ in 0..300 {
            let x = space.sample(&mut rng);
            assert!(space.contains(x));
            seen[x] += 1;
        }
        assert!(seen.iter().all(|&c| c > 50), "{seen:?}");
        assert!(!space.contains(3));
    }

    #[test]
    fn box_contains_sample_and_clip() {
        let space = BoxSpace::new(vec![-1.0, 0.0], vec![1.0, 2.0]).unwrap();
        let mut rng = NpRandom::from_seed(2);
        for _ in 0..100 {
            assert!(space.contains(&space.sample(&mut rng)));
        }
        assert!(!space.contains(&[0.0]));
        assert!(!space.contains(&[0.0, f32::NAN]));
        assert!(!space.contains(&[1.5, 1.0]));
        let mut x = [3.0, -1.0];
        space.clip(&mut x);
        assert_eq!(x, [1.0, 0.0]);
    }

    #[test]
    fn unbounded_boxes_sample_finite_values() {
        let space = BoxSpace::new(
            vec![f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY],
            vec![f32::INFINITY, f32::INFINITY, 0.0],
        )
        .unwrap();
        let mut rng = NpRandom::from_seed(3);
        for _ in 0..100 {
            let x = space.sample(&mut rng);
            assert!(x.iter().all(|v| v.is_finite()));
            assert!(space.contains(&x));
        }
    }

    #[test]
    fn malformed_spaces_are_reported() {
        assert!(BoxSpace::new(vec![1.0], vec![0.0]).is_none());
        assert!(BoxSpace::new(vec![0.0, 0.0], vec![1.0]).is_none());
        assert!(Space::Discrete(Discrete::new(0)).validate().is_err());
        let bad = Space::Box(BoxSpace {
            low: vec![f32::NAN],
            high: vec![1.0],
            shape: vec![1],
        });
        assert!(bad.validate().is_err());
    }

    #[test]
    fn values_round_trip() {
        assert_eq!(usize::from_value(Value::Discrete(2)), Some(2));
        assert_eq!(usize::from_value(Value::Continuous(vec![1.0])), None);
        assert_eq!(
            <[f32; 2]>::from_value(Value::Continuous(vec![1.0, 2.0])),
            Some([1.0, 2.0])
        );
        assert_eq!(<[f32; 2]>::from_value(Value::Continuous(vec![1.0])), None);
        let mut out = [0.0; 2];
        [3.0f32, 4.0].write_flat(&mut out).unwrap();
        assert_eq!(out, [3.0, 4.0]);
        // An observation of the wrong length is an error naming both lengths, never a panic.
        let err = vec![1.0f32; 3].write_flat(&mut out).unwrap_err();
        assert_eq!(
            err,
            crate::EnvError::ObservationShape {
                expected: 2,
                got: 3
            }
        );
        assert!(vec![1.0f32].write_flat(&mut out).is_err());
        assert!(5usize.write_flat(&mut out).is_err());
        let mut one = [0.0];
        5usize.write_flat(&mut one).unwrap();
        assert_eq!(one, [5.0]);
    }
}
