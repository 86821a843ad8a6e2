//! Maze task: touching the current target gives +1 and picks another target, the border shows
//! the current target colour (and changes with it), reward fires exactly when the agent comes
//! within touching distance, and the episode ends (truncated) at the step limit.

use scenes::maze::{border_width, color_to_u8, MazeConfig, MazeEnv, TARGET_COLORS, TOUCH_DISTANCE};
use scenes::policy::{ExplorePolicy, Policy};
use scenes::{Env, Frame, Pose, StepInfo};

fn border_is(frame: &Frame, color: [u8; 3]) -> bool {
    let (w, h) = (frame.width, frame.height);
    let b = border_width(w);
    (0..h).all(|y| {
        (0..w).all(|x| {
            let on_border = x < b || y < b || x >= w - b || y >= h - b;
            !on_border || frame.pixel(x, y) == color
        })
    })
}

/// A free neighbour cell of the target's cell, and the yaw facing the target from there.
fn approach(env: &MazeEnv) -> Pose {
    let level = env.level();
    let t = level.target_object().pos;
    let (tx, ty) = (t[0].floor() as i64, t[1].floor() as i64);
    for (dx, dy) in [(1i64, 0i64), (-1, 0), (0, 1), (0, -1)] {
        if level.is_free_cell(tx + dx, ty + dy) {
            let (x, y) = (tx as f64 + dx as f64 + 0.5, ty as f64 + dy as f64 + 0.5);
            return Pose {
                position: [x, y, 0.0],
                yaw: (t[1] - y).atan2(t[0] - x),
            };
        }
    }
    panic!("target has no free neighbour");
}

#[test]
fn reaching_the_target_rewards_and_changes_target_and_border() {
    for (size, res) in [(9usize, 64usize), (11, 128), (15, 256)] {
        let mut env = MazeEnv::new(MazeConfig::new(size).unwrap().with_resolution(res).unwrap());
        for seed in 0..3u64 {
            let first = env.reset(seed);
            let old = env.level().target;
            let old_color = color_to_u8(TARGET_COLORS[old]);
            assert!(
                border_is(&first.frame, old_color),
                "border is not the target colour"
            );
            let StepInfo::Maze(info) = &first.info else {
                panic!("maze info expected")
            };
            assert_eq!(info.target, old);
            assert_eq!(info.target_color, TARGET_COLORS[old]);

            env.set_pose(approach(&env));
            let mut got = None;
            for t in 0..12 {
                let out = env.step(1);
                if out.reward != 0.0 {
                    got = Some((t, out));
                    break;
                }
            }
            let (t, out) = got.expect("walking at the target never gave a reward");
            assert!(t >= 1, "reward fired before the agent was within reach");
            assert_eq!(out.reward, 1.0);
            let new = env.level().target;
            assert_ne!(new, old, "the target did not change after a touch");
            let new_color = color_to_u8(TARGET_COLORS[new]);
            assert!(
                border_is(&out.frame, new_color),
                "border does not show the new target"
            );
            assert!(!border_is(&out.frame, old_color));
            let StepInfo::Maze(info) = &out.info else {
                panic!("maze info expected")
            };
            assert_eq!(info.target, new);
            assert_eq!(info.targets_pos[new], env.level().objects[new].pos);
        }
    }
}

#[test]
fn reward_fires_exactly_within_touching_distance() {
    let mut env = MazeEnv::new(MazeConfig::default());
    let mut total = 0.0;
    for seed in 0..3u64 {
        let mut policy = ExplorePolicy::new(seed);
        let mut out = env.reset(seed);
        for _ in 0..1000 {
            let target = env.level().target_object().pos;
            out = env.step(policy.act(&out));
            let [x, y, _] = out.pose.position;
            let near = (target[0] - x).hypot(target[1] - y) < TOUCH_DISTANCE;
            assert_eq!(
                out.reward == 1.0,
                near,
                "reward {} at distance mismatch",
                out.reward
            );
            assert!(out.reward == 0.0 || out.reward == 1.0);
            total += out.reward;
        }
    }
    assert!(
        total >= 1.0,
        "exploration never touched a target in 3000 steps"
    );
}

#[test]
fn episode_is_truncated_at_the_step_limit() {
    let config = MazeConfig::new(9).unwrap().with_episode_steps(25).unwrap();
    let mut env = MazeEnv::new(config);
    let out = env.reset(0);
    assert!(!out.done && !out.truncated && out.reward == 0.0);
    for t in 1..=25 {
        let out = env.step(t % 6);
        assert_eq!(out.done, t == 25, "done at step {t}");
        assert_eq!(out.truncated, t == 25);
        assert_eq!(env.steps(), t);
    }
    assert_eq!(MazeConfig::new(13).unwrap().steps(), 3000);
}
