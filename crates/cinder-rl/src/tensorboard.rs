//! TensorBoard event files: every run directory holds one beside `metrics.jsonl`, with every
//! scalar of every metric line, under the names CleanRL and Stable-Baselines3 users know.
//!
//! `tensorboard --logdir runs/` then shows a run's curves while it trains (the file is flushed
//! after every update) and compares runs side by side.
//!
//! # Names
//!
//! A metric line (one JSON object per update) becomes scalars at the step of its x-axis
//! (`global_step`, else `step`, else `iteration`):
//!
//! | `metrics.jsonl` key | TensorBoard tag |
//! |---|---|
//! | `episode_returns` (each) | `charts/episodic_return` |
//! | `episode_lengths` (each) | `charts/episodic_length` |
//! | `learning_rate` | `charts/learning_rate` |
//! | `steps_per_second` | `charts/SPS` |
//! | `policy_loss`, `value_loss`, `entropy`, `approx_kl`, `explained_variance` | `losses/<key>` |
//! | `clip_fraction` | `losses/clipfrac` |
//! | `iteration`, `global_step` | `time/iterations`, `time/total_timesteps` |
//! | `wall_seconds`, `timings.env` ... | `time/wall_seconds`, `time/env_seconds` ... |
//! | any other number or boolean (1/0) | `train/<key>` (`<phase>/<key>` on a line with a `phase`) |
//!
//! A nested object's numbers are named `<key>/<field>`; arrays of numbers give one point per
//! element at the line's step (as CleanRL logs each episode that ended); strings and `null`s
//! are left out.
//!
//! # Format
//!
//! The file is a sequence of TFRecords (little-endian length, its masked CRC-32C, the bytes,
//! their masked CRC-32C) holding `tensorflow.Event` protocol buffers: a first event with
//! `file_version = "brain.Event:2"`, then one event per scalar with a `Summary` of one
//! `simple_value`. The few protobuf fields are encoded here by hand.
//!
//! ```
//! use cinder_rl::tensorboard::{EventWriter, read_scalars};
//!
//! let dir = std::env::temp_dir().join(format!("cinder-tb-doc-{}", std::process::id()));
//! let mut writer = EventWriter::create(&dir)?;
//! writer.add_scalar("charts/episodic_return", 2048, 21.5, 0.0)?;
//! writer.flush()?;
//! let scalars = read_scalars(writer.path())?;
//! assert_eq!(scalars[0].tag, "charts/episodic_return");
//! assert_eq!((scalars[0].step, scalars[0].value), (2048, 21.5));
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), cinder_rl::RlError>(())
//! ```

use crate::error::{Result, RlError};
use serde_json::Value;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// What TensorBoard's file names contain.
pub const FILE_MARKER: &str = "tfevents";

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> RlError + '_ {
    move |source| RlError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Seconds since the Unix epoch, now.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// TensorBoard's masked CRC-32C of `bytes`.
fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Protobuf varint.
fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited protobuf field.
fn bytes_field(field: u32, bytes: &[u8], out: &mut Vec<u8>) {
    varint(u64::from(field << 3 | 2), out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// `Event { wall_time = 1 (double), step = 2 (int64), <payload> }`.
fn event(wall_time: f64, step: i64, payload: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(1 << 3 | 1);
    out.extend_from_slice(&wall_time.to_le_bytes());
    out.push(2 << 3);
    varint(step as u64, &mut out);
    payload(&mut out);
    out
}

/// `Event.summary (5) = Summary { value (1) = Value { tag (1), simple_value (2, float) } }`.
fn scalar_event(tag: &str, step: i64, value: f32, wall_time: f64) -> Vec<u8> {
    event(wall_time, step, |out| {
        let mut value_msg = Vec::with_capacity(tag.len() + 8);
        bytes_field(1, tag.as_bytes(), &mut value_msg);
        value_msg.push(2 << 3 | 5);
        value_msg.extend_from_slice(&value.to_le_bytes());
        let mut summary = Vec::with_capacity(value_msg.len() + 4);
        bytes_field(1, &value_msg, &mut summary);
        bytes_field(5, &summary, out);
    })
}

/// One TFRecord around `data`.
fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// Writes one TensorBoard event file.
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
    file: BufWriter<fs::File>,
}

impl EventWriter {
    /// Creates `dir` (and parents) and a new event file in it, named as TensorBoard expects
    /// (`events.out.tfevents.<unix seconds>.cinder`, with a counter if that name is taken).
    pub fn create(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let wall_time = now();
        let secs = wall_time as u64;
        let mut path = dir.join(format!("events.out.{FILE_MARKER}.{secs}.cinder"));
        let mut n = 1;
        while path.exists() {
            path = dir.join(format!("events.out.{FILE_MARKER}.{secs}.cinder.{n}"));
            n += 1;
        }
        let file = fs::File::create(&path).map_err(io_error(&path))?;
        let mut writer = Self {
            path,
            file: BufWriter::new(file),
        };
        let version = event(wall_time, 0, |out| {
            bytes_field(3, b"brain.Event:2", out);
        });
        writer.write_record(&version)?;
        Ok(writer)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_record(&mut self, data: &[u8]) -> Result<()> {
        self.file
            .write_all(&record(data))
            .map_err(io_error(&self.path))
    }

    /// Adds the scalar `value` of `tag` at `step` (recorded at `wall_time`, Unix seconds).
    pub fn add_scalar(&mut self, tag: &str, step: i64, value: f32, wall_time: f64) -> Result<()> {
        self.write_record(&scalar_event(tag, step, value, wall_time))
    }

    /// Adds every scalar of one metric line (see the [module docs](self) for the names).
    pub fn add_metrics(&mut self, line: &Value, wall_time: f64) -> Result<()> {
        for (tag, step, value) in metric_scalars(line) {
            self.add_scalar(&tag, step, value, wall_time)?;
        }
        Ok(())
    }

    /// Writes what is buffered to the file, so that TensorBoard sees it.
    pub fn flush(&mut self) -> Result<()> {
        self.file.flush().map_err(io_error(&self.path))
    }
}

/// The TensorBoard name of a metric key (see the [module docs](self)), `prefix` being `train`
/// or the line's phase.
fn tag_for(key: &str, prefix: &str) -> String {
    match key {
        "episode_returns" => "charts/episodic_return".into(),
        "episode_lengths" => "charts/episodic_length".into(),
        "learning_rate" => "charts/learning_rate".into(),
        "steps_per_second" => "charts/SPS".into(),
        "policy_loss" | "value_loss" | "entropy" | "approx_kl" | "explained_variance" => {
            format!("losses/{key}")
        }
        "clip_fraction" => "losses/clipfrac".into(),
        "iteration" => "time/iterations".into(),
        "global_step" => "time/total_timesteps".into(),
        "wall_seconds" => "time/wall_seconds".into(),
        _ => format!("{prefix}/{key}"),
    }
}

/// The scalars of one metric line: `(tag, step, value)`, in the line's key order (see the
/// [module docs](self)). A line without a step (`global_step`, `step` or `iteration`) gives
/// none.
pub fn metric_scalars(line: &Value) -> Vec<(String, i64, f32)> {
    let Some(object) = line.as_object() else {
        return Vec::new();
    };
    let step = ["global_step", "step", "iteration"]
        .iter()
        .find_map(|k| object.get(*k).and_then(Value::as_i64));
    let Some(step) = step else {
        return Vec::new();
    };
    let prefix = object
        .get("phase")
        .and_then(Value::as_str)
        .unwrap_or("train");
    let mut out = Vec::new();
    for (key, value) in object {
        if key == "timings" {
            if let Some(timings) = value.as_object() {
                for (phase, seconds) in timings {
                    if let Some(s) = seconds.as_f64() {
                        out.push((format!("time/{phase}_seconds"), step, s as f32));
                    }
                }
            }
            continue;
        }
        push_value(&tag_for(key, prefix), value, step, &mut out);
    }
    out
}

fn push_value(tag: &str, value: &Value, step: i64, out: &mut Vec<(String, i64, f32)>) {
    match value {
        Value::Number(n) => {
            if let Some(v) = n.as_f64() {
                out.push((tag.to_string(), step, v as f32));
            }
        }
        Value::Bool(b) => out.push((tag.to_string(), step, f32::from(u8::from(*b)))),
        Value::Array(items) => {
            for item in items {
                if let Some(v) = item.as_f64() {
                    out.push((tag.to_string(), step, v as f32));
                }
            }
        }
        Value::Object(fields) => {
            for (field, v) in fields {
                push_value(&format!("{tag}/{field}"), v, step, out);
            }
        }
        Value::String(_) | Value::Null => {}
    }
}

/// The `*tfevents*` files in `dir`, sorted by name.
pub fn event_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(io_error(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains(FILE_MARKER))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// One scalar read back from an event file.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    /// Its tag.
    pub tag: String,
    /// Its step.
    pub step: i64,
    /// Its value.
    pub value: f32,
}

/// Reads the scalars of an event file written by [`EventWriter`], checking every record's
/// checksums: an error names a truncated or corrupt record.
pub fn read_scalars(path: &Path) -> Result<Vec<Scalar>> {
    let bytes = fs::read(path).map_err(io_error(path))?;
    let corrupt = |offset: usize, what: &str| {
        RlError::InvalidInput(format!(
            "{}: {what} at byte {offset}: not a valid TensorBoard event file",
            path.display()
        ))
    };
    let mut scalars = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let header = bytes
            .get(at..at + 12)
            .ok_or_else(|| corrupt(at, "truncated header"))?;
        let (len_bytes, len_crc) = header.split_at(8);
        if masked_crc(len_bytes).to_le_bytes() != len_crc {
            return Err(corrupt(at, "length checksum mismatch"));
        }
        let len = u64::from_le_bytes(len_bytes.try_into().map_err(|_| corrupt(at, "length"))?);
        let start = at + 12;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| start.checked_add(l))
            .filter(|&e| e + 4 <= bytes.len())
            .ok_or_else(|| corrupt(at, "truncated record"))?;
        let data = &bytes[start..end];
        if masked_crc(data).to_le_bytes() != bytes[end..end + 4] {
            return Err(corrupt(at, "data checksum mismatch"));
        }
        parse_event(data, &mut scalars).ok_or_else(|| corrupt(at, "malformed event"))?;
        at = end + 4;
    }
    Ok(scalars)
}

/// A protobuf reader over the few wire types an `Event` uses.
struct Fields<'a> {
    bytes: &'a [u8],
}

enum Field<'a> {
    Varint(u64),
    /// Skipped (the wall time).
    Fixed64,
    Fixed32([u8; 4]),
    Bytes(&'a [u8]),
}

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.bytes.split_first()?;
            self.bytes = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        (self.bytes.len() >= n).then(|| {
            let (head, rest) = self.bytes.split_at(n);
            self.bytes = rest;
            head
        })
    }

    /// The next `(field number, value)`, `Some(None)` at the end, `None` on malformed input.
    fn next_field(&mut self) -> Option<Option<(u64, Field<'a>)>> {
        if self.bytes.is_empty() {
            return Some(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Field::Fixed64
            }
            2 => {
                let n = usize::try_from(self.varint()?).ok()?;
                Field::Bytes(self.take(n)?)
            }
            5 => Field::Fixed32(self.take(4)?.try_into().ok()?),
            _ => return None,
        };
        Some(Some((key >> 3, value)))
    }
}

fn parse_event(data: &[u8], out: &mut Vec<Scalar>) -> Option<()> {
    let mut fields = Fields { bytes: data };
    let mut step = 0i64;
    let mut summary = None;
    while let Some((number, field)) = fields.next_field()? {
        match (number, field) {
            (2, Field::Varint(v)) => step = v as i64,
            (5, Field::Bytes(b)) => summary = Some(b),
            _ => {}
        }
    }
    let Some(summary) = summary else {
        return Some(());
    };
    let mut values = Fields { bytes: summary };
    while let Some((number, field)) = values.next_field()? {
        let (1, Field::Bytes(value)) = (number, field) else {
            continue;
        };
        let mut parts = Fields { bytes: value };
        let (mut tag, mut simple) = (None, None);
        while let Some((n, f)) = parts.next_field()? {
            match (n, f) {
                (1, Field::Bytes(t)) => tag = Some(String::from_utf8(t.to_vec()).ok()?),
                (2, Field::Fixed32(v)) => simple = Some(f32::from_le_bytes(v)),
                _ => {}
            }
        }
        if let (Some(tag), Some(value)) = (tag, simple) {
            out.push(Scalar { tag, step, value });
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masked_crc_matches_tensorflow() {
        // CRC-32C("123456789") = 0xE3069283 (the standard check value); TensorFlow masks it
        // as ((crc >> 15) | (crc << 17)) + 0xa282ead8 = 0xC78AB0E5 (computed by hand, mod 2³²).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(masked_crc(b"123456789"), 0xC78A_B0E5);
    }

    #[test]
    fn protobuf_encoding_of_a_scalar_is_byte_exact() {
        // Event { wall_time: 0.0, step: 300, summary { value { tag: "a/b", simple_value: 1.5 } } }
        // as protoc encodes it (field keys 0x09, 0x10, 0x2a; Value keys 0x0a, 0x15).
        let expected: Vec<u8> = [
            &[0x09][..],
            &[0; 8],
            &[0x10, 0xac, 0x02],
            &[0x2a, 0x0c, 0x0a, 0x0a, 0x0a, 0x03, b'a', b'/', b'b', 0x15],
            &1.5f32.to_le_bytes(),
        ]
        .concat();
        assert_eq!(scalar_event("a/b", 300, 1.5, 0.0), expected);
    }

    #[test]
    fn metric_lines_map_to_cleanrl_names() {
        let line = json!({
            "iteration": 3, "global_step": 1536, "learning_rate": 2.5e-4, "policy_loss": -0.01,
            "clip_fraction": 0.1, "grad_norm": 0.5, "kl_coef": null, "line_search_success": true,
            "steps_per_second": 9000.0, "timings": {"env": 0.1, "inference": 0.2, "update": 0.3},
            "wall_seconds": 1.0, "episode_returns": [10.0, 12.0], "episode_lengths": [10, 12]
        });
        let scalars = metric_scalars(&line);
        let tags: Vec<&str> = scalars.iter().map(|(t, _, _)| t.as_str()).collect();
        for tag in [
            "time/iterations",
            "time/total_timesteps",
            "charts/learning_rate",
            "losses/policy_loss",
            "losses/clipfrac",
            "train/grad_norm",
            "train/line_search_success",
            "charts/SPS",
            "time/env_seconds",
            "time/update_seconds",
            "time/wall_seconds",
            "charts/episodic_return",
            "charts/episodic_length",
        ] {
            assert!(tags.contains(&tag), "{tag} missing from {tags:?}");
        }
        assert!(
            !tags.iter().any(|t| t.contains("kl_coef")),
            "null is left out"
        );
        assert!(scalars.iter().all(|(_, step, _)| *step == 1536));
        let returns: Vec<f32> = scalars
            .iter()
            .filter(|(t, _, _)| t == "charts/episodic_return")
            .map(|(_, _, v)| *v)
            .collect();
        assert_eq!(returns, [10.0, 12.0]);
        // A sequence run's line: its phase names the tags, its `step` is the axis.
        let sft = metric_scalars(&json!({"phase": "sft", "iteration": 7, "step": 5, "loss": 0.3}));
        assert!(sft.contains(&("sft/loss".into(), 5, 0.3)), "{sft:?}");
    }

    #[test]
    fn written_scalars_read_back_and_corruption_is_named() {
        let dir = std::env::temp_dir().join(format!("cinder-tb-unit-{}", std::process::id()));
        let mut writer = EventWriter::create(&dir).unwrap();
        for step in 0..5 {
            writer
                .add_scalar("losses/value_loss", step * 128, step as f32 * 0.5, 1.0)
                .unwrap();
        }
        writer.flush().unwrap();
        let path = writer.path().to_path_buf();
        assert_eq!(event_files(&dir).unwrap(), std::slice::from_ref(&path));
        let scalars = read_scalars(&path).unwrap();
        assert_eq!(scalars.len(), 5);
        assert_eq!(scalars[4].step, 512);
        assert_eq!(scalars[4].value, 2.0);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 6;
        bytes[last] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let err = read_scalars(&path).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
        fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let err = read_scalars(&path).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
        fs::remove_dir_all(&dir).ok();
    }
}
