//! Fused inference kernels: chains of small tensor ops of a world-model layer done in one
//! launch each, for the streaming path where a frame is 256 tokens and every launch costs more
//! than its arithmetic (SPEC §5.5, §6):
//! - [`norm_modulate`]: the parameter-free layer norm and adaLN's `h·(1 + scale) + shift`;
//! - [`gated_residual`]: adaLN's `x + gate · y`;
//! - [`mamba_prologue`]: Mamba-2's causal convolution (continuing the carried inputs), SiLU,
//!   the split into x, B, C and `Δ = softplus(dt + dt_bias)`;
//! - [`mamba_epilogue`]: Mamba-2's D skip and gated RMSNorm;
//! - [`bias_gelu`]: a linear layer's bias and the exact GELU after it;
//! - [`qkv_rope`]: the attention projections' biases, the axial rotary embedding of queries
//!   and keys from a small per-axis table ([`rope_table`]) instead of per-token tables, and the
//!   move of q, k and v to the heads-major layout.
//!
//! They have no backward pass: under autodiff [`serves`] says no and the model runs its tensor
//! ops (`model::world::block`, `model::mixers::ssd::layer`), which are the references, or for
//! the norm and GELU the training kernels of [`crate::layer_ops`];
//! [`reference`] here holds independent f64 host loops the tests compare against.

pub(crate) mod kernel;
mod launch;
pub mod reference;
#[cfg(test)]
mod tests;

use burn::tensor::{backend::Backend, DType, Tensor};

use crate::dispatch::{empty_f32, from_cube, kernel_runtime, to_cube, to_cube_rows, with_runtime};
use launch::{
    launch_bias_gelu, launch_gated_residual, launch_mamba_epilogue, launch_mamba_prologue,
    launch_norm_modulate, launch_qkv_rope, PrologueOut,
};

/// Should the fused kernels serve this backend and dtype (selected, a CubeCL backend outside
/// autodiff, f32)?
pub fn serves<B: Backend>(dtype: DType) -> bool {
    crate::kernels_serve::<B>(crate::KernelKind::Fused, dtype)
}

fn runtime<B: Backend>() -> crate::dispatch::CubeRuntimeKind {
    kernel_runtime::<B>(DType::F32).expect("fused kernels: backend has no kernels (check serves)")
}

/// adaLN's per-frame vectors packed side by side as the modulation layer makes them: the
/// kernels read a vector in place from its first column, so no slice of it is copied. One
/// table may hold more than one call's vectors (several passes over a frame, several layers'
/// products side by side); `first_frame` and `first_col` say where this call's are.
#[derive(Clone, Debug)]
pub struct Modulation<B: Backend> {
    /// `[batch, table_frames, width]`
    pub table: Tensor<B, 3>,
    /// `[layer width]`, added to every row (column `first_col + i` gets element `i`), when the
    /// layer's bias is not yet in `table`.
    pub bias: Option<Tensor<B, 1>>,
    /// Frame `f` of the modulated tensor reads frame `first_frame + f` of its video's rows.
    pub first_frame: usize,
    /// The layer's first column; the columns the kernels are given count from here.
    pub first_col: usize,
}

impl<B: Backend> Modulation<B> {
    /// A table with one row per frame of the modulated tensor, the layer's vectors alone in it.
    pub fn new(table: Tensor<B, 3>, bias: Option<Tensor<B, 1>>) -> Self {
        Self {
            table,
            bias,
            first_frame: 0,
            first_col: 0,
        }
    }

    fn packed<R: burn_cubecl::CubeRuntime>(&self) -> launch::Packed<R> {
        let [b, f, width] = self.table.dims();
        launch::Packed {
            table: to_cube::<B, R, 2>(self.table.clone().reshape([b * f, width])),
            table_frames: f,
            first_frame: self.first_frame,
            first_col: self.first_col,
            bias: self.bias.clone().map(to_cube::<B, R, 1>),
        }
    }
}

/// `(x − mean) / √(var + eps) · (1 + scale) + shift` over the last dimension, shift and scale
/// per frame: the `d` columns of `modulation` from `shift_col` and from `scale_col`.
///
/// # Shapes
/// - `x`: `[batch, frames, h, w, d]`; `modulation.table`: `[batch, ≥ frames, width]`; returns
///   `x`'s
pub fn norm_modulate<B: Backend>(
    x: Tensor<B, 5>,
    modulation: &Modulation<B>,
    cols: [usize; 2],
    eps: f64,
) -> Tensor<B, 5> {
    let dims = x.dims();
    let [b, f, h, w, d] = dims;
    assert_eq!(
        modulation.table.dims()[0],
        b,
        "norm_modulate: one modulation video per video"
    );
    let rows = b * f * h * w;
    with_runtime!(runtime::<B>(), R => {
        let x = to_cube::<B, R, 2>(x.reshape([rows, d]));
        let y = empty_f32(&x, &[rows, d]);
        launch_norm_modulate(x, &modulation.packed(), cols, y.clone(), h * w, eps as f32);
        from_cube::<B, R, 2>(y).reshape(dims)
    })
}

/// `x + gate · (y + y_bias)` with the gate per frame: the `d` columns of `modulation` from
/// `gate_col`. `y_bias` is the bias of the linear layer that made `y`, left out of it.
///
/// # Shapes
/// - `x`, `y`: `[batch, frames, h, w, d]`; `modulation.table`: `[batch, ≥ frames, width]`;
///   `y_bias`: `[d]`; returns `x`'s
pub fn gated_residual<B: Backend>(
    x: Tensor<B, 5>,
    modulation: &Modulation<B>,
    gate_col: usize,
    y: Tensor<B, 5>,
    y_bias: Option<Tensor<B, 1>>,
) -> Tensor<B, 5> {
    let dims = x.dims();
    assert_eq!(y.dims(), dims, "gated_residual: x and y shapes");
    let [b, f, h, w, d] = dims;
    assert_eq!(
        modulation.table.dims()[0],
        b,
        "gated_residual: one modulation video per video"
    );
    let rows = b * f * h * w;
    with_runtime!(runtime::<B>(), R => {
        let x = to_cube::<B, R, 2>(x.reshape([rows, d]));
        let out = empty_f32(&x, &[rows, d]);
        launch_gated_residual(
            x,
            &modulation.packed(),
            gate_col,
            to_cube::<B, R, 2>(y.reshape([rows, d])),
            y_bias.map(to_cube::<B, R, 1>),
            out.clone(),
            h * w,
        );
        from_cube::<B, R, 2>(out).reshape(dims)
    })
}

/// The sizes of a Mamba-2 layer the fused kernels need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MambaDims {
    pub d_inner: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub groups: usize,
    pub d_state: usize,
    pub d_conv: usize,
}

impl MambaDims {
    /// Channels of the convolution: x, B and C.
    pub fn conv_dim(&self) -> usize {
        self.d_inner + 2 * self.groups * self.d_state
    }
}

/// Where the tokens of a Mamba-2 layer's sequences lie in the rows of its projections. The rows
/// hold, per video, `frames` frames of `grid` = `[h, w]` tokens in raster order; each frame is
/// cut into blocks of `block` tokens numbered in raster order, and a block's sequence is its
/// tokens of frame 0 in raster order, then of frame 1, … (the block-wise scan of
/// `model::mixers::blockwise`). The prologue reads and the epilogue writes that order, so the
/// block-wise scan needs no reordering copies around it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockOrder {
    pub frames: usize,
    pub grid: [usize; 2],
    pub block: [usize; 2],
}

impl BlockOrder {
    /// Rows already in sequence order, `seq` tokens per sequence.
    pub fn sequential(seq: usize) -> Self {
        Self {
            frames: 1,
            grid: [1, seq],
            block: [1, seq],
        }
    }

    /// Tokens per sequence.
    pub fn sequence_len(&self) -> usize {
        self.frames * self.block[0] * self.block[1]
    }

    /// The number of sequences `rows` rows make; panics unless the blocks tile the grid and the
    /// rows are whole videos.
    pub fn sequences(&self, rows: usize) -> usize {
        let ([h, w], [bh, bw]) = (self.grid, self.block);
        assert!(
            bh > 0 && bw > 0 && h % bh == 0 && w % bw == 0,
            "block order: blocks {bh}×{bw} must tile the {h}×{w} grid"
        );
        let video = self.frames * h * w;
        assert!(
            video > 0 && rows % video == 0,
            "block order: {rows} rows are not whole videos of {video} tokens"
        );
        rows / video * (h / bh) * (w / bw)
    }
}

/// What the scan needs, from [`mamba_prologue`].
pub struct ScanInputs<B: Backend> {
    /// `[batch, seq, heads, head_dim]`, after the convolution and SiLU
    pub x: Tensor<B, 4>,
    /// `[batch, seq, groups, d_state]`
    pub b: Tensor<B, 4>,
    /// `[batch, seq, groups, d_state]`
    pub c: Tensor<B, 4>,
    /// `[batch, seq, heads]`, Δ after the softplus
    pub dt: Tensor<B, 3>,
    /// The new carried convolution inputs, `[batch, conv_dim, d_conv − 1]`, oldest first.
    pub conv: Tensor<B, 3>,
    /// `[heads]`, A = −exp(A_log)
    pub a: Tensor<B, 1>,
}

/// Mamba-2 from the input projection's output to the scan's inputs (see the module docs).
///
/// # Shapes
/// - `zxbcdt`: `[rows, 2·d_inner + 2·groups·d_state + heads]` ([z, xBC, dt]) in `order`, which
///   makes `batch` sequences of `seq` tokens
/// - `conv_state`: `[batch, conv_dim, d_conv − 1]`; `conv_weight`: `[conv_dim, d_conv]`;
///   `conv_bias`: `[conv_dim]`; `dt_bias`, `a_log`: `[heads]`
/// - returns [`ScanInputs`] in sequence order
#[allow(clippy::too_many_arguments)]
pub fn mamba_prologue<B: Backend>(
    zxbcdt: Tensor<B, 2>,
    conv_state: Tensor<B, 3>,
    conv_weight: Tensor<B, 2>,
    conv_bias: Tensor<B, 1>,
    dt_bias: Tensor<B, 1>,
    a_log: Tensor<B, 1>,
    order: BlockOrder,
    dims: MambaDims,
) -> ScanInputs<B> {
    let [rows, _] = zxbcdt.dims();
    let (batch, seq) = (order.sequences(rows), order.sequence_len());
    let group_state = dims.groups * dims.d_state;
    with_runtime!(runtime::<B>(), R => {
        let zxbcdt = to_cube_rows::<B, R>(zxbcdt);
        let out = PrologueOut {
            x: empty_f32(&zxbcdt, &[rows, dims.d_inner]),
            b: empty_f32(&zxbcdt, &[rows, group_state]),
            c: empty_f32(&zxbcdt, &[rows, group_state]),
            dt: empty_f32(&zxbcdt, &[rows, dims.heads]),
            conv: empty_f32(&zxbcdt, &[batch, dims.conv_dim(), dims.d_conv - 1]),
            a: empty_f32(&zxbcdt, &[dims.heads]),
        };
        launch_mamba_prologue(
            zxbcdt,
            to_cube::<B, R, 3>(conv_state),
            to_cube::<B, R, 2>(conv_weight),
            to_cube::<B, R, 1>(conv_bias),
            to_cube::<B, R, 1>(dt_bias),
            to_cube::<B, R, 1>(a_log),
            &out,
            order,
            dims,
        );
        ScanInputs {
            x: from_cube::<B, R, 2>(out.x).reshape([batch, seq, dims.heads, dims.head_dim]),
            b: from_cube::<B, R, 2>(out.b).reshape([batch, seq, dims.groups, dims.d_state]),
            c: from_cube::<B, R, 2>(out.c).reshape([batch, seq, dims.groups, dims.d_state]),
            dt: from_cube::<B, R, 2>(out.dt).reshape([batch, seq, dims.heads]),
            conv: from_cube::<B, R, 3>(out.conv),
            a: from_cube::<B, R, 1>(out.a),
        }
    })
}

/// Mamba-2 from the scan's output to the output projection's input: `g = (y + D_h x)·SiLU(z)`,
/// `g / √(mean over the group of g² + eps) · norm_weight`.
///
/// # Shapes
/// - `y`, `x`: `[batch, seq, heads, head_dim]` in sequence order; `d_skip`: `[heads]`;
///   `norm_weight`: `[d_inner]`
/// - `zxbcdt`: `[rows, width]` in `order`, z in its first `d_inner` columns
/// - returns `[rows, d_inner]` in `order`
#[allow(clippy::too_many_arguments)]
pub fn mamba_epilogue<B: Backend>(
    y: Tensor<B, 4>,
    x: Tensor<B, 4>,
    d_skip: Tensor<B, 1>,
    zxbcdt: Tensor<B, 2>,
    norm_weight: Tensor<B, 1>,
    order: BlockOrder,
    dims: MambaDims,
    eps: f64,
) -> Tensor<B, 2> {
    let [rows, _] = zxbcdt.dims();
    with_runtime!(runtime::<B>(), R => {
        let y = to_cube::<B, R, 2>(y.reshape([rows, dims.d_inner]));
        let out = empty_f32(&y, &[rows, dims.d_inner]);
        launch_mamba_epilogue(
            y,
            to_cube::<B, R, 2>(x.reshape([rows, dims.d_inner])),
            to_cube::<B, R, 1>(d_skip),
            to_cube_rows::<B, R>(zxbcdt),
            to_cube::<B, R, 1>(norm_weight),
            out.clone(),
            order,
            dims,
            eps as f32,
        );
        from_cube::<B, R, 2>(out)
    })
}

/// How a head's `head_dim / 2` rotary pairs are shared among the token's row, column and
/// frame (pairs `0..rows` turn with the row, the next `cols` with the column, the rest with
/// the frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RopeAxes {
    pub rows: usize,
    pub cols: usize,
    pub frames: usize,
}

impl RopeAxes {
    /// `head_dim / 2`.
    pub fn pairs(&self) -> usize {
        self.rows + self.cols + self.frames
    }
}

/// Length of [`rope_table`]'s table.
pub fn rope_table_len(axes: RopeAxes, frames: usize, [h, w]: [usize; 2]) -> usize {
    2 * (h * axes.rows + w * axes.cols + frames * axes.frames)
}

/// The packed angle table [`qkv_rope`] reads, computed in f64 on the host (exact for long
/// rollouts): `cos` then `sin` of the row angles `[h, rows]`, the same for the columns
/// `[w, cols]`, then for the frames `first_frame..first_frame + frames` `[frames, frame pairs]`.
/// Pair `i` of an axis with `m` pairs turns `θ^(−i/m)` radians per step.
pub fn rope_table(
    axes: RopeAxes,
    theta: f64,
    first_frame: usize,
    frames: usize,
    [h, w]: [usize; 2],
) -> Vec<f32> {
    let mut table = Vec::with_capacity(rope_table_len(axes, frames, [h, w]));
    for (m, positions) in [
        (axes.rows, 0..h),
        (axes.cols, 0..w),
        (axes.frames, first_frame..first_frame + frames),
    ] {
        let angles: Vec<f64> = positions
            .flat_map(|p| (0..m).map(move |i| p as f64 * theta.powf(-(i as f64) / m as f64)))
            .collect();
        table.extend(angles.iter().map(|a| a.cos() as f32));
        table.extend(angles.iter().map(|a| a.sin() as f32));
    }
    table
}

/// The attention's projections' products (without their biases), as [`qkv_rope`] takes them
/// (`T`: a burn tensor, or the kernels' own on the way to the launch).
pub enum QkvProducts<T> {
    /// q, k and v, `[batch, frames, h·w, heads, head_dim]` each.
    Separate([T; 3]),
    /// One product with the three projections' weights side by side, `[batch, frames, h·w,
    /// 3 · heads, head_dim]`: q's heads, then k's, then v's.
    Packed(T),
}

impl<T> QkvProducts<T> {
    fn map<U>(self, f: impl Fn(T) -> U) -> QkvProducts<U> {
        match self {
            QkvProducts::Separate(qkv) => QkvProducts::Separate(qkv.map(f)),
            QkvProducts::Packed(t) => QkvProducts::Packed(f(t)),
        }
    }

    /// The q product, or the packed one.
    fn first(&self) -> &T {
        match self {
            QkvProducts::Separate([q, ..]) | QkvProducts::Packed(q) => q,
        }
    }
}

/// The attention's inputs from its three projections: each bias added, queries and keys
/// rotated by their axial RoPE angles (pair `j` is `(x[j], x[j + half])`, turned to
/// `(x1 cos − x2 sin, x1 sin + x2 cos)`), all three moved to the heads-major layout.
///
/// # Shapes
/// - `products`: see [`QkvProducts`]; `biases`: `[heads · head_dim]` each; `table`:
///   [`rope_table`] for those frames
/// - returns q, k, v `[batch, heads, frames, h·w, head_dim]`
pub fn qkv_rope<B: Backend>(
    products: QkvProducts<Tensor<B, 5>>,
    biases: Option<[Tensor<B, 1>; 3]>,
    table: Tensor<B, 1>,
    axes: RopeAxes,
    grid: [usize; 2],
) -> [Tensor<B, 5>; 3] {
    let [batch, frames, tokens, mut heads, head_dim] = products.first().dims();
    if let QkvProducts::Packed(_) = products {
        heads /= 3;
    }
    let out_dims = [batch, heads, frames, tokens, head_dim];
    with_runtime!(runtime::<B>(), R => {
        let inputs = products.map(to_cube::<B, R, 5>);
        let out = [(); 3].map(|_| empty_f32(inputs.first(), &out_dims));
        launch_qkv_rope(
            inputs,
            biases.map(|b| b.map(to_cube::<B, R, 1>)),
            to_cube::<B, R, 1>(table),
            out.clone(),
            axes,
            grid,
        );
        out.map(from_cube::<B, R, 5>)
    })
}

/// `gelu(y + bias)` (the exact, erf form) over the last dimension.
///
/// # Shapes
/// - `y`: `[..., width]`; `bias`: `[width]`; returns `y`'s
pub fn bias_gelu<B: Backend, const D: usize>(y: Tensor<B, D>, bias: Tensor<B, 1>) -> Tensor<B, D> {
    let dims = y.dims();
    let width = dims[D - 1];
    let rows = y.shape().num_elements() / width.max(1);
    with_runtime!(runtime::<B>(), R => {
        let y = to_cube::<B, R, 2>(y.reshape([rows, width]));
        let out = empty_f32(&y, &[rows, width]);
        launch_bias_gelu(y, to_cube::<B, R, 1>(bias), out.clone());
        from_cube::<B, R, 2>(out).reshape(dims)
    })
}
