//! The streaming session equals the full-sequence forward (SPEC §5.5), for every preset's
//! mixer layout: on a noisy sequence streamed frame by frame, on the generation pattern
//! (denoising passes that leave the memory alone, then a clean commit), and through the
//! Euler sampler.

use burn::tensor::{Tensor, TensorData};
use scenes::Rng;

use super::common::*;
use crate::tolerance::assert_close;
use crate::world::config::PRESETS;
use crate::world::diffusion::{
    add_noise, gaussian, history_noise_seed, initial_noise, sample_next_full,
    sample_next_full_after,
};
use crate::world::session::WorldSession;

const REL: f64 = 2e-4;
const ABS: f64 = 2e-5;

/// A noisy sequence with its own τ per frame: a prefill of two frames in one pass, then one
/// frame at a time, equals one full-sequence forward.
#[test]
fn streaming_commits_equal_full_forward_for_every_preset() {
    for (k, preset) in PRESETS.iter().enumerate() {
        let cfg = test_config(preset);
        let model = randomized_model(&cfg, 100 + k as u64);
        let mut rng = Rng::new(7 + k as u64);
        let (b, f) = (2, 5);
        let (x_tau, tau, cond) = noisy_clip(&cfg, b, f, &mut rng);
        let full = model.forward(x_tau.clone(), tau.clone(), &cond);

        let mut session = WorldSession::new(model.clone(), Default::default());
        let mut outs = vec![session.commit_at(
            frames_of(&x_tau, 0, 2),
            frames_of(&tau, 0, 2),
            &cond.frames(0, 2),
        )];
        for t in 2..f {
            outs.push(session.commit_at(
                frames_of(&x_tau, t, 1),
                frames_of(&tau, t, 1),
                &cond.frames(t, 1),
            ));
        }
        assert_eq!(session.frames_committed(), f);
        assert_close(
            &format!("{preset}: streamed vs full forward"),
            Tensor::cat(outs, 1),
            full,
            REL,
            ABS,
        );
    }
}

/// Generation pattern: clean history committed, each new frame first seen noisy through
/// denoising passes (which must not change the memory), then committed clean. Each pass equals
/// the full forward on [clean history, noisy frame].
#[test]
fn denoising_passes_read_memory_and_match_full_forward_for_every_preset() {
    for (k, preset) in PRESETS.iter().enumerate() {
        let cfg = test_config(preset);
        let model = randomized_model(&cfg, 200 + k as u64);
        let mut rng = Rng::new(30 + k as u64);
        let (b, f, n0) = (1, 5, 2);
        let x0 = random_frames(&cfg, b, f, &mut rng);
        let cond = random_conditions(&cfg, b, f, &mut rng);
        let dev = Default::default();

        let mut session = WorldSession::new(model.clone(), dev);
        session.prefill(frames_of(&x0, 0, n0), &cond.frames(0, n0));
        for t in n0..f {
            let cond_t = cond.frames(t, 1);
            for tau in [0.9f32, 0.4] {
                let noisy = add_noise(
                    frames_of(&x0, t, 1),
                    gaussian::<B, 5>([b, 1, cfg.resolution, cfg.resolution, 3], &mut rng, &dev),
                    Tensor::full([b, 1], tau, &dev),
                );
                let streamed = session.denoise_pass(noisy.clone(), tau, &cond_t);
                // A second identical pass sees the same memory.
                let again = session.denoise_pass(noisy.clone(), tau, &cond_t);
                assert_close(
                    &format!("{preset}: pass is repeatable"),
                    again,
                    streamed.clone(),
                    0.0,
                    1e-7,
                );

                let mut taus = vec![0.0f32; t + 1];
                taus[t] = tau;
                let input = Tensor::cat(vec![frames_of(&x0, 0, t), noisy], 1);
                let tau_t = Tensor::from_data(TensorData::new(taus, [b, t + 1]), &dev);
                let full = model
                    .forward(input, tau_t, &cond.frames(0, t + 1))
                    .narrow(1, t, 1);
                assert_close(
                    &format!("{preset}: denoise pass at frame {t}, τ={tau}"),
                    streamed,
                    full,
                    REL,
                    ABS,
                );
            }
            session.commit(frames_of(&x0, t, 1), &cond_t);
        }
    }
}

/// The session's sampler equals the reference sampler on the full sequence, for the same
/// seed, over two generated frames in a row.
#[test]
fn session_generation_equals_full_sequence_sampler() {
    for preset in ["tiny", "causal-full", "mamba2"] {
        let cfg = test_config(preset);
        let model = randomized_model(&cfg, 300);
        let mut rng = Rng::new(5);
        let (b, n0, steps) = (1, 3, 3);
        let history = random_frames(&cfg, b, n0, &mut rng);
        let cond = random_conditions(&cfg, b, n0 + 2, &mut rng);

        let mut session = WorldSession::new(model.clone(), Default::default());
        session.set_sampling_steps(steps);
        session.prefill(history.clone(), &cond.frames(0, n0));
        let g1 = session.generate_frames(&cond.frames(n0, 1), 11);
        let g2 = session.generate_frames(&cond.frames(n0 + 1, 1), 12);

        let r1 = sample_next_full(&model, history.clone(), &cond.frames(0, n0 + 1), steps, 11);
        assert_close(
            &format!("{preset}: first generated frame"),
            g1,
            r1.clone(),
            1e-3,
            1e-4,
        );
        let history2 = Tensor::cat(vec![history, r1], 1);
        let r2 = sample_next_full(&model, history2, &cond.frames(0, n0 + 2), steps, 12);
        assert_close(
            &format!("{preset}: second generated frame"),
            g2,
            r2,
            1e-3,
            1e-4,
        );
    }
}

/// With history noise τₕ, a generated frame enters the history as (1 − τₕ)·x̂ + τₕ·ε at τₕ
/// (ε from `history_noise_seed`): the next frame equals the full-sequence sampler run on that
/// noisy history, and differs from the one after a clean commit.
#[test]
fn history_noise_commits_the_noised_frame_at_its_level() {
    let tau_h = 0.3f32;
    for preset in ["tiny", "causal-full"] {
        let cfg = test_config(preset);
        let model = randomized_model(&cfg, 310);
        let mut rng = Rng::new(6);
        let (b, n0, steps) = (1, 2, 2);
        let history = random_frames(&cfg, b, n0, &mut rng);
        let cond = random_conditions(&cfg, b, n0 + 2, &mut rng);
        let run = |tau: f32| {
            let mut session = WorldSession::new(model.clone(), Default::default());
            session.set_sampling_steps(steps);
            session.set_history_noise(tau);
            session.prefill(history.clone(), &cond.frames(0, n0));
            let g1 = session.generate_frames(&cond.frames(n0, 1), 21);
            let g2 = session.generate_frames(&cond.frames(n0 + 1, 1), 22);
            (g1, g2)
        };
        let (g1, g2) = run(tau_h);
        let (c1, c2) = run(0.0);

        let r1 = sample_next_full(&model, history.clone(), &cond.frames(0, n0 + 1), steps, 21);
        assert_close(
            &format!("{preset}: first frame"),
            g1.clone(),
            r1,
            1e-3,
            1e-4,
        );
        assert_close(
            &format!("{preset}: first frame, clean commit"),
            c1,
            g1.clone(),
            1e-6,
            1e-7,
        );
        let eps = initial_noise::<B>(g1.dims(), history_noise_seed(21), &Default::default());
        let noised = g1.mul_scalar(1.0 - tau_h) + eps.mul_scalar(tau_h);
        let mut taus = vec![0.0; n0];
        taus.push(tau_h);
        let r2 = sample_next_full_after(
            &model,
            Tensor::cat(vec![history.clone(), noised], 1),
            &taus,
            &cond.frames(0, n0 + 2),
            steps,
            22,
        );
        assert_close(
            &format!("{preset}: frame after a noised commit"),
            g2.clone(),
            r2,
            1e-3,
            1e-4,
        );
        let moved = (g2 - c2).abs().max().into_scalar();
        assert!(
            moved > 1e-3,
            "{preset}: the history noise changed nothing ({moved})"
        );
    }
}

/// Memory per frame is constant with a window (the cache holds k − 1 frames) and grows with
/// full attention, whatever the rollout length.
#[test]
fn cache_is_bounded_by_the_window() {
    for (preset, expect) in [
        ("tiny", Some(1)),
        ("mamba2-local", Some(1)),
        ("mamba2", Some(0)),
        ("causal-full", None),
    ] {
        let cfg = test_config(preset);
        let model = randomized_model(&cfg, 400);
        let mut rng = Rng::new(9);
        let n = 7;
        let frames = random_frames(&cfg, 1, n, &mut rng);
        let cond = random_conditions(&cfg, 1, n, &mut rng);
        let mut session = WorldSession::new(model, Default::default());
        session.set_sampling_steps(1);
        session.prefill(frames_of(&frames, 0, 2), &cond.frames(0, 2));
        for t in 2..n {
            session.generate_frames(&cond.frames(t, 1), t as u64);
            assert_eq!(
                session.cached_frames(),
                expect.unwrap_or(t + 1),
                "{preset} after frame {t}"
            );
        }
    }
}
