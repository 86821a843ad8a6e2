//! Maze renderer and action alignment: `step(action)` returns the frame rendered at the pose
//! the action produced; frames show sky above and dark floor below; balls are depth-tested
//! against walls; every supported resolution renders.

use scenes::maze::{integrate, MazeConfig, MazeEnv, Renderer, ACTIONS, TURN_RATE};
use scenes::policy::{ExplorePolicy, Policy};
use scenes::{Env, Pose};

#[test]
fn step_returns_the_frame_after_the_action() {
    let mut env = MazeEnv::new(MazeConfig::default());
    let mut policy = ExplorePolicy::new(4);
    let mut out = env.reset(4);
    assert!(
        out.frame == env.render_at(out.pose),
        "reset frame is not the spawn view"
    );
    for t in 0..200 {
        let action = if t < 12 {
            t % ACTIONS.len()
        } else {
            policy.act(&out)
        };
        let (before, vel) = (env.pose(), env.velocity());
        let (expect, _) = integrate(env.level(), before, vel, action);
        out = env.step(action);
        assert_eq!(
            out.pose, expect,
            "step {t}: pose is not the integrated action"
        );
        assert_eq!(env.pose(), out.pose);
        assert!(
            out.frame == env.render_at(out.pose),
            "step {t}: frame is not rendered at the new pose"
        );
        if action == 2 && t < 12 {
            let turned = (out.pose.yaw - before.yaw).rem_euclid(std::f64::consts::TAU);
            assert!((turned - TURN_RATE).abs() < 1e-9);
            assert!(
                out.frame != env.render_at(before),
                "a turn left the view unchanged"
            );
        }
    }
}

#[test]
fn frames_have_sky_above_and_dark_floor_below() {
    let mut env = MazeEnv::new(MazeConfig::default());
    for seed in 0..5u64 {
        let out = env.reset(seed);
        let f = &out.frame;
        let top = f.pixel(32, 3);
        let bottom = f.pixel(32, 61);
        let lum = |c: [u8; 3]| c.iter().map(|&v| v as u32).sum::<u32>();
        // Sky is blue-dominant unless a wall fills the column; the floor is always dark.
        assert!(lum(bottom) < 250, "floor too bright: {bottom:?}");
        if top[2] > top[0] + 40 {
            assert!(top[2] > top[1], "sky should be blue: {top:?}");
        }
    }
}

#[test]
fn balls_are_hidden_behind_walls_and_visible_in_the_open() {
    let mut env = MazeEnv::new(MazeConfig::default());
    let renderer = Renderer::new(64);
    let mut visible = 0;
    let mut hidden = 0;
    for seed in 0..10u64 {
        env.reset(seed);
        let level = env.level().clone();
        let mut empty = level.clone();
        empty
            .objects
            .iter_mut()
            .for_each(|o| o.pos = [-10.0, -10.0]);
        for k in 0..level.objects.len() {
            let target = level.objects[k].pos;
            for (dx, dy) in [(2.0, 0.0), (-2.0, 0.0), (0.0, 2.0), (0.0, -2.0)] {
                let (x, y) = (target[0] + dx, target[1] + dy);
                if !level.is_free(x, y) {
                    continue;
                }
                let pose = Pose {
                    position: [x, y, 0.0],
                    yaw: (-dy as f64).atan2(-dx as f64),
                };
                // Only object k is in the scene, so no other ball can cover it.
                let mut only_k = empty.clone();
                only_k.objects[k] = level.objects[k];
                let with = renderer.render(&only_k, pose);
                let without = renderer.render(&empty, pose);
                let between_free = level.is_free(target[0] + dx / 2.0, target[1] + dy / 2.0);
                let differs = (0..64 * 64)
                    .filter(|&i| with.rgb[i * 3..i * 3 + 3] != without.rgb[i * 3..i * 3 + 3])
                    .count();
                if between_free {
                    assert!(
                        differs > 20,
                        "a ball 2 cells ahead in the open covers {differs} pixels"
                    );
                    // The centre of the ball's screen box has the ball's hue.
                    let c = level.objects[k].color;
                    let dominant = (0..3).max_by(|&a, &b| c[a].total_cmp(&c[b])).unwrap();
                    let px = with.pixel(32, 38);
                    let pxd = (0..3).max_by_key(|&i| px[i]).unwrap();
                    assert_eq!(pxd, dominant, "ball pixel {px:?} does not look like {c:?}");
                    visible += 1;
                } else {
                    // A wall cell between: the ball must not show at all.
                    assert_eq!(differs, 0, "a ball behind a wall shows through");
                    hidden += 1;
                }
            }
        }
    }
    assert!(
        visible > 5 && hidden > 3,
        "too few cases: {visible} visible, {hidden} hidden"
    );
}

#[test]
fn all_resolutions_render_consistent_views() {
    let mut env = MazeEnv::new(MazeConfig::default());
    env.reset(2);
    let pose = env.pose();
    let level = env.level().clone();
    let small = Renderer::new(64).render(&level, pose);
    for res in [128usize, 256] {
        let big = Renderer::new(res).render(&level, pose);
        assert_eq!(
            (big.width, big.height, big.rgb.len()),
            (res, res, res * res * 3)
        );
        // Downsampled by point sampling, the big frame is close to the small one away from the border.
        let s = res / 64;
        let mut close = 0;
        let mut total = 0;
        for y in 4..60 {
            for x in 4..60 {
                let a = small.pixel(x, y);
                let b = big.pixel(x * s + s / 2, y * s + s / 2);
                total += 1;
                if (0..3).all(|i| (a[i] as i32 - b[i] as i32).abs() < 40) {
                    close += 1;
                }
            }
        }
        assert!(
            close * 10 >= total * 8,
            "{res}: only {close}/{total} pixels agree with 64×64"
        );
    }
}
