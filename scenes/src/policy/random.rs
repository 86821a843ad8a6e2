//! Random actions with persistence (SPEC §4.4), and a forward-biased wanderer for the voxel
//! world. Persistence (holding an action for a few steps) gives smoother, more varied motion
//! than independent draws, as in the Memory Maze offline data.

use super::Policy;
use crate::{Rng, StepOutput};

/// Longest run of one action, in steps.
const MAX_HOLD: usize = 8;

/// Uniformly random actions, each held for a uniform 1..=8 steps.
#[derive(Clone, Debug)]
pub struct RandomPolicy {
    n_actions: usize,
    rng: Rng,
    current: usize,
    remaining: usize,
}

impl RandomPolicy {
    /// # Panics
    /// If `n_actions == 0`.
    pub fn new(n_actions: usize, seed: u64) -> Self {
        assert!(n_actions > 0, "RandomPolicy needs at least one action");
        Self {
            n_actions,
            rng: Rng::new(seed),
            current: 0,
            remaining: 0,
        }
    }
}

impl Policy for RandomPolicy {
    fn name(&self) -> &'static str {
        "random"
    }

    fn reset(&mut self, seed: u64) {
        self.rng = Rng::new(seed);
        self.current = 0;
        self.remaining = 0;
    }

    fn act(&mut self, _last: &StepOutput) -> usize {
        if self.remaining == 0 {
            self.current = self.rng.below(self.n_actions);
            self.remaining = 1 + self.rng.below(MAX_HOLD);
        }
        self.remaining -= 1;
        self.current
    }
}

/// Voxel-world exploration: mostly forward, with turns held for a few steps now and then, and
/// a jump (action 4, when the scene has it) whenever forward motion stalls against a step.
/// Assumes the action order noop, forward, turn_left, turn_right[, jump, ...].
#[derive(Clone, Debug)]
pub struct WanderPolicy {
    n_actions: usize,
    rng: Rng,
    current: usize,
    remaining: usize,
    last_position: Option<[f64; 3]>,
    stalled: usize,
}

const FORWARD: usize = 1;
const TURN_LEFT: usize = 2;
const TURN_RIGHT: usize = 3;
const JUMP: usize = 4;

impl WanderPolicy {
    /// # Panics
    /// If `n_actions < 4`.
    pub fn new(n_actions: usize, seed: u64) -> Self {
        assert!(
            n_actions >= 4,
            "WanderPolicy needs noop, forward, turn_left and turn_right"
        );
        Self {
            n_actions,
            rng: Rng::new(seed),
            current: FORWARD,
            remaining: 0,
            last_position: None,
            stalled: 0,
        }
    }

    fn can_jump(&self) -> bool {
        self.n_actions > JUMP
    }
}

impl Policy for WanderPolicy {
    fn name(&self) -> &'static str {
        "explore"
    }

    fn reset(&mut self, seed: u64) {
        *self = Self::new(self.n_actions, seed);
    }

    fn act(&mut self, last: &StepOutput) -> usize {
        let p = last.pose.position;
        let moved = self.last_position.map_or(1.0, |q| {
            ((p[0] - q[0]).powi(2) + (p[2] - q[2]).powi(2)).sqrt()
        });
        self.last_position = Some(p);
        self.stalled = if self.current == FORWARD && moved < 0.02 {
            self.stalled + 1
        } else {
            0
        };
        if self.stalled >= 2 {
            // Blocked: jump if possible, and turn away if that keeps failing.
            self.remaining = 0;
            if self.can_jump() && self.stalled < 4 {
                return JUMP;
            }
            self.stalled = 0;
            self.current = if self.rng.chance(0.5) {
                TURN_LEFT
            } else {
                TURN_RIGHT
            };
            self.remaining = 2 + self.rng.below(6);
        }
        if self.remaining == 0 {
            let u = self.rng.next_f64();
            (self.current, self.remaining) = if u < 0.7 {
                (FORWARD, 4 + self.rng.below(12))
            } else if u < 0.85 {
                (TURN_LEFT, 1 + self.rng.below(5))
            } else {
                (TURN_RIGHT, 1 + self.rng.below(5))
            };
            if self.can_jump() && self.current == FORWARD && self.rng.chance(0.1) {
                self.remaining -= 1;
                return JUMP;
            }
        }
        self.remaining -= 1;
        self.current
    }
}
