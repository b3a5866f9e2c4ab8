//! The character vocabulary of the sequence tasks: three special tokens, the digits, the
//! lowercase letters and the operators `+`, `=` and `:`.

use crate::error::{LmError, Result};

/// Padding (never predicted; masked out of attention and losses).
pub const PAD: u32 = 0;
/// Beginning of sequence: every prompt starts with it.
pub const BOS: u32 = 1;
/// End of sequence: a completion ends with it.
pub const EOS: u32 = 2;

/// The characters after the three special tokens, in token order (token `3 + i` is `CHARS[i]`).
const CHARS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz+=:";

/// The number of tokens: the three special tokens and the characters.
pub const VOCAB_SIZE: usize = 3 + CHARS.len();

/// The token of a character.
pub fn token(c: char) -> Result<u32> {
    CHARS
        .iter()
        .position(|&b| char::from(b) == c)
        .map(|i| 3 + i as u32)
        .ok_or(LmError::UnknownChar(c))
}

/// `BOS` followed by the tokens of `text`.
pub fn encode_prompt(text: &str) -> Result<Vec<u32>> {
    std::iter::once(Ok(BOS))
        .chain(text.chars().map(token))
        .collect()
}

/// The tokens of `text` followed by `EOS` (a completion as the policy should write it).
pub fn encode_completion(text: &str) -> Result<Vec<u32>> {
    text.chars()
        .map(token)
        .chain(std::iter::once(Ok(EOS)))
        .collect()
}

/// The text of `tokens` up to the first `EOS` (special tokens are skipped), and whether an `EOS`
/// ended it.
pub fn decode(tokens: &[u32]) -> Result<(String, bool)> {
    let mut text = String::with_capacity(tokens.len());
    for &t in tokens {
        match t {
            EOS => return Ok((text, true)),
            PAD | BOS => {}
            t if (t as usize) < VOCAB_SIZE => text.push(char::from(CHARS[t as usize - 3])),
            t => {
                return Err(LmError::UnknownToken {
                    token: t,
                    vocab_size: VOCAB_SIZE,
                });
            }
        }
    }
    Ok((text, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let p = encode_prompt("12+9=").unwrap();
        assert_eq!(p[0], BOS);
        assert_eq!(p.len(), 6);
        let c = encode_completion("abc").unwrap();
        assert_eq!(*c.last().unwrap(), EOS);
        assert_eq!(decode(&c).unwrap(), ("abc".to_string(), true));
        assert_eq!(decode(&p).unwrap(), ("12+9=".to_string(), false));
        assert!(matches!(token('A'), Err(LmError::UnknownChar('A'))));
        assert!(matches!(
            decode(&[99]),
            Err(LmError::UnknownToken { token: 99, .. })
        ));
        // Every character has a distinct token below VOCAB_SIZE.
        let mut seen = std::collections::HashSet::new();
        for &b in CHARS {
            let t = token(char::from(b)).unwrap();
            assert!((t as usize) < VOCAB_SIZE && t > EOS && seen.insert(t));
        }
    }
}
