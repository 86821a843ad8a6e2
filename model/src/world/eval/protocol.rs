//! The two memory protocols of Po et al. 2025 (§5, SPEC §5.6) and the seeds they are drawn
//! from.
//!
//! - **Retrieval**: a context of N frames along an exploration trajectory, then the same poses
//!   in reverse order; the ground truth is the reversed context and N frames are generated.
//!   Every generated frame shows a place the context showed; generated frame k (0-based)
//!   revisits context frame N − 1 − k, seen 2k + 1 frames earlier.
//! - **Reasoning**: a context of N frames, then M frames of a fresh trajectory whose ground
//!   truth the scene renders (or the episode file holds).
//!
//! # Held-out seeds
//! Evaluation levels are generated from the seeds `HELD_OUT_SEEDS`:
//! episode e of a run with `--seed S` uses level seed `HELD_OUT_SEEDS.start + S + e`. The
//! training data never asks for a seed by number: `memworld record` uses
//! `scenes::record::episode_seed(master, i)` and generated training clips a seed drawn from the
//! data stream, both 64-bit hash outputs, uniform over all 2⁶⁴ values. The held-out range holds
//! 2²⁴ seeds, so a training level lands in it with probability 2⁻⁴⁰ per level (below 10⁻⁴ over
//! 10⁸ training clips), and `is_held_out_seed` lets a data generator exclude it outright.

use serde::{Deserialize, Serialize};

use super::error::EvalError;

/// Level seeds reserved for evaluation: `[1_000_000, 1_000_000 + 2²⁴)`.
pub const HELD_OUT_SEEDS: std::ops::Range<u64> = 1_000_000..1_000_000 + (1 << 24);

/// True for level seeds reserved for evaluation (training data generators may skip them).
pub fn is_held_out_seed(seed: u64) -> bool {
    HELD_OUT_SEEDS.contains(&seed)
}

/// The level seed of evaluation episode `episode` of a run with seed `seed`, or an error when
/// it would leave the held-out range.
pub fn level_seed(seed: u64, episode: usize) -> Result<u64, EvalError> {
    let span = HELD_OUT_SEEDS.end - HELD_OUT_SEEDS.start;
    match seed.checked_add(episode as u64) {
        Some(offset) if offset < span => Ok(HELD_OUT_SEEDS.start + offset),
        _ => Err(EvalError::Settings(format!(
            "--seed {seed} with {} episodes leaves the {span} held-out level seeds \
             (--seed + --episodes must be at most {span})",
            episode + 1
        ))),
    }
}

/// The diffusion noise seed of generated frame `frame` of episode `episode`: a function of the
/// run's seed and the episode's index only, so results do not depend on how episodes are
/// batched.
pub fn noise_seed(seed: u64, episode: usize, frame: usize) -> u64 {
    let mut h = seed ^ 0x5851_F42D_4C95_7F2D;
    for v in [episode as u64, frame as u64] {
        h = (h ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^= h >> 31;
    }
    scenes::Rng::new(h).next_u64()
}

/// Which memory test to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Retrieval,
    Reasoning,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Retrieval => "retrieval",
            Protocol::Reasoning => "reasoning",
        }
    }
}

impl std::str::FromStr for Protocol {
    type Err = EvalError;
    fn from_str(s: &str) -> Result<Self, EvalError> {
        match s {
            "retrieval" => Ok(Protocol::Retrieval),
            "reasoning" => Ok(Protocol::Reasoning),
            other => Err(EvalError::UnknownProtocol(other.to_string())),
        }
    }
}

/// The lengths and seed of an evaluation run (shared by every model evaluated in it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalSettings {
    pub protocol: Protocol,
    /// N, context frames shown to the model.
    pub context: usize,
    /// M, frames generated after the context (= N for retrieval).
    pub generate: usize,
    /// Episodes evaluated.
    pub episodes: usize,
    /// Seed of the levels (or episode offsets) and of the diffusion noise.
    pub seed: u64,
}

impl EvalSettings {
    /// Checks the lengths: at least one context frame and one generated frame, one episode,
    /// and for retrieval `generate == context`.
    pub fn validate(&self) -> Result<(), EvalError> {
        if self.context == 0 {
            return Err(EvalError::Settings(
                "--context must be at least 1 frame".into(),
            ));
        }
        if self.generate == 0 {
            return Err(EvalError::Settings(
                "--generate must be at least 1 frame".into(),
            ));
        }
        if self.episodes == 0 {
            return Err(EvalError::Settings("--episodes must be at least 1".into()));
        }
        if self.protocol == Protocol::Retrieval && self.generate != self.context {
            return Err(EvalError::Settings(format!(
                "retrieval generates the context walked back, so --generate ({}) must equal \
                 --context ({})",
                self.generate, self.context
            )));
        }
        Ok(())
    }

    /// Frames per episode: context + generated.
    pub fn frames(&self) -> usize {
        self.context + self.generate
    }

    /// Consecutive frames of a recorded trajectory the protocol reads: the context for
    /// retrieval (walked back by pose), context + continuation for reasoning.
    pub fn source_frames(&self) -> usize {
        match self.protocol {
            Protocol::Retrieval => self.context,
            Protocol::Reasoning => self.context + self.generate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_seeds_stay_in_the_held_out_range() {
        assert_eq!(level_seed(0, 0).unwrap(), HELD_OUT_SEEDS.start);
        assert_eq!(level_seed(5, 2).unwrap(), HELD_OUT_SEEDS.start + 7);
        let span = HELD_OUT_SEEDS.end - HELD_OUT_SEEDS.start;
        assert!(is_held_out_seed(level_seed(span - 1, 0).unwrap()));
        assert!(level_seed(span - 1, 1).is_err());
        assert!(level_seed(u64::MAX, 1).is_err());
        assert!(!is_held_out_seed(HELD_OUT_SEEDS.end));
    }

    #[test]
    fn noise_seeds_differ_per_episode_and_frame() {
        let mut seen = std::collections::HashSet::new();
        for e in 0..20 {
            for f in 0..20 {
                assert!(seen.insert(noise_seed(3, e, f)));
            }
        }
        assert_ne!(noise_seed(3, 0, 0), noise_seed(4, 0, 0));
    }

    #[test]
    fn protocols_parse_and_settings_validate() {
        assert_eq!(
            "retrieval".parse::<Protocol>().unwrap(),
            Protocol::Retrieval
        );
        assert!(matches!(
            "recall".parse::<Protocol>(),
            Err(EvalError::UnknownProtocol(_))
        ));
        let mut s = EvalSettings {
            protocol: Protocol::Retrieval,
            context: 4,
            generate: 4,
            episodes: 1,
            seed: 0,
        };
        s.validate().unwrap();
        s.generate = 5;
        assert!(s.validate().is_err());
        s.protocol = Protocol::Reasoning;
        s.validate().unwrap();
        s.context = 0;
        assert!(s.validate().is_err());
    }
}
