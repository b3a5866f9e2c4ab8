//! REINFORCE (Williams 1992) as a configuration of [`PolicyGradient`]: Monte-Carlo
//! returns-to-go, an optional baseline, the vanilla surrogate `−log π · Â`, one gradient step per
//! batch of complete episodes.
//!
//! ```
//! use cinder_rl::policy_gradient::{AdvantageEstimator, Baseline};
//! use cinder_rl::reinforce;
//!
//! // REINFORCE with a moving-average baseline instead of the learned critic.
//! let config = reinforce::config().with_advantage(AdvantageEstimator::ReturnToGo {
//!     baseline: Baseline::MovingAverage { alpha: 0.1 },
//!     normalize: false,
//! });
//! assert_eq!(config.method(), "reinforce");
//! config.validate().unwrap();
//! ```
//!
//! [`PolicyGradient`]: crate::policy_gradient::PolicyGradient

use crate::policy_gradient::PolicyGradientConfig;

/// REINFORCE with a learned baseline, tuned on CartPole-v1:
///
/// - advantage: `G_t − V(s_t)` (γ = 0.99; truncated episodes bootstrap from the critic),
///   normalised over the batch; the critic learns `½ (V − G_t)²` with weight 0.5;
/// - surrogate: vanilla, one gradient step per batch of 8 complete episodes;
/// - aggregation: the mean over all steps of the batch ("bnpo");
/// - Adam at 3e-3 (ε = 1e-5), no gradient clipping (the critic's unscaled returns dominate the
///   global norm, so clipping it at 0.5 starves the actor), 64 hidden units, no entropy bonus.
pub fn config() -> PolicyGradientConfig {
    PolicyGradientConfig::new()
}
