//! GRPO (Shao et al. 2024, DeepSeekMath) on environments, as a configuration of
//! [`PolicyGradient`]. Each "prompt" is a start state: the `G` episodes of a group start from
//! the same seeded reset (`reset(Some(seed))` gives the same state), each is scored by its total
//! return (one reward per trajectory), and every step of an episode gets its group-relative
//! advantage `(R_i − mean(R)) / (std(R) + 1e-4)` (TRL's `GRPOTrainer`: sample std, ε = 1e-4).
//! The clipped ratio is optimised for `update_iterations` steps on the same batch, with a
//! penalty `β · k3` towards a frozen reference policy (as in TRL, whose k3 penalty's gradient is
//! that of the forward KL `KL(π_ref ‖ π_θ)`; see [`KlEstimator`]); there is no critic.
//!
//! ```
//! use cinder_rl::advantages::GroupScale;
//! use cinder_rl::losses::{KlEstimator, LossAggregation, ReferenceKl};
//! use cinder_rl::policy_gradient::{AdvantageEstimator, ReferenceKlConfig};
//! use cinder_rl::grpo;
//!
//! // Dr. GRPO with a k2 penalty: no std division, constant-length aggregation.
//! let config = grpo::config()
//!     .with_advantage(AdvantageEstimator::GroupRelative { group_size: 8, scale: GroupScale::None })
//!     .with_aggregation(LossAggregation::DrGrpo { max_length: 500 })
//!     .with_reference_kl(Some(
//!         ReferenceKlConfig::new().with_kl(ReferenceKl::Estimator(KlEstimator::K2)),
//!     ));
//! config.validate().unwrap();
//! // A group of one has no baseline: the error says so.
//! let bad = grpo::config()
//!     .with_advantage(AdvantageEstimator::GroupRelative { group_size: 1, scale: GroupScale::Std });
//! assert!(bad.validate().unwrap_err().to_string().contains("group_size"));
//! ```
//!
//! [`PolicyGradient`]: crate::policy_gradient::PolicyGradient

use crate::advantages::GroupScale;
use crate::losses::{KlEstimator, LossAggregation, ReferenceKl, Surrogate};
use crate::policy_gradient::{
    AdvantageEstimator, PolicyGradientConfig, ReferenceKlConfig, ReferencePolicy,
};

/// GRPO, tuned on CartPole-v1:
///
/// - advantage: group-relative over groups of 8 episodes from the same start, 2 groups (16
///   episodes) per batch;
/// - surrogate: clipped ratio, ε_low = ε_high = 0.2, 4 gradient steps per batch (μ = 4);
/// - penalty: β = 0.04 (the GRPO paper's) times the k3 estimate of `KL(π_θ ‖ π_ref)` as a loss
///   term (whose expected gradient is that of the forward KL `KL(π_ref ‖ π_θ)`, as in TRL), the
///   reference refreshed every 10 updates;
/// - aggregation: "grpo" (the mean over each episode's steps, then over episodes);
/// - Adam at 3e-3 (ε = 1e-5), no gradient clipping, 64 hidden units, no critic.
pub fn config() -> PolicyGradientConfig {
    PolicyGradientConfig::new()
        .with_episodes_per_batch(16)
        .with_advantage(AdvantageEstimator::GroupRelative {
            group_size: 8,
            scale: GroupScale::Std,
        })
        .with_surrogate(Surrogate::Clipped {
            clip_low: 0.2,
            clip_high: 0.2,
        })
        .with_update_iterations(4)
        .with_reference_kl(Some(
            ReferenceKlConfig::new()
                .with_coef(0.04)
                .with_kl(ReferenceKl::Estimator(KlEstimator::K3))
                .with_reference(ReferencePolicy::RefreshEvery { updates: 10 }),
        ))
        .with_aggregation(LossAggregation::Grpo)
}
