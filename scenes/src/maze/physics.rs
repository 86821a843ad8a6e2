//! Agent motion in the maze (SPEC §4.1): discrete Memory Maze actions drive a continuous pose.
//! A turn rotates the heading by about 18.4° per step (left = counter-clockwise), forward
//! pushes the velocity toward 0.25 cells per step with a little momentum, and a disc of
//! [`AGENT_RADIUS`] collides with wall cells by sliding: each axis moves as far as it can
//! without overlapping a wall, so a step never ends inside one.
//!
//! Everything here is pure, so a world model can integrate actions against a level's
//! collision map to recover poses without rendering.

use super::Level;
use crate::Pose;

/// Heading change of `turn_left` / `turn_right`, radians per step.
pub const TURN_RATE: f64 = 18.4 * std::f64::consts::PI / 180.0;
/// Steady-state forward speed, cells per step.
pub const FORWARD_SPEED: f64 = 0.25;
/// Fraction of the previous step's velocity that carries over (the momentum).
pub const MOMENTUM: f64 = 0.25;
/// Radius of the agent's collision disc, in cells.
pub const AGENT_RADIUS: f64 = 0.2;
/// Largest move tried at once, in cells, so a fast step cannot tunnel through a corner.
const MAX_SUBSTEP: f64 = 0.1;
/// Bisection rounds when an axis move hits a wall (resolution 2⁻¹⁰ of the move).
const CONTACT_ROUNDS: usize = 10;

/// Velocity carried from one step to the next, in cells per step (x, y).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Velocity {
    pub v: [f64; 2],
}

/// (turn direction, thrust) of each action: turn in {-1, 0, 1} (1 = left), thrust in {0, 1}.
fn controls(action: usize) -> (f64, f64) {
    match action {
        1 => (0.0, 1.0),
        2 => (1.0, 0.0),
        3 => (-1.0, 0.0),
        4 => (1.0, 1.0),
        5 => (-1.0, 1.0),
        _ => (0.0, 0.0),
    }
}

/// Wraps a yaw to [0, 2π).
pub fn wrap_yaw(yaw: f64) -> f64 {
    yaw.rem_euclid(std::f64::consts::TAU)
}

/// True when a disc of `radius` at (x, y) overlaps a wall cell of `layout` (N×N, `[y*N+x]`,
/// 0 = wall) or any cell outside the grid. Touching is not overlapping.
pub fn collides(layout: &[u8], size: usize, x: f64, y: f64, radius: f64) -> bool {
    let n = size as i64;
    let (x0, x1) = ((x - radius).floor() as i64, (x + radius).floor() as i64);
    let (y0, y1) = ((y - radius).floor() as i64, (y + radius).floor() as i64);
    for cy in y0..=y1 {
        for cx in x0..=x1 {
            let wall =
                cx < 0 || cy < 0 || cx >= n || cy >= n || layout[(cy * n + cx) as usize] == 0;
            if !wall {
                continue;
            }
            let px = x.clamp(cx as f64, cx as f64 + 1.0);
            let py = y.clamp(cy as f64, cy as f64 + 1.0);
            let (dx, dy) = (x - px, y - py);
            if dx * dx + dy * dy < radius * radius {
                return true;
            }
        }
    }
    false
}

/// Moves one coordinate of `p` by `delta` as far as possible without a collision; returns
/// whether the full move was possible.
fn slide_axis(level: &Level, p: &mut [f64; 2], axis: usize, delta: f64) -> bool {
    let mut q = *p;
    q[axis] += delta;
    if !level.collides(q[0], q[1], AGENT_RADIUS) {
        *p = q;
        return true;
    }
    let (mut lo, mut hi) = (0.0, 1.0);
    for _ in 0..CONTACT_ROUNDS {
        let mid = 0.5 * (lo + hi);
        let mut m = *p;
        m[axis] += mid * delta;
        if level.collides(m[0], m[1], AGENT_RADIUS) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    p[axis] += lo * delta;
    false
}

/// One control step: applies `action` (an index into [`super::ACTIONS`]; unknown indices act
/// as noop) to `pose` and `velocity` and returns the new pose and velocity.
///
/// The turn applies first, then the velocity relaxes toward `FORWARD_SPEED` along the new
/// heading (or toward rest), then the agent slides along walls. A blocked axis loses its
/// velocity. If `pose` already overlaps a wall, moves that would keep it overlapping are
/// refused, so the agent stays put there.
pub fn integrate(level: &Level, pose: Pose, velocity: Velocity, action: usize) -> (Pose, Velocity) {
    let (turn, thrust) = controls(action);
    let yaw = wrap_yaw(pose.yaw + turn * TURN_RATE);
    let target = [
        yaw.cos() * FORWARD_SPEED * thrust,
        yaw.sin() * FORWARD_SPEED * thrust,
    ];
    let mut v = [
        MOMENTUM * velocity.v[0] + (1.0 - MOMENTUM) * target[0],
        MOMENTUM * velocity.v[1] + (1.0 - MOMENTUM) * target[1],
    ];
    let mut p = [pose.position[0], pose.position[1]];
    let largest = v[0].abs().max(v[1].abs());
    let substeps = ((largest / MAX_SUBSTEP).ceil() as usize).max(1);
    for _ in 0..substeps {
        for axis in 0..2 {
            if v[axis] != 0.0 && !slide_axis(level, &mut p, axis, v[axis] / substeps as f64) {
                v[axis] = 0.0;
            }
        }
    }
    (
        Pose {
            position: [p[0], p[1], pose.position[2]],
            yaw,
        },
        Velocity { v },
    )
}
