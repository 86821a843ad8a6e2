//! Voxel scene determinism: the same seed gives byte-identical frames and poses, different
//! seeds give different worlds, and resets reproduce their episode whatever came before.

use scenes::voxel::{generate, VoxelConfig, VoxelEnv, ACTIONS};
use scenes::{Env, Rng, StepOutput};

/// Random actions with persistence, forward-biased so the player really travels.
fn actions(seed: u64, n: usize) -> Vec<usize> {
    let mut rng = Rng::new(seed);
    let mut a = 1;
    (0..n)
        .map(|_| {
            if rng.chance(0.25) {
                a = [0, 1, 1, 1, 2, 3, 4, 4][rng.below(8)];
            }
            a
        })
        .collect()
}

fn episode(env: &mut VoxelEnv, seed: u64, acts: &[usize]) -> Vec<StepOutput> {
    let mut out = vec![env.reset(seed)];
    out.extend(acts.iter().map(|&a| env.step(a)));
    out
}

fn new_env() -> VoxelEnv {
    VoxelEnv::new(VoxelConfig::default()).expect("default config is valid")
}

#[test]
fn same_seed_gives_identical_frames_and_poses() {
    let acts = actions(9, 300);
    let a = episode(&mut new_env(), 42, &acts);
    // A second environment that first played another seed must not carry anything over.
    let mut other = new_env();
    episode(&mut other, 7, &acts[..50]);
    let b = episode(&mut other, 42, &acts);
    assert_eq!(a.len(), b.len());
    for (t, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x.frame, y.frame, "frame {t} differs");
        assert_eq!(
            x.pose.position.map(f64::to_bits),
            y.pose.position.map(f64::to_bits),
            "position {t}"
        );
        assert_eq!(x.pose.yaw.to_bits(), y.pose.yaw.to_bits(), "yaw {t}");
    }
    // The run is not trivially static: the player moved and the view changed.
    let (first, last) = (a[0].pose.position, a[300].pose.position);
    let moved = ((first[0] - last[0]).powi(2) + (first[2] - last[2]).powi(2)).sqrt();
    assert!(moved > 3.0, "the player barely moved ({moved} blocks)");
    assert_ne!(a[0].frame, a[300].frame);
}

#[test]
fn different_seeds_give_different_worlds_and_views() {
    let (w1, w2) = (generate(1), generate(2));
    let [sx, _, sz] = w1.size();
    let mut differ = 0;
    for x in 0..sx as i32 {
        for z in 0..sz as i32 {
            differ += (w1.ground_height(x, z) != w2.ground_height(x, z)) as usize;
        }
    }
    assert!(
        differ > sx * sz / 2,
        "only {differ} of {} columns differ",
        sx * sz
    );
    let mut env = new_env();
    let f1 = env.reset(1).frame;
    let f2 = env.reset(2).frame;
    assert_ne!(f1, f2);
}

#[test]
fn generation_is_a_pure_function_of_the_seed() {
    assert_eq!(generate(5), generate(5));
    assert_eq!(generate(5).seed(), 5);
}

#[test]
fn edited_world_is_regenerated_on_reset() {
    let mut env = new_env();
    env.reset(3);
    let pristine = env.world().clone();
    let [x, y, z] = env.pose().position.map(|v| v.floor() as i32);
    assert!(env
        .world_mut()
        .set_block(x + 2, y, z, scenes::voxel::Block::Stone));
    assert_ne!(env.world(), &pristine);
    env.reset(3);
    assert_eq!(env.world(), &pristine);
}

#[test]
fn env_reports_its_actions_steps_and_truncation() {
    let mut env = VoxelEnv::new(VoxelConfig {
        resolution: 64,
        episode_steps: 5,
    })
    .unwrap();
    assert_eq!(env.action_names(), &ACTIONS);
    assert_eq!(env.action_names()[0], "noop");
    assert_eq!(env.scene(), scenes::SceneKind::Voxel);
    let out = env.reset(0);
    assert_eq!((out.reward, out.done, env.steps()), (0.0, false, 0));
    assert_eq!(
        (out.frame.width, out.frame.height, out.frame.rgb.len()),
        (64, 64, 64 * 64 * 3)
    );
    for t in 1..=5 {
        let out = env.step(1);
        assert_eq!(env.steps(), t);
        assert_eq!(out.done, t == 5, "step {t}");
        assert_eq!(out.truncated, out.done);
        assert_eq!(out.reward, 0.0);
        assert_eq!(out.info, scenes::StepInfo::Voxel);
        assert_eq!(out.pose, env.pose());
    }
}

#[test]
fn config_validation_names_the_bad_value() {
    assert!(VoxelConfig::default().validate().is_ok());
    assert!(VoxelEnv::new(VoxelConfig {
        resolution: 128,
        episode_steps: 10
    })
    .is_ok());
    for res in [0, 32, 96, 256] {
        let err = VoxelEnv::new(VoxelConfig {
            resolution: res,
            episode_steps: 10,
        })
        .unwrap_err();
        assert!(err.to_string().contains(&res.to_string()), "{err}");
    }
    assert!(VoxelEnv::new(VoxelConfig {
        resolution: 64,
        episode_steps: 0
    })
    .is_err());
}
