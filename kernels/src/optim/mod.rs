//! The AdamW update as one kernel per parameter tensor (Loshchilov & Hutter, "Decoupled Weight
//! Decay Regularization", 2019), with burn's conventions: bias-corrected moments, ε added to
//! √v̂, decay `p·(1 − lr·λ)`. burn's own AdamW takes ~15 element-wise launches per parameter
//! and update; this takes one that reads p, g, m, v and writes p, m, v.
//!
//! [`serves`] says whether the kernel runs for a backend; the model's optimizer falls back to
//! burn's `AdamW` (its reference) elsewhere. `reference.rs` is the host f64 form the tests
//! compare against.

mod kernel;
pub mod reference;
#[cfg(test)]
mod tests;

use burn::tensor::{backend::Backend, DType, Tensor};

use crate::dispatch::{empty_f32, from_cube, kernel_runtime, to_cube, with_runtime};
pub(crate) use kernel::launch_adamw;

/// The constants of one AdamW update of one parameter tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWStep {
    pub lr: f64,
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    pub weight_decay: f32,
    /// The update's count, 1 for the first (the bias corrections use `β^time`).
    pub time: usize,
}

impl AdamWStep {
    /// `1 − β₁^t` and `1 − β₂^t` in f32, as burn computes them.
    pub fn bias_corrections(&self) -> (f32, f32) {
        let t = self.time as i32;
        (1.0 - self.beta_1.powi(t), 1.0 - self.beta_2.powi(t))
    }
}

/// Does the kernel serve backend `B` for tensors of `dtype` (`MEMWORLD_KERNELS` selects
/// `optim`, the backend is wgpu or cuda, f32)?
pub fn serves<B: Backend>(dtype: DType) -> bool {
    crate::kernels_serve::<B>(crate::KernelKind::Optim, dtype)
}

/// One AdamW update on the kernel; `B` must have the kernels ([`serves`]).
///
/// # Shapes
/// - `param`, `grad`, `moment_1`, `moment_2`: the same shape (any rank)
/// - returns the new parameter, first and second moments, in that shape
pub fn adamw_update<B: Backend, const D: usize>(
    param: Tensor<B, D>,
    grad: Tensor<B, D>,
    moment_1: Tensor<B, D>,
    moment_2: Tensor<B, D>,
    step: &AdamWStep,
) -> (Tensor<B, D>, Tensor<B, D>, Tensor<B, D>) {
    let dims = param.dims();
    for (name, t) in [
        ("grad", &grad),
        ("moment_1", &moment_1),
        ("moment_2", &moment_2),
    ] {
        assert_eq!(t.dims(), dims, "adamw_update: {name} shape");
    }
    let n = param.shape().num_elements();
    let kind = kernel_runtime::<B>(param.dtype()).expect("AdamW kernel: backend has no kernels");
    with_runtime!(kind, R => {
        let flat = |t: Tensor<B, D>| to_cube::<B, R, 1>(t.reshape([n]));
        let (p, g, m, v) = (flat(param), flat(grad), flat(moment_1), flat(moment_2));
        let outs = [empty_f32(&p, &[n]), empty_f32(&p, &[n]), empty_f32(&p, &[n])];
        launch_adamw::<R>(p, g, m, v, outs.clone(), step);
        let [p, m, v] = outs.map(|t| from_cube::<B, R, 1>(t).reshape(dims));
        (p, m, v)
    })
}
