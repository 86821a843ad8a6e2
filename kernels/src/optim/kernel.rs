//! CubeCL body and launcher of the AdamW update: one unit per element, the grid as wide as
//! [`GRID_X`](crate::dispatch::GRID_X) cubes and continued along y (any tensor length).

use burn_cubecl::{tensor::CubeTensor, CubeRuntime};
use cubecl::prelude::*;

use super::AdamWStep;
use crate::dispatch::row_grid;
use crate::grid::cube_index;

/// Units per cube.
const UNITS: usize = 256;

/// `m' = β₁m + (1 − β₁)g`, `v' = β₂v + (1 − β₂)g²`,
/// `p' = p·keep − lr · (m'/c₁) / (√(v'/c₂) + ε)` with `keep = 1 − lr·λ` and `cᵢ = 1 − βᵢ^t`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn adamw<F: Float>(
    param: &Tensor<F>,
    grad: &Tensor<F>,
    moment_1: &Tensor<F>,
    moment_2: &Tensor<F>,
    param_out: &mut Tensor<F>,
    moment_1_out: &mut Tensor<F>,
    moment_2_out: &mut Tensor<F>,
    len: usize,
    scalars: AdamWScalars,
) {
    let i = cube_index() * UNITS + UNIT_POS as usize;
    if i >= len {
        terminate!();
    }
    let g = grad[i];
    let m = moment_1[i] * F::cast_from(scalars.beta_1) + g * F::cast_from(scalars.one_minus_beta_1);
    let v =
        moment_2[i] * F::cast_from(scalars.beta_2) + g * g * F::cast_from(scalars.one_minus_beta_2);
    let m_hat = m / F::cast_from(scalars.correction_1);
    let v_hat = v / F::cast_from(scalars.correction_2);
    let delta = m_hat / (F::sqrt(v_hat) + F::cast_from(scalars.epsilon));
    param_out[i] = param[i] * F::cast_from(scalars.keep) - delta * F::cast_from(scalars.lr);
    moment_1_out[i] = m;
    moment_2_out[i] = v;
}

/// The update's constants, as the kernel reads them.
#[derive(CubeLaunch, CubeType, Clone, Copy)]
pub struct AdamWScalars {
    pub beta_1: f32,
    pub one_minus_beta_1: f32,
    pub beta_2: f32,
    pub one_minus_beta_2: f32,
    pub correction_1: f32,
    pub correction_2: f32,
    pub epsilon: f32,
    pub keep: f32,
    pub lr: f32,
}

/// Launch [`adamw`] over flat tensors of one length; `outs` are the new parameter, first and
/// second moments.
pub(crate) fn launch_adamw<R: CubeRuntime>(
    param: CubeTensor<R>,
    grad: CubeTensor<R>,
    moment_1: CubeTensor<R>,
    moment_2: CubeTensor<R>,
    outs: [CubeTensor<R>; 3],
    step: &AdamWStep,
) {
    let len = param.meta.shape().num_elements();
    for t in [&grad, &moment_1, &moment_2].into_iter().chain(&outs) {
        assert_eq!(t.meta.shape().num_elements(), len, "adamw: lengths differ");
    }
    let (c1, c2) = step.bias_corrections();
    let [p_out, m_out, v_out] = outs;
    let client = param.client.clone();
    adamw::launch::<f32, R>(
        &client,
        row_grid(len.div_ceil(UNITS)),
        CubeDim::new_1d(UNITS as u32),
        param.into_tensor_arg(),
        grad.into_tensor_arg(),
        moment_1.into_tensor_arg(),
        moment_2.into_tensor_arg(),
        p_out.into_tensor_arg(),
        m_out.into_tensor_arg(),
        v_out.into_tensor_arg(),
        len,
        AdamWScalarsLaunch::new(
            step.beta_1,
            1.0 - step.beta_1,
            step.beta_2,
            1.0 - step.beta_2,
            c1,
            c2,
            step.epsilon,
            (1.0 - step.lr * step.weight_decay as f64) as f32,
            step.lr as f32,
        ),
    );
}
