//! The memory evaluation of Po et al. 2025, §5 (SPEC §5.6): spatial retrieval and spatial
//! reasoning episodes from held-out maze levels (or voxel worlds, or episode files), context
//! prefilled into the streaming session, the rest generated frame by frame, and every generated
//! frame scored with PSNR and SSIM against the ground truth; means, curves against frame
//! distance, and tables.
//!
//! A run is deterministic for a fixed seed and checkpoint: the levels, the episode-file
//! offsets and the diffusion noise of every frame are functions of the seed and the episode's
//! index (not of the batching), and the report holds no timings.

pub mod episodes;
pub mod error;
pub mod generate;
pub mod protocol;
pub mod report;
pub mod run;
pub mod score;

pub use episodes::{scene_resolution, EpisodeSource, EvalEpisode};
pub use error::EvalError;
pub use generate::{frames_at, generate_batch, truth_frames, GenerateOptions};
pub use protocol::{
    is_held_out_seed, level_seed, noise_seed, EvalSettings, Protocol, HELD_OUT_SEEDS,
};
pub use report::{frames_csv_rows, EvalReport, ModelReport, FRAMES_CSV_HEADER};
pub use run::{evaluate_batch, hold_last_frame, EpisodeOutput, HOLD_LABEL};
pub use score::{score_frames, DistanceCurve, EpisodeScores, ModelScores, PSNR_CAP_DB};
