//! CubeCL bodies and launchers of the training kernels of Mamba-2's epilogue between the scan
//! and the output projection: the D skip and the gated RMSNorm, per row and group of
//! `d / groups` channels, channel `c` in head `c / head_dim`:
//! `s = y + D[head] · x`, `g = s · SiLU(z)`, `ĝ = g · r`, `r = 1/√(mean_group(g²) + eps)`,
//! `out = ĝ · w`.
//!
//! - Forward: one cube per (row, group); it keeps each `r` for the backward pass.
//! - Backward, two launches: the input gradients (one cube per (row, group)):
//!   `dg = r · (dĝ − ĝ · mean_group(dĝ · ĝ))` with `dĝ = dout · w`, then `dy = dg · SiLU(z)`,
//!   `dx = dy · D[head]`, `dz = dg · s · SiLU'(z)`; and one column kernel that walks chunks of
//!   [`CHUNK_ROWS`] rows with [`COLUMNS`] columns × [`LANES`] lanes per cube and writes each
//!   chunk's partial sums `Σ dout · ĝ` (the weight's gradient) and `Σ dy · x` (summed over each
//!   head's channels, D's gradient), reduced by the caller.
//!
//! Tensors are contiguous and indexed flat; outputs are handed in, so the tests can give
//! NaN-filled ones.

use burn_cubecl::{tensor::CubeTensor, CubeRuntime};
use cubecl::prelude::*;

use super::conv::CHUNK_ROWS;
use super::kernel::{COLUMNS, LANES};
use crate::dispatch::{row_grid, shape};
use crate::fused::kernel::{cube_sum, silu, REDUCE_UNITS};
use crate::grid::cube_index;

/// `g = (y + D[c / head_dim] · x) · SiLU(z)` at flat index `k` of channel `c`.
#[cube]
fn gated<F: Float>(
    y: &Tensor<F>,
    x: &Tensor<F>,
    z: &Tensor<F>,
    d_skip: &Tensor<F>,
    k: usize,
    c: usize,
    head_dim: u32,
) -> F {
    (y[k] + d_skip[c / head_dim as usize] * x[k]) * silu::<F>(z[k])
}

/// `out = ĝ · w` and `rstd[row, group] = r`, one cube per (row, group).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn gated_norm_forward<F: Float>(
    y: &Tensor<F>,
    x: &Tensor<F>,
    z: &Tensor<F>,
    d_skip: &Tensor<F>,
    weight: &Tensor<F>,
    out: &mut Tensor<F>,
    rstd: &mut Tensor<F>,
    cubes: u32,
    head_dim: u32,
    eps: f32,
    #[comptime] d: usize,
    #[comptime] groups: usize,
) {
    let cube = cube_index();
    if cube >= cubes as usize {
        terminate!();
    }
    let width = d / groups;
    let first = (cube / groups) * d + (cube % groups) * width;
    let first_channel = (cube % groups) * width;
    let u = UNIT_POS as usize;
    let mut shared = SharedMemory::<F>::new(REDUCE_UNITS);

    let mut squares = F::new(0.0);
    let mut i = u;
    while i < width {
        let g = gated::<F>(y, x, z, d_skip, first + i, first_channel + i, head_dim);
        squares += g * g;
        i += REDUCE_UNITS;
    }
    let mean = cube_sum::<F>(squares, &mut shared) / F::cast_from(width as u32);
    let r = F::new(1.0) / F::sqrt(mean + F::cast_from(eps));
    i = u;
    while i < width {
        let c = first_channel + i;
        out[first + i] = gated::<F>(y, x, z, d_skip, first + i, c, head_dim) * r * weight[c];
        i += REDUCE_UNITS;
    }
    if u == 0 {
        rstd[cube] = r;
    }
}

/// `dy`, `dx` and `dz` (see the module docs), one cube per (row, group).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn gated_norm_input_grads<F: Float>(
    y: &Tensor<F>,
    x: &Tensor<F>,
    z: &Tensor<F>,
    d_skip: &Tensor<F>,
    weight: &Tensor<F>,
    rstd: &Tensor<F>,
    dout: &Tensor<F>,
    dy: &mut Tensor<F>,
    dx: &mut Tensor<F>,
    dz: &mut Tensor<F>,
    cubes: u32,
    head_dim: u32,
    #[comptime] d: usize,
    #[comptime] groups: usize,
) {
    let cube = cube_index();
    if cube >= cubes as usize {
        terminate!();
    }
    let width = d / groups;
    let first = (cube / groups) * d + (cube % groups) * width;
    let first_channel = (cube % groups) * width;
    let u = UNIT_POS as usize;
    let r = rstd[cube];
    let mut shared = SharedMemory::<F>::new(REDUCE_UNITS);

    let mut dot = F::new(0.0);
    let mut i = u;
    while i < width {
        let c = first_channel + i;
        let g_hat = gated::<F>(y, x, z, d_skip, first + i, c, head_dim) * r;
        dot += dout[first + i] * weight[c] * g_hat;
        i += REDUCE_UNITS;
    }
    let mean_dot = cube_sum::<F>(dot, &mut shared) / F::cast_from(width as u32);
    i = u;
    while i < width {
        let (k, c) = (first + i, first_channel + i);
        let skip = d_skip[c / head_dim as usize];
        let s = y[k] + skip * x[k];
        let v = z[k];
        let sigmoid = F::new(1.0) / (F::new(1.0) + F::exp(-v));
        let g_hat = s * v * sigmoid * r;
        let dg = r * (dout[k] * weight[c] - g_hat * mean_dot);
        let ds = dg * v * sigmoid;
        dy[k] = ds;
        dx[k] = ds * skip;
        dz[k] = dg * s * sigmoid * (F::new(1.0) + v * (F::new(1.0) - sigmoid));
        i += REDUCE_UNITS;
    }
}

/// Each chunk's partial sums `partial[chunk, 0, c] = Σ dout · ĝ` and
/// `partial[chunk, 1, c] = Σ dy · x` over its rows (see the module docs).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn gated_norm_vector_grads<F: Float>(
    y: &Tensor<F>,
    x: &Tensor<F>,
    z: &Tensor<F>,
    d_skip: &Tensor<F>,
    rstd: &Tensor<F>,
    dout: &Tensor<F>,
    dy: &Tensor<F>,
    partial: &mut Tensor<F>,
    rows: u32,
    head_dim: u32,
    #[comptime] d: usize,
    #[comptime] groups: usize,
) {
    let rows = rows as usize;
    let column_blocks = d.div_ceil(COLUMNS);
    let cube = cube_index();
    if cube >= rows.div_ceil(CHUNK_ROWS) * column_blocks {
        terminate!();
    }
    let u = UNIT_POS as usize;
    let chunk = cube / column_blocks;
    let c = (cube % column_blocks) * COLUMNS + u % COLUMNS;
    let lane = u / COLUMNS;
    let group = c / (d / groups);

    let mut sum_weight = F::new(0.0);
    let mut sum_skip = F::new(0.0);
    if c < d {
        let mut end = (chunk + 1) * CHUNK_ROWS;
        if end > rows {
            end = rows;
        }
        let mut r = chunk * CHUNK_ROWS + lane;
        while r < end {
            let k = r * d + c;
            let g_hat = gated::<F>(y, x, z, d_skip, k, c, head_dim) * rstd[r * groups + group];
            sum_weight += dout[k] * g_hat;
            sum_skip += dy[k] * x[k];
            r += LANES;
        }
    }
    let mut shared_weight = SharedMemory::<F>::new(COLUMNS * LANES);
    let mut shared_skip = SharedMemory::<F>::new(COLUMNS * LANES);
    shared_weight[u] = sum_weight;
    shared_skip[u] = sum_skip;
    sync_cube();
    if lane == 0 && c < d {
        let mut total_weight = F::new(0.0);
        let mut total_skip = F::new(0.0);
        for l in 0..LANES {
            total_weight += shared_weight[l * COLUMNS + u];
            total_skip += shared_skip[l * COLUMNS + u];
        }
        partial[chunk * 2 * d + c] = total_weight;
        partial[(chunk * 2 + 1) * d + c] = total_skip;
    }
}

/// The sizes of a gated-norm launch, checked: `(rows, d, head_dim)` of the row tensors
/// `[rows, d]` and `d_skip` `[d / head_dim]`, `d` whole groups of `groups`.
fn gated_norm_shapes<R: CubeRuntime>(
    what: &str,
    rows: &[&CubeTensor<R>],
    d_skip: &CubeTensor<R>,
    groups: usize,
) -> (usize, usize, usize) {
    let [n, d] = shape(rows[0])[..] else {
        panic!("{what}: row tensors must be 2-d")
    };
    for t in rows {
        assert_eq!(shape(t), [n, d], "{what}: row tensor shape");
    }
    let [heads] = shape(d_skip)[..] else {
        panic!("{what}: D must be 1-d")
    };
    assert!(
        groups > 0 && d % groups == 0 && heads > 0 && d % heads == 0,
        "{what}: {d} channels are not whole groups of {groups} and whole heads of {heads}"
    );
    (n, d, d / heads)
}

/// Launch [`gated_norm_forward`]: `[y, x, z]` and `out` are `[rows, d]`, `rstd`
/// `[rows, groups]`.
pub(crate) fn launch_gated_norm_forward<R: CubeRuntime>(
    [y, x, z]: [CubeTensor<R>; 3],
    [d_skip, weight]: [CubeTensor<R>; 2],
    [out, rstd]: [CubeTensor<R>; 2],
    groups: usize,
    eps: f32,
) {
    let (rows, d, head_dim) = gated_norm_shapes("gated_norm", &[&y, &x, &z, &out], &d_skip, groups);
    assert_eq!(shape(&weight), [d], "gated_norm: weight shape");
    assert_eq!(shape(&rstd), [rows, groups], "gated_norm: rstd shape");
    let cubes = rows * groups;
    let client = y.client.clone();
    gated_norm_forward::launch::<f32, R>(
        &client,
        row_grid(cubes),
        CubeDim::new_1d(REDUCE_UNITS as u32),
        y.into_tensor_arg(),
        x.into_tensor_arg(),
        z.into_tensor_arg(),
        d_skip.into_tensor_arg(),
        weight.into_tensor_arg(),
        out.into_tensor_arg(),
        rstd.into_tensor_arg(),
        cubes as u32,
        head_dim as u32,
        eps,
        d,
        groups,
    );
}

/// Launch the backward kernels of [`gated_norm_forward`]: `[dy, dx, dz]` are `[rows, d]` and
/// `partial` is `[chunks, 2, d]` with `chunks = ⌈rows / CHUNK_ROWS⌉`.
pub(crate) fn launch_gated_norm_backward<R: CubeRuntime>(
    [y, x, z]: [CubeTensor<R>; 3],
    [d_skip, weight, rstd]: [CubeTensor<R>; 3],
    dout: CubeTensor<R>,
    [dy, dx, dz, partial]: [CubeTensor<R>; 4],
    groups: usize,
) {
    let what = "gated_norm backward";
    let row_tensors = [&y, &x, &z, &dout, &dy, &dx, &dz];
    let (rows, d, head_dim) = gated_norm_shapes(what, &row_tensors, &d_skip, groups);
    assert_eq!(shape(&weight), [d], "{what}: weight shape");
    assert_eq!(shape(&rstd), [rows, groups], "{what}: rstd shape");
    let chunks = rows.div_ceil(CHUNK_ROWS);
    assert_eq!(
        shape(&partial),
        [chunks, 2, d],
        "{what}: partial sums shape"
    );
    let cubes = rows * groups;
    let client = y.client.clone();
    gated_norm_input_grads::launch::<f32, R>(
        &client,
        row_grid(cubes),
        CubeDim::new_1d(REDUCE_UNITS as u32),
        y.clone().into_tensor_arg(),
        x.clone().into_tensor_arg(),
        z.clone().into_tensor_arg(),
        d_skip.clone().into_tensor_arg(),
        weight.into_tensor_arg(),
        rstd.clone().into_tensor_arg(),
        dout.clone().into_tensor_arg(),
        dy.clone().into_tensor_arg(),
        dx.into_tensor_arg(),
        dz.into_tensor_arg(),
        cubes as u32,
        head_dim as u32,
        d,
        groups,
    );
    gated_norm_vector_grads::launch::<f32, R>(
        &client,
        row_grid(chunks * d.div_ceil(COLUMNS)),
        CubeDim::new_1d((COLUMNS * LANES) as u32),
        y.into_tensor_arg(),
        x.into_tensor_arg(),
        z.into_tensor_arg(),
        d_skip.into_tensor_arg(),
        rstd.into_tensor_arg(),
        dout.into_tensor_arg(),
        dy.into_tensor_arg(),
        partial.into_tensor_arg(),
        rows as u32,
        head_dim as u32,
        d,
        groups,
    );
}
