//! Parts of the training loop checked against independent computations: the learning-rate
//! schedule, global-norm gradient clipping, the EMA update, the checkpoint checksum, the data
//! spec syntax and the determinism of the data stream.

use std::sync::Arc;

use burn::backend::{Autodiff, NdArray};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use model::world::checkpoint::checksum;
use model::world::data::{
    batch_for_step, open_source, BatchShape, BatchStream, Clip, DataSpec, NoiseSpec,
};
use model::world::optim::{
    clip_grad_global_norm, ema_decay_at, ema_update, param_manifest, LrSchedule,
};
use model::world::sources::ClipSource;
use model::world::{TauSampling, WorldModelConfig};
use scenes::policy::mirror_action;
use scenes::SceneKind;

type Cpu = NdArray;
type AD = Autodiff<NdArray>;

#[derive(Module, Debug)]
struct Two<B: burn::tensor::backend::Backend> {
    a: Linear<B>,
    b: Linear<B>,
}

fn two<B: burn::tensor::backend::Backend>(dev: &B::Device) -> Two<B> {
    Two {
        a: LinearConfig::new(3, 2).init(dev),
        b: LinearConfig::new(2, 4).init(dev),
    }
}

fn values<B: burn::tensor::backend::Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().unwrap()
}

#[test]
fn schedule_warms_up_linearly_then_follows_a_half_cosine() {
    let s = LrSchedule {
        peak: 1e-3,
        warmup: 10,
        total: 110,
        min_ratio: 0.1,
    };
    assert!((s.lr(0) - 1e-4).abs() < 1e-15);
    assert!((s.lr(4) - 5e-4).abs() < 1e-15);
    assert!((s.lr(9) - 1e-3).abs() < 1e-15);
    assert!((s.lr(10) - 1e-3).abs() < 1e-15);
    // Halfway through the decay the cosine is at the mean of peak and floor.
    assert!((s.lr(60) - 0.55e-3).abs() < 1e-12);
    // A quarter of the way: floor + (peak − floor)·(1 + cos(π/4))/2.
    let q = 1e-4 + 0.9e-3 * 0.5 * (1.0 + std::f64::consts::FRAC_PI_4.cos());
    assert!((s.lr(35) - q).abs() < 1e-12);
    assert!((s.lr(110) - 1e-4).abs() < 1e-15 && (s.lr(500) - 1e-4).abs() < 1e-15);
    for k in 10..110 {
        assert!(s.lr(k + 1) <= s.lr(k), "not decreasing at {k}");
    }
}

/// Gradients of L = Σ_params Σ w·c for a constant c are c: the global norm is known exactly.
fn grads_of_weighted_sum(m: &Two<AD>, c: f32) -> GradientsParams {
    let loss = m.a.weight.val().mul_scalar(c).sum()
        + m.a.bias.as_ref().unwrap().val().mul_scalar(c).sum()
        + m.b.weight.val().mul_scalar(c).sum()
        + m.b.bias.as_ref().unwrap().val().mul_scalar(c).sum();
    GradientsParams::from_grads::<AD, _>(loss.backward(), m)
}

#[test]
fn global_norm_clipping_scales_all_gradients_by_one_factor() {
    let dev = Default::default();
    let m = two::<AD>(&dev);
    let n_params = 3 * 2 + 2 + 2 * 4 + 4; // 20 entries, each gradient 0.5
    let norm = (n_params as f64 * 0.25).sqrt();
    let (grads, got_norm) = clip_grad_global_norm::<AD, _>(&m, grads_of_weighted_sum(&m, 0.5), 1.0);
    assert!((values(got_norm)[0] as f64 - norm).abs() < 1e-5);
    let scaled = 0.5 * 1.0 / (norm + 1e-6);
    for g in [
        values(grads.get::<Cpu, 2>(m.a.weight.id).unwrap()),
        values(grads.get::<Cpu, 1>(m.b.bias.as_ref().unwrap().id).unwrap()),
    ] {
        assert!(
            g.iter().all(|&v| (v as f64 - scaled).abs() < 1e-6),
            "{g:?} vs {scaled}"
        );
    }
    // Under the threshold nothing changes.
    let (grads, _) = clip_grad_global_norm::<AD, _>(&m, grads_of_weighted_sum(&m, 0.5), 100.0);
    let g = values(grads.get::<Cpu, 2>(m.b.weight.id).unwrap());
    assert!(g.iter().all(|&v| (v - 0.5).abs() < 1e-6));
}

#[test]
fn ema_moves_every_parameter_towards_the_online_weights() {
    let dev = Default::default();
    let ema = two::<Cpu>(&dev);
    let online = two::<Cpu>(&dev);
    let (e0, o0) = (values(ema.a.weight.val()), values(online.a.weight.val()));
    let (eb, ob) = (
        values(ema.b.bias.as_ref().unwrap().val()),
        values(online.b.bias.as_ref().unwrap().val()),
    );
    let ema = ema_update::<Cpu, _>(ema, &online, 0.9);
    for (got, (e, o)) in values(ema.a.weight.val()).iter().zip(e0.iter().zip(&o0)) {
        assert!((got - (0.9 * e + 0.1 * o)).abs() < 1e-6);
    }
    for (got, (e, o)) in values(ema.b.bias.as_ref().unwrap().val())
        .iter()
        .zip(eb.iter().zip(&ob))
    {
        assert!((got - (0.9 * e + 0.1 * o)).abs() < 1e-6);
    }
    assert_eq!(ema_decay_at(0.999, 0), 0.1);
    assert_eq!(ema_decay_at(0.9, 10_000), 0.9);
}

#[test]
fn manifest_names_paths_and_shapes() {
    let m = two::<Cpu>(&Default::default());
    let manifest = param_manifest::<Cpu, _>(&m);
    assert_eq!(manifest.len(), 4);
    assert!(
        manifest
            .iter()
            .any(|(p, s)| p.ends_with("a.weight") && s == &vec![3, 2]),
        "{manifest:?}"
    );
    assert!(
        manifest
            .iter()
            .any(|(p, s)| p.ends_with("b.bias") && s == &vec![4]),
        "{manifest:?}"
    );
}

#[test]
fn checksum_sees_truncation_and_single_byte_changes() {
    let bytes: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 251) as u8).collect();
    let c = checksum(&bytes);
    assert_eq!(c, checksum(&bytes.clone()));
    assert_ne!(c, checksum(&bytes[..999]));
    assert_ne!(c, checksum(&bytes[..992]));
    for i in [0, 7, 8, 500, 999] {
        let mut b = bytes.clone();
        b[i] ^= 1;
        assert_ne!(c, checksum(&b), "flip at {i}");
    }
}

#[test]
fn data_spec_parses_and_prints_back() {
    for s in [
        "gen:maze:9",
        "gen:maze:13:pool=4",
        "gen:maze:9:revisit=50",
        "gen:maze:9:pool=2:revisit=100",
        "gen:voxel",
        "data/maze9",
    ] {
        assert_eq!(s.parse::<DataSpec>().unwrap().to_string(), s);
    }
    assert_eq!(
        "gen:maze:11".parse::<DataSpec>().unwrap(),
        DataSpec::Generated {
            scene: SceneKind::Maze,
            size: Some(11),
            pool: None,
            revisit: None,
        }
    );
    for bad in [
        "gen:cave",
        "gen:maze:x",
        "gen:maze:9:pool=0",
        "gen:voxel:9",
        "gen:maze:9:revisit=101",
        "gen:maze:9:revisit=half",
        "gen:voxel:revisit=50",
    ] {
        assert!(bad.parse::<DataSpec>().is_err(), "{bad}");
    }
}

#[test]
fn batches_depend_only_on_seed_and_step() {
    let config = WorldModelConfig::tiny();
    let spec: DataSpec = "gen:maze:9".parse().unwrap();
    let source = open_source(&spec, &config, 4, 7).unwrap();
    let shape = BatchShape {
        batch: 2,
        clip_frames: 4,
        resolution: config.resolution,
        pose_dim: 4,
        noise: Some(NoiseSpec {
            sampling: TauSampling::Uniform,
            prefix_prob: 0.5,
        }),
    };
    let b3 = batch_for_step(source.as_ref(), &shape, 7, 3).unwrap();
    // The noise comes with the batch: one τ and mask entry per frame, ε ~ N(0, 1) per value.
    let noise = b3.noise.as_ref().expect("noise was asked for");
    assert_eq!(
        (noise.tau.len(), noise.mask.len(), noise.eps.len()),
        (8, 8, b3.pixels.len())
    );
    assert!(noise
        .tau
        .iter()
        .zip(&noise.mask)
        .all(|(&t, &m)| (m == 0.0 && t == 0.0) || (m == 1.0 && (0.0..1.0).contains(&t))));
    let n = noise.eps.len() as f64;
    let m = noise.eps.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = noise
        .eps
        .iter()
        .map(|&v| (v as f64 - m).powi(2))
        .sum::<f64>()
        / n;
    assert!(
        m.abs() < 0.03 && (var - 1.0).abs() < 0.05,
        "eps mean {m}, variance {var}"
    );
    assert_eq!(b3, batch_for_step(source.as_ref(), &shape, 7, 3).unwrap());
    assert_ne!(
        b3.pixels,
        batch_for_step(source.as_ref(), &shape, 7, 4)
            .unwrap()
            .pixels
    );
    assert_ne!(
        b3.pixels,
        batch_for_step(source.as_ref(), &shape, 8, 3)
            .unwrap()
            .pixels
    );
    assert_eq!(b3.pixels.len(), 2 * 4 * 32 * 32 * 3);
    assert!(b3.pixels.iter().all(|v| (-1.0..=1.0).contains(v)));
    // Poses are [x/N, y/N, cos, sin]: a unit heading inside the maze.
    for p in b3.poses.chunks(4) {
        assert!((0.0..=1.0).contains(&p[0]) && (0.0..=1.0).contains(&p[1]));
        assert!((p[2] * p[2] + p[3] * p[3] - 1.0).abs() < 1e-5);
    }
    // Background workers hand out the same batches in the same order.
    let mut stream = BatchStream::new(Arc::clone(&source), shape.clone(), 7, 2, 2);
    for step in 2..5 {
        assert_eq!(
            stream.next_batch().unwrap(),
            batch_for_step(source.as_ref(), &shape, 7, step).unwrap()
        );
    }
}

#[test]
fn data_that_cannot_feed_the_config_is_rejected() {
    let mut config = WorldModelConfig::tiny();
    config.pose_dim = Some(3);
    let spec: DataSpec = "gen:maze:9".parse().unwrap();
    let err = open_source(&spec, &config, 4, 0)
        .err()
        .expect("pose width 3 is not the maze's 4");
    assert!(err.to_string().contains("4 features"), "{err}");
    let missing: DataSpec = "/nonexistent/episodes".parse().unwrap();
    let err = open_source(&missing, &WorldModelConfig::tiny(), 4, 0)
        .err()
        .expect("no such directory");
    assert!(err.to_string().contains("/nonexistent/episodes"), "{err}");
}

/// Frame `t` of a clip: its pixels, pose features and action.
fn frame_of(clip: &Clip, t: usize) -> (&[f32], &[f32], usize) {
    let n = clip.pixels.len() / clip.actions.len();
    (
        &clip.pixels[t * n..(t + 1) * n],
        &clip.poses[t * 4..(t + 1) * 4],
        clip.actions[t],
    )
}

/// The turn `k` of a clip that walks back: frame `k + j` repeats frame `k − 1 − j` (pixels and
/// pose) and its action mirrors the forward step's (0 at the turn), as the retrieval protocol.
fn walks_back_from(clip: &Clip, k: usize) -> bool {
    let f = clip.actions.len();
    (0..f - k).all(|j| {
        let (src, back) = (k - 1 - j, k + j);
        let (p0, q0, _) = frame_of(clip, src);
        let (p1, q1, a1) = frame_of(clip, back);
        let want = if j == 0 {
            0
        } else {
            mirror_action(clip.actions[src + 1])
        };
        p0 == p1 && q0 == q1 && a1 == want
    })
}

#[test]
fn revisiting_clips_walk_their_path_back() {
    let config = WorldModelConfig::tiny();
    let frames = 12;
    let open = |spec: &str| open_source(&spec.parse().unwrap(), &config, frames, 3).unwrap();
    let (plain, zero, all) = (
        open("gen:maze:9"),
        open("gen:maze:9:revisit=0"),
        open("gen:maze:9:revisit=100"),
    );
    let mut turns = Vec::new();
    for i in 0..24u64 {
        let draw =
            |s: &Arc<dyn ClipSource>| s.sample(&mut scenes::Rng::new(100 + i), frames).unwrap();
        // revisit=0 spends no random draw: the clips are those of the plain source.
        let p = draw(&plain);
        assert_eq!(p, draw(&zero), "clip {i}");
        let a = draw(&all);
        // Exactly one turn in ⌈F/2⌉ … F − 1 explains the clip (the explorer alone, whose
        // poses only move forward, explains none).
        let ks: Vec<usize> = (frames / 2..frames)
            .filter(|&k| walks_back_from(&a, k))
            .collect();
        assert_eq!(ks.len(), 1, "clip {i}: turns {ks:?}");
        assert!(
            (frames / 2..frames).all(|k| !walks_back_from(&p, k)),
            "clip {i} walks back without revisits"
        );
        // Up to the turn the clip is the plain source's exploration of the same level.
        let k = ks[0];
        assert!(
            (0..k).all(|t| frame_of(&a, t) == frame_of(&p, t)),
            "clip {i}"
        );
        turns.push(k);
    }
    turns.sort();
    turns.dedup();
    assert!(turns.len() >= 3, "turns should vary: {turns:?}");
}
