//! Hyperparameter presets per algorithm and env, and partial overrides (the RL Zoo's
//! `hyperparams/*.yml` idea).
//!
//! Each algorithm has one TOML file in `presets/` (compiled in): a table per env id that names
//! only what differs from the algorithm's defaults, and a `source` string saying where the
//! numbers come from. A configuration is resolved in layers, each naming only what it changes:
//!
//! 1. the algorithm's defaults ([`PpoConfig::new`], [`reinforce::config`], [`grpo::config`],
//!    [`TrpoConfig::new`]);
//! 2. the env's preset, if the algorithm has one for it;
//! 3. a user's TOML file (`--config FILE`), keys at the top level (or under a table named after
//!    the env id, so that one file can hold several envs);
//! 4. `--set key=value` pairs (dotted keys reach nested fields: `adaptive_kl.target=0.02`).
//!
//! An unknown key is an error that lists the valid keys; a value of the wrong type names the key
//! and the type it takes; values out of range are caught by the config's own `validate`.
//!
//! ```
//! use cinder::presets::{Algorithm, AlgorithmConfig, resolve};
//!
//! let resolved = resolve(Algorithm::Ppo, "Pendulum-v1", None, &["learning_rate=3e-4".into()])?;
//! let AlgorithmConfig::Ppo(ppo) = &resolved.config else { unreachable!() };
//! assert_eq!(ppo.learning_rate, 3e-4);
//! assert_eq!(ppo.num_steps, 1024); // from the preset
//! assert!(resolved.preset_source.is_some());
//! let err = resolve(Algorithm::Ppo, "Pendulum-v1", None, &["learnin_rate=1".into()]).unwrap_err();
//! assert!(err.to_string().contains("learning_rate"));
//! # Ok::<(), cinder::Error>(())
//! ```

use crate::Error;
use cinder_rl::policy_gradient::{PolicyGradientConfig, ReferenceKlConfig};
use cinder_rl::ppo::{AdaptiveKlConfig, PpoConfig};
use cinder_rl::trpo::TrpoConfig;
use cinder_rl::{grpo, reinforce};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// The algorithms the runner and the `cinder` command train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// PPO ([`cinder_rl::ppo`]) on a vector of envs.
    Ppo,
    /// REINFORCE ([`cinder_rl::reinforce`]): the policy-gradient learner with returns-to-go.
    Reinforce,
    /// GRPO ([`cinder_rl::grpo`]): the policy-gradient learner with group-relative advantages.
    Grpo,
    /// TRPO ([`cinder_rl::trpo`]): the natural-gradient step inside a KL trust region.
    Trpo,
}

impl Algorithm {
    /// Every algorithm.
    pub const ALL: [Algorithm; 4] = [Self::Ppo, Self::Reinforce, Self::Grpo, Self::Trpo];

    /// The name on command lines and in run directories.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ppo => "ppo",
            Self::Reinforce => "reinforce",
            Self::Grpo => "grpo",
            Self::Trpo => "trpo",
        }
    }

    /// The algorithm's presets file (`presets/<name>.toml`), compiled in.
    pub fn presets_toml(self) -> &'static str {
        match self {
            Self::Ppo => include_str!("../presets/ppo.toml"),
            Self::Reinforce => include_str!("../presets/reinforce.toml"),
            Self::Grpo => include_str!("../presets/grpo.toml"),
            Self::Trpo => include_str!("../presets/trpo.toml"),
        }
    }

    /// The algorithm's default configuration.
    pub fn default_config(self) -> AlgorithmConfig {
        match self {
            Self::Ppo => AlgorithmConfig::Ppo(PpoConfig::new()),
            Self::Reinforce => AlgorithmConfig::PolicyGradient(reinforce::config()),
            Self::Grpo => AlgorithmConfig::PolicyGradient(grpo::config()),
            Self::Trpo => AlgorithmConfig::Trpo(TrpoConfig::new()),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown algorithm {s:?}: choose one of {}",
                    Self::ALL.map(|a| a.name()).join(", ")
                ))
            })
    }
}

/// A complete configuration of one of the [`Algorithm`]s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AlgorithmConfig {
    /// PPO's.
    Ppo(PpoConfig),
    /// REINFORCE's or GRPO's (one learner, two presets).
    PolicyGradient(PolicyGradientConfig),
    /// TRPO's.
    Trpo(TrpoConfig),
}

impl AlgorithmConfig {
    /// The seed.
    pub fn seed(&self) -> u64 {
        match self {
            Self::Ppo(c) => c.seed,
            Self::PolicyGradient(c) => c.seed,
            Self::Trpo(c) => c.seed,
        }
    }

    /// The env-step budget.
    pub fn total_timesteps(&self) -> u64 {
        match self {
            Self::Ppo(c) => c.total_timesteps,
            Self::PolicyGradient(c) => c.total_timesteps,
            Self::Trpo(c) => c.total_timesteps,
        }
    }

    /// The configuration as JSON (what `config.json` holds under the algorithm's name).
    pub fn to_json(&self) -> Value {
        match self {
            Self::Ppo(c) => serde_json::to_value(c),
            Self::PolicyGradient(c) => serde_json::to_value(c),
            Self::Trpo(c) => serde_json::to_value(c),
        }
        .unwrap_or(Value::Null)
    }

    /// Checks every value (the config's own `validate`).
    pub fn validate(&self) -> Result<(), Error> {
        match self {
            Self::Ppo(c) => c.validate()?,
            Self::PolicyGradient(c) => c.validate()?,
            Self::Trpo(c) => c.validate()?,
        }
        Ok(())
    }
}

/// A configuration and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The complete configuration.
    pub config: AlgorithmConfig,
    /// The env's preset's `source`, if a preset applied.
    pub preset_source: Option<String>,
}

/// An env's preset for an algorithm: the keys it sets and where they come from.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    /// Where the numbers come from (RL Zoo, CleanRL, or a tuning command).
    pub source: String,
    /// The keys the preset sets, as JSON.
    pub values: Map<String, Value>,
}

/// `algorithm`'s preset for `env_id`, if its presets file has one.
pub fn preset(algorithm: Algorithm, env_id: &str) -> Result<Option<Preset>, Error> {
    let file = format!("presets/{}.toml", algorithm.name());
    let table = parse_toml(algorithm.presets_toml(), &file)?;
    let Some(entry) = table.get(env_id) else {
        return Ok(None);
    };
    let Value::Object(mut values) = entry.clone() else {
        return Err(Error::Config(format!(
            "{file}: [{env_id:?}] is not a table"
        )));
    };
    let source = match values.remove("source") {
        Some(Value::String(s)) => s,
        _ => {
            return Err(Error::Config(format!(
                "{file}: [{env_id:?}] has no `source` string saying where its numbers come from"
            )));
        }
    };
    Ok(Some(Preset { source, values }))
}

/// The env ids `algorithm` has presets for.
pub fn preset_envs(algorithm: Algorithm) -> Result<Vec<String>, Error> {
    let file = format!("presets/{}.toml", algorithm.name());
    Ok(parse_toml(algorithm.presets_toml(), &file)?
        .as_object()
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default())
}

/// Resolves `algorithm`'s configuration for `env_id`: defaults, the env's preset, the TOML file
/// `config_file`, then `sets` (`key=value`), each overriding only what it names (see the
/// [module docs](self)). The result is validated.
pub fn resolve(
    algorithm: Algorithm,
    env_id: &str,
    config_file: Option<&Path>,
    sets: &[String],
) -> Result<Resolved, Error> {
    resolve_layers(algorithm, env_id, true, config_file, sets)
}

/// [`resolve`], with the env's preset skipped when `use_preset` is false (the algorithm's
/// defaults, then `config_file`, then `sets`).
pub fn resolve_layers(
    algorithm: Algorithm,
    env_id: &str,
    use_preset: bool,
    config_file: Option<&Path>,
    sets: &[String],
) -> Result<Resolved, Error> {
    let mut json = algorithm.default_config().to_json();
    let preset = if use_preset {
        preset(algorithm, env_id)?
    } else {
        None
    };
    if let Some(preset) = &preset {
        let origin = format!("presets/{}.toml [{env_id:?}]", algorithm.name());
        overlay(
            &mut json,
            &Value::Object(preset.values.clone()),
            "",
            &origin,
        )?;
    }
    if let Some(path) = config_file {
        let (mut table, origin) = read_toml_file(path)?;
        // A table named after the env applies to that env; other envs' tables are skipped.
        if let Value::Object(map) = &mut table {
            let env_table = map.remove(env_id);
            map.retain(|key, value| !(cinder_env::spec(key).is_ok() && value.is_object()));
            if let Some(env_table) = env_table {
                overlay(&mut json, &env_table, "", &origin)?;
            }
        }
        overlay(&mut json, &table, "", &origin)?;
    }
    apply_sets(&mut json, sets)?;
    let config = match algorithm {
        Algorithm::Ppo => AlgorithmConfig::Ppo(deserialize(json)?),
        Algorithm::Reinforce | Algorithm::Grpo => {
            AlgorithmConfig::PolicyGradient(deserialize(json)?)
        }
        Algorithm::Trpo => AlgorithmConfig::Trpo(deserialize(json)?),
    };
    config.validate()?;
    Ok(Resolved {
        config,
        preset_source: preset.map(|p| p.source),
    })
}

/// Writes each `key=value` of `sets` (dotted keys reach nested fields) over `json`.
fn apply_sets(json: &mut Value, sets: &[String]) -> Result<(), Error> {
    for set in sets {
        let (key, value) = parse_set(set)?;
        let mut nested = value;
        for part in key.split('.').rev() {
            let mut map = Map::new();
            map.insert(part.to_string(), nested);
            nested = Value::Object(map);
        }
        overlay(json, &nested, "", &format!("--set {set}"))?;
    }
    Ok(())
}

/// Resolves a sequence run's configuration ([`cinder_lm::run::SequenceRunConfig`]): its
/// defaults, then the TOML file `config_file`, then `sets` (`key=value`, dotted keys such as
/// `grpo.beta=0`), each overriding only what it names. The result is validated.
pub fn resolve_sequence(
    config_file: Option<&Path>,
    sets: &[String],
) -> Result<cinder_lm::run::SequenceRunConfig, Error> {
    let mut json = serde_json::to_value(cinder_lm::run::SequenceRunConfig::new())
        .map_err(|e| Error::Config(format!("the defaults do not serialise: {e}")))?;
    if let Some(path) = config_file {
        let (table, origin) = read_toml_file(path)?;
        overlay(&mut json, &table, "", &origin)?;
    }
    apply_sets(&mut json, sets)?;
    let config: cinder_lm::run::SequenceRunConfig = deserialize(json)?;
    config.validate()?;
    Ok(config)
}

fn deserialize<C: serde::de::DeserializeOwned>(json: Value) -> Result<C, Error> {
    serde_json::from_value(json)
        .map_err(|e| Error::Config(format!("the configuration does not fit: {e}")))
}

/// Reads the TOML file at `path` into JSON, with its name for error messages.
fn read_toml_file(path: &Path) -> Result<(Value, String), Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let origin = path.display().to_string();
    Ok((parse_toml(&text, &origin)?, origin))
}

/// Parses TOML text into JSON.
fn parse_toml(text: &str, origin: &str) -> Result<Value, Error> {
    let table: toml::Table = toml::from_str(text)
        .map_err(|e| Error::Config(format!("{origin} is not valid TOML: {e}")))?;
    serde_json::to_value(table).map_err(|e| Error::Config(format!("{origin}: {e}")))
}

/// Splits `key=value`; the value is read as a TOML value (`3`, `2.5e-4`, `true`, `[64, 64]`,
/// `"text"`), or as a bare string (`relu`) when it is not one.
fn parse_set(set: &str) -> Result<(String, Value), Error> {
    let (key, value) = set.split_once('=').ok_or_else(|| {
        Error::Config(format!(
            "--set {set:?}: expected key=value (e.g. learning_rate=3e-4)"
        ))
    })?;
    let (key, value) = (key.trim(), value.trim());
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(Error::Config(format!("--set {set:?}: the key is empty")));
    }
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .and_then(|v| serde_json::to_value(v).ok())
        .unwrap_or_else(|| Value::String(value.to_string()));
    Ok((key.to_string(), parsed))
}

/// Defaults of the optional nested configs, used when a layer sets one that is off (`None`).
fn nested_default(path: &str) -> Option<Value> {
    match path {
        "adaptive_kl" => serde_json::to_value(AdaptiveKlConfig::new()).ok(),
        "reference_kl" => serde_json::to_value(ReferenceKlConfig::new()).ok(),
        _ => None,
    }
}

/// What kind of JSON value a key takes, for error messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean (true or false)",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}

/// Writes `layer` over `base`, key by key: unknown keys and values of the wrong type are
/// errors naming the key (`prefix` is the dotted path so far, `origin` the layer's name).
fn overlay(base: &mut Value, layer: &Value, prefix: &str, origin: &str) -> Result<(), Error> {
    let Value::Object(layer) = layer else {
        return Err(Error::Config(format!("{origin}: expected a table of keys")));
    };
    let Value::Object(base) = base else {
        return Err(Error::Config(format!(
            "{origin}: `{prefix}` is not a table of keys"
        )));
    };
    for (key, value) in layer {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let Some(slot) = base.get_mut(key) else {
            let mut valid: Vec<&str> = base.keys().map(String::as_str).collect();
            valid.sort_unstable();
            return Err(Error::Config(format!(
                "{origin}: unknown key `{path}`; valid keys{}: {}",
                if prefix.is_empty() {
                    String::new()
                } else {
                    format!(" of `{prefix}`")
                },
                valid.join(", ")
            )));
        };
        match (&*slot, value) {
            // An optional nested config that is off: start from its defaults.
            (Value::Null, Value::Object(_)) => {
                if let Some(mut default) = nested_default(&path) {
                    overlay(&mut default, value, &path, origin)?;
                    *slot = default;
                } else {
                    *slot = value.clone();
                }
            }
            (Value::Object(_), Value::Object(_)) => overlay(slot, value, &path, origin)?,
            // Turning an optional value off.
            (_, Value::String(s)) if s == "none" || s == "None" => *slot = Value::Null,
            (Value::Null, _) => *slot = value.clone(),
            (Value::Bool(_), Value::Bool(_)) | (Value::String(_), Value::String(_)) => {
                *slot = value.clone();
            }
            (Value::Array(_), Value::Array(_)) => *slot = value.clone(),
            (Value::Number(old), Value::Number(new)) => {
                if !old.is_f64() && new.is_f64() {
                    return Err(Error::Config(format!(
                        "{origin}: `{path}` takes an integer, got {new}"
                    )));
                }
                if !old.is_f64() && new.as_u64().is_none() {
                    return Err(Error::Config(format!(
                        "{origin}: `{path}` takes a non-negative integer, got {new}"
                    )));
                }
                *slot = Value::Number(new.clone());
            }
            // Enums serialise as strings or tables: let deserialisation judge the new value.
            (Value::String(_) | Value::Object(_), _) => *slot = value.clone(),
            (old, new) => {
                return Err(Error::Config(format!(
                    "{origin}: `{path}` takes {}, got {}",
                    kind(old),
                    kind(new)
                )));
            }
        }
    }
    Ok(())
}
