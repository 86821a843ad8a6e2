//! The shipped models (`assets/models/maze`, `assets/models/voxel`) load on the CPU backend,
//! dream a short headless rollout, and their first dreamed frames are closer to the real ones
//! than those of an untrained model of the same config (so what ships is trained weights,
//! loaded correctly).

use std::path::Path;

use burn::backend::NdArray;
use model::world::metrics::psnr_frames;
use model::world::{load_for_inference, DreamEnv, WorldModel};
use scenes::{Env, SceneKind};

type B = NdArray;

/// Mean PSNR of the first `steps` dreamed frames of `scene` against the real ones, after
/// `context` real frames, on level `seed`; `walk` is the actions, repeated.
fn dream_psnr(
    model: WorldModel<B>,
    scene: SceneKind,
    walk: &[usize],
    seed: u64,
    context: usize,
    steps: usize,
) -> f64 {
    let size = if scene == SceneKind::Maze { 9 } else { 0 };
    let real = scenes::factory::make_env(scene, size, 64).unwrap();
    let mut env = DreamEnv::new(real, model, Default::default()).unwrap();
    env.reset(seed);
    let shown: Vec<usize> = (0..context).map(|k| walk[k % walk.len()]).collect();
    env.observe_real(&shown).unwrap();
    let mut total = 0.0;
    for k in 0..steps {
        let out = env.step(walk[(context + k) % walk.len()]);
        assert!(out.frame.rgb.len() == 64 * 64 * 3);
        total += psnr_frames(env.last_real_frame().unwrap(), &out.frame);
    }
    total / steps as f64
}

/// Loads `assets/models/<scene>`, checks its preset, and compares its first dreamed frames with
/// an untrained model's.
fn shipped_model_dreams(scene: SceneKind, preset: &str, walk: &[usize]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../assets/models")
        .join(scene.name());
    let (trained, config) = load_for_inference::<B>(&dir, &Default::default())
        .unwrap_or_else(|e| panic!("the shipped {} model does not load: {e}", scene.name()));
    assert_eq!(config.name, preset);
    let untrained = config.init::<B>(&Default::default());
    let (seed, context, steps) = (1_000_007, 4, 2);
    let ours = dream_psnr(trained, scene, walk, seed, context, steps);
    let base = dream_psnr(untrained, scene, walk, seed, context, steps);
    println!(
        "{}: first dreamed frames: shipped {ours:.2} dB, untrained {base:.2} dB",
        scene.name()
    );
    assert!(
        ours.is_finite() && ours > base + 2.0,
        "shipped {ours:.2} dB vs untrained {base:.2} dB"
    );
}

#[test]
fn shipped_maze_model_loads_on_cpu_and_dreams() {
    // Forward, forward, turn: a short walk the model is shown, then dreams on.
    shipped_model_dreams(SceneKind::Maze, "maze-small", &[1, 1, 2, 1, 1, 3, 1, 1]);
}

#[test]
fn shipped_voxel_model_loads_on_cpu_and_dreams() {
    shipped_model_dreams(SceneKind::Voxel, "voxel-small", &[1, 1, 2, 1, 1, 3, 1, 1]);
}
