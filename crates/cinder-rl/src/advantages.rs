//! Advantage estimators as small pure functions over rollout-shaped slices.
//!
//! All slices are row-major `[num_steps, num_envs]`: entry `t * num_envs + e` belongs to step `t`
//! of env `e`. Episode ends come as two flags per step, because they bootstrap differently:
//!
//! - **terminated**: the MDP ended; the value after the step is 0.
//! - **truncated** (a time limit): the episode was cut, the state had a future; bootstrap from
//!   the value of the real final observation `V(final_obs)`, never from the observation after the
//!   automatic reset (Stable-Baselines3 does the same; CleanRL treats truncation as termination).
//!
//! Both are summarised by [`bootstrap_values`], which the estimators take as input.

/// Checks that rollout-shaped slices fit together: `num_envs >= 1`, every slice of `len`
/// entries, and `len` a whole number of steps of `num_envs` envs.
fn check_rollout(num_envs: usize, len: usize, slices: &[(&str, usize)]) -> crate::Result<()> {
    if num_envs == 0 {
        return Err(crate::RlError::InvalidInput(
            "num_envs is 0: a rollout needs at least one env".into(),
        ));
    }
    if len % num_envs != 0 {
        return Err(crate::RlError::InvalidInput(format!(
            "{len} entries are not a whole number of steps of {num_envs} envs"
        )));
    }
    for &(name, got) in slices {
        if got != len {
            return Err(crate::RlError::InvalidInput(format!(
                "{name} has {got} entries, the rollout has {len}"
            )));
        }
    }
    Ok(())
}

/// The value to bootstrap from after each step, `[num_steps, num_envs]`:
/// 0 where the step terminated, `final_values` where it was truncated (the critic's value of the
/// real last observation), otherwise the value of the next observation (`values[t + 1]`, or
/// `last_values` after the final step). `num_envs` is `last_values.len()`.
///
/// `final_values` is read only where `truncated && !terminated`.
///
/// Errors ([`crate::RlError::InvalidInput`]): no envs (`last_values` empty), slices of
/// different lengths, or a length that is not a whole number of steps.
pub fn bootstrap_values(
    values: &[f32],
    last_values: &[f32],
    final_values: &[f32],
    terminated: &[bool],
    truncated: &[bool],
) -> crate::Result<Vec<f32>> {
    let num_envs = last_values.len();
    let len = values.len();
    check_rollout(
        num_envs,
        len,
        &[
            ("final_values", final_values.len()),
            ("terminated", terminated.len()),
            ("truncated", truncated.len()),
        ],
    )?;
    Ok((0..len)
        .map(|i| {
            if terminated[i] {
                0.0
            } else if truncated[i] {
                final_values[i]
            } else if i + num_envs < len {
                values[i + num_envs]
            } else {
                last_values[i + num_envs - len]
            }
        })
        .collect())
}

/// Generalised advantage estimation, GAE(γ, λ) (Schulman et al. 2016):
///
/// `δ_t = r_t + γ · bootstrap_t − V(s_t)`,
/// `Â_t = δ_t + γλ · (1 − done_t) · Â_{t+1}`,
///
/// with `done_t = terminated_t || truncated_t` cutting the recursion at episode ends.
/// Returns `(advantages, returns)` with the value targets `returns = advantages + values`.
///
/// `λ = 0` gives one-step TD errors, `λ = 1` Monte-Carlo returns minus the baseline.
///
/// Errors ([`crate::RlError::InvalidInput`]): `num_envs == 0`, slices of different lengths, or
/// a length that is not a whole number of steps.
pub fn gae(
    rewards: &[f32],
    values: &[f32],
    bootstrap: &[f32],
    dones: &[bool],
    num_envs: usize,
    gamma: f32,
    lambda: f32,
) -> crate::Result<(Vec<f32>, Vec<f32>)> {
    let len = rewards.len();
    check_rollout(
        num_envs,
        len,
        &[
            ("values", values.len()),
            ("bootstrap", bootstrap.len()),
            ("dones", dones.len()),
        ],
    )?;
    let mut advantages = vec![0.0f32; len];
    let mut next_advantage = vec![0.0f32; num_envs];
    for i in (0..len).rev() {
        let e = i % num_envs;
        let delta = rewards[i] + gamma * bootstrap[i] - values[i];
        let carry = if dones[i] { 0.0 } else { next_advantage[e] };
        let advantage = delta + gamma * lambda * carry;
        advantages[i] = advantage;
        next_advantage[e] = advantage;
    }
    let returns = advantages.iter().zip(values).map(|(a, v)| a + v).collect();
    Ok((advantages, returns))
}

/// Discounted returns-to-go, `G_t = r_t + γ · (done_t ? bootstrap_t : G_{t+1})`, cut at episode
/// ends (REINFORCE's Monte-Carlo return; with `bootstrap = 0` at terminations and after the last
/// step it is the plain `Σ_k γ^k r_{t+k}` of each episode).
///
/// Errors ([`crate::RlError::InvalidInput`]): `num_envs == 0`, slices of different lengths, or
/// a length that is not a whole number of steps.
pub fn returns_to_go(
    rewards: &[f32],
    bootstrap: &[f32],
    dones: &[bool],
    num_envs: usize,
    gamma: f32,
) -> crate::Result<Vec<f32>> {
    let len = rewards.len();
    check_rollout(
        num_envs,
        len,
        &[("bootstrap", bootstrap.len()), ("dones", dones.len())],
    )?;
    let mut returns = vec![0.0f32; len];
    let mut next_return: Vec<f32> = vec![0.0; num_envs];
    for i in (0..len).rev() {
        let e = i % num_envs;
        // After the last step, the next return is the bootstrap value.
        let future = if dones[i] || i + num_envs >= len {
            bootstrap[i]
        } else {
            next_return[e]
        };
        returns[i] = rewards[i] + gamma * future;
        next_return[e] = returns[i];
    }
    Ok(returns)
}

/// `(x − mean) / (std + 1e-8)` over the slice, with the sample standard deviation (Bessel's
/// correction), as CleanRL's `(mb_advantages - mean) / (std + 1e-8)` with PyTorch's `std`.
/// A slice of length < 2 is returned centred only.
pub fn normalize(x: &mut [f32]) {
    let n = x.len();
    if n == 0 {
        return;
    }
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
    let std = if n > 1 {
        (x.iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / (n - 1) as f64)
            .sqrt()
    } else {
        0.0
    };
    for v in x {
        *v = ((f64::from(*v) - mean) / (std + 1e-8)) as f32;
    }
}

/// Fraction of the variance of `targets` that `predictions` explain:
/// `1 − Var(targets − predictions) / Var(targets)`; NaN when `targets` has no variance
/// (CleanRL's `explained_var`).
pub fn explained_variance(predictions: &[f32], targets: &[f32]) -> f64 {
    let var = |xs: &mut dyn Iterator<Item = f64>| {
        let v: Vec<f64> = xs.collect();
        let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len().max(1) as f64
    };
    let var_y = var(&mut targets.iter().map(|&y| f64::from(y)));
    if var_y == 0.0 {
        return f64::NAN;
    }
    let var_residual = var(&mut targets
        .iter()
        .zip(predictions)
        .map(|(&y, &p)| f64::from(y) - f64::from(p)));
    1.0 - var_residual / var_y
}

/// How [`group_relative`] scales the centred rewards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum GroupScale {
    /// GRPO: divide by the group's sample standard deviation plus 1e-4.
    Std,
    /// Dr. GRPO: only subtract the group mean.
    None,
    /// TRL's `scale_rewards="batch"`: subtract the group mean, divide by the sample standard
    /// deviation of all the batch's rewards plus 1e-4 (more robust when a group's rewards
    /// barely differ).
    Batch,
}

/// GRPO's group-relative advantages: `rewards` holds consecutive groups of `group_size`
/// candidates (one reward per candidate); each gets `(R_i − mean(R)) / (std(R) + 1e-4)` over its
/// group, or `R_i − mean(R)` with [`GroupScale::None`] (Dr. GRPO).
///
/// This matches TRL's `GRPOTrainer`: the standard deviation is the sample one (Bessel's
/// correction, PyTorch's `std`) and ε is 1e-4. A group whose rewards are all equal gets zero
/// advantages (never NaN). Errors: `group_size < 2` (a group of one has no baseline and
/// PyTorch's sample std of one value is NaN), or a length that is not a multiple of it.
pub fn group_relative(
    rewards: &[f64],
    group_size: usize,
    scale: GroupScale,
) -> crate::Result<Vec<f64>> {
    if group_size < 2 {
        return Err(crate::RlError::InvalidConfig(format!(
            "group_size ({group_size}) must be at least 2: a candidate needs others to be compared with"
        )));
    }
    if rewards.len() % group_size != 0 {
        return Err(crate::RlError::InvalidConfig(format!(
            "{} rewards are not a whole number of groups of {group_size}",
            rewards.len()
        )));
    }
    let batch_std = match scale {
        GroupScale::Batch => group_statistics(rewards, rewards.len().max(1))
            .first()
            .map_or(0.0, |&(_, std)| std),
        _ => 0.0,
    };
    let mut out = Vec::with_capacity(rewards.len());
    for (group, (mean, std)) in rewards
        .chunks(group_size)
        .zip(group_statistics(rewards, group_size))
    {
        out.extend(group.iter().map(|r| match scale {
            GroupScale::Std => (r - mean) / (std + 1e-4),
            GroupScale::None => r - mean,
            GroupScale::Batch => (r - mean) / (batch_std + 1e-4),
        }));
    }
    Ok(out)
}

/// RLOO's leave-one-out advantages: `rewards` holds consecutive groups of `group_size`
/// candidates; each gets `R_i − mean(R_j, j ≠ i)`, its reward minus the mean of the other
/// candidates' rewards (an unbiased baseline: it does not depend on the candidate's own
/// sample). Errors as [`group_relative`].
pub fn leave_one_out(rewards: &[f64], group_size: usize) -> crate::Result<Vec<f64>> {
    let centred = group_relative(rewards, group_size, GroupScale::None)?;
    // R_i − (Σ R − R_i)/(G − 1) = G/(G − 1) · (R_i − mean(R)).
    let factor = group_size as f64 / (group_size - 1) as f64;
    Ok(centred.into_iter().map(|a| a * factor).collect())
}

/// The mean and sample standard deviation (Bessel's correction) of each group of `group_size`
/// consecutive rewards (a trailing partial group counts as a group; a group of one has std 0).
pub fn group_statistics(rewards: &[f64], group_size: usize) -> Vec<(f64, f64)> {
    rewards
        .chunks(group_size.max(1))
        .map(|group| {
            let n = group.len() as f64;
            let mean = group.iter().sum::<f64>() / n;
            let var = group.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
            (mean, var.sqrt())
        })
        .collect()
}

/// An exponential moving average of returns, REINFORCE's simplest baseline:
/// `b ← b + α (mean(returns) − b)` after each batch, starting at the first batch's mean.
///
/// What is averaged is whatever [`MovingAverageBaseline::update`] is given. The policy-gradient
/// learner gives it the per-step returns-to-go `G_t` of every step of the batch (the quantity
/// the baseline is subtracted from), not one return per episode: long episodes weigh more.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MovingAverageBaseline {
    /// The smoothing factor α in (0, 1].
    pub alpha: f64,
    value: Option<f64>,
}

impl MovingAverageBaseline {
    /// A baseline with smoothing factor `alpha`; errors unless `0 < alpha <= 1`.
    pub fn new(alpha: f64) -> crate::Result<Self> {
        if !(alpha > 0.0 && alpha <= 1.0) {
            return Err(crate::RlError::InvalidConfig(format!(
                "the moving-average baseline's alpha ({alpha}) must be in (0, 1]"
            )));
        }
        Ok(Self { alpha, value: None })
    }

    /// The current baseline (0 before any update).
    pub fn value(&self) -> f64 {
        self.value.unwrap_or(0.0)
    }

    /// Folds in a batch of returns (the learner passes per-step returns-to-go; an empty batch
    /// changes nothing).
    pub fn update(&mut self, returns: &[f64]) {
        if returns.is_empty() {
            return;
        }
        let mean = returns.iter().sum::<f64>() / returns.len() as f64;
        self.value = Some(match self.value {
            None => mean,
            Some(b) => b + self.alpha * (mean - b),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() < 1e-5,
                "element {i}: {x} vs {y} ({a:?} vs {b:?})"
            );
        }
    }

    const GAMMAS: [f32; 3] = [0.0, 0.9, 0.99];
    const LAMBDAS: [f32; 3] = [0.0, 0.5, 1.0];

    #[test]
    fn terminal_only_reward_single_env() {
        // Four steps, reward 1 on the terminating step, zero values: A_t = γ^(3-t)·1·(γλ)^0...
        // with V = 0, δ_t = r_t, so A_t = (γλ)^(3-t) and the return is A_t.
        for gamma in GAMMAS {
            for lambda in LAMBDAS {
                let rewards = [0.0, 0.0, 0.0, 1.0];
                let values = [0.0; 4];
                let terminated = [false, false, false, true];
                let truncated = [false; 4];
                let boot =
                    bootstrap_values(&values, &[5.0], &[0.0; 4], &terminated, &truncated).unwrap();
                assert_eq!(boot, [0.0, 0.0, 0.0, 0.0]);
                let (adv, ret) =
                    gae(&rewards, &values, &boot, &terminated, 1, gamma, lambda).unwrap();
                let gl = gamma * lambda;
                close(&adv, &[gl.powi(3), gl.powi(2), gl, 1.0]);
                close(&ret, &adv);
                let g = returns_to_go(&rewards, &boot, &terminated, 1, gamma).unwrap();
                close(&g, &[gamma.powi(3), gamma.powi(2), gamma, 1.0]);
            }
        }
    }

    #[test]
    fn truncation_bootstraps_from_the_final_observation_value() {
        // Two envs, three steps. Env 0 is truncated at t = 1 (final obs value 10), then a new
        // episode runs; env 1 terminates at t = 2.
        for gamma in GAMMAS {
            for lambda in LAMBDAS {
                let rewards = [1.0, 2.0, 1.0, 2.0, 1.0, 2.0];
                let values = [0.5, 0.25, 0.5, 0.25, 3.0, 0.75];
                let terminated = [false, false, false, false, false, true];
                let truncated = [false, false, true, false, false, false];
                let dones: Vec<bool> = terminated
                    .iter()
                    .zip(&truncated)
                    .map(|(a, b)| a | b)
                    .collect();
                let final_values = [0.0, 0.0, 10.0, 0.0, 0.0, 0.0];
                let last = [4.0, 99.0];
                let boot = bootstrap_values(&values, &last, &final_values, &terminated, &truncated)
                    .unwrap();
                assert_eq!(boot, [0.5, 0.25, 10.0, 0.75, 4.0, 0.0]);
                let (adv, ret) = gae(&rewards, &values, &boot, &dones, 2, gamma, lambda).unwrap();
                // By hand, env 0: t=2 new episode: δ = 1 + γ·4 − 3; t=1 truncated: δ = 1 + γ·10 − 0.5
                // with no carry; t=0: δ = 1 + γ·0.5 − 0.5, carry A_1.
                let a0_2 = 1.0 + gamma * 4.0 - 3.0;
                let a0_1 = 1.0 + gamma * 10.0 - 0.5;
                let a0_0 = 1.0 + gamma * 0.5 - 0.5 + gamma * lambda * a0_1;
                // env 1: t=2 terminated: δ = 2 − 0.75; t=1: δ = 2 + γ·0.75 − 0.25 + γλ·A_2; ...
                let a1_2: f32 = 2.0 - 0.75;
                let a1_1 = 2.0 + gamma * 0.75 - 0.25 + gamma * lambda * a1_2;
                let a1_0 = 2.0 + gamma * 0.25 - 0.25 + gamma * lambda * a1_1;
                close(&adv, &[a0_0, a1_0, a0_1, a1_1, a0_2, a1_2]);
                let expected_ret: Vec<f32> = adv.iter().zip(&values).map(|(a, v)| a + v).collect();
                close(&ret, &expected_ret);
            }
        }
    }

    #[test]
    fn gae_with_lambda_one_equals_returns_minus_values() {
        let rewards = [1.0, -1.0, 0.5, 2.0, 0.0, 1.0, 1.0, 3.0];
        let values = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8];
        let terminated = [false, false, true, false, false, false, false, false];
        let truncated = [false, false, false, false, false, true, false, false];
        let dones: Vec<bool> = terminated
            .iter()
            .zip(&truncated)
            .map(|(a, b)| a | b)
            .collect();
        let final_values = [0.0, 0.0, 0.0, 0.0, 0.0, 7.0, 0.0, 0.0];
        let boot = bootstrap_values(
            &values,
            &[1.5, -2.0],
            &final_values,
            &terminated,
            &truncated,
        )
        .unwrap();
        let (adv, _) = gae(&rewards, &values, &boot, &dones, 2, 0.95, 1.0).unwrap();
        let g = returns_to_go(&rewards, &boot, &dones, 2, 0.95).unwrap();
        let expected: Vec<f32> = g.iter().zip(&values).map(|(g, v)| g - v).collect();
        close(&adv, &expected);
    }

    #[test]
    fn normalize_and_explained_variance() {
        let mut x = [1.0, 2.0, 3.0, 4.0];
        normalize(&mut x);
        let mean: f32 = x.iter().sum::<f32>() / 4.0;
        assert!(mean.abs() < 1e-6);
        // Sample std of 1..4 is sqrt(5/3).
        close(
            &x,
            &[-1.5, -0.5, 0.5, 1.5].map(|v: f32| v / (5.0f32 / 3.0).sqrt()),
        );
        assert_eq!(explained_variance(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 1.0);
        assert!(explained_variance(&[0.0; 3], &[2.0; 3]).is_nan());
        assert!((explained_variance(&[2.0, 2.0, 2.0, 2.0], &[1.0, 2.0, 3.0, 2.0])).abs() < 1e-12);
    }

    #[test]
    fn group_relative_matches_trl() {
        // TRL: (r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-4), torch's std being
        // the sample std. The expected values were computed with Python's `statistics.stdev`
        // (also the sample std), independently of this crate:
        // [(x - mean(g)) / (stdev(g) + 1e-4) for x in g] for g = [1, 0, 0, 1].
        let r = [1.0, 0.0, 0.0, 1.0, 3.0, 3.0, 3.0, 3.0];
        let a = group_relative(&r, 4, GroupScale::Std).unwrap();
        let expected = [
            0.8658754297607016,
            -0.8658754297607016,
            -0.8658754297607016,
            0.8658754297607016,
        ];
        for (got, want) in a[..4].iter().zip(expected) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        // An all-equal group: zero advantages, never NaN.
        assert_eq!(&a[4..], &[0.0; 4]);
        // Dr. GRPO: centred only.
        let a = group_relative(&r, 4, GroupScale::None).unwrap();
        assert_eq!(a, [0.5, -0.5, -0.5, 0.5, 0.0, 0.0, 0.0, 0.0]);
        // Group sizes that cannot work are errors that say why.
        // Batch scale: centred by the group mean, divided by the std of all eight rewards.
        // r = [1, 0, 0, 0, 1, 1, 1, 0]: group means 0.25 and 0.75; the sample std of the batch
        // (mean 0.5, eight squared deviations of 0.25) is sqrt(2/7).
        let rb = [1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0];
        let a = group_relative(&rb, 4, GroupScale::Batch).unwrap();
        let s = (2.0f64 / 7.0).sqrt() + 1e-4;
        for (x, e) in a
            .iter()
            .zip([0.75, -0.25, -0.25, -0.25, 0.25, 0.25, 0.25, -0.75])
        {
            assert!((x - e / s).abs() < 1e-12);
        }
        // Leave-one-out, worked by hand: 1 − (0 + 0 + 0)/3 = 1, 0 − (1 + 0 + 0)/3 = −1/3.
        let l = leave_one_out(&rb, 4).unwrap();
        for (x, e) in l.iter().zip([
            1.0,
            -1.0 / 3.0,
            -1.0 / 3.0,
            -1.0 / 3.0,
            1.0 / 3.0,
            1.0 / 3.0,
            1.0 / 3.0,
            -1.0,
        ]) {
            assert!((x - e).abs() < 1e-12, "{l:?}");
        }
        assert!(leave_one_out(&rb, 1).is_err());
        let err = group_relative(&r, 1, GroupScale::Std)
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least 2"), "{err}");
        let err = group_relative(&r, 3, GroupScale::Std)
            .unwrap_err()
            .to_string();
        assert!(err.contains("whole number of groups"), "{err}");
    }

    #[test]
    fn mismatched_rollouts_are_errors_not_panics() {
        let err = |r: crate::Result<Vec<f32>>| r.unwrap_err().to_string();
        // No envs.
        assert!(
            err(bootstrap_values(&[1.0], &[], &[0.0], &[false], &[false]))
                .contains("num_envs is 0")
        );
        assert!(gae(&[1.0], &[1.0], &[1.0], &[false], 0, 0.9, 0.9).is_err());
        assert!(err(returns_to_go(&[1.0], &[1.0], &[false], 0, 0.9)).contains("num_envs is 0"));
        // Unequal lengths, each named.
        let e = err(bootstrap_values(
            &[1.0, 2.0],
            &[0.0],
            &[0.0],
            &[false; 2],
            &[false; 2],
        ));
        assert!(
            e.contains("final_values has 1 entries, the rollout has 2"),
            "{e}"
        );
        let e = gae(&[1.0, 2.0], &[1.0], &[1.0, 1.0], &[false; 2], 1, 0.9, 0.9).unwrap_err();
        assert!(e.to_string().contains("values has 1 entries"), "{e}");
        let e = err(returns_to_go(&[1.0, 2.0], &[1.0, 1.0], &[false; 3], 1, 0.9));
        assert!(e.contains("dones has 3 entries"), "{e}");
        // Not a whole number of steps.
        let e = err(returns_to_go(&[1.0; 3], &[1.0; 3], &[false; 3], 2, 0.9));
        assert!(e.contains("not a whole number of steps of 2 envs"), "{e}");
    }

    #[test]
    fn moving_average_baseline() {
        assert!(MovingAverageBaseline::new(0.0).is_err());
        assert!(MovingAverageBaseline::new(1.5).is_err());
        let mut b = MovingAverageBaseline::new(0.5).unwrap();
        assert_eq!(b.value(), 0.0);
        b.update(&[10.0, 20.0]);
        assert_eq!(b.value(), 15.0);
        b.update(&[]);
        assert_eq!(b.value(), 15.0);
        b.update(&[25.0]);
        assert_eq!(b.value(), 20.0);
    }
}
