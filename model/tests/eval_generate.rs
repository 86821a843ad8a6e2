//! Generation and scoring of the evaluation (SPEC §5.5, §5.6) against independent paths: the
//! batched generator equals the session's own `generate_frames` for one episode, batching does
//! not change an episode's frames, the scores are PSNR recomputed by hand, and two runs from
//! the same weights and seed agree exactly.

use burn::backend::NdArray;
use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use model::world::diffusion::gaussian;
use model::world::eval::generate::{conditions, frames_tensor};
use model::world::eval::{
    evaluate_batch, generate_batch, noise_seed, EpisodeSource, EvalEpisode, EvalSettings,
    GenerateOptions, Protocol,
};
use model::world::frames::tensor_to_frame;
use model::world::{WorldModel, WorldModelConfig, WorldSession};
use scenes::{Frame, Rng, SceneKind};

type B = NdArray;

struct Jitter(Rng);

impl<Bk: Backend> ModuleMapper<Bk> for Jitter {
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<Bk, D>>) -> Param<Tensor<Bk, D>> {
        let (id, t, mapper) = p.consume();
        let noise = gaussian::<Bk, D>(t.dims(), &mut self.0, &t.device()).mul_scalar(0.1);
        Param::from_mapped_value(id, t + noise, mapper)
    }
}

/// The tiny preset with every parameter perturbed (a fresh model's zero head would make every
/// generated frame the clamped noise, whatever the context). The initialisation itself is not
/// seeded: clone one model where the same weights are needed.
fn model() -> WorldModel<B> {
    WorldModelConfig::tiny()
        .init::<B>(&Default::default())
        .map(&mut Jitter(Rng::new(5)))
}

fn episodes(protocol: Protocol, n: usize, m: usize, count: usize) -> Vec<EvalEpisode> {
    let s = EvalSettings {
        protocol,
        context: n,
        generate: m,
        episodes: count,
        seed: 3,
    };
    let src = EpisodeSource::scene(SceneKind::Maze, 9, 64, protocol).unwrap();
    (0..count).map(|i| src.episode(&s, i).unwrap()).collect()
}

const OPTS: GenerateOptions = GenerateOptions {
    steps: 3,
    prefill_chunk: 16,
    seed: 3,
    history_noise: 0.0,
    keep_context: None,
};

/// Keeping the last K context frames generates what an episode cut to begin K frames before
/// its end of context generates; keeping all of them differs (the dropped frames mattered),
/// and keeping none or more than the context is refused.
#[test]
fn kept_context_equals_an_episode_cut_to_its_last_frames() {
    let eps = episodes(Protocol::Reasoning, 4, 3, 1);
    let mut session = WorldSession::new(model(), Default::default());
    let opts = |keep_context| GenerateOptions {
        keep_context,
        prefill_chunk: 1,
        ..OPTS
    };
    let kept = generate_batch(&mut session, &[&eps[0]], &opts(Some(2)), &mut || {}).unwrap();
    let mut cut = eps[0].clone();
    cut.frames.drain(..2);
    cut.actions.drain(..2);
    cut.poses.as_mut().unwrap().drain(..2);
    cut.context = 2;
    let from_cut = generate_batch(&mut session, &[&cut], &opts(None), &mut || {}).unwrap();
    assert_eq!(kept, from_cut);
    let all = generate_batch(&mut session, &[&eps[0]], &opts(Some(4)), &mut || {}).unwrap();
    assert_eq!(
        all,
        generate_batch(&mut session, &[&eps[0]], &opts(None), &mut || {}).unwrap()
    );
    assert!(all != kept, "the dropped context frames changed nothing");
    for bad in [0, 5] {
        let err = generate_batch(&mut session, &[&eps[0]], &opts(Some(bad)), &mut || {});
        assert!(
            err.is_err(),
            "keeping {bad} of 4 context frames was accepted"
        );
    }
}

#[test]
fn batched_generation_equals_the_sessions_own_sampler() {
    for history_noise in [0.0, 0.2] {
        generation_equals_the_sessions_own_sampler(GenerateOptions {
            history_noise,
            ..OPTS
        });
    }
}

fn generation_equals_the_sessions_own_sampler(opts: GenerateOptions) {
    let eps = episodes(Protocol::Reasoning, 3, 3, 1);
    let weights = model();
    let mut session = WorldSession::new(weights.clone(), Default::default());
    let ours = generate_batch(&mut session, &[&eps[0]], &opts, &mut || {}).unwrap();

    let cfg = WorldModelConfig::tiny();
    let dev = Default::default();
    let mut reference = WorldSession::new(weights, dev);
    reference.set_sampling_steps(opts.steps);
    reference.set_history_noise(opts.history_noise);
    let e = &eps[0];
    reference.prefill(
        frames_tensor::<B>(&[e], 0..3, cfg.resolution, &dev).unwrap(),
        &conditions::<B>(&[e], 0..3, &cfg, &dev).unwrap(),
    );
    for k in 0..3 {
        let cond = conditions::<B>(&[e], 3 + k..4 + k, &cfg, &dev).unwrap();
        let frame = reference.generate_frames(&cond, noise_seed(opts.seed, e.index, k));
        let [_, _, h, w, c] = frame.dims();
        assert_eq!(
            ours[0][k],
            tensor_to_frame(frame.reshape([h, w, c])),
            "frame {k}"
        );
    }
    // Not trivially the noise: the context changes what is generated.
    let mut other = eps[0].clone();
    other.frames[..3]
        .iter_mut()
        .for_each(|f| f.rgb.iter_mut().for_each(|v| *v = 255 - *v));
    let flipped = generate_batch(&mut session, &[&other], &opts, &mut || {}).unwrap();
    assert!(flipped[0] != ours[0], "the context is ignored");
}

fn max_level_difference(a: &Frame, b: &Frame) -> u8 {
    a.rgb
        .iter()
        .zip(&b.rgb)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap()
}

#[test]
fn batching_does_not_change_an_episodes_frames() {
    let eps = episodes(Protocol::Retrieval, 3, 3, 2);
    let mut session = WorldSession::new(model(), Default::default());
    let both = generate_batch(&mut session, &[&eps[0], &eps[1]], &OPTS, &mut || {}).unwrap();
    for (i, e) in eps.iter().enumerate() {
        let alone = generate_batch(&mut session, &[e], &OPTS, &mut || {}).unwrap();
        for k in 0..3 {
            let d = max_level_difference(&both[i][k], &alone[0][k]);
            assert!(d <= 1, "episode {i} frame {k} differs by {d} levels");
        }
    }
    assert!(both[0] != both[1], "different episodes, different frames");
}

#[test]
fn scores_are_psnr_of_the_returned_frames_and_runs_repeat_exactly() {
    let eps = episodes(Protocol::Retrieval, 4, 4, 2);
    let mut calls = 0;
    let weights = model();
    let mut session = WorldSession::new(weights.clone(), Default::default());
    let out = evaluate_batch(&mut session, &eps, &OPTS, &mut || calls += 1).unwrap();
    assert_eq!(calls, 4, "one callback per generated frame of the batch");
    for (o, e) in out.iter().zip(&eps) {
        assert_eq!((o.truth.len(), o.generated.len()), (8, 4));
        // Ground truth at 32×32: 2×2 box means of the 64×64 scene frames.
        let (src, dst) = (&e.frames[5], &o.truth[5]);
        for (x, y, c) in [(0, 0, 0), (7, 20, 1), (31, 31, 2)] {
            let sum: u32 = (0..2)
                .flat_map(|dy| (0..2).map(move |dx| (dx, dy)))
                .map(|(dx, dy)| src.pixel(2 * x + dx, 2 * y + dy)[c] as u32)
                .sum();
            let mean = sum as f64 / 4.0;
            assert!(
                (dst.pixel(x, y)[c] as f64 - mean).abs() <= 0.5 + 1e-3,
                "({x}, {y}, {c})"
            );
        }
        for k in 0..4 {
            let (t, g) = (&o.truth[4 + k], &o.generated[k]);
            let mse = t
                .rgb
                .iter()
                .zip(&g.rgb)
                .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
                .sum::<f64>()
                / t.rgb.len() as f64;
            let want = 10.0 * (255.0f64 * 255.0 / mse).log10();
            assert!((o.scores.psnr[k] - want).abs() < 1e-9, "frame {k}");
            assert!(o.scores.ssim[k] < 1.0);
        }
    }
    // A new session from the same weights gives the same frames and scores.
    let mut again = WorldSession::new(weights, Default::default());
    let out2 = evaluate_batch(&mut again, &eps, &OPTS, &mut || {}).unwrap();
    for (a, b) in out.iter().zip(&out2) {
        assert!(
            a.generated == b.generated,
            "episode {} differs",
            a.scores.index
        );
        assert_eq!(a.scores, b.scores);
    }
}
