//! Checkpoint files: one file per checkpoint, written atomically, checked before it is decoded.
//!
//! A checkpoint holds a JSON header (what wrote it, the policy's architecture, the trainer's
//! state: counters, random generators, env states) and binary sections (the policy and the
//! optimiser, recorded with Burn's [`BinBytesRecorder`] at full precision). Layout:
//!
//! ```text
//! b"CINDERCK" | format version (u32 LE) | header length (u64 LE) | header JSON | sections...
//! ```
//!
//! The header lists each section's name, length and CRC-32, so that a truncated or corrupted
//! file is reported as such instead of being fed to the decoder. Files are written to a
//! temporary name in the same folder, flushed to disk, then renamed over the old checkpoint: a
//! crash mid-write leaves the last good checkpoint intact.

use crate::error::{Result, RlError};
use crate::policy::{ActorCritic, ActorCriticConfig};
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Record, Recorder};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"CINDERCK";
const FORMAT_VERSION: u32 = 1;

/// Where a section sits in the file and how to check it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SectionEntry {
    name: String,
    len: u64,
    crc32: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct FileHeader {
    sections: Vec<SectionEntry>,
    meta: serde_json::Value,
}

/// A checkpoint in memory: its metadata and its named binary sections.
#[derive(Debug, Clone, Default)]
pub struct Checkpoint {
    /// Free-form metadata (algorithm, architecture, trainer state), stored as JSON.
    pub meta: serde_json::Value,
    sections: Vec<(String, Vec<u8>)>,
}

fn corrupt(path: &Path, what: impl std::fmt::Display) -> RlError {
    RlError::Checkpoint {
        path: path.to_path_buf(),
        reason: what.to_string(),
    }
}

impl Checkpoint {
    /// An empty checkpoint with `meta`.
    pub fn new(meta: serde_json::Value) -> Self {
        Self {
            meta,
            sections: Vec::new(),
        }
    }

    /// An empty checkpoint whose metadata is `meta` (a learner's header: algorithm,
    /// configuration, policy architecture, trainer state) serialised to JSON; `path` is where it
    /// will be written, named in the error if `meta` does not serialise.
    pub fn with_meta(path: &Path, meta: &impl Serialize) -> Result<Self> {
        let meta = serde_json::to_value(meta)
            .map_err(|e| corrupt(path, format!("the trainer state does not serialise: {e}")))?;
        Ok(Self::new(meta))
    }

    /// The metadata read back as a learner's header `T`, after checking that its `algorithm`
    /// field is `algorithm`. `learner` names the learner in errors, as a noun phrase ("PPO",
    /// "a policy-gradient learner"): a checkpoint of another algorithm is
    /// [`RlError::CheckpointMismatch`], a header that does not parse [`RlError::Checkpoint`].
    pub fn meta_for<T: DeserializeOwned>(
        &self,
        path: &Path,
        algorithm: &str,
        learner: &str,
    ) -> Result<T> {
        let written_by = self.meta.get("algorithm").and_then(|a| a.as_str());
        if written_by != Some(algorithm) {
            return Err(RlError::CheckpointMismatch {
                path: path.to_path_buf(),
                reason: format!("it was written by {written_by:?}, not by {learner}"),
            });
        }
        T::deserialize(&self.meta)
            .map_err(|e| corrupt(path, format!("unreadable header for {learner}: {e}")))
    }

    /// Adds (or replaces) the section `name` holding a Burn record (a module's or an
    /// optimiser's), encoded by [`record_to_bytes`].
    pub fn put_record<B: Backend, R: Record<B>>(&mut self, name: &str, record: R) -> Result<()> {
        self.put(name, record_to_bytes::<B, R>(record)?);
        Ok(())
    }

    /// Decodes the section `name` as a Burn record on `device` (`what` names it in errors).
    pub fn record<B: Backend, R: Record<B>>(
        &self,
        path: &Path,
        name: &str,
        what: &str,
        device: &B::Device,
    ) -> Result<R> {
        record_from_bytes::<B, R>(path, what, self.section(path, name)?, device)
    }

    /// Adds (or replaces) a binary section.
    pub fn put(&mut self, name: &str, bytes: Vec<u8>) {
        self.sections.retain(|(n, _)| n != name);
        self.sections.push((name.to_string(), bytes));
    }

    /// A section's bytes, or an error naming the missing section.
    pub fn section(&self, path: &Path, name: &str) -> Result<&[u8]> {
        self.sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
            .ok_or_else(|| corrupt(path, format!("it has no {name:?} section")))
    }

    /// Writes the checkpoint to `path` atomically (temporary file, flush, rename).
    pub fn write_atomic(&self, path: &Path) -> Result<()> {
        let header = FileHeader {
            sections: self
                .sections
                .iter()
                .map(|(name, bytes)| SectionEntry {
                    name: name.clone(),
                    len: bytes.len() as u64,
                    crc32: crc32fast::hash(bytes),
                })
                .collect(),
            meta: self.meta.clone(),
        };
        let header = serde_json::to_vec(&header).map_err(|e| corrupt(path, e))?;
        let mut bytes = Vec::with_capacity(
            20 + header.len() + self.sections.iter().map(|s| s.1.len()).sum::<usize>(),
        );
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&header);
        for (_, section) in &self.sections {
            bytes.extend_from_slice(section);
        }
        write_file_atomic(path, &bytes)
    }

    /// Reads and checks a checkpoint file: magic, version, header, and every section's length
    /// and CRC-32. Errors say what is wrong with the file.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = fs::read(path).map_err(|e| RlError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        if bytes.len() < 20 || &bytes[..8] != MAGIC {
            return Err(corrupt(
                path,
                "it is not a Cinder checkpoint (bad magic bytes)",
            ));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(corrupt(
                path,
                format!("format version {version}, this build reads version {FORMAT_VERSION}"),
            ));
        }
        let header_len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
        let header_end = 20usize
            .checked_add(usize::try_from(header_len).unwrap_or(usize::MAX))
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| corrupt(path, "the file is truncated (header)"))?;
        let header: FileHeader = serde_json::from_slice(&bytes[20..header_end])
            .map_err(|e| corrupt(path, format!("unreadable header: {e}")))?;
        let mut offset = header_end;
        let mut sections = Vec::with_capacity(header.sections.len());
        for entry in &header.sections {
            let end = usize::try_from(entry.len)
                .ok()
                .and_then(|len| offset.checked_add(len))
                .filter(|&end| end <= bytes.len())
                .ok_or_else(|| {
                    corrupt(
                        path,
                        format!("the file is truncated (section {:?})", entry.name),
                    )
                })?;
            let section = &bytes[offset..end];
            if crc32fast::hash(section) != entry.crc32 {
                return Err(corrupt(
                    path,
                    format!(
                        "section {:?} fails its checksum: the file is corrupt",
                        entry.name
                    ),
                ));
            }
            sections.push((entry.name.clone(), section.to_vec()));
            offset = end;
        }
        if offset != bytes.len() {
            return Err(corrupt(path, "trailing bytes after the last section"));
        }
        Ok(Self {
            meta: header.meta,
            sections,
        })
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so that
/// readers see either the old file or the new one, never a partial one.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| RlError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| corrupt(path, "the path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(".tmp");
    let tmp: PathBuf = path.with_file_name(tmp_name);
    let mut file = fs::File::create(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    fs::rename(&tmp, path).map_err(io)
}

/// Records a Burn record (a module's or an optimiser's) to bytes at full precision.
pub fn record_to_bytes<B: Backend, R: Record<B>>(record: R) -> Result<Vec<u8>> {
    BinBytesRecorder::<FullPrecisionSettings>::default()
        .record(record, ())
        .map_err(|e| RlError::Checkpoint {
            path: PathBuf::new(),
            reason: format!("cannot record: {e}"),
        })
}

/// Decodes a Burn record from bytes written by [`record_to_bytes`]. The bytes must have passed
/// the checksum of [`Checkpoint::read`]; a decoder failure (a record of another structure) is
/// reported as an error, not a panic.
pub fn record_from_bytes<B: Backend, R: Record<B>>(
    path: &Path,
    what: &str,
    bytes: &[u8],
    device: &B::Device,
) -> Result<R> {
    let bytes = bytes.to_vec();
    let device = device.clone();
    // Burn's byte recorder unwraps its decoder's result; keep a malformed section from
    // aborting the program.
    let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        BinBytesRecorder::<FullPrecisionSettings>::default().load::<R>(bytes, &device)
    }));
    match loaded {
        Ok(Ok(record)) => Ok(record),
        Ok(Err(e)) => Err(corrupt(path, format!("cannot decode the {what}: {e}"))),
        Err(_) => Err(corrupt(
            path,
            format!("cannot decode the {what}: it was written for another structure"),
        )),
    }
}

/// The shapes of a module's float parameters, in visiting order.
pub fn parameter_shapes<B: Backend, M: Module<B>>(module: &M) -> Vec<Vec<usize>> {
    struct Shapes(Vec<Vec<usize>>);
    impl<B: Backend> ModuleVisitor<B> for Shapes {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push(param.val().dims().to_vec());
        }
    }
    let mut shapes = Shapes(Vec::new());
    module.visit(&mut shapes);
    shapes.0
}

/// Loads `record` into `module` and checks that every parameter kept its shape (Burn's
/// `load_record` does not), so that a checkpoint of another architecture is an error.
pub fn load_module_checked<B: Backend, M: Module<B>>(
    path: &Path,
    module: M,
    record: M::Record,
) -> Result<M> {
    let expected = parameter_shapes(&module);
    let loaded = module.load_record(record);
    let got = parameter_shapes(&loaded);
    if expected != got {
        return Err(RlError::CheckpointMismatch {
            path: path.to_path_buf(),
            reason: format!("parameter shapes {got:?} where this policy has {expected:?}"),
        });
    }
    Ok(loaded)
}

/// The ids of a module's float parameters (the optimiser's state is keyed by them).
pub fn parameter_ids<B: Backend, M: Module<B>>(module: &M) -> Vec<ParamId> {
    struct Ids(Vec<ParamId>);
    impl<B: Backend> ModuleVisitor<B> for Ids {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push(param.id);
        }
    }
    let mut ids = Ids(Vec::new());
    module.visit(&mut ids);
    ids.0
}

/// The policy in a checkpoint's section `section` (`model`, or `reference` for a reference
/// policy), built with the architecture `policy`.
pub(crate) fn load_model<Bk: Backend>(
    path: &Path,
    checkpoint: &Checkpoint,
    section: &str,
    policy: &ActorCriticConfig,
    device: &Bk::Device,
) -> Result<ActorCritic<Bk>> {
    let skeleton = policy.init::<Bk>(device)?;
    let record = checkpoint.record::<Bk, _>(path, section, section, device)?;
    load_module_checked(path, skeleton, record)
}

/// Loads the policy of any Cinder training checkpoint (PPO, REINFORCE, GRPO...) on any backend,
/// for evaluation or deployment, with the architecture recorded in it. Errors name what is
/// wrong with the file.
pub fn load_policy<Bk: Backend>(
    path: impl AsRef<Path>,
    device: &Bk::Device,
) -> Result<(ActorCritic<Bk>, ActorCriticConfig)> {
    let path = path.as_ref();
    let checkpoint = Checkpoint::read(path)?;
    let policy = checkpoint
        .meta
        .get("policy")
        .ok_or_else(|| corrupt(path, "the header names no policy architecture"))
        .and_then(|p| {
            ActorCriticConfig::deserialize(p)
                .map_err(|e| corrupt(path, format!("unreadable policy architecture: {e}")))
        })?;
    let model = load_model::<Bk>(path, &checkpoint, "model", &policy, device)?;
    Ok((model, policy))
}

/// Loads a checkpoint's weights into an existing policy `model`, checking that the
/// architectures agree (every parameter keeps its shape).
pub fn load_policy_into<Bk: Backend>(
    path: impl AsRef<Path>,
    model: ActorCritic<Bk>,
    device: &Bk::Device,
) -> Result<ActorCritic<Bk>> {
    let path = path.as_ref();
    let checkpoint = Checkpoint::read(path)?;
    let record = checkpoint.record::<Bk, _>(path, "model", "policy", device)?;
    load_module_checked(path, model, record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cinder-ckpt-{name}-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn round_trip_and_corruption_is_detected() {
        let dir = tmp_dir("rt");
        let path = dir.join("a.ckpt");
        let mut ck = Checkpoint::new(serde_json::json!({"update": 3}));
        ck.put("model", vec![1, 2, 3, 4, 5]);
        ck.put("optimizer", vec![9; 100]);
        ck.write_atomic(&path).unwrap();
        let back = Checkpoint::read(&path).unwrap();
        assert_eq!(back.meta["update"], 3);
        assert_eq!(back.section(&path, "model").unwrap(), &[1, 2, 3, 4, 5]);
        assert!(back.section(&path, "nope").is_err());

        let good = fs::read(&path).unwrap();
        // Flip one byte of the last section.
        let mut bad = good.clone();
        let n = bad.len();
        bad[n - 1] ^= 0xff;
        fs::write(&path, &bad).unwrap();
        let err = Checkpoint::read(&path).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
        // Truncate.
        fs::write(&path, &good[..good.len() - 10]).unwrap();
        let err = Checkpoint::read(&path).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
        // Not a checkpoint at all.
        fs::write(&path, b"hello world, this is not a checkpoint").unwrap();
        let err = Checkpoint::read(&path).unwrap_err().to_string();
        assert!(err.contains("not a Cinder checkpoint"), "{err}");
        // Missing file.
        let err = Checkpoint::read(&dir.join("missing.ckpt"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.ckpt"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn learner_headers_are_checked_for_their_algorithm() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Header {
            algorithm: String,
            iteration: u64,
        }
        let path = Path::new("run/checkpoint.ckpt");
        let header = Header {
            algorithm: "ppo".into(),
            iteration: 7,
        };
        let ck = Checkpoint::with_meta(path, &header).unwrap();
        let back: Header = ck.meta_for(path, "ppo", "PPO").unwrap();
        assert_eq!(back, header);
        let err = ck
            .meta_for::<Header>(path, "policy_gradient", "a policy-gradient learner")
            .unwrap_err();
        assert!(matches!(err, RlError::CheckpointMismatch { .. }), "{err}");
        assert!(
            err.to_string().contains("not by a policy-gradient learner"),
            "{err}"
        );
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Other {
            algorithm: String,
            missing_field: u64,
        }
        let err = ck.meta_for::<Other>(path, "ppo", "PPO").unwrap_err();
        assert!(matches!(err, RlError::Checkpoint { .. }), "{err}");
        assert!(
            err.to_string().contains("unreadable header for PPO"),
            "{err}"
        );
    }

    #[test]
    fn atomic_write_leaves_no_temporary_file() {
        let dir = tmp_dir("atomic");
        let path = dir.join("b.ckpt");
        write_file_atomic(&path, b"one").unwrap();
        write_file_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
