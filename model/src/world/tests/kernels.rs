//! The world model on the CubeCL kernels (wgpu, lavapipe in CI; and CUDA) equals the same
//! weights on the tensor-op reference (ndarray), for every preset's mixer layout: the
//! full-sequence forward (chunked SSD and windowed/full attention kernels) and the streaming
//! session (SSD with a carried state, attention against the cached frames, and the generation
//! of a frame, whose passes read every layer's adaLN vectors from one product).

use burn::backend::Autodiff;
use burn::module::{Module, ModuleVisitor, Param};
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor};
use kernels::testing::GpuTarget;
use scenes::Rng;

use super::common::*;
use crate::tolerance::assert_close_slices;
use crate::world::config::{WorldModelConfig, PRESETS};
use crate::world::model::{FrameConditions, WorldModel};
use crate::world::session::WorldSession;

/// The same weights on the GPU device.
fn to_gpu<G: Backend>(
    cfg: &WorldModelConfig,
    model: &WorldModel<B>,
    device: &G::Device,
) -> WorldModel<G> {
    let recorder = NamedMpkBytesRecorder::<FullPrecisionSettings>::default();
    let bytes = Recorder::<B>::record(&recorder, model.clone().into_record(), ()).unwrap();
    let record = Recorder::<G>::load(&recorder, bytes, device).unwrap();
    cfg.init::<G>(device).load_record(record)
}

fn move_tensor<G: Backend, const D: usize>(t: Tensor<B, D>, device: &G::Device) -> Tensor<G, D> {
    Tensor::from_data(t.into_data(), device)
}

fn move_conditions<G: Backend>(c: &FrameConditions<B>, device: &G::Device) -> FrameConditions<G> {
    FrameConditions {
        actions: c
            .actions
            .clone()
            .map(|a| Tensor::<G, 2, Int>::from_data(a.into_data(), device)),
        poses: c.poses.clone().map(|p| move_tensor(p, device)),
    }
}

fn kernels_equal_reference_forward_and_streaming_for_every_preset<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    // The GPU side's linear layers may use TF32 products (CUDA).
    let rel_tol = 5e-4f64.max(crate::tolerance::matmul_rel_error::<T::B>());
    for (k, preset) in PRESETS.iter().enumerate() {
        let cfg = test_config(preset);
        let model = randomized_model(&cfg, 300 + k as u64);
        let gpu = to_gpu::<T::B>(&cfg, &model, &device);
        let mut rng = Rng::new(60 + k as u64);
        let (b, f) = (2, 5);
        let (x_tau, tau, cond) = noisy_clip(&cfg, b, f, &mut rng);

        let expected = model.forward(x_tau.clone(), tau.clone(), &cond);
        let full = gpu.forward(
            move_tensor(x_tau.clone(), &device),
            move_tensor(tau.clone(), &device),
            &move_conditions(&cond, &device),
        );
        let expected = crate::tolerance::to_vec(expected);
        assert_close_slices(
            &format!("{preset}: GPU forward vs ndarray"),
            &crate::tolerance::to_vec(full),
            &expected,
            rel_tol,
            5e-5,
        );

        let mut session = WorldSession::new(gpu, device.clone());
        let streamed: Vec<Tensor<T::B, 5>> = (0..f)
            .map(|t| {
                session.commit_at(
                    move_tensor(frames_of(&x_tau, t, 1), &device),
                    move_tensor(frames_of(&tau, t, 1), &device),
                    &move_conditions(&cond.frames(t, 1), &device),
                )
            })
            .collect();
        assert_close_slices(
            &format!("{preset}: GPU streamed frame by frame vs ndarray full forward"),
            &crate::tolerance::to_vec(Tensor::cat(streamed, 1)),
            &expected,
            rel_tol,
            5e-5,
        );

        // Generating the next frame (Euler passes, then the commit with history noise) after
        // that history, then committing one more frame, on both.
        let mut reference = WorldSession::new(model.clone(), Default::default());
        reference.commit_at(x_tau.clone(), tau.clone(), &cond);
        reference.set_sampling_steps(3);
        session.set_sampling_steps(3);
        reference.set_history_noise(0.1);
        session.set_history_noise(0.1);
        let noise = random_frames(&cfg, b, 1, &mut rng);
        let commit_noise = random_frames(&cfg, b, 1, &mut rng);
        let next = cond.frames(f - 1, 1);
        let compare = |what: &str, got: Tensor<T::B, 5>, want: Tensor<B, 5>| {
            assert_close_slices(
                &format!("{preset}: GPU {what} vs ndarray"),
                &crate::tolerance::to_vec(got),
                &crate::tolerance::to_vec(want),
                rel_tol,
                5e-5,
            )
        };
        let want = reference.denoise_and_commit(noise.clone(), Some(commit_noise.clone()), &next);
        let got = session.denoise_and_commit(
            move_tensor(noise, &device),
            Some(move_tensor(commit_noise, &device)),
            &move_conditions(&next, &device),
        );
        compare("generated frame", got, want);
        let later = random_frames(&cfg, b, 1, &mut rng);
        let want = reference.commit(later.clone(), &next);
        let got = session.commit(
            move_tensor(later, &device),
            &move_conditions(&next, &device),
        );
        compare("commit after a generated frame", got, want);
    }
}

/// Every parameter's gradient, flattened, in visiting order.
fn parameter_gradients<A: AutodiffBackend>(
    model: &WorldModel<A>,
    grads: &A::Gradients,
) -> Vec<Vec<f32>> {
    struct Collect<'a, A: AutodiffBackend> {
        grads: &'a A::Gradients,
        out: Vec<Vec<f32>>,
    }
    impl<A: AutodiffBackend> ModuleVisitor<A> for Collect<'_, A> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<A, D>>) {
            let grad = param
                .val()
                .grad(self.grads)
                .expect("every parameter has a gradient");
            self.out.push(crate::tolerance::to_vec(grad));
        }
    }
    let mut collect = Collect {
        grads,
        out: Vec::new(),
    };
    model.visit(&mut collect);
    collect.out
}

/// The gradients of every parameter of `model` for `loss = Σ forward(x_tau, tau, cond) · weights`.
fn gradients<A: AutodiffBackend>(
    model: WorldModel<A>,
    (x_tau, tau, cond, weights): (
        &Tensor<B, 5>,
        &Tensor<B, 2>,
        &FrameConditions<B>,
        &Tensor<B, 5>,
    ),
) -> Vec<Vec<f32>> {
    let device = model.devices()[0].clone();
    let out = model.forward(
        move_tensor(x_tau.clone(), &device),
        move_tensor(tau.clone(), &device),
        &move_conditions(cond, &device),
    );
    let grads = (out * move_tensor(weights.clone(), &device))
        .sum()
        .backward();
    parameter_gradients(&model, &grads)
}

/// Training on the GPU, through every kernel that has a backward pass (the layer ops, the SSD
/// scan, the attention of long enough clips), gives the gradients of the tensor-op reference
/// on ndarray for every preset's parameters.
fn kernels_equal_reference_gradients_for_every_preset<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    // The ndarray side's GELU backward is burn's, the derivative of GELU's tanh approximation
    // (~1e-3 off the exact one the GPU kernel takes). On CUDA the TF32 error of each product
    // (`matmul_rel_error`) compounds along a parameter's path through the layers: measured up
    // to 4.1e-3 (maze-small, burn's products) and 5.0e-3 (tiny, the default matmul routine).
    let rel_tol = 1e-3f64.max(5.0 * crate::tolerance::matmul_rel_error::<T::B>());
    for (k, preset) in PRESETS.iter().enumerate() {
        let cfg = test_config(preset);
        let model = randomized_model(&cfg, 500 + k as u64);
        let mut rng = Rng::new(80 + k as u64);
        let (x_tau, tau, cond) = noisy_clip(&cfg, 2, 5, &mut rng);
        let weights = random_frames(&cfg, 2, 5, &mut rng);
        let clip = (&x_tau, &tau, &cond, &weights);
        let want = gradients(
            to_gpu::<Autodiff<B>>(&cfg, &model, &Default::default()),
            clip,
        );
        let got = gradients(to_gpu::<Autodiff<T::B>>(&cfg, &model, &device), clip);
        assert_eq!(got.len(), want.len(), "{preset}: parameter count");
        for (i, (got, want)) in got.iter().zip(&want).enumerate() {
            assert_close_slices(
                &format!("{preset}: GPU gradient of parameter {i} vs ndarray"),
                got,
                want,
                rel_tol,
                1e-5,
            );
        }
    }
}

kernels::gpu_tests!(
    kernels_equal_reference_forward_and_streaming_for_every_preset,
    kernels_equal_reference_gradients_for_every_preset,
);
