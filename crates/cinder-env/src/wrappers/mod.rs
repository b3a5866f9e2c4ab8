//! Wrappers, each changing one thing about an env, as Gymnasium's do.

mod clip_action;
mod normalize;
mod record_episode_statistics;
mod render_collection;
mod time_limit;

pub use clip_action::ClipAction;
pub use normalize::{NormalizeObservation, NormalizeReward, RunningMeanStd, StatFloat};
pub use record_episode_statistics::RecordEpisodeStatistics;
pub use render_collection::{FrameLog, RenderCollection};
pub use time_limit::TimeLimit;
