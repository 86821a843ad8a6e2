//! The training loop's AdamW: burn's `AdamW` update and state, with the update of each
//! parameter tensor in one kernel launch (`kernels::optim`) where the backend has the kernels,
//! and burn's own `AdamW` (about 15 launches a tensor) everywhere else, which is also its
//! reference in the tests. The state is burn's `AdamWState`, so an optimizer record saved by
//! either loads into the other and checkpoints keep their format.

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{
    AdamW, AdamWConfig, AdamWState, AdaptiveMomentumState, LearningRate, SimpleOptimizer,
};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use kernels::optim::{adamw_update, serves, AdamWStep};

/// AdamW with decoupled weight decay (no AMSGrad), as burn defines it.
#[derive(Clone)]
pub struct FusedAdamW {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
    reference: AdamW,
}

impl FusedAdamW {
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32, weight_decay: f32) -> Self {
        Self {
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
            reference: Self::reference_config(beta_1, beta_2, epsilon, weight_decay).build(),
        }
    }

    /// burn's configuration of the same optimizer.
    pub fn reference_config(
        beta_1: f32,
        beta_2: f32,
        epsilon: f32,
        weight_decay: f32,
    ) -> AdamWConfig {
        AdamWConfig::new()
            .with_beta_1(beta_1)
            .with_beta_2(beta_2)
            .with_epsilon(epsilon)
            .with_weight_decay(weight_decay)
    }

    /// The optimizer over every parameter of a module.
    pub fn init<B: AutodiffBackend, M: AutodiffModule<B>>(self) -> OptimizerAdaptor<Self, M, B> {
        OptimizerAdaptor::from(self)
    }
}

impl<B: Backend> SimpleOptimizer<B> for FusedAdamW {
    type State<const D: usize> = AdamWState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        if !serves::<B>(tensor.dtype()) {
            return self.reference.step(lr, tensor, grad, state);
        }
        // The first update starts from zero moments (burn's closed form for it is the same).
        let (moment_1, moment_2, time) = match state {
            Some(s) => (
                s.momentum.moment_1,
                s.momentum.moment_2,
                s.momentum.time + 1,
            ),
            None => (grad.zeros_like(), grad.zeros_like(), 1),
        };
        let step = AdamWStep {
            lr,
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            weight_decay: self.weight_decay,
            time,
        };
        let (tensor, moment_1, moment_2) = adamw_update(tensor, grad, moment_1, moment_2, &step);
        let momentum = AdaptiveMomentumState {
            time,
            moment_1,
            moment_2,
            max_moment_2: None,
        };
        (tensor, Some(AdamWState { momentum }))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        <AdamW as SimpleOptimizer<B>>::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Autodiff;
    use burn::module::Module;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::{GradientsParams, Optimizer};
    use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
    use burn::tensor::{Distribution, Tensor};
    use kernels::testing::{GpuTarget, OnWgpu};

    use super::FusedAdamW;
    use crate::tolerance::assert_close_slices;

    type G = <OnWgpu as GpuTarget>::B;
    type AG = Autodiff<G>;

    #[derive(Module, Debug)]
    struct Two<B: burn::tensor::backend::Backend> {
        a: Linear<B>,
        b: Linear<B>,
    }

    fn params(m: &Two<AG>) -> Vec<f32> {
        let mut out = Vec::new();
        for l in [&m.a, &m.b] {
            out.extend(crate::tolerance::to_vec(l.weight.val()));
            out.extend(crate::tolerance::to_vec(l.bias.as_ref().unwrap().val()));
        }
        out
    }

    /// `updates` steps of `optim` on `model` with the gradients of a fixed loss.
    fn train<O: Optimizer<Two<AG>, AG>>(
        mut model: Two<AG>,
        optim: &mut O,
        x: &Tensor<AG, 2>,
        updates: usize,
    ) -> Two<AG> {
        for k in 0..updates {
            let y = model.b.forward(model.a.forward(x.clone()).tanh());
            let loss = (y - 0.5).powi_scalar(2).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(1e-2 / (k + 1) as f64, model, grads);
        }
        model
    }

    #[test]
    fn the_kernel_update_follows_burns_adamw_and_shares_its_record() {
        let Some(device) = OnWgpu::device() else {
            return;
        };
        let init = Two::<AG> {
            a: LinearConfig::new(37, 300).init(&device),
            b: LinearConfig::new(300, 5).init(&device),
        };
        // Read once, so that the lazily initialised parameters exist before the model is cloned.
        let start = params(&init);
        let x = Tensor::<AG, 2>::random([8, 37], Distribution::Normal(0.0, 1.0), &device);
        let (b1, b2, eps, wd) = (0.9, 0.99, 1e-8, 0.05);
        let mut burns = FusedAdamW::reference_config(b1, b2, eps, wd).init();
        let mut fused = FusedAdamW::new(b1, b2, eps, wd).init();
        let want = train(init.clone(), &mut burns, &x, 4);
        let got = train(init.clone(), &mut fused, &x, 4);
        let (want, got) = (params(&want), params(&got));
        assert_close_slices("AdamW, 4 updates", &got, &want, 1e-5, 1e-7);
        assert!(got.iter().zip(&start).filter(|(a, b)| a != b).count() > got.len() / 2);

        // burn's record loads into the fused optimizer, and the next update agrees.
        let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
        let bytes = Recorder::<AG>::record(&recorder, burns.to_record(), ()).unwrap();
        let record = Recorder::<AG>::load(&recorder, bytes, &device).unwrap();
        let mut resumed = FusedAdamW::new(b1, b2, eps, wd).init().load_record(record);
        let start = train(
            init,
            &mut FusedAdamW::reference_config(b1, b2, eps, wd).init(),
            &x,
            4,
        );
        let want = params(&train(start.clone(), &mut burns, &x, 1));
        let got = params(&train(start, &mut resumed, &x, 1));
        assert_close_slices("AdamW, resumed from burn's record", &got, &want, 1e-5, 1e-7);
    }
}
