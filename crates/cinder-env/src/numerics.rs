//! The floating-point operations Gymnasium's Python code actually performs, where they differ
//! from the obvious Rust expression. Each one is needed for bit-for-bit agreement.
//!
//! - `x**2` on a runtime NumPy/Python float calls the C library's `pow(x, 2.0)`, which glibc does
//!   not always round like `x * x` (about 1 input in 1000 differs by 1 ulp). Rust's `powi(2)` and
//!   LLVM's folding of `pow(x, 2.0)` both give `x * x`, so [`pow2`] calls libm through FFI with an
//!   exponent the optimiser cannot see.
//! - NumPy's float32 `sin`/`cos` are its own SIMD polynomial (Cody-Waite reduction, FMA), not
//!   libm's `sinf`/`cosf`; [`np_sin_f32`] and [`np_cos_f32`] reproduce them. Acrobot's reset
//!   observation goes through them.
//!
//! f64 `sin`/`cos` are Rust's `f64::sin`/`f64::cos`, which call the same glibc functions NumPy's
//! float64 loops call on x86-64 Linux.

use std::hint::black_box;

unsafe extern "C" {
    #[link_name = "pow"]
    fn libm_pow(x: f64, y: f64) -> f64;
    #[link_name = "powf"]
    fn libm_powf(x: f32, y: f32) -> f32;
    #[link_name = "cosf"]
    fn libm_cosf(x: f32) -> f32;
    #[link_name = "sinf"]
    fn libm_sinf(x: f32) -> f32;
}

/// `x ** 2` for a float64 as Python/NumPy compute it: libm `pow(x, 2.0)`, bit for bit.
///
/// Most calls skip libm: `p = x * x` rounds the exact square `x² = p + e` (`e` exact by Dekker's
/// product). glibc's `pow` is within 0.54 ulp of `x²` (the bound its source states for the
/// algorithm it has used since 2.28); when `|e|` is at most 0.45 ulp of `p`, every other double
/// is at least 0.55 ulp from `x²`, so `pow` can only return `p`. Otherwise (`x²` near a rounding
/// boundary, a power of two, outside the normal range, not finite) libm decides.
#[inline]
pub fn pow2(x: f64) -> f64 {
    const MANTISSA: u64 = (1 << 52) - 1;
    let p = x * x;
    let bits = p.to_bits();
    let exponent = bits >> 52;
    // 2^-822 <= p < 2^1023 (Dekker's product is exact and the ulp normal), p not a power of two.
    if (201..0x7fe).contains(&exponent) && bits & MANTISSA != 0 {
        // Dekker: x = hi + lo with 26-bit halves; each partial product and sum below is exact.
        let c = 134_217_729.0 * x; // 2^27 + 1
        let hi = c - (c - x);
        let lo = x - hi;
        let e = ((hi * hi - p) + 2.0 * hi * lo) + lo * lo;
        let ulp = f64::from_bits((exponent - 52) << 52);
        if e.abs() <= 0.45 * ulp {
            return p;
        }
    }
    // SAFETY: `pow` is a pure C function of two doubles.
    unsafe { libm_pow(x, black_box(2.0)) }
}

/// `x ** 2` for a float32 as NumPy computes it: libm `powf(x, 2.0f)`.
#[inline]
pub fn powf2(x: f32) -> f32 {
    // SAFETY: `powf` is a pure C function of two floats.
    unsafe { libm_powf(x, black_box(2.0)) }
}

// NumPy's constants (loops_trigonometric.dispatch.cpp), given by their bits.
const TWO_OVER_PI: f32 = f32::from_bits(0x3f22_f983); // 0x1.45f306p-1
const PIO2_HIGH: f32 = f32::from_bits(0xbfc9_0fd8); // -0x1.921fb0p+00
const PIO2_MED: f32 = f32::from_bits(0xb4a8_885a); // -0x1.5110b4p-22
const PIO2_LOW: f32 = f32::from_bits(0xa7c2_34c4); // -0x1.846988p-48
const RINT_MAGIC: f32 = 12_582_912.0; // 0x1.8p+23
const MAX_CODY_SIN: f32 = f32::from_bits(0x47e5_5dff); // 117435.992f
const MAX_CODY_COS: f32 = f32::from_bits(0x478b_9a08); // 71476.0625f

#[inline]
fn cos_poly(x2: f32) -> f32 {
    let r = f32::from_bits(0x37cc_730b).mul_add(x2, f32::from_bits(0xbab6_036e)); // 0x1.98e616p-16, -0x1.6c06dcp-10
    let r = r.mul_add(x2, f32::from_bits(0x3d2a_aa9e)); // 0x1.55553cp-05
    let r = r.mul_add(x2, -0.5);
    r.mul_add(x2, 1.0)
}

#[inline]
fn sin_poly(x: f32, x2: f32) -> f32 {
    let r = f32::from_bits(0x363e_9dde).mul_add(x2, f32::from_bits(0xb950_35dd)); // 0x1.7d3bbcp-19, -0x1.a06bbap-13
    let r = r.mul_add(x2, f32::from_bits(0x3c08_88cd)); // 0x1.11119ap-07
    let r = r.mul_add(x2, f32::from_bits(0xbe2a_aaab)); // -0x1.555556p-03
    let r = r.mul_add(x2, 0.0);
    r.mul_add(x, x)
}

#[derive(Clone, Copy, PartialEq)]
enum Trig {
    Sin,
    Cos,
}

fn np_trig_f32(x: f32, op: Trig) -> f32 {
    if x.is_nan() {
        return f32::NAN;
    }
    let max = if op == Trig::Cos {
        MAX_CODY_COS
    } else {
        MAX_CODY_SIN
    };
    if x.abs() > max {
        // SAFETY: pure C functions of one float.
        return unsafe {
            match op {
                Trig::Cos => libm_cosf(x),
                Trig::Sin => libm_sinf(x),
            }
        };
    }
    // Round to nearest even through the 1.5 * 2^23 trick. NumPy writes a multiply then an add,
    // but its compiler contracts them into one FMA (matching NumPy on large inputs needs it).
    let quadrant = x.mul_add(TWO_OVER_PI, RINT_MAGIC) - RINT_MAGIC;
    let reduced = quadrant.mul_add(PIO2_HIGH, x);
    let reduced = quadrant.mul_add(PIO2_MED, reduced);
    let reduced = quadrant.mul_add(PIO2_LOW, reduced);
    let reduced2 = reduced * reduced;
    let mut iquadrant = quadrant as i32;
    if op == Trig::Cos {
        iquadrant += 1;
    }
    let value = if iquadrant & 1 == 0 {
        sin_poly(reduced, reduced2)
    } else {
        cos_poly(reduced2)
    };
    if iquadrant & 2 == 2 {
        0.0 - value
    } else {
        value
    }
}

/// NumPy's float32 `np.cos` (its SIMD algorithm on x86-64 with FMA), bit for bit.
pub fn np_cos_f32(x: f32) -> f32 {
    np_trig_f32(x, Trig::Cos)
}

/// NumPy's float32 `np.sin` (its SIMD algorithm on x86-64 with FMA), bit for bit.
pub fn np_sin_f32(x: f32) -> f32 {
    np_trig_f32(x, Trig::Sin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_have_numpy_bits() {
        assert_eq!(TWO_OVER_PI.to_bits(), 0x3f22_f983);
        assert_eq!(PIO2_HIGH.to_bits(), 0xbfc9_0fd8);
        assert_eq!(PIO2_MED.to_bits(), 0xb4a8_885a);
        assert_eq!(PIO2_LOW.to_bits(), 0xa7c2_34c4);
        assert_eq!(MAX_CODY_SIN.to_bits(), 0x47e5_5dff);
        assert_eq!(MAX_CODY_COS.to_bits(), 0x478b_9a08);
    }

    #[test]
    fn float32_trig_matches_numpy() {
        // Made with tools/numpy_vectors.py --trig: [x, np.sin(np.float32(x)), np.cos(...)] as bits.
        let data: Vec<[u32; 3]> =
            serde_json::from_str(include_str!("../tests/data/numpy_f32_trig.json")).unwrap();
        assert!(data.len() > 1000);
        for [x, sin, cos] in data {
            let x = f32::from_bits(x);
            assert_eq!(np_sin_f32(x).to_bits(), sin, "sin({x:e})");
            assert_eq!(np_cos_f32(x).to_bits(), cos, "cos({x:e})");
        }
    }

    #[test]
    fn pow2_is_python_float_power_not_a_product() {
        // Known answers from CPython (`x ** 2` on a float calls glibc's pow), as bits
        // [x, x ** 2]: inputs where pow rounds differently from x * x (found with
        // `random.seed(5); random.uniform(-10, 10)` until `x ** 2 != x * x`).
        let python: [[u64; 2]; 6] = [
            [0xc010db07b8dd0d73, 0x4031c1c5d522784f],
            [0xbf7eb1f870250800, 0x3f0d718f9e26d470],
            [0xc003ace394be80f0, 0x401831e8aae78413],
            [0x3fbec11a0a7e0480, 0x3f8d8e9e15e00996],
            [0x401c0ecabcc233bc, 0x404899e9a0bd77e3],
            [0x401539b909de5184, 0x403c2855f8a9da3b],
        ];
        for [x, square] in python {
            let x = f64::from_bits(x);
            assert_eq!(pow2(x).to_bits(), square, "pow2({x:e})");
            assert_ne!((x * x).to_bits(), square, "{x:e}: x * x would do here");
        }
        // Everywhere else: bit-equal to libm's pow with an exponent the optimiser cannot fold,
        // over magnitudes from 1e-300 to 1e300 (the fast path's edges included) and densely
        // over the envs' working ranges.
        let mut state = 0x1234_5678_u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut differ = 0;
        for i in 0..1_000_000 {
            let u = next();
            let x = match i % 4 {
                0 => u * 20.0 - 10.0,
                1 => u * 80.0 - 40.0,
                2 => (u - 0.5) * 10f64.powf(next() * 600.0 - 300.0),
                _ => f64::from_bits(next().to_bits() ^ (u64::from(i % 7 == 0) << 63)),
            };
            let libm = x.powf(black_box(2.0));
            assert_eq!(pow2(x).to_bits(), libm.to_bits(), "{x:e}");
            differ += usize::from(libm.to_bits() != (x * x).to_bits());
        }
        // The slow path is exercised: some squares do round differently.
        assert!(differ > 10, "{differ}");
        for x in [
            0.0,
            -0.0,
            1.0,
            -2.0,
            0.5,
            f64::MIN_POSITIVE,
            1e-160,
            1e160,
            1e200,
        ] {
            assert_eq!(pow2(x).to_bits(), x.powf(black_box(2.0)).to_bits(), "{x:e}");
        }
        assert!(pow2(f64::NAN).is_nan());
        assert_eq!(pow2(f64::NEG_INFINITY), f64::INFINITY);
    }
}
