//! `check_env`: the value-level checks of Gymnasium's env checker, for any [`Env`].

use crate::env::{Env, Step};
use crate::error::{EnvError, Result};
use crate::rng::NpRandom;
use crate::space::{Space, SpaceValue, ValueRef};

/// What [`check_env_with`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckConfig {
    /// The seed used for resets.
    pub seed: u64,
    /// Steps replayed for the determinism check.
    pub determinism_steps: usize,
    /// Episodes run to exercise the time limit (when the env has one).
    pub max_episodes: usize,
}

impl Default for CheckConfig {
    fn default() -> Self {
        Self {
            seed: 123,
            determinism_steps: 300,
            max_episodes: 20,
        }
    }
}

fn fail(check: &'static str, detail: impl Into<String>) -> EnvError {
    EnvError::CheckFailed {
        check,
        detail: detail.into(),
    }
}

fn check_obs(space: &Space, obs: ValueRef<'_>, when: &str) -> Result<()> {
    if let ValueRef::Continuous(x) = obs {
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(fail(
                "observation finite",
                format!("{when}: element {i} is {}", x[i]),
            ));
        }
    }
    if !space.contains(obs) {
        return Err(fail(
            "observation in space",
            format!("{when}: {obs:?} is not in {space}"),
        ));
    }
    Ok(())
}

/// One step's outcome as data that can be compared across replays.
#[derive(Debug, PartialEq)]
struct Record {
    obs: Vec<u32>,
    reward: u64,
    terminated: bool,
    truncated: bool,
}

fn record<O: SpaceValue>(obs: &O, step: Option<&Step<O>>) -> Record {
    let bits = match obs.as_value() {
        ValueRef::Continuous(x) => x.iter().map(|v| v.to_bits()).collect(),
        ValueRef::Discrete(x) => vec![x as u32],
    };
    Record {
        obs: bits,
        reward: step.map_or(0, |s| s.reward.to_bits()),
        terminated: step.is_some_and(|s| s.terminated),
        truncated: step.is_some_and(|s| s.truncated),
    }
}

/// Runs [`check_env_with`] with the default [`CheckConfig`].
pub fn check_env<E: Env>(env: &mut E) -> Result<()> {
    check_env_with(env, CheckConfig::default())
}

/// Checks that `env` keeps the [`Env`] contract, returning the first violation as
/// [`EnvError::CheckFailed`]:
///
/// 1. its spaces are well formed;
/// 2. a seeded reset is deterministic, and gives a finite observation inside the space;
/// 3. every step gives a finite observation inside the space and a finite reward, and sampled
///    actions are accepted;
/// 4. two runs from the same seed with the same actions agree step by step, bit for bit
///    (the same env reset twice, which is what two identically seeded envs must do);
/// 5. stepping after the end of an episode is refused with [`EnvError::EpisodeEnded`];
/// 6. if the env has a time limit `T`: no episode lasts more than `T` steps, an episode that
///    reaches `T` steps is truncated there, and truncation never happens earlier unless the env
///    itself truncates.
///
/// Leaves the env in the middle of an unspecified episode.
///
/// ```
/// use cinder_env::{check_env, make};
/// for id in cinder_env::registry::ids() {
///     check_env(&mut make(id)?)?;
/// }
/// # Ok::<(), cinder_env::EnvError>(())
/// ```
pub fn check_env_with<E: Env>(env: &mut E, config: CheckConfig) -> Result<()> {
    let obs_space = env.observation_space();
    let act_space = env.action_space();
    obs_space
        .validate()
        .map_err(|d| fail("observation space well formed", d))?;
    act_space
        .validate()
        .map_err(|d| fail("action space well formed", d))?;

    // 2. Seeded reset.
    let (first, _) = env.reset(Some(config.seed))?;
    check_obs(&obs_space, first.as_value(), "reset")?;
    let (again, _) = env.reset(Some(config.seed))?;
    if record(&first, None) != record(&again, None) {
        return Err(fail(
            "seeded reset deterministic",
            format!("reset(Some({})) gave {first:?} then {again:?}", config.seed),
        ));
    }

    // 3 and 4: a trajectory with sampled actions, replayed from the same seed.
    let mut action_rng = NpRandom::from_seed(config.seed ^ 0x5eed);
    let mut actions = Vec::with_capacity(config.determinism_steps);
    let mut first_run = vec![record(&again, None)];
    for t in 0..config.determinism_steps {
        let action = E::Action::from_value(act_space.sample(&mut action_rng)).ok_or_else(|| {
            fail(
                "action type matches space",
                format!("a sample of {act_space} does not convert to the env's action type"),
            )
        })?;
        let step = env.step(&action)?;
        check_obs(&obs_space, step.obs.as_value(), &format!("step {t}"))?;
        if !step.reward.is_finite() {
            return Err(fail(
                "reward finite",
                format!("step {t} gave {}", step.reward),
            ));
        }
        first_run.push(record(&step.obs, Some(&step)));
        actions.push(action);
        if step.done() {
            match env.step(&actions[t]) {
                Err(EnvError::EpisodeEnded { .. }) => {}
                other => {
                    return Err(fail(
                        "step after episode end refused",
                        format!("step after the end of the episode returned {other:?}"),
                    ));
                }
            }
            break;
        }
    }
    let (obs, _) = env.reset(Some(config.seed))?;
    let mut second_run = vec![record(&obs, None)];
    for action in &actions {
        let step = env.step(action)?;
        second_run.push(record(&step.obs, Some(&step)));
    }
    if let Some(t) = (0..first_run.len()).find(|&t| first_run[t] != second_run[t]) {
        return Err(fail(
            "same seed, same trajectory",
            format!("after {t} steps: {:?} vs {:?}", first_run[t], second_run[t]),
        ));
    }

    // 6. Time limit.
    if let Some(limit) = env.max_episode_steps() {
        let mut reached_limit = false;
        for episode in 0..config.max_episodes {
            env.reset(Some(config.seed.wrapping_add(1 + episode as u64)))?;
            let mut length = 0u64;
            loop {
                let sample = act_space.sample(&mut action_rng);
                let action = E::Action::from_value(sample.clone()).ok_or_else(|| {
                    fail(
                        "action type takes the space's samples",
                        format!("the action type cannot hold the sample {sample:?}"),
                    )
                })?;
                let step = env.step(&action)?;
                length += 1;
                if length == limit && !step.truncated {
                    return Err(fail(
                        "time limit truncates",
                        format!("step {length} of a {limit}-step limit was not truncated"),
                    ));
                }
                if step.done() {
                    reached_limit |= length == limit;
                    break;
                }
                if length > limit {
                    return Err(fail(
                        "time limit truncates",
                        format!("episode ran past its {limit}-step limit"),
                    ));
                }
            }
            if reached_limit {
                break;
            }
        }
        let _ = reached_limit; // episodes that always terminate first never reach the limit
    }
    Ok(())
}
