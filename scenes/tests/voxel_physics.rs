//! Voxel player physics: the box never ends a step inside a solid block or outside the world,
//! gravity lands it on the block below, jumps need ground and come back down, walls stop
//! walking (with sliding along them), one-block steps are climbed by jumping, water slows.

use scenes::voxel::{
    Block, VoxelConfig, VoxelEnv, World, HALF_WIDTH, HEIGHT, TURN_ANGLE, WALK_DISTANCE,
};
use scenes::{Env, Pose, Rng};

const NOOP: usize = 0;
const FORWARD: usize = 1;
const TURN_LEFT: usize = 2;
const TURN_RIGHT: usize = 3;
const JUMP: usize = 4;

/// Solid cells whose interior the player's box overlaps, computed from the box and the blocks
/// (independently of the physics code); columns outside the world count as solid.
fn solid_overlaps(world: &World, feet: [f64; 3]) -> Vec<[i32; 3]> {
    let eps = 1e-9;
    let lo = [feet[0] - HALF_WIDTH, feet[1], feet[2] - HALF_WIDTH];
    let hi = [feet[0] + HALF_WIDTH, feet[1] + HEIGHT, feet[2] + HALF_WIDTH];
    let range = |a: usize| (lo[a] + eps).floor() as i32..=(hi[a] - eps).ceil() as i32 - 1;
    let mut out = Vec::new();
    for x in range(0) {
        for y in range(1) {
            for z in range(2) {
                let [sx, _, sz] = world.size();
                let outside = x < 0 || z < 0 || x >= sx as i32 || z >= sz as i32;
                if outside || world.block(x, y, z).is_solid() {
                    out.push([x, y, z]);
                }
            }
        }
    }
    out
}

fn env_on(world: World, feet: [f64; 3], yaw: f64) -> VoxelEnv {
    let mut env = VoxelEnv::new(VoxelConfig::default()).unwrap();
    *env.world_mut() = world;
    env.set_pose(Pose {
        position: feet,
        yaw,
    });
    env
}

#[test]
fn random_walks_never_end_a_step_inside_a_solid_block() {
    for seed in 0..4u64 {
        let mut env = VoxelEnv::new(VoxelConfig::default()).unwrap();
        env.reset(seed);
        let mut rng = Rng::new(seed + 100);
        let (mut action, mut travelled, mut lowest, mut highest) =
            (FORWARD, 0.0, f64::MAX, f64::MIN);
        let mut jumps = 0;
        for t in 0..3000 {
            if rng.chance(0.3) {
                action = [
                    NOOP, FORWARD, FORWARD, FORWARD, TURN_LEFT, TURN_RIGHT, JUMP, JUMP,
                ][rng.below(8)];
            }
            // Forward while airborne after a jump, as a player climbing does.
            let a = if action == JUMP && !env.on_ground() {
                FORWARD
            } else {
                action
            };
            jumps += (a == JUMP && env.on_ground()) as usize;
            let before = env.pose().position;
            env.advance(a);
            let p = env.pose().position;
            let bad = solid_overlaps(env.world(), p);
            assert!(
                bad.is_empty(),
                "seed {seed} step {t}: box at {p:?} overlaps solid cells {bad:?}"
            );
            travelled += ((p[0] - before[0]).powi(2) + (p[2] - before[2]).powi(2)).sqrt();
            lowest = lowest.min(p[1]);
            highest = highest.max(p[1]);
        }
        // The walk must have exercised the physics: long travel, jumps, real climbs and descents.
        assert!(travelled > 150.0, "seed {seed}: travelled only {travelled}");
        assert!(jumps > 50, "seed {seed}: only {jumps} jumps");
        assert!(
            highest - lowest > 2.0,
            "seed {seed}: height range {lowest}..{highest}"
        );
    }
}

#[test]
fn rendered_steps_also_stay_out_of_solid_blocks() {
    let mut env = VoxelEnv::new(VoxelConfig::default()).unwrap();
    env.reset(77);
    let mut rng = Rng::new(5);
    for t in 0..300 {
        let out = env.step([FORWARD, FORWARD, JUMP, TURN_LEFT][rng.below(4)]);
        assert!(
            solid_overlaps(env.world(), out.pose.position).is_empty(),
            "step {t} at {:?}",
            out.pose
        );
    }
}

#[test]
fn gravity_lands_the_player_on_the_block_below() {
    let ground = 10;
    let mut env = env_on(World::flat(ground), [40.5, 30.0, 40.5], 0.0);
    let mut last = env.pose().position[1];
    for _ in 0..40 {
        env.step(NOOP);
        let y = env.pose().position[1];
        assert!(y <= last, "rose while falling: {last} -> {y}");
        last = y;
    }
    assert!(env.on_ground());
    assert!(
        (last - ground as f64).abs() < 1e-4,
        "feet at {last}, ground at {ground}"
    );
    assert!(env.world().block(40, ground - 1, 40).is_solid());
    // Over a generated world, dropped from high above a dry column, it lands on that column's top.
    let mut env = VoxelEnv::new(VoxelConfig::default()).unwrap();
    env.reset(12);
    let mut rng = Rng::new(12);
    let mut tried = 0;
    while tried < 10 {
        let (x, z) = (20 + rng.below(88) as i32, 20 + rng.below(88) as i32);
        let expected = env.world().ground_height(x, z);
        if expected <= scenes::voxel::SEA_LEVEL {
            continue;
        }
        tried += 1;
        env.set_pose(Pose {
            position: [x as f64 + 0.5, 46.0, z as f64 + 0.5],
            yaw: 0.0,
        });
        for _ in 0..40 {
            env.advance(NOOP);
        }
        let y = env.pose().position[1];
        assert!(
            (y - expected as f64).abs() < 1e-4,
            "column ({x}, {z}): feet {y}, ground {expected}"
        );
    }
}

#[test]
fn a_swimmer_floats_with_its_head_out_of_deep_water() {
    let mut w = World::flat(10);
    for x in 30..50 {
        for z in 30..50 {
            for y in 3..10 {
                w.set_block(x, y, z, Block::Water);
            }
        }
    }
    let mut env = env_on(w, [40.5, 14.0, 40.5], 0.0);
    for _ in 0..40 {
        env.step(NOOP);
    }
    for _ in 0..20 {
        env.step(NOOP);
        let feet = env.pose().position[1];
        let eye = feet + scenes::voxel::EYE_HEIGHT;
        assert!(feet > 3.5 && feet < 10.0, "not swimming: feet at {feet}");
        assert!(eye > 10.1, "head under water: eye at {eye}");
    }
}

#[test]
fn jumping_needs_ground_rises_above_one_block_and_comes_back() {
    let ground = 10.0;
    let mut env = env_on(World::flat(10), [40.5, ground, 40.5], 0.0);
    env.step(NOOP);
    assert!(env.on_ground());
    let mut heights = Vec::new();
    env.step(JUMP);
    heights.push(env.pose().position[1]);
    for _ in 0..8 {
        env.step(NOOP);
        heights.push(env.pose().position[1]);
    }
    let peak = heights.iter().cloned().fold(f64::MIN, f64::max);
    assert!(
        peak - ground > 1.0 && peak - ground < 1.6,
        "jump peak {peak} over ground {ground}"
    );
    assert!(
        (heights.last().unwrap() - ground).abs() < 1e-4,
        "did not land: {heights:?}"
    );
    // Pressing jump again in mid-air changes nothing: the same heights as with no-ops.
    let mut again = env_on(World::flat(10), [40.5, ground, 40.5], 0.0);
    again.step(NOOP);
    let mut air = vec![];
    again.step(JUMP);
    air.push(again.pose().position[1]);
    for _ in 0..8 {
        again.step(JUMP);
        air.push(again.pose().position[1]);
        if again.on_ground() {
            break;
        }
    }
    assert_eq!(air[..air.len() - 1], heights[..air.len() - 1]);
}

#[test]
fn walls_stop_walking_and_the_player_slides_along_them() {
    let mut world = World::flat(10);
    for z in 30..50 {
        for y in 10..12 {
            world.set_block(45, y, z, Block::Stone);
        }
    }
    let mut env = env_on(world.clone(), [40.5, 10.0, 40.5], 0.0);
    for _ in 0..40 {
        env.step(FORWARD);
    }
    let x = env.pose().position[0];
    assert!(
        x <= 45.0 - HALF_WIDTH && x > 45.0 - HALF_WIDTH - 1e-3,
        "stopped at x = {x}"
    );
    // A two-block wall cannot be jumped.
    for _ in 0..20 {
        env.step(JUMP);
        env.step(FORWARD);
        env.step(FORWARD);
    }
    assert!(
        env.pose().position[0] <= 45.0 - HALF_WIDTH,
        "crossed a 2-high wall"
    );
    // Walking at 45° into the wall keeps moving along it (z grows) while x stays blocked.
    let mut env = env_on(world, [43.5, 10.0, 35.5], std::f64::consts::FRAC_PI_4);
    for _ in 0..30 {
        env.step(FORWARD);
    }
    let p = env.pose().position;
    assert!(p[0] <= 45.0 - HALF_WIDTH, "inside the wall at {p:?}");
    assert!(
        p[2] > 35.5 + 30.0 * WALK_DISTANCE * 0.7 - 0.1,
        "did not slide: {p:?}"
    );
}

#[test]
fn a_one_block_step_is_climbed_by_jumping_not_by_walking() {
    let mut world = World::flat(10);
    for x in 45..60 {
        for z in 30..50 {
            world.set_block(x, 10, z, Block::Grass);
        }
    }
    let mut env = env_on(world, [40.5, 10.0, 40.5], 0.0);
    for _ in 0..30 {
        env.step(FORWARD);
    }
    assert!(
        env.pose().position[0] < 45.0,
        "walked up a step without jumping"
    );
    env.step(JUMP);
    for _ in 0..6 {
        env.step(FORWARD);
    }
    let p = env.pose().position;
    assert!(p[0] > 45.0 + HALF_WIDTH, "did not get onto the step: {p:?}");
    assert!(
        (p[1] - 11.0).abs() < 1e-4,
        "not standing on the step: {p:?}"
    );
}

#[test]
fn forward_follows_the_heading_and_turns_are_fixed_angles() {
    let mut env = env_on(World::flat(10), [60.5, 10.0, 60.5], 0.7);
    env.step(NOOP);
    let start = env.pose();
    env.step(FORWARD);
    let p = env.pose();
    let [hx, hz] = start.heading();
    assert!((p.position[0] - start.position[0] - WALK_DISTANCE * hx).abs() < 1e-9);
    assert!((p.position[2] - start.position[2] - WALK_DISTANCE * hz).abs() < 1e-9);
    env.step(TURN_LEFT);
    assert!((env.pose().yaw - (0.7 + TURN_ANGLE)).abs() < 1e-12);
    env.step(TURN_RIGHT);
    env.step(TURN_RIGHT);
    assert!((env.pose().yaw - (0.7 - TURN_ANGLE)).abs() < 1e-12);
    assert!((TURN_ANGLE.to_degrees() - 15.0).abs() < 1e-12);
    // 24 left turns come back to the same heading.
    for _ in 0..24 {
        env.step(TURN_LEFT);
    }
    assert!((env.pose().yaw - (0.7 - TURN_ANGLE)).abs() < 1e-9);
}

#[test]
fn water_slows_walking_and_is_not_solid() {
    let mut world = World::flat(10);
    for x in 50..90 {
        for z in 30..50 {
            world.set_block(x, 10, z, Block::Water);
        }
    }
    let walk = |start: f64| {
        let mut env = env_on(world.clone(), [start, 10.0, 40.5], 0.0);
        env.step(NOOP);
        let x0 = env.pose().position[0];
        for _ in 0..10 {
            env.step(FORWARD);
        }
        env.pose().position[0] - x0
    };
    let (dry, wet) = (walk(20.5), walk(60.5));
    assert!((dry - 10.0 * WALK_DISTANCE).abs() < 1e-9, "dry walk {dry}");
    assert!(
        wet > 0.3 * dry && wet < 0.7 * dry,
        "wading {wet} vs walking {dry}"
    );
}

#[test]
fn set_pose_lifts_a_buried_player_and_keeps_it_inside_the_world() {
    let mut env = env_on(World::flat(10), [30.5, 4.0, 30.5], 0.0);
    let p = env.pose().position;
    assert!(
        solid_overlaps(env.world(), p).is_empty() && (p[1] - 10.0).abs() < 1e-4,
        "{p:?}"
    );
    env.set_pose(Pose {
        position: [-20.0, 12.0, 500.0],
        yaw: 0.0,
    });
    let p = env.pose().position;
    assert!(solid_overlaps(env.world(), p).is_empty(), "{p:?}");
}

#[test]
fn a_swimmer_climbs_out_onto_a_bank_one_block_above_the_water_only() {
    // Ground surface at 10; a pool dug two blocks deep whose water stops one block below the
    // bank (cells y = 7, 8 water, y = 9 air), so the bank is `rise` blocks above the surface.
    let pool = |rise: i32| {
        let mut w = World::flat(10);
        for x in 30..50 {
            for z in 30..50 {
                for y in 7..10 {
                    w.set_block(
                        x,
                        y,
                        z,
                        if y < 10 - rise {
                            Block::Water
                        } else {
                            Block::Air
                        },
                    );
                }
            }
        }
        if rise == 2 {
            // A two-block bank: raise the ground around the pool by one.
            for x in 20..60 {
                for z in 20..60 {
                    if !(30..50).contains(&x) || !(30..50).contains(&z) {
                        w.set_block(x, 10, z, Block::Grass);
                    }
                }
            }
        }
        w
    };
    let swim_to_bank = |rise: i32| {
        let mut env = env_on(pool(rise), [45.5, 7.0, 40.5], 0.0);
        for _ in 0..40 {
            env.step(FORWARD);
        }
        env.pose().position
    };
    let out = swim_to_bank(1);
    assert!(
        out[0] > 50.0 + HALF_WIDTH && (out[1] - 10.0).abs() < 1e-4,
        "still in the pool: {out:?}"
    );
    let kept = swim_to_bank(2);
    assert!(
        kept[0] < 50.0,
        "climbed a bank two blocks above the water: {kept:?}"
    );
}
