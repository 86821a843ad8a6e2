//! Voxel renderer: the fast column tracer agrees with the plain 3-D DDA, frames show sky above
//! terrain, the view turns and looks where the pose says, faces are shaded by direction,
//! distance fog fades blocks into the sky, and water is translucent.

use scenes::voxel::{Block, VoxelConfig, VoxelEnv, World, RAY_MAX, SEA_LEVEL, TURN_ANGLE};
use scenes::{Env, Frame, Pose, Rng};

fn env_with(res: usize) -> VoxelEnv {
    VoxelEnv::new(VoxelConfig {
        resolution: res,
        episode_steps: 1000,
    })
    .unwrap()
}

fn sky_like([r, g, b]: [u8; 3]) -> bool {
    b as i32 > r as i32 + 30 && b >= g
}

fn mean(f: &Frame, cols: std::ops::Range<usize>, rows: std::ops::Range<usize>) -> [f64; 3] {
    let mut s = [0.0; 3];
    let n = (cols.len() * rows.len()) as f64;
    for y in rows {
        for x in cols.clone() {
            let p = f.pixel(x, y);
            (0..3).for_each(|k| s[k] += p[k] as f64 / n);
        }
    }
    s
}

/// Fraction of pixels that differ, and the largest fraction in one frame.
fn compare(env: &VoxelEnv, poses: &[Pose]) -> (f64, f64) {
    let (mut differ, mut total, mut worst) = (0usize, 0usize, 0.0f64);
    for &p in poses {
        let (fast, reference) = (env.render_at(p), env.render_reference_at(p));
        let d = fast
            .rgb
            .chunks(3)
            .zip(reference.rgb.chunks(3))
            .filter(|(a, b)| a != b)
            .count();
        let n = fast.rgb.len() / 3;
        worst = worst.max(d as f64 / n as f64);
        differ += d;
        total += n;
    }
    (differ as f64 / total as f64, worst)
}

#[test]
fn fast_tracer_matches_the_reference_dda() {
    for (seed, res) in [(0u64, 64usize), (1, 64), (2, 128), (3, 64)] {
        let mut env = env_with(res);
        env.reset(seed);
        let mut rng = Rng::new(seed);
        let mut poses = Vec::new();
        let mut action = 1;
        for t in 0..240 {
            if rng.chance(0.2) {
                action = [1, 1, 2, 3, 4][rng.below(5)];
            }
            env.advance(action);
            if t % 30 == 0 {
                poses.push(env.pose());
            }
        }
        // Views from inside water, over the sea at the border, and looking up from low ground.
        poses.push(Pose {
            position: [2.0, SEA_LEVEL as f64 - 1.0, 64.0],
            yaw: 3.0,
        });
        poses.push(Pose {
            position: [3.0, SEA_LEVEL as f64 - 2.5, 70.0],
            yaw: 0.3,
        });
        poses.push(Pose {
            position: [64.2, 5.0, 64.7],
            yaw: 1.0,
        });
        let (fraction, worst) = compare(&env, &poses);
        assert!(
            fraction < 5e-4 && worst < 5e-3,
            "seed {seed}: {fraction} of pixels differ, worst frame {worst}"
        );
    }
}

#[test]
fn frames_show_sky_above_terrain() {
    for res in [64, 128] {
        let mut env = env_with(res);
        for seed in [4u64, 5] {
            let spawn = env.reset(seed).pose;
            let (mut top_sky, mut bottom_sky, mut n) = (0, 0, 0);
            for k in 0..8 {
                let f = env.render_at(Pose {
                    yaw: spawn.yaw + k as f64 * 0.785,
                    ..spawn
                });
                for x in 0..res {
                    top_sky += sky_like(f.pixel(x, 0)) as usize;
                    bottom_sky += sky_like(f.pixel(x, res - 1)) as usize;
                    n += 1;
                }
                let mut colours: Vec<[u8; 3]> =
                    f.rgb.chunks(3).map(|c| [c[0], c[1], c[2]]).collect();
                colours.sort();
                colours.dedup();
                assert!(
                    colours.len() > 100,
                    "seed {seed}: only {} colours",
                    colours.len()
                );
            }
            assert!(
                top_sky * 2 > n,
                "seed {seed} res {res}: top row sky in {top_sky} of {n}"
            );
            assert!(
                bottom_sky * 20 < n,
                "seed {seed} res {res}: bottom row sky in {bottom_sky} of {n}"
            );
        }
    }
    // On a grass plain: sky across the top, grass across the bottom.
    let mut env = env_with(64);
    *env.world_mut() = World::flat(10);
    let f = env.render_at(Pose {
        position: [64.5, 10.0, 64.5],
        yaw: 0.4,
    });
    for x in 0..64 {
        assert!(
            sky_like(f.pixel(x, 0)),
            "not sky at ({x}, 0): {:?}",
            f.pixel(x, 0)
        );
        let [r, g, b] = f.pixel(x, 63);
        assert!(g > r && g > b, "not grass at ({x}, 63): {:?}", [r, g, b]);
    }
}

/// Screen columns (mean index) where a wood pillar shows on the horizon row.
fn pillar_column(f: &Frame) -> Option<f64> {
    let row = f.height / 2;
    let cols: Vec<usize> = (0..f.width)
        .filter(|&x| {
            let [r, g, b] = f.pixel(x, row);
            r > g && g > b && r < 150
        })
        .collect();
    (!cols.is_empty()).then(|| cols.iter().sum::<usize>() as f64 / cols.len() as f64)
}

fn plain_with_pillar(at: [i32; 2]) -> World {
    let mut w = World::flat(10);
    for y in 10..25 {
        w.set_block(at[0], y, at[1], Block::Wood);
    }
    w
}

#[test]
fn the_view_looks_along_the_heading_and_turns_left_counter_clockwise() {
    let eye = Pose {
        position: [40.5, 10.0, 60.5],
        yaw: 0.0,
    };
    let mut env = env_with(64);
    // Straight ahead (heading (cos, sin) = +x): in the middle of the image.
    *env.world_mut() = plain_with_pillar([48, 60]);
    let centre = pillar_column(&env.render_at(eye)).expect("pillar ahead not visible");
    assert!(
        (centre - 31.5).abs() < 2.0,
        "pillar ahead at column {centre}"
    );
    // Turning left (yaw + 15°) moves what was ahead to the right of the image.
    env.set_pose(eye);
    let turned = env.step(2).frame;
    let right = pillar_column(&turned).expect("pillar lost after turning");
    assert!(
        right > centre + 5.0,
        "after a left turn the pillar is at column {right}"
    );
    // The left side is +z for yaw 0 (left = (-sin, cos)): a pillar there shows on the left.
    *env.world_mut() = plain_with_pillar([48, 64]);
    let left = pillar_column(&env.render_at(eye)).expect("pillar on the left not visible");
    assert!(left < 28.0, "pillar on the left at column {left}");
    // At yaw = 90° the heading is +z: the +z pillar is now straight ahead.
    *env.world_mut() = plain_with_pillar([40, 68]);
    let ahead = pillar_column(&env.render_at(Pose {
        yaw: std::f64::consts::FRAC_PI_2,
        ..eye
    }))
    .unwrap();
    assert!(
        (ahead - 31.5).abs() < 2.0,
        "pillar at +z seen at column {ahead} for yaw 90°"
    );
    assert!((TURN_ANGLE - 15f64.to_radians()).abs() < 1e-15);
}

#[test]
fn faces_are_shaded_by_direction() {
    // A stone wall seen face-on along +x shows its -x face; along +z its -z face.
    let mut w = World::flat(10);
    for a in 50..80 {
        for y in 10..30 {
            w.set_block(70, y, a, Block::Stone);
            w.set_block(a - 30, y, 70, Block::Stone);
        }
    }
    let mut env = env_with(64);
    *env.world_mut() = w;
    let x_face = env.render_at(Pose {
        position: [66.5, 12.0, 64.5],
        yaw: 0.0,
    });
    let z_face = env.render_at(Pose {
        position: [34.5, 12.0, 66.5],
        yaw: std::f64::consts::FRAC_PI_2,
    });
    let lum = |f: &Frame| mean(f, 16..48, 16..48).iter().sum::<f64>();
    let ratio = lum(&x_face) / lum(&z_face);
    assert!(
        ratio > 1.1 && ratio < 1.4,
        "x-face / z-face brightness {ratio}"
    );
}

#[test]
fn fog_fades_distant_blocks_into_the_sky() {
    let eye = Pose {
        position: [20.5, 10.0, 64.5],
        yaw: 0.0,
    };
    let mut env = env_with(64);
    *env.world_mut() = World::flat(10);
    let sky = env.render_at(eye);
    let mut distance_to_sky = |d: i32| {
        *env.world_mut() = plain_with_pillar([20 + d, 64]);
        let f = env.render_at(eye);
        let (a, b) = (f.pixel(31, 30), sky.pixel(31, 30));
        (0..3)
            .map(|k| (a[k] as f64 - b[k] as f64).abs())
            .sum::<f64>()
    };
    let (near, mid, far) = (
        distance_to_sky(5),
        distance_to_sky(45),
        distance_to_sky(RAY_MAX as i32 + 8),
    );
    assert!(
        near > 60.0,
        "near pillar barely differs from the sky: {near}"
    );
    assert!(
        mid < 0.8 * near,
        "fog does not fade: near {near}, mid {mid}"
    );
    assert_eq!(far, 0.0, "a pillar beyond the fog is visible");
}

#[test]
fn water_is_translucent_and_tints_the_view_blue() {
    // A pool two blocks deep; what lies on its bottom shows through the surface.
    let pool = |bottom: Block| {
        let mut w = World::flat(10);
        for x in 44..60 {
            for z in 56..72 {
                w.set_block(x, 9, z, Block::Water);
                w.set_block(x, 8, z, Block::Water);
                w.set_block(x, 7, z, bottom);
            }
        }
        w
    };
    let eye = Pose {
        position: [42.5, 10.0, 64.5],
        yaw: 0.0,
    };
    let mut env = env_with(64);
    *env.world_mut() = pool(Block::Sand);
    let over_sand = env.render_at(eye);
    *env.world_mut() = pool(Block::Stone);
    let over_stone = env.render_at(eye);
    let (sand, stone) = (
        mean(&over_sand, 16..48, 40..56),
        mean(&over_stone, 16..48, 40..56),
    );
    assert!(sand[2] > sand[0] * 0.8, "pool not bluish: {sand:?}");
    assert!(
        sand[0] > stone[0] + 10.0,
        "bottom not visible through the water: {sand:?} vs {stone:?}"
    );
    // With the eye under water everything is tinted blue.
    let under = env.render_at(Pose {
        position: [50.5, 7.0, 64.5],
        yaw: 0.0,
    });
    let m = mean(&under, 0..64, 0..64);
    assert!(m[2] > m[0] + 30.0, "underwater view not blue: {m:?}");
}

#[test]
fn rendering_changes_nothing_and_matches_the_stepped_frame() {
    let mut env = env_with(64);
    let out = env.reset(8);
    let pose = env.pose();
    assert_eq!(env.render_at(pose), out.frame);
    assert_eq!(env.pose(), pose);
    let mut frame = Frame::new(1, 1);
    env.render_into(pose, &mut frame);
    assert_eq!(frame, out.frame);
    let next = env.step(1);
    assert_eq!(env.render_at(env.pose()), next.frame);
}
