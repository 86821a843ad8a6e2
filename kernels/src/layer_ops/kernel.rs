//! CubeCL bodies and launchers of the layer ops' training kernels. Tensors are contiguous and
//! indexed flat; outputs are handed in, so the tests can give NaN-filled ones.
//!
//! - Row kernels (norm forward, the input gradient) run one cube of [`REDUCE_UNITS`] units per
//!   row and reduce with the fused kernels' [`cube_sum`], [`row_mean`] and [`row_rstd`].
//! - The column kernel (the shift and scale gradients) runs one cube per group of rows and
//!   [`COLUMNS`] columns: [`LANES`] units per column each sum every `LANES`-th row, and the
//!   lanes meet in shared memory.
//! - GELU runs one unit per element.

use burn_cubecl::{tensor::CubeTensor, CubeRuntime};
use cubecl::prelude::*;

use crate::dispatch::{row_grid, shape};
use crate::fused::kernel::{cube_sum, row_mean, row_rstd, REDUCE_UNITS};
use crate::grid::cube_index;

/// Columns of one cube of the column kernel.
pub(super) const COLUMNS: usize = 64;
/// Units summing one column of the column kernel.
pub(super) const LANES: usize = 4;
/// Units of an element-wise cube.
pub(super) const UNITS: usize = 256;

/// `y = x̂ · (1 + scale[g]) + shift[g]` with `x̂ = (x − mean) · rstd`, `rstd = 1/√(var + eps)`,
/// over the `d` columns of row `r`, group `g = r / rows_per_group`; writes `stats[r] = (mean,
/// rstd)` for the backward pass.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn norm_modulate_forward<F: Float>(
    x: &Tensor<F>,
    shift: &Tensor<F>,
    scale: &Tensor<F>,
    y: &mut Tensor<F>,
    stats: &mut Tensor<F>,
    rows: u32,
    rows_per_group: u32,
    eps: f32,
    #[comptime] d: usize,
) {
    let row = cube_index();
    if row >= rows as usize {
        terminate!();
    }
    let u = UNIT_POS as usize;
    let base = row * d;
    let vectors = (row / rows_per_group as usize) * d;
    let mut shared = SharedMemory::<F>::new(REDUCE_UNITS);

    let mean = row_mean::<F>(x, base, &mut shared, d);
    let rstd = row_rstd::<F>(x, base, mean, eps, &mut shared, d);

    let mut i = u;
    while i < d {
        let scaled = F::new(1.0) + scale[vectors + i];
        y[base + i] = (x[base + i] - mean) * rstd * scaled + shift[vectors + i];
        i += REDUCE_UNITS;
    }
    if u == 0 {
        stats[2 * row] = mean;
        stats[2 * row + 1] = rstd;
    }
}

/// The input gradient of [`norm_modulate_forward`]: with `g = dy · (1 + scale[g])`,
/// `dx = rstd · (g − mean(g) − x̂ · mean(g · x̂))`, the means over the row.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn norm_modulate_input_grad<F: Float>(
    x: &Tensor<F>,
    stats: &Tensor<F>,
    scale: &Tensor<F>,
    dy: &Tensor<F>,
    dx: &mut Tensor<F>,
    rows: u32,
    rows_per_group: u32,
    #[comptime] d: usize,
) {
    let row = cube_index();
    if row >= rows as usize {
        terminate!();
    }
    let u = UNIT_POS as usize;
    let base = row * d;
    let vectors = (row / rows_per_group as usize) * d;
    let (mean, rstd) = (stats[2 * row], stats[2 * row + 1]);
    let mut shared = SharedMemory::<F>::new(REDUCE_UNITS);

    let mut sum_g = F::new(0.0);
    let mut sum_gx = F::new(0.0);
    let mut i = u;
    while i < d {
        let g = dy[base + i] * (F::new(1.0) + scale[vectors + i]);
        sum_g += g;
        sum_gx += g * (x[base + i] - mean) * rstd;
        i += REDUCE_UNITS;
    }
    let mean_g = cube_sum::<F>(sum_g, &mut shared) / F::cast_from(d as u32);
    let mean_gx = cube_sum::<F>(sum_gx, &mut shared) / F::cast_from(d as u32);

    i = u;
    while i < d {
        let g = dy[base + i] * (F::new(1.0) + scale[vectors + i]);
        let x_hat = (x[base + i] - mean) * rstd;
        dx[base + i] = rstd * (g - mean_g - x_hat * mean_gx);
        i += REDUCE_UNITS;
    }
}

/// The vector gradients of [`norm_modulate_forward`]: per group and column,
/// `dshift = Σ dy` and `dscale = Σ dy · x̂` over the group's rows.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn norm_modulate_vector_grads<F: Float>(
    x: &Tensor<F>,
    stats: &Tensor<F>,
    dy: &Tensor<F>,
    dshift: &mut Tensor<F>,
    dscale: &mut Tensor<F>,
    groups: u32,
    rows_per_group: u32,
    #[comptime] d: usize,
) {
    let column_blocks = d.div_ceil(COLUMNS);
    let cube = cube_index();
    if cube >= groups as usize * column_blocks {
        terminate!();
    }
    let u = UNIT_POS as usize;
    let group = cube / column_blocks;
    let col = (cube % column_blocks) * COLUMNS + u % COLUMNS;
    let lane = u / COLUMNS;
    let rows = rows_per_group as usize;
    let mut shared_shift = SharedMemory::<F>::new(COLUMNS * LANES);
    let mut shared_scale = SharedMemory::<F>::new(COLUMNS * LANES);

    let mut sum_shift = F::new(0.0);
    let mut sum_scale = F::new(0.0);
    if col < d {
        let mut r = group * rows + lane;
        while r < (group + 1) * rows {
            let g = dy[r * d + col];
            sum_shift += g;
            sum_scale += g * (x[r * d + col] - stats[2 * r]) * stats[2 * r + 1];
            r += LANES;
        }
    }
    shared_shift[u] = sum_shift;
    shared_scale[u] = sum_scale;
    sync_cube();
    if lane == 0 && col < d {
        let mut total_shift = F::new(0.0);
        let mut total_scale = F::new(0.0);
        for l in 0..LANES {
            total_shift += shared_shift[l * COLUMNS + u];
            total_scale += shared_scale[l * COLUMNS + u];
        }
        dshift[group * d + col] = total_shift;
        dscale[group * d + col] = total_scale;
    }
}

/// Φ(v), the standard normal's distribution function.
#[cube]
fn normal_cdf<F: Float>(v: F) -> F {
    F::new(0.5) * (F::new(1.0) + F::erf(v * F::new(std::f32::consts::FRAC_1_SQRT_2)))
}

/// The exact GELU, `y = v · Φ(v)`.
#[cube(launch)]
pub fn gelu_forward<F: Float>(x: &Tensor<F>, y: &mut Tensor<F>, len: usize) {
    let i = cube_index() * UNITS + UNIT_POS as usize;
    if i >= len {
        terminate!();
    }
    let v = x[i];
    y[i] = v * normal_cdf::<F>(v);
}

/// GELU's input gradient, `dx = dy · (Φ(v) + v · φ(v))` with φ the standard normal density.
#[cube(launch)]
pub fn gelu_backward<F: Float>(x: &Tensor<F>, dy: &Tensor<F>, dx: &mut Tensor<F>, len: usize) {
    let i = cube_index() * UNITS + UNIT_POS as usize;
    if i >= len {
        terminate!();
    }
    let v = x[i];
    let density = F::exp(F::new(-0.5) * v * v) * F::new(0.398_942_3);
    dx[i] = dy[i] * (normal_cdf::<F>(v) + v * density);
}

/// `[rows, d]` of `x` and the groups of `vectors` (`[groups, d]`), checked: `rows` a whole
/// number of groups.
fn norm_shapes<R: CubeRuntime>(
    what: &str,
    x: &CubeTensor<R>,
    vectors: &CubeTensor<R>,
) -> (usize, usize, usize) {
    let [rows, d] = shape(x)[..] else {
        panic!("{what}: x must be 2-d")
    };
    let [groups, vd] = shape(vectors)[..] else {
        panic!("{what}: shift and scale must be 2-d")
    };
    assert_eq!(vd, d, "{what}: vectors as wide as x");
    assert!(
        groups > 0 && rows % groups == 0,
        "{what}: {rows} rows are not whole groups of {groups}"
    );
    (rows, d, groups)
}

/// Launch [`norm_modulate_forward`].
///
/// # Shapes
/// - `x`, `y`: `[rows, d]`; `shift`, `scale`: `[groups, d]`; `stats`: `[rows, 2]`
pub(crate) fn launch_norm_modulate_forward<R: CubeRuntime>(
    x: CubeTensor<R>,
    [shift, scale]: [CubeTensor<R>; 2],
    y: CubeTensor<R>,
    stats: CubeTensor<R>,
    eps: f32,
) {
    let (rows, d, groups) = norm_shapes("norm_modulate", &x, &scale);
    assert_eq!(shape(&shift), [groups, d], "norm_modulate: shift shape");
    assert_eq!(shape(&y), [rows, d], "norm_modulate: output shape");
    assert_eq!(shape(&stats), [rows, 2], "norm_modulate: stats shape");
    let client = x.client.clone();
    norm_modulate_forward::launch::<f32, R>(
        &client,
        row_grid(rows),
        CubeDim::new_1d(REDUCE_UNITS as u32),
        x.into_tensor_arg(),
        shift.into_tensor_arg(),
        scale.into_tensor_arg(),
        y.into_tensor_arg(),
        stats.into_tensor_arg(),
        rows as u32,
        (rows / groups) as u32,
        eps,
        d,
    );
}

/// Launch the two backward kernels of [`norm_modulate_forward`]; `outs` are `dx`, `dshift`
/// and `dscale`.
///
/// # Shapes
/// - `x`, `dy`, `dx`: `[rows, d]`; `scale`, `dshift`, `dscale`: `[groups, d]`; `stats`:
///   `[rows, 2]`
pub(crate) fn launch_norm_modulate_backward<R: CubeRuntime>(
    x: CubeTensor<R>,
    stats: CubeTensor<R>,
    scale: CubeTensor<R>,
    dy: CubeTensor<R>,
    [dx, dshift, dscale]: [CubeTensor<R>; 3],
) {
    let what = "norm_modulate backward";
    let (rows, d, groups) = norm_shapes(what, &x, &scale);
    assert_eq!(shape(&stats), [rows, 2], "{what}: stats shape");
    for t in [&dy, &dx] {
        assert_eq!(shape(t), [rows, d], "{what}: row gradient shape");
    }
    for t in [&dshift, &dscale] {
        assert_eq!(shape(t), [groups, d], "{what}: vector gradient shape");
    }
    let client = x.client.clone();
    let rows_per_group = (rows / groups) as u32;
    norm_modulate_input_grad::launch::<f32, R>(
        &client,
        row_grid(rows),
        CubeDim::new_1d(REDUCE_UNITS as u32),
        x.clone().into_tensor_arg(),
        stats.clone().into_tensor_arg(),
        scale.into_tensor_arg(),
        dy.clone().into_tensor_arg(),
        dx.into_tensor_arg(),
        rows as u32,
        rows_per_group,
        d,
    );
    norm_modulate_vector_grads::launch::<f32, R>(
        &client,
        row_grid(groups * d.div_ceil(COLUMNS)),
        CubeDim::new_1d((COLUMNS * LANES) as u32),
        x.into_tensor_arg(),
        stats.into_tensor_arg(),
        dy.into_tensor_arg(),
        dshift.into_tensor_arg(),
        dscale.into_tensor_arg(),
        groups as u32,
        rows_per_group,
        d,
    );
}

/// Launch [`gelu_forward`] (`dy: None`) or [`gelu_backward`] over flat tensors of one length.
pub(crate) fn launch_gelu<R: CubeRuntime>(
    x: CubeTensor<R>,
    dy: Option<CubeTensor<R>>,
    out: CubeTensor<R>,
) {
    let len = x.meta.shape().num_elements();
    for t in dy.iter().chain([&out]) {
        assert_eq!(t.meta.shape().num_elements(), len, "gelu: lengths differ");
    }
    let client = x.client.clone();
    let (grid, dim) = (row_grid(len.div_ceil(UNITS)), CubeDim::new_1d(UNITS as u32));
    match dy {
        None => gelu_forward::launch::<f32, R>(
            &client,
            grid,
            dim,
            x.into_tensor_arg(),
            out.into_tensor_arg(),
            len,
        ),
        Some(dy) => gelu_backward::launch::<f32, R>(
            &client,
            grid,
            dim,
            x.into_tensor_arg(),
            dy.into_tensor_arg(),
            out.into_tensor_arg(),
            len,
        ),
    }
}
