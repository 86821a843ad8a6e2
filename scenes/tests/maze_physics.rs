//! Maze physics: walls block movement and the agent never ends a step inside a wall (checked
//! against an independent distance computation), turns and forward speed follow the Memory
//! Maze controls, and momentum carries a little motion into the next step.

use scenes::maze::{
    integrate, MazeConfig, MazeEnv, Velocity, ACTIONS, AGENT_RADIUS, FORWARD_SPEED, MOMENTUM,
    TURN_RATE,
};
use scenes::policy::{Policy, RandomPolicy};
use scenes::{Env, Pose};

/// Smallest distance from (x, y) to any wall cell or the outside of the grid.
fn wall_clearance(n: usize, layout: &[u8], x: f64, y: f64) -> f64 {
    let mut best = f64::INFINITY;
    for cy in -1..=n as i64 {
        for cx in -1..=n as i64 {
            let inside = cx >= 0 && cy >= 0 && cx < n as i64 && cy < n as i64;
            if inside && layout[cy as usize * n + cx as usize] == 1 {
                continue;
            }
            let dx = (cx as f64 - x).max(0.0).max(x - (cx as f64 + 1.0));
            let dy = (cy as f64 - y).max(0.0).max(y - (cy as f64 + 1.0));
            best = best.min(dx.hypot(dy));
        }
    }
    best
}

#[test]
fn random_walks_never_end_a_step_inside_a_wall() {
    let mut closest = f64::INFINITY;
    let mut moved = 0.0;
    for seed in 0..4u64 {
        let mut env = MazeEnv::new(MazeConfig::new(9 + 2 * seed as usize).unwrap());
        let mut policy = RandomPolicy::new(ACTIONS.len(), seed);
        let mut out = env.reset(seed);
        let n = env.level().size;
        for t in 0..2500 {
            let before = out.pose;
            out = env.step(policy.act(&out));
            let [x, y, _] = out.pose.position;
            let clearance = wall_clearance(n, &env.level().layout, x, y);
            assert!(
                clearance >= AGENT_RADIUS - 1e-9,
                "seed {seed} step {t}: agent at ({x}, {y}) is {clearance} from a wall"
            );
            closest = closest.min(clearance);
            moved += (x - before.position[0]).hypot(y - before.position[1]);
        }
    }
    // The walks must press against walls, or the check above is vacuous.
    assert!(
        closest < AGENT_RADIUS + 0.01,
        "the agent never came close to a wall ({closest})"
    );
    assert!(moved > 100.0, "the agent barely moved ({moved} cells)");
}

#[test]
fn a_wall_ahead_stops_the_agent() {
    let mut env = MazeEnv::new(MazeConfig::default());
    env.reset(5);
    let level = env.level().clone();
    let n = level.size;
    // A free cell whose east neighbour is wall: walk east into it.
    let (cx, cy) = (0..n * n)
        .map(|i| (i % n, i / n))
        .find(|&(x, y)| level.layout[y * n + x] == 1 && level.layout[y * n + x + 1] == 0)
        .expect("some free cell has a wall to its east");
    let mut pose = Pose {
        position: [cx as f64 + 0.5, cy as f64 + 0.5, 0.0],
        yaw: 0.0,
    };
    let mut vel = Velocity::default();
    for _ in 0..40 {
        (pose, vel) = integrate(&level, pose, vel, 1);
    }
    let wall_x = (cx + 1) as f64;
    assert!(
        pose.position[0] <= wall_x - AGENT_RADIUS + 1e-9,
        "walked into the wall: x = {}",
        pose.position[0]
    );
    assert!(
        pose.position[0] > wall_x - AGENT_RADIUS - 0.01,
        "stopped short of the wall: x = {}",
        pose.position[0]
    );
    assert!(
        (pose.position[1] - (cy as f64 + 0.5)).abs() < 1e-12,
        "moved sideways"
    );
    assert_eq!(vel.v[0], 0.0, "blocked axis keeps its velocity");
}

#[test]
fn turns_and_forward_speed_follow_the_controls() {
    let mut env = MazeEnv::new(MazeConfig::new(15).unwrap());
    env.reset(1);
    let level = env.level().clone();
    let room = level
        .rooms
        .iter()
        .max_by_key(|r| r.w * r.h)
        .copied()
        .unwrap();
    // Start at the west edge of the largest room, facing east.
    let start = Pose {
        position: [
            room.x0 as f64 + 0.5,
            room.y0 as f64 + room.h as f64 / 2.0,
            0.0,
        ],
        yaw: 0.0,
    };
    let (p, _) = integrate(&level, start, Velocity::default(), 2);
    assert!(
        (p.yaw - TURN_RATE).abs() < 1e-12,
        "turn_left is counter-clockwise by TURN_RATE"
    );
    assert_eq!(
        p.position, start.position,
        "turning in place moves the agent"
    );
    let (p, _) = integrate(&level, start, Velocity::default(), 3);
    assert!(
        (p.yaw - (std::f64::consts::TAU - TURN_RATE)).abs() < 1e-12,
        "turn_right wraps to [0, 2π)"
    );
    assert!((18.0f64.to_radians()..19.0f64.to_radians()).contains(&TURN_RATE));

    // Forward from rest covers (1 - MOMENTUM) of the speed, then converges to FORWARD_SPEED.
    let (p1, v1) = integrate(&level, start, Velocity::default(), 1);
    let d1 = p1.position[0] - start.position[0];
    assert!(
        (d1 - (1.0 - MOMENTUM) * FORWARD_SPEED).abs() < 1e-12,
        "first step {d1}"
    );
    let (p2, v2) = integrate(&level, p1, v1, 1);
    let d2 = p2.position[0] - p1.position[0];
    let expect = MOMENTUM * (1.0 - MOMENTUM) * FORWARD_SPEED + (1.0 - MOMENTUM) * FORWARD_SPEED;
    assert!(
        (d2 - expect).abs() < 1e-12,
        "second step {d2}, expected {expect}"
    );
    // Momentum: a noop after moving still drifts, by MOMENTUM times the last velocity.
    let (p3, _) = integrate(&level, p2, v2, 0);
    assert!((p3.position[0] - p2.position[0] - MOMENTUM * v2.v[0]).abs() < 1e-12);
    assert!(p3.position[0] > p2.position[0]);
    // forward_left turns and moves along the new heading.
    let (p4, _) = integrate(&level, start, Velocity::default(), 4);
    let heading = (p4.position[1] - start.position[1]).atan2(p4.position[0] - start.position[0]);
    assert!(
        (heading - TURN_RATE).abs() < 1e-9,
        "forward_left moves along the turned heading"
    );
}

#[test]
fn set_pose_teleports_and_stops_the_agent() {
    let mut env = MazeEnv::new(MazeConfig::default());
    let out = env.reset(9);
    env.step(1);
    env.step(1);
    assert_ne!(env.velocity(), Velocity::default());
    env.set_pose(out.pose);
    assert_eq!(env.pose(), out.pose);
    assert_eq!(env.velocity(), Velocity::default());
    assert!(
        env.render_at(env.pose()) == out.frame,
        "teleporting back does not reproduce the first frame"
    );
}
