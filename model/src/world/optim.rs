//! Optimisation helpers for the world-model training loop (SPEC §5.4): the learning-rate
//! schedule (linear warmup, then cosine decay; Loshchilov & Hutter, "SGDR", 2017), clipping of
//! the gradients by their global L2 norm over all parameters (Pascanu et al. 2013), and the
//! exponential moving average of the weights used for sampling.
//!
//! burn's `GradientClippingConfig::Norm` clips each parameter tensor by its own norm, which is
//! not the global-norm clipping of the diffusion literature, so the global form is done here on
//! the `GradientsParams` before the optimizer step.

use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;

/// Linear warmup to `peak` over `warmup` updates, then a half cosine down to `peak · min_ratio`
/// at update `total`; constant afterwards.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrSchedule {
    pub peak: f64,
    pub warmup: usize,
    pub total: usize,
    pub min_ratio: f64,
}

impl LrSchedule {
    /// Learning rate of update `step` (0-based).
    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup {
            return self.peak * (step + 1) as f64 / self.warmup as f64;
        }
        let min = self.peak * self.min_ratio;
        let span = self.total.saturating_sub(self.warmup).max(1);
        let progress = ((step - self.warmup) as f64 / span as f64).min(1.0);
        min + (self.peak - min) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

/// Sums the squared gradients of every float parameter of a module.
struct SquaredNorm<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    total: Option<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            let s = g.square().sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + s,
                None => s,
            });
        }
    }
}

/// Multiplies every float parameter's gradient by a scalar tensor.
struct ScaleGrads<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    coef: Tensor<B::InnerBackend, 1>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for ScaleGrads<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            let coef = self.coef.clone().reshape([1usize; D]);
            self.grads
                .register::<B::InnerBackend, D>(param.id, g * coef);
        }
    }
}

/// The global L2 norm of a module's gradients, `sqrt(Σ_params Σ g²)`, as a one-element tensor
/// (no host sync).
pub fn global_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &GradientsParams,
) -> Tensor<B::InnerBackend, 1> {
    let mut v = SquaredNorm::<B> { grads, total: None };
    module.visit(&mut v);
    match v.total {
        Some(t) => t.sqrt(),
        None => Tensor::zeros([1], &Default::default()),
    }
}

/// Scales all gradients by `min(1, max_norm / (‖g‖ + 1e-6))`, where ‖g‖ is the global norm over
/// every parameter. Returns the clipped gradients and the norm before clipping.
pub fn clip_grad_global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    mut grads: GradientsParams,
    max_norm: f64,
) -> (GradientsParams, Tensor<B::InnerBackend, 1>) {
    let norm = global_grad_norm::<B, M>(module, &grads);
    let coef = norm
        .clone()
        .add_scalar(1e-6)
        .recip()
        .mul_scalar(max_norm)
        .clamp_max(1.0);
    let mut v = ScaleGrads::<B> {
        grads: &mut grads,
        coef,
    };
    module.visit(&mut v);
    (grads, norm)
}

/// EMA decay used at update `step`: the configured `decay`, warmed up as
/// `min(decay, (1 + step) / (10 + step))` so that the average is not dominated by the random
/// initialisation in short runs.
pub fn ema_decay_at(decay: f64, step: usize) -> f64 {
    decay.min((1.0 + step as f64) / (10.0 + step as f64))
}

/// Collects every float parameter, flattened, in visiting order.
struct Flatten<B: Backend> {
    params: Vec<Tensor<B, 1>>,
}

impl<B: Backend> ModuleVisitor<B> for Flatten<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let t = param.val();
        let n = t.shape().num_elements();
        self.params.push(t.reshape([n]));
    }
}

/// `ema ← decay · ema + (1 − decay) · online`, parameter by parameter in visiting order.
struct EmaMapper<B: Backend> {
    online: std::vec::IntoIter<Tensor<B, 1>>,
    decay: f64,
}

impl<B: Backend> ModuleMapper<B> for EmaMapper<B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, ema, mapper) = param.consume();
        let shape = ema.shape();
        let online = self
            .online
            .next()
            .expect("EMA update: the online model has fewer parameters than the EMA copy");
        assert_eq!(
            online.dims()[0],
            shape.num_elements(),
            "EMA update: parameter sizes differ between the online model and the EMA copy"
        );
        let online: Tensor<B, D> = online.reshape(shape);
        let updated = ema.mul_scalar(self.decay) + online.mul_scalar(1.0 - self.decay);
        Param::from_mapped_value(id, updated.detach(), mapper)
    }
}

/// One EMA update of `ema` towards `online` (two instances of the same module, typically the
/// inner-backend copy of the trained model).
pub fn ema_update<B: Backend, M: Module<B>>(ema: M, online: &M, decay: f64) -> M {
    let mut flat = Flatten { params: Vec::new() };
    online.visit(&mut flat);
    let mut mapper = EmaMapper {
        online: flat.params.into_iter(),
        decay,
    };
    let ema = ema.map(&mut mapper);
    assert!(
        mapper.online.next().is_none(),
        "EMA update: the online model has more parameters than the EMA copy"
    );
    ema
}

/// Every float parameter's module path (`blocks.0.attn.qkv.weight`) and shape, in visiting
/// order: the architecture fingerprint stored with checkpoints. Shapes are read without forcing
/// lazy initialisation.
pub fn param_manifest<B: Backend, M: Module<B>>(module: &M) -> Vec<(String, Vec<usize>)> {
    struct Manifest {
        path: Vec<String>,
        out: Vec<(String, Vec<usize>)>,
    }
    impl<B: Backend> ModuleVisitor<B> for Manifest {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.out
                .push((self.path.join("."), param.lazy_shape().to_vec()));
        }
    }
    let mut m = Manifest {
        path: Vec::new(),
        out: Vec::new(),
    };
    module.visit(&mut m);
    m.out
}
