//! NumPy's random generator, ported exactly: `SeedSequence`, the `PCG64` bit generator and the
//! `Generator` methods Gymnasium uses (`uniform`, `integers`, `random`).
//!
//! Gymnasium seeds every environment with `np.random.Generator(PCG64(SeedSequence(seed)))`
//! (`gymnasium.utils.seeding.np_random`). To give the same initial states for the same seed,
//! [`NpRandom::from_seed`] reproduces that construction bit for bit; the unit tests compare it
//! with outputs recorded from NumPy.
//!
//! ```
//! use cinder_env::rng::NpRandom;
//!
//! // np.random.default_rng(0).random() == 0.6369616873214543
//! let mut rng = NpRandom::from_seed(0);
//! assert_eq!(rng.next_f64(), 0.6369616873214543);
//! ```

use serde::{Deserialize, Serialize};

/// NumPy's `SeedSequence` (pool size 4), enough to turn a non-negative integer seed into the
/// initial state of a bit generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedSequence {
    pool: [u32; 4],
}

const POOL_SIZE: usize = 4;
const INIT_A: u32 = 0x43b0_d7e5;
const MULT_A: u32 = 0x931e_8875;
const INIT_B: u32 = 0x8b51_f9dd;
const MULT_B: u32 = 0x58f3_8ded;
const MIX_MULT_L: u32 = 0xca01_f9dd;
const MIX_MULT_R: u32 = 0x4973_f715;
const XSHIFT: u32 = 16;

fn hashmix(value: u32, hash_const: &mut u32) -> u32 {
    let mut value = value ^ *hash_const;
    *hash_const = hash_const.wrapping_mul(MULT_A);
    value = value.wrapping_mul(*hash_const);
    value ^ (value >> XSHIFT)
}

fn mix(x: u32, y: u32) -> u32 {
    let result = MIX_MULT_L
        .wrapping_mul(x)
        .wrapping_sub(MIX_MULT_R.wrapping_mul(y));
    result ^ (result >> XSHIFT)
}

impl SeedSequence {
    /// `SeedSequence(seed)`: the seed is split into 32-bit words, least significant first
    /// (`[0]` for zero), and hashed into the pool.
    pub fn new(seed: u64) -> Self {
        let entropy: Vec<u32> = if seed >> 32 == 0 {
            vec![seed as u32]
        } else {
            vec![seed as u32, (seed >> 32) as u32]
        };
        let mut pool = [0u32; POOL_SIZE];
        let mut hash_const = INIT_A;
        for (i, slot) in pool.iter_mut().enumerate() {
            *slot = hashmix(entropy.get(i).copied().unwrap_or(0), &mut hash_const);
        }
        for i_src in 0..POOL_SIZE {
            for i_dst in 0..POOL_SIZE {
                if i_src != i_dst {
                    let h = hashmix(pool[i_src], &mut hash_const);
                    pool[i_dst] = mix(pool[i_dst], h);
                }
            }
        }
        for &word in entropy.iter().skip(POOL_SIZE) {
            for slot in pool.iter_mut() {
                let h = hashmix(word, &mut hash_const);
                *slot = mix(*slot, h);
            }
        }
        Self { pool }
    }

    /// `generate_state(n_words, np.uint32)`.
    pub fn generate_state_u32(&self, n_words: usize) -> Vec<u32> {
        let mut hash_const = INIT_B;
        (0..n_words)
            .map(|i| {
                let mut value = self.pool[i % POOL_SIZE] ^ hash_const;
                hash_const = hash_const.wrapping_mul(MULT_B);
                value = value.wrapping_mul(hash_const);
                value ^ (value >> XSHIFT)
            })
            .collect()
    }

    /// `generate_state(n_words, np.uint64)`: pairs of 32-bit words, little-endian.
    pub fn generate_state_u64(&self, n_words: usize) -> Vec<u64> {
        self.generate_state_u32(2 * n_words)
            .chunks_exact(2)
            .map(|w| u64::from(w[0]) | (u64::from(w[1]) << 32))
            .collect()
    }
}

/// 128-bit integers as decimal strings in serialised form: JSON numbers cannot hold them.
mod u128_text {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(value: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(D::Error::custom)
    }
}

const PCG_MULT: u128 = 0x2360_ED05_1FC6_5DA4_4385_DF64_9FCC_F645;

/// NumPy's `PCG64` bit generator (PCG XSL-RR 128/64), including its buffered 32-bit output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pcg64 {
    #[serde(with = "u128_text")]
    state: u128,
    #[serde(with = "u128_text")]
    inc: u128,
    /// The high half of the last 64-bit output, kept for the next 32-bit draw.
    buffered_u32: Option<u32>,
}

impl Pcg64 {
    /// `PCG64(SeedSequence(seed))`.
    pub fn from_seed_sequence(seq: &SeedSequence) -> Self {
        let words = seq.generate_state_u64(4);
        let initstate = (u128::from(words[0]) << 64) | u128::from(words[1]);
        let initseq = (u128::from(words[2]) << 64) | u128::from(words[3]);
        Self::from_state_inc(initstate, initseq)
    }

    /// PCG's `srandom_r(initstate, initseq)`.
    pub fn from_state_inc(initstate: u128, initseq: u128) -> Self {
        let mut rng = Self {
            state: 0,
            inc: (initseq << 1) | 1,
            buffered_u32: None,
        };
        rng.advance_state();
        rng.state = rng.state.wrapping_add(initstate);
        rng.advance_state();
        rng
    }

    /// The 128-bit state and increment (NumPy's `bit_generator.state["state"]`).
    pub fn state(&self) -> (u128, u128) {
        (self.state, self.inc)
    }

    #[inline]
    fn advance_state(&mut self) {
        self.state = self.state.wrapping_mul(PCG_MULT).wrapping_add(self.inc);
    }

    /// `random_raw()`: the next 64-bit output.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.advance_state();
        let hi = (self.state >> 64) as u64;
        let lo = self.state as u64;
        (hi ^ lo).rotate_right((self.state >> 122) as u32)
    }

    /// The next 32-bit output: the low half of a fresh 64-bit output, then its high half.
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        if let Some(high) = self.buffered_u32.take() {
            return high;
        }
        let next = self.next_u64();
        self.buffered_u32 = Some((next >> 32) as u32);
        next as u32
    }
}

/// `np.random.Generator(PCG64(SeedSequence(seed)))`: the `np_random` of every Gymnasium env.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NpRandom {
    bit_generator: Pcg64,
}

impl NpRandom {
    /// What `gymnasium.utils.seeding.np_random(seed)` builds.
    pub fn from_seed(seed: u64) -> Self {
        Self {
            bit_generator: Pcg64::from_seed_sequence(&SeedSequence::new(seed)),
        }
    }

    /// A generator seeded from operating-system entropy, as NumPy does for `seed=None`.
    pub fn from_entropy() -> Self {
        Self::from_seed(entropy_seed())
    }

    /// The underlying bit generator.
    pub fn bit_generator(&mut self) -> &mut Pcg64 {
        &mut self.bit_generator
    }

    /// `random()`: a double in `[0, 1)` from the top 53 bits of a 64-bit output.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.bit_generator.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `uniform(low, high)`: `low + (high - low) * random()`, with `high - low` in f64 as NumPy
    /// computes it.
    #[inline]
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        let range = high - low;
        low + range * self.next_f64()
    }

    /// `integers(0, n)` for `1 <= n <= 2^32`: Lemire's bounded method on 32-bit draws, as
    /// NumPy's `random_bounded_uint64_fill` does for ranges that fit 32 bits.
    ///
    /// Returns 0 when `n <= 1`.
    pub fn integers(&mut self, n: u64) -> u64 {
        if n <= 1 {
            return 0;
        }
        let rng = n - 1;
        if rng > u64::from(u32::MAX) {
            return self.integers_u64(rng);
        }
        if rng == u64::from(u32::MAX) {
            return u64::from(self.bit_generator.next_u32());
        }
        let rng = rng as u32;
        let rng_excl = rng + 1;
        let mut m = u64::from(self.bit_generator.next_u32()) * u64::from(rng_excl);
        let mut leftover = m as u32;
        if leftover < rng_excl {
            let threshold = (u32::MAX - rng) % rng_excl;
            while leftover < threshold {
                m = u64::from(self.bit_generator.next_u32()) * u64::from(rng_excl);
                leftover = m as u32;
            }
        }
        m >> 32
    }

    /// Lemire's method on 64-bit draws (`bounded_lemire_uint64`), for ranges above 32 bits.
    fn integers_u64(&mut self, rng: u64) -> u64 {
        if rng == u64::MAX {
            return self.bit_generator.next_u64();
        }
        let rng_excl = rng + 1;
        let mut m = u128::from(self.bit_generator.next_u64()) * u128::from(rng_excl);
        let mut leftover = m as u64;
        if leftover < rng_excl {
            let threshold = (u64::MAX - rng) % rng_excl;
            while leftover < threshold {
                m = u128::from(self.bit_generator.next_u64()) * u128::from(rng_excl);
                leftover = m as u64;
            }
        }
        (m >> 64) as u64
    }
}

/// The `np_random` of an environment: unset until the first reset, reseeded by `reset(Some(seed))`,
/// continued by `reset(None)` (Gymnasium's `Env.reset(seed=...)` semantics).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvRng(Option<NpRandom>);

impl EnvRng {
    /// Applies a reset's seed and returns the generator to draw the initial state from.
    pub fn reset(&mut self, seed: Option<u64>) -> &mut NpRandom {
        match seed {
            Some(seed) => self.0.insert(NpRandom::from_seed(seed)),
            None => self.0.get_or_insert_with(NpRandom::from_entropy),
        }
    }

    /// The generator, if the env has been reset at least once.
    pub fn get(&self) -> Option<&NpRandom> {
        self.0.as_ref()
    }
}

/// A 64-bit seed from the operating system's randomness (through std's hasher keys) mixed with
/// the clock, for unseeded first resets.
pub fn entropy_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    if let Ok(elapsed) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(elapsed.as_nanos());
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn reference() -> Value {
        serde_json::from_str(include_str!("../tests/data/numpy_pcg64_vectors.json")).unwrap()
    }

    fn u64s(v: &Value) -> Vec<u64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| match x {
                Value::String(s) => s.parse().unwrap(),
                other => other.as_u64().unwrap(),
            })
            .collect()
    }

    #[test]
    fn matches_numpy_seed_sequence_state_and_outputs() {
        let reference = reference();
        let seeds = reference["seeds"].as_array().unwrap();
        assert!(seeds.len() >= 8);
        for case in seeds {
            let seed = case["seed"].as_u64().unwrap();
            let seq = SeedSequence::new(seed);
            let words: Vec<u64> = seq
                .generate_state_u32(8)
                .into_iter()
                .map(u64::from)
                .collect();
            assert_eq!(
                words,
                u64s(&case["seedseq_generate_state_u32x8"]),
                "seed {seed}"
            );

            let pcg = Pcg64::from_seed_sequence(&seq);
            let (state, inc) = pcg.state();
            assert_eq!(state.to_string(), case["pcg64_state"].as_str().unwrap());
            assert_eq!(inc.to_string(), case["pcg64_inc"].as_str().unwrap());

            let mut raw = pcg.clone();
            let outputs: Vec<u64> = (0..8).map(|_| raw.next_u64()).collect();
            assert_eq!(outputs, u64s(&case["random_raw_u64"]), "seed {seed}");

            let mut rng = NpRandom::from_seed(seed);
            for expected in case["next_double"].as_array().unwrap() {
                assert_eq!(rng.next_f64(), expected.as_f64().unwrap(), "seed {seed}");
            }
            for (key, n) in [("integers_0_3_sequence", 3), ("integers_0_2_sequence", 2)] {
                let mut rng = NpRandom::from_seed(seed);
                let got: Vec<u64> = (0..8).map(|_| rng.integers(n)).collect();
                assert_eq!(got, u64s(&case[key]), "seed {seed} {key}");
            }
        }
    }

    #[test]
    fn matches_numpy_extra_vectors() {
        // Made with tools/numpy_vectors.py: large seeds, uniform ranges, mixed integer bounds.
        let reference: Value =
            serde_json::from_str(include_str!("../tests/data/numpy_extra_vectors.json")).unwrap();
        for case in reference["cases"].as_array().unwrap() {
            let seed = case["seed"].as_u64().unwrap();
            let mut rng = NpRandom::from_seed(seed);
            for draw in case["draws"].as_array().unwrap() {
                let kind = draw["kind"].as_str().unwrap();
                match kind {
                    "uniform" => {
                        let got = rng.uniform(
                            draw["low"].as_f64().unwrap(),
                            draw["high"].as_f64().unwrap(),
                        );
                        assert_eq!(got, draw["value"].as_f64().unwrap(), "seed {seed}");
                    }
                    "integers" => {
                        let got = rng.integers(draw["n"].as_u64().unwrap());
                        assert_eq!(got, draw["value"].as_u64().unwrap(), "seed {seed} {draw}");
                    }
                    other => panic!("unknown draw kind {other}"),
                }
            }
        }
    }

    #[test]
    fn entropy_seeds_differ() {
        assert_ne!(entropy_seed(), entropy_seed());
    }
}
