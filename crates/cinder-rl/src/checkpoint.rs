//! Checkpoint files: one file per checkpoint, written atomically, checked before it is decoded.
//!
//! A checkpoint holds a JSON header (what wrote it, the policy's architecture, the trainer's
//! state: counters, random generators, env states) and binary sections (the policy's parameters
//! and Adam's moments, in this module's own tensor encoding at full precision). Layout:
//!
//! ```text
//! b"CINDERCK" | format version (u32 LE) | header length (u64 LE) | header CRC-32 (u32 LE)
//!            | header JSON | sections...
//! ```
//!
//! The header is itself checksummed and lists each section's name, length and CRC-32, so that
//! any truncated or corrupted byte is reported as such instead of being fed to a decoder or
//! silently changing a resumed run's state. Files are written to a
//! temporary name in the same folder, flushed to disk, then renamed over the old checkpoint: a
//! crash mid-write leaves the last good checkpoint intact.
//!
//! A tensor section is a count, then per tensor its rank, dimensions and `f32` values (little
//! endian). It is decoded without any panicking path (no Burn recorder, whose decoder unwraps):
//! every length is checked against the bytes left and every tensor's shape against the
//! parameter it is loaded into, before a tensor is made. Any byte string, even one crafted to
//! pass the checksum, gives a typed error or a policy of the expected architecture.

use crate::adam::{FusedAdam, PolicyOptimizer};
use crate::error::{Result, RlError};
use crate::policy::{ActorCritic, ActorCriticConfig, Policy, PolicyConfig};
use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::record::AdaptorRecord;
use burn::optim::{AdamState, AdaptiveMomentumState, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"CINDERCK";
/// 2: tensors in this module's own encoding (1 used Burn's `BinBytesRecorder`).
const FORMAT_VERSION: u32 = 2;
/// Magic, version, header length and header checksum.
const PREAMBLE: usize = 8 + 4 + 8 + 4;

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

    /// Adds (or replaces) the section `name` holding `module`'s float parameters
    /// ([`module_to_bytes`]).
    pub fn put_module<B: Backend, M: Module<B>>(&mut self, name: &str, module: &M) {
        self.put(name, module_to_bytes::<B, M>(module));
    }

    /// Loads the section `name` into `skeleton`, a module of the expected architecture
    /// ([`module_from_bytes`]; `what` names it in errors).
    pub fn module<B: Backend, M: Module<B>>(
        &self,
        path: &Path,
        name: &str,
        what: &str,
        skeleton: M,
        device: &B::Device,
    ) -> Result<M> {
        module_from_bytes(path, what, self.section(path, name)?, skeleton, device)
    }

    /// Adds (or replaces) the section `name` holding Adam's state for `model`'s parameters
    /// ([`adam_to_bytes`]).
    pub fn put_adam<B: AutodiffBackend, M: AutodiffModule<B>>(
        &mut self,
        name: &str,
        model: &M,
        optimizer: &PolicyOptimizer<B, M>,
    ) {
        self.put(name, adam_to_bytes(model, optimizer));
    }

    /// Restores Adam's state for `model` from the section `name` into `optimizer`
    /// ([`adam_from_bytes`]).
    pub fn adam<B: AutodiffBackend, M: AutodiffModule<B>>(
        &self,
        path: &Path,
        name: &str,
        model: &M,
        optimizer: PolicyOptimizer<B, M>,
        device: &B::Device,
    ) -> Result<PolicyOptimizer<B, M>> {
        adam_from_bytes(path, self.section(path, name)?, model, optimizer, device)
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
            PREAMBLE + header.len() + self.sections.iter().map(|s| s.1.len()).sum::<usize>(),
        );
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&header).to_le_bytes());
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
        let (magic, rest) = bytes.split_at(bytes.len().min(8));
        if magic != MAGIC {
            return Err(corrupt(
                path,
                "it is not a Cinder checkpoint (bad magic bytes)",
            ));
        }
        let field = |range: std::ops::Range<usize>| {
            rest.get(range)
                .ok_or_else(|| corrupt(path, "the file is truncated (preamble)"))
        };
        let u32_at = |at: usize| -> Result<u32> {
            let mut b = [0u8; 4];
            b.copy_from_slice(field(at..at + 4)?);
            Ok(u32::from_le_bytes(b))
        };
        let version = u32_at(0)?;
        if version != FORMAT_VERSION {
            return Err(corrupt(
                path,
                format!("format version {version}, this build reads version {FORMAT_VERSION}"),
            ));
        }
        let mut len_bytes = [0u8; 8];
        len_bytes.copy_from_slice(field(4..12)?);
        let header_len = u64::from_le_bytes(len_bytes);
        let header_crc = u32_at(12)?;
        let header_end = PREAMBLE
            .checked_add(usize::try_from(header_len).unwrap_or(usize::MAX))
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| corrupt(path, "the file is truncated (header)"))?;
        let header_bytes = &bytes[PREAMBLE..header_end];
        if crc32fast::hash(header_bytes) != header_crc {
            return Err(corrupt(
                path,
                "the header fails its checksum: the file is corrupt",
            ));
        }
        let header: FileHeader = serde_json::from_slice(header_bytes)
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

/// Appends one tensor: rank (u8), dimensions (u64 each), values (f32), little endian.
fn write_tensor(out: &mut Vec<u8>, dims: &[usize], values: &[f32]) {
    out.push(dims.len() as u8);
    for &d in dims {
        out.extend_from_slice(&(d as u64).to_le_bytes());
    }
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// A float tensor's values on the host, as `f32`.
fn host_values<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .unwrap_or_default()
}

/// Reads a tensor section, checking every length against the bytes left before it allocates.
struct SectionReader<'a> {
    bytes: &'a [u8],
    path: &'a Path,
    what: &'a str,
}

impl<'a> SectionReader<'a> {
    fn error(&self, reason: impl std::fmt::Display) -> RlError {
        corrupt(
            self.path,
            format!("cannot decode the {}: {reason}", self.what),
        )
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.bytes.len() {
            return Err(self.error("it ends early"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    /// A tensor that must have exactly the dimensions `expected`.
    fn tensor(&mut self, expected: &[usize], name: &str) -> Result<Vec<f32>> {
        let rank = usize::from(self.u8()?);
        let mut dims = Vec::with_capacity(rank.min(8));
        for _ in 0..rank {
            dims.push(self.u64()?);
        }
        let fits =
            dims.len() == expected.len() && dims.iter().zip(expected).all(|(&d, &e)| d == e as u64);
        if !fits {
            return Err(RlError::CheckpointMismatch {
                path: self.path.to_path_buf(),
                reason: format!(
                    "parameter shapes differ: the {} holds {name} of shape {dims:?} where this \
                     policy has {expected:?}",
                    self.what
                ),
            });
        }
        let count: usize = expected.iter().product();
        let raw = self.take(
            count
                .checked_mul(4)
                .ok_or_else(|| self.error("huge tensor"))?,
        )?;
        Ok(raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    fn finish(&self) -> Result<()> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(self.error(format!("{} unexpected trailing bytes", self.bytes.len())))
        }
    }
}

/// A module's float parameters (in visiting order) as bytes: their count, then each tensor.
pub fn module_to_bytes<B: Backend, M: Module<B>>(module: &M) -> Vec<u8> {
    struct Encode(Vec<u8>, u64);
    impl<B: Backend> ModuleVisitor<B> for Encode {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let tensor = param.val();
            let dims = tensor.dims();
            write_tensor(&mut self.0, &dims, &host_values(tensor));
            self.1 += 1;
        }
    }
    let mut encode = Encode(Vec::new(), 0);
    module.visit(&mut encode);
    let mut out = encode.1.to_le_bytes().to_vec();
    out.extend_from_slice(&encode.0);
    out
}

/// Loads parameters written by [`module_to_bytes`] into `skeleton` (a module of the expected
/// architecture, e.g. freshly built from the checkpoint's config), keeping its parameter ids.
/// Every tensor's shape is checked against the parameter it replaces before the tensor is
/// made: bytes of another architecture are [`RlError::CheckpointMismatch`], malformed bytes
/// [`RlError::Checkpoint`]; nothing panics.
pub fn module_from_bytes<B: Backend, M: Module<B>>(
    path: &Path,
    what: &str,
    bytes: &[u8],
    skeleton: M,
    device: &B::Device,
) -> Result<M> {
    let mut reader = SectionReader { bytes, path, what };
    let count = reader.u64()?;
    let expected = parameter_shapes::<B, M>(&skeleton);
    if count != expected.len() as u64 {
        return Err(RlError::CheckpointMismatch {
            path: path.to_path_buf(),
            reason: format!(
                "the {what} has {count} parameter tensors where this policy has {}",
                expected.len()
            ),
        });
    }
    struct Load<'r, 'a, B: Backend> {
        reader: &'r mut SectionReader<'a>,
        device: B::Device,
        index: usize,
        error: Option<RlError>,
    }
    impl<B: Backend> ModuleMapper<B> for Load<'_, '_, B> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let (id, tensor, mapper) = param.consume();
            if self.error.is_some() {
                return Param::from_mapped_value(id, tensor, mapper);
            }
            let dims = tensor.dims();
            let name = format!("parameter {}", self.index);
            self.index += 1;
            match self.reader.tensor(&dims, &name) {
                Ok(values) => {
                    let loaded =
                        Tensor::<B, D>::from_data(TensorData::new(values, dims), &self.device)
                            .set_require_grad(tensor.is_require_grad());
                    Param::from_mapped_value(id, loaded, mapper)
                }
                Err(e) => {
                    self.error = Some(e);
                    Param::from_mapped_value(id, tensor, mapper)
                }
            }
        }
    }
    let mut load = Load::<B> {
        reader: &mut reader,
        device: device.clone(),
        index: 0,
        error: None,
    };
    let module = skeleton.map(&mut load);
    if let Some(e) = load.error {
        return Err(e);
    }
    reader.finish()?;
    Ok(module)
}

/// Adam's state for each of `model`'s float parameters (in visiting order) as bytes: the
/// parameter count, then per parameter a flag (0: no state yet, 1: state, 2: state with the
/// AMSGrad maximum), the step count and the moment tensors.
pub fn adam_to_bytes<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    optimizer: &PolicyOptimizer<B, M>,
) -> Vec<u8> {
    struct Encode<B: AutodiffBackend> {
        records: std::collections::HashMap<ParamId, AdaptorRecord<FusedAdam, B>>,
        out: Vec<u8>,
        count: u64,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Encode<B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.count += 1;
            let Some(record) = self.records.remove(&param.id) else {
                self.out.push(0);
                return;
            };
            let state: AdamState<B::InnerBackend, D> = record.into_state();
            let m = state.momentum;
            self.out.push(if m.max_moment_2.is_some() { 2 } else { 1 });
            self.out.extend_from_slice(&(m.time as u64).to_le_bytes());
            for tensor in [Some(m.moment_1), Some(m.moment_2), m.max_moment_2]
                .into_iter()
                .flatten()
            {
                let dims = tensor.dims();
                write_tensor(&mut self.out, &dims, &host_values(tensor));
            }
        }
    }
    let mut encode = Encode::<B> {
        records: optimizer.to_record().into_iter().collect(),
        out: Vec::new(),
        count: 0,
    };
    model.visit(&mut encode);
    let mut out = encode.count.to_le_bytes().to_vec();
    out.extend_from_slice(&encode.out);
    out
}

/// Restores Adam's state written by [`adam_to_bytes`] for `model`'s parameters into
/// `optimizer`, checking every moment's shape against its parameter; errors like
/// [`module_from_bytes`], never a panic.
pub fn adam_from_bytes<B: AutodiffBackend, M: AutodiffModule<B>>(
    path: &Path,
    bytes: &[u8],
    model: &M,
    optimizer: PolicyOptimizer<B, M>,
    device: &B::Device,
) -> Result<PolicyOptimizer<B, M>> {
    let what = "optimizer state";
    let mut reader = SectionReader { bytes, path, what };
    let count = reader.u64()?;
    let expected = parameter_shapes::<B, M>(model).len() as u64;
    if count != expected {
        return Err(RlError::CheckpointMismatch {
            path: path.to_path_buf(),
            reason: format!(
                "the {what} covers {count} parameter tensors where this policy has {expected}"
            ),
        });
    }
    struct Decode<'r, 'a, B: AutodiffBackend, M: AutodiffModule<B>> {
        reader: &'r mut SectionReader<'a>,
        device: B::Device,
        records: <PolicyOptimizer<B, M> as Optimizer<M, B>>::Record,
        index: usize,
        error: Option<RlError>,
    }
    impl<B: AutodiffBackend, M: AutodiffModule<B>> Decode<'_, '_, B, M> {
        fn state<const D: usize>(
            &mut self,
            dims: [usize; D],
        ) -> Result<Option<AdamState<B::InnerBackend, D>>> {
            let flag = self.reader.u8()?;
            if flag == 0 {
                return Ok(None);
            }
            if flag > 2 {
                return Err(self.reader.error(format!("unknown state flag {flag}")));
            }
            let time = usize::try_from(self.reader.u64()?)
                .map_err(|_| self.reader.error("step count out of range"))?;
            let name = format!("moment of parameter {}", self.index);
            let mut moment = || -> Result<Tensor<B::InnerBackend, D>> {
                let values = self.reader.tensor(&dims, &name)?;
                Ok(Tensor::from_data(
                    TensorData::new(values, dims),
                    &self.device,
                ))
            };
            let moment_1 = moment()?;
            let moment_2 = moment()?;
            let max_moment_2 = if flag == 2 { Some(moment()?) } else { None };
            Ok(Some(AdamState {
                momentum: AdaptiveMomentumState {
                    time,
                    moment_1,
                    moment_2,
                    max_moment_2,
                },
            }))
        }
    }
    impl<B: AutodiffBackend, M: AutodiffModule<B>> ModuleVisitor<B> for Decode<'_, '_, B, M> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if self.error.is_some() {
                return;
            }
            let dims: [usize; D] = param.val().dims();
            match self.state::<D>(dims) {
                Ok(Some(state)) => {
                    self.records
                        .insert(param.id, AdaptorRecord::from_state(state));
                }
                Ok(None) => {}
                Err(e) => self.error = Some(e),
            }
            self.index += 1;
        }
    }
    let mut decode = Decode::<B, M> {
        reader: &mut reader,
        device: device.clone(),
        records: Default::default(),
        index: 0,
        error: None,
    };
    model.visit(&mut decode);
    if let Some(e) = decode.error {
        return Err(e);
    }
    let records = decode.records;
    reader.finish()?;
    Ok(optimizer.load_record(records))
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
pub(crate) fn load_model<Bk: Backend, P: Policy<Bk>>(
    path: &Path,
    checkpoint: &Checkpoint,
    section: &str,
    policy: &P::Config,
    device: &Bk::Device,
) -> Result<P> {
    let skeleton = P::init(policy, device)?;
    checkpoint.module(path, section, section, skeleton, device)
}

/// Loads the policy of any Cinder training checkpoint (PPO, REINFORCE, GRPO...) on any backend,
/// for evaluation or deployment, with the architecture recorded in it. Errors name what is
/// wrong with the file.
pub fn load_policy<Bk: Backend>(
    path: impl AsRef<Path>,
    device: &Bk::Device,
) -> Result<(ActorCritic<Bk>, ActorCriticConfig)> {
    load_custom_policy::<Bk, ActorCritic<Bk>>(path, device)
}

/// [`load_policy`] for a run that trained a custom [`Policy`] `P`: its config is read back from
/// the checkpoint's header as `P::Config` (an error says so when the checkpoint holds another
/// kind of policy) and its weights are loaded with their shapes checked.
pub fn load_custom_policy<Bk: Backend, P: Policy<Bk>>(
    path: impl AsRef<Path>,
    device: &Bk::Device,
) -> Result<(P, P::Config)> {
    let path = path.as_ref();
    let checkpoint = Checkpoint::read(path)?;
    let policy = checkpoint_policy_config::<P::Config>(path, &checkpoint)?;
    let model = load_model::<Bk, P>(path, &checkpoint, "model", &policy, device)?;
    Ok((model, policy))
}

/// The policy architecture a checkpoint's header records, read as `C`.
pub(crate) fn checkpoint_policy_config<C: PolicyConfig>(
    path: &Path,
    checkpoint: &Checkpoint,
) -> Result<C> {
    checkpoint
        .meta
        .get("policy")
        .ok_or_else(|| corrupt(path, "the header names no policy architecture"))
        .and_then(|p| {
            C::deserialize(p).map_err(|e| {
                corrupt(
                    path,
                    format!(
                        "its policy architecture is not a {}: {e}",
                        std::any::type_name::<C>()
                    ),
                )
            })
        })
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
    checkpoint.module(path, "model", "policy", model, device)
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
