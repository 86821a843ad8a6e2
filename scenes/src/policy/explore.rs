//! BFS exploration of the maze (SPEC §4.4): walk to random reachable cells, preferring cells
//! not yet visited, along shortest grid paths, steering toward the farthest path cell in clear
//! line of sight (forward when facing it, forward+turn when it is a little off, turn in place
//! otherwise). It reads only the layout and pose of the last step.

use std::f64::consts::PI;
use std::sync::Arc;

use super::Policy;
use crate::maze::{collides, grid_distances, grid_path, AGENT_RADIUS, TURN_RATE};
use crate::{Rng, StepInfo, StepOutput};

const NOOP: usize = 0;
const FORWARD: usize = 1;
const TURN_LEFT: usize = 2;
const TURN_RIGHT: usize = 3;
const FORWARD_LEFT: usize = 4;
const FORWARD_RIGHT: usize = 5;

/// Probability of choosing an unvisited cell as the next goal (when one is left).
const PREFER_UNVISITED: f64 = 0.85;
/// Heading error (radians) up to which the agent moves while turning.
const MOVE_WHILE_TURNING: f64 = 50.0 * PI / 180.0;
/// How many path cells ahead the agent may aim at when the line of sight is clear.
const LOOKAHEAD: usize = 3;
/// Distance to the goal cell's centre that counts as arrived.
const ARRIVED: f64 = 0.35;

/// Goal-directed maze exploration.
#[derive(Clone, Debug)]
pub struct ExplorePolicy {
    rng: Rng,
    /// Probability of a uniformly random action instead of the planned one.
    noise: f64,
    layout: Option<Arc<Vec<u8>>>,
    visited: Vec<bool>,
    goal: Option<(usize, usize)>,
    goal_steps: usize,
    last_position: Option<[f64; 2]>,
    last_action: usize,
    stuck: usize,
}

impl ExplorePolicy {
    /// Exploration with 3% random actions.
    pub fn new(seed: u64) -> Self {
        Self::with_noise(seed, 0.03)
    }

    /// Exploration that takes a uniformly random action with probability `noise`.
    pub fn with_noise(seed: u64, noise: f64) -> Self {
        Self {
            rng: Rng::new(seed),
            noise,
            layout: None,
            visited: Vec::new(),
            goal: None,
            goal_steps: 0,
            last_position: None,
            last_action: NOOP,
            stuck: 0,
        }
    }

    /// The cell the policy is currently walking to.
    pub fn goal(&self) -> Option<(usize, usize)> {
        self.goal
    }

    fn choose_goal(&mut self, n: usize, layout: &[u8], cell: (usize, usize)) {
        let dist = grid_distances(n, layout, cell);
        let reachable: Vec<usize> = (0..n * n)
            .filter(|&i| dist[i] != usize::MAX && dist[i] > 0)
            .collect();
        let unvisited: Vec<usize> = reachable
            .iter()
            .copied()
            .filter(|&i| !self.visited[i])
            .collect();
        let pool = if !unvisited.is_empty() && self.rng.chance(PREFER_UNVISITED) {
            &unvisited
        } else {
            &reachable
        };
        self.goal = if pool.is_empty() {
            None
        } else {
            let i = pool[self.rng.below(pool.len())];
            Some((i % n, i / n))
        };
        self.goal_steps = 0;
    }

    fn plan(&mut self, n: usize, layout: &[u8], pos: [f64; 2], yaw: f64) -> usize {
        let cell = (
            (pos[0].max(0.0) as usize).min(n - 1),
            (pos[1].max(0.0) as usize).min(n - 1),
        );
        self.visited[cell.1 * n + cell.0] = true;
        let centre = |c: (usize, usize)| [c.0 as f64 + 0.5, c.1 as f64 + 0.5];
        if let Some(goal) = self.goal {
            let g = centre(goal);
            let arrived = goal == cell && (g[0] - pos[0]).hypot(g[1] - pos[1]) < ARRIVED;
            if arrived || self.goal_steps > 200 {
                self.goal = None;
            }
        }
        if self.goal.is_none() {
            self.choose_goal(n, layout, cell);
        }
        self.goal_steps += 1;
        let Some(path) = self.goal.and_then(|g| grid_path(n, layout, cell, g)) else {
            self.goal = None;
            return if self.rng.chance(0.5) {
                TURN_LEFT
            } else {
                TURN_RIGHT
            };
        };
        let mut aim = centre(*path.last().unwrap_or(&cell));
        if path.len() > 1 {
            aim = centre(path[1]);
            for &c in path.iter().skip(2).take(LOOKAHEAD - 1) {
                if clear_line(n, layout, pos, centre(c)) {
                    aim = centre(c);
                } else {
                    break;
                }
            }
        }
        let mut error = (aim[1] - pos[1]).atan2(aim[0] - pos[0]) - yaw;
        error = (error + PI).rem_euclid(2.0 * PI) - PI;
        if error.abs() <= TURN_RATE / 2.0 {
            FORWARD
        } else if error.abs() <= MOVE_WHILE_TURNING {
            if error > 0.0 {
                FORWARD_LEFT
            } else {
                FORWARD_RIGHT
            }
        } else if error > 0.0 {
            TURN_LEFT
        } else {
            TURN_RIGHT
        }
    }
}

/// True when the agent's disc can slide straight from `a` to `b` without touching a wall.
fn clear_line(n: usize, layout: &[u8], a: [f64; 2], b: [f64; 2]) -> bool {
    let len = (b[0] - a[0]).hypot(b[1] - a[1]);
    let samples = (len / 0.05).ceil() as usize;
    (0..=samples).all(|i| {
        let t = i as f64 / samples.max(1) as f64;
        let (x, y) = (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]));
        !collides(layout, n, x, y, AGENT_RADIUS + 0.03)
    })
}

impl Policy for ExplorePolicy {
    fn name(&self) -> &'static str {
        "explore"
    }

    fn reset(&mut self, seed: u64) {
        *self = Self::with_noise(seed, self.noise);
    }

    fn act(&mut self, last: &StepOutput) -> usize {
        let StepInfo::Maze(info) = &last.info else {
            return NOOP;
        };
        let n = info.size;
        if !self
            .layout
            .as_ref()
            .is_some_and(|l| Arc::ptr_eq(l, &info.layout))
        {
            // A new level: forget what was visited.
            self.layout = Some(Arc::clone(&info.layout));
            self.visited = vec![false; n * n];
            self.goal = None;
            self.last_position = None;
        }
        let pos = [last.pose.position[0], last.pose.position[1]];
        let moving = matches!(self.last_action, FORWARD | FORWARD_LEFT | FORWARD_RIGHT);
        let still = self
            .last_position
            .is_some_and(|q| (q[0] - pos[0]).hypot(q[1] - pos[1]) < 0.01);
        self.stuck = if moving && still { self.stuck + 1 } else { 0 };
        self.last_position = Some(pos);
        let layout = Arc::clone(&info.layout);
        let mut action = self.plan(n, &layout, pos, last.pose.yaw);
        if self.stuck >= 3 {
            // Wedged on a corner: give up this goal and turn away.
            self.goal = None;
            self.stuck = 0;
            action = if self.rng.chance(0.5) {
                TURN_LEFT
            } else {
                TURN_RIGHT
            };
        } else if self.rng.chance(self.noise) {
            action = self.rng.below(6);
        }
        self.last_action = action;
        action
    }
}
