//! The clip curriculum of a training run: short clips of many scenes first, then, after a set
//! number of updates, long clips whose later frames only memory of the earlier ones explains.
//!
//! A model that has not yet learnt what its scenes look like learns it far faster from many
//! short clips than from a few long ones at the same number of tokens (docs/results,
//! equal-budget run 2); the long clips then teach the long context. The switch is a setting of
//! the run, so a resumed run switches at the same update.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::WorldError;

/// The second phase: from update `from_step` on (counting from 0, so after `from_step`
/// updates of the first phase), batches of `batch` clips of `clip_frames` frames each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClipPhase {
    pub from_step: usize,
    pub batch: usize,
    pub clip_frames: usize,
}

impl ClipPhase {
    /// `Err` with the reason when the phase cannot run in a run of `steps` updates.
    pub(crate) fn check(&self, steps: usize) -> Result<(), String> {
        if self.from_step == 0 || self.from_step >= steps {
            return Err(format!(
                "--long-clips: the long clips must start after 1 to {} updates (--steps {steps}), not after {}",
                steps.saturating_sub(1),
                self.from_step
            ));
        }
        if self.batch == 0 || self.clip_frames < 2 {
            return Err(format!(
                "--long-clips: the long clips need at least 1 clip of at least 2 frames (got {}x{})",
                self.batch, self.clip_frames
            ));
        }
        Ok(())
    }
}

/// Parses `UPDATES:BATCHxFRAMES`, e.g. `700:1x128`.
impl FromStr for ClipPhase {
    type Err = WorldError;
    fn from_str(s: &str) -> Result<Self, WorldError> {
        let bad = || {
            WorldError::TrainOptions(format!(
                "--long-clips '{s}': expected UPDATES:BATCHxFRAMES, e.g. 700:1x128"
            ))
        };
        let (at, shape) = s.split_once(':').ok_or_else(bad)?;
        let (batch, frames) = shape.split_once(['x', 'X']).ok_or_else(bad)?;
        let number = |t: &str| t.trim().parse::<usize>().map_err(|_| bad());
        Ok(ClipPhase {
            from_step: number(at)?,
            batch: number(batch)?,
            clip_frames: number(frames)?,
        })
    }
}

impl fmt::Display for ClipPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}x{}", self.from_step, self.batch, self.clip_frames)
    }
}

/// Clips of one phase: how many clips of how many frames, and the update it ends before
/// (`None`: the end of the run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PhaseSpan {
    pub batch: usize,
    pub clip_frames: usize,
    pub end: Option<usize>,
}

/// The phase that runs update `step` (0-based), given the first phase's clips and the optional
/// second.
pub(crate) fn phase_at(
    step: usize,
    (batch, clip_frames): (usize, usize),
    long: Option<ClipPhase>,
) -> PhaseSpan {
    match long {
        Some(p) if step >= p.from_step => PhaseSpan {
            batch: p.batch,
            clip_frames: p.clip_frames,
            end: None,
        },
        _ => PhaseSpan {
            batch,
            clip_frames,
            end: long.map(|p| p.from_step),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prints_and_checks_the_flag() {
        let p: ClipPhase = "700:1x128".parse().unwrap();
        assert_eq!(
            p,
            ClipPhase {
                from_step: 700,
                batch: 1,
                clip_frames: 128
            }
        );
        assert_eq!(p.to_string(), "700:1x128");
        assert_eq!(p.to_string().parse::<ClipPhase>().unwrap(), p);
        for bad in ["700", "700:128", "a:1x128", "700:1x", "-1:1x128", ""] {
            let e = bad.parse::<ClipPhase>().unwrap_err().to_string();
            assert!(e.contains("UPDATES:BATCHxFRAMES"), "{bad}: {e}");
        }
        assert!(p.check(701).is_ok());
        assert!(p.check(700).is_err());
        assert!("0:1x128".parse::<ClipPhase>().unwrap().check(10).is_err());
        assert!("5:0x128".parse::<ClipPhase>().unwrap().check(10).is_err());
        assert!("5:1x1".parse::<ClipPhase>().unwrap().check(10).is_err());
    }

    #[test]
    fn the_phase_switches_at_its_update() {
        let long = "3:1x32".parse().ok();
        let first = PhaseSpan {
            batch: 8,
            clip_frames: 16,
            end: Some(3),
        };
        let second = PhaseSpan {
            batch: 1,
            clip_frames: 32,
            end: None,
        };
        for step in 0..3 {
            assert_eq!(phase_at(step, (8, 16), long), first);
        }
        for step in 3..6 {
            assert_eq!(phase_at(step, (8, 16), long), second);
        }
        let only = PhaseSpan { end: None, ..first };
        assert_eq!(phase_at(5, (8, 16), None), only);
    }
}
