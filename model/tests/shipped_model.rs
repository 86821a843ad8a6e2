//! The shipped maze model (`assets/models/maze`) loads on the CPU backend, dreams a short
//! headless rollout, and its first dreamed frames are closer to the real ones than those of an
//! untrained model of the same config (so what ships is trained weights, loaded correctly).

use std::path::Path;

use burn::backend::NdArray;
use model::world::metrics::psnr_frames;
use model::world::{load_for_inference, DreamEnv, WorldModel};
use scenes::{Env, SceneKind};

type B = NdArray;

/// Mean PSNR of the first `steps` dreamed frames against the real ones, after `context` real
/// frames, on level `seed`.
fn dream_psnr(model: WorldModel<B>, seed: u64, context: usize, steps: usize) -> f64 {
    let real = scenes::factory::make_env(SceneKind::Maze, 9, 64).unwrap();
    let mut env = DreamEnv::new(real, model, Default::default()).unwrap();
    env.reset(seed);
    // Forward, forward, turn: a short walk the model is shown, then dreams on.
    let walk = [1usize, 1, 2, 1, 1, 3, 1, 1];
    env.observe_real(&walk[..context]).unwrap();
    let mut total = 0.0;
    for k in 0..steps {
        let out = env.step(walk[(context + k) % walk.len()]);
        assert!(out.frame.rgb.len() == 64 * 64 * 3);
        total += psnr_frames(env.last_real_frame().unwrap(), &out.frame);
    }
    total / steps as f64
}

#[test]
fn shipped_maze_model_loads_on_cpu_and_dreams() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/models/maze");
    let (trained, config) = load_for_inference::<B>(&dir, &Default::default())
        .unwrap_or_else(|e| panic!("the shipped model does not load: {e}"));
    assert_eq!(config.name, "maze-small");
    let untrained = config.init::<B>(&Default::default());
    let (seed, context, steps) = (1_000_007, 4, 2);
    let ours = dream_psnr(trained, seed, context, steps);
    let base = dream_psnr(untrained, seed, context, steps);
    println!("first dreamed frames: shipped {ours:.2} dB, untrained {base:.2} dB");
    assert!(
        ours.is_finite() && ours > base + 2.0,
        "shipped {ours:.2} dB vs untrained {base:.2} dB"
    );
}
