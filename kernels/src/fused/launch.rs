//! Launchers of the fused inference kernels on CubeCL tensors: shape checks and grids. Outputs
//! are handed in, so the tests can give NaN-filled ones.

use burn_cubecl::{tensor::CubeTensor, CubeRuntime};
use cubecl::prelude::*;

use super::kernel::{
    bias_gelu, gated_residual, mamba_epilogue, mamba_prologue, norm_modulate, qkv_rope,
    BlockOrderArgsLaunch, TableArgsLaunch, REDUCE_UNITS,
};
use super::{BlockOrder, MambaDims, QkvProducts};
use crate::dispatch::{row_grid, row_stride, shape};

/// Units of an elementwise launch.
const UNITS: usize = 256;

fn elementwise_grid(units: usize) -> CubeCount {
    CubeCount::Static(units.div_ceil(UNITS).max(1) as u32, 1, 1)
}

impl BlockOrder {
    /// The kernels' copy of the order.
    fn launch_args<R: CubeRuntime>(&self) -> BlockOrderArgsLaunch<R> {
        BlockOrderArgsLaunch::new(
            self.frames,
            self.grid[0],
            self.grid[1],
            self.block[0],
            self.block[1],
        )
    }
}

/// adaLN's per-frame vectors packed side by side, as the modulation layer makes them.
#[derive(Clone)]
pub(crate) struct Packed<R: CubeRuntime> {
    /// `[videos · table_frames, width]`: row `v · table_frames + t` holds frame `t` of video
    /// `v`.
    pub table: CubeTensor<R>,
    /// Rows of one video in `table`.
    pub table_frames: usize,
    /// Frame `f` of the rows being modulated reads row `first_frame + f` of its video.
    pub first_frame: usize,
    /// The layer's vectors start at this column; vector columns are counted from it.
    pub first_col: usize,
    /// Added to every row (indexed from `first_col`), if the layer's bias is not already in
    /// `table`.
    pub bias: Option<CubeTensor<R>>,
}

impl<R: CubeRuntime> Packed<R> {
    /// The table's layout for `rows` rows of `tokens_per_frame` tokens each, after checking
    /// that every video's frames have rows, that `d` columns from each of `cols` fit and that
    /// the bias covers them.
    fn checked(
        &self,
        what: &str,
        rows: usize,
        tokens_per_frame: usize,
        cols: &[usize],
        d: usize,
    ) -> TableArgsLaunch<R> {
        let [table_rows, width] = shape(&self.table)[..] else {
            panic!("{what}: the modulation table must be 2-d")
        };
        assert!(
            tokens_per_frame > 0 && rows % tokens_per_frame == 0,
            "{what}: {rows} rows are not frames of {tokens_per_frame} tokens"
        );
        let frame_rows = rows / tokens_per_frame;
        assert!(
            self.table_frames > 0 && table_rows % self.table_frames == 0,
            "{what}: {table_rows} modulation rows are not videos of {} frames",
            self.table_frames
        );
        let videos = table_rows / self.table_frames;
        assert_eq!(
            frame_rows % videos.max(1),
            0,
            "{what}: {frame_rows} frames do not split among {videos} videos"
        );
        let frames = frame_rows / videos.max(1);
        assert!(
            self.first_frame + frames <= self.table_frames,
            "{what}: frames {}..{} exceed the modulation's {} a video",
            self.first_frame,
            self.first_frame + frames,
            self.table_frames
        );
        let bias_width = self.bias.as_ref().map(|b| {
            let [n] = shape(b)[..] else {
                panic!("{what}: the modulation bias must be 1-d")
            };
            n
        });
        for &col in cols {
            assert!(
                self.first_col + col + d <= width,
                "{what}: columns {}..{} exceed the modulation's {width}",
                self.first_col + col,
                self.first_col + col + d
            );
            if let Some(n) = bias_width {
                assert!(
                    col + d <= n,
                    "{what}: columns {col}..{} exceed the bias's {n}",
                    col + d
                );
            }
        }
        TableArgsLaunch::new(
            frames.max(1),
            self.table_frames,
            self.first_frame,
            width,
            self.first_col,
        )
    }

    /// The bias argument: the bias, or any tensor where the kernel reads none.
    fn bias_arg(&self) -> CubeTensor<R> {
        self.bias.clone().unwrap_or_else(|| self.table.clone())
    }
}

/// Layer norm + modulation, shift and scale read from `modulation` at columns `shift_col` and
/// `scale_col`.
///
/// # Shapes
/// - `x`, `y`: `[rows, d]`; `modulation.table`: see [`Packed`]
pub(crate) fn launch_norm_modulate<R: CubeRuntime>(
    x: CubeTensor<R>,
    modulation: &Packed<R>,
    [shift_col, scale_col]: [usize; 2],
    y: CubeTensor<R>,
    tokens_per_frame: usize,
    eps: f32,
) {
    let [rows, d] = shape(&x)[..] else {
        panic!("norm_modulate: x must be 2-d")
    };
    assert_eq!(shape(&y), [rows, d], "norm_modulate: output shape");
    let table = modulation.checked(
        "norm_modulate",
        rows,
        tokens_per_frame,
        &[shift_col, scale_col],
        d,
    );
    let client = x.client.clone();
    norm_modulate::launch::<f32, R>(
        &client,
        row_grid(rows),
        CubeDim::new_1d(REDUCE_UNITS as u32),
        x.into_tensor_arg(),
        modulation.table.clone().into_tensor_arg(),
        modulation.bias_arg().into_tensor_arg(),
        y.into_tensor_arg(),
        rows as u32,
        tokens_per_frame as u32,
        table,
        shift_col as u32,
        scale_col as u32,
        eps,
        d,
        modulation.bias.is_some(),
    );
}

/// Gated residual `x + gate · (y + y_bias)`, the gate read from `modulation` at `gate_col`.
///
/// # Shapes
/// - `x`, `y`, `out`: `[rows, d]`; `modulation.table`: see [`Packed`]; `y_bias`: `[d]`
pub(crate) fn launch_gated_residual<R: CubeRuntime>(
    x: CubeTensor<R>,
    modulation: &Packed<R>,
    gate_col: usize,
    y: CubeTensor<R>,
    y_bias: Option<CubeTensor<R>>,
    out: CubeTensor<R>,
    tokens_per_frame: usize,
) {
    let [rows, d] = shape(&x)[..] else {
        panic!("gated_residual: x must be 2-d")
    };
    assert_eq!(shape(&y), [rows, d], "gated_residual: y shape");
    assert_eq!(shape(&out), [rows, d], "gated_residual: output shape");
    let table = modulation.checked("gated_residual", rows, tokens_per_frame, &[gate_col], d);
    if let Some(b) = &y_bias {
        assert_eq!(shape(b), [d], "gated_residual: y bias shape");
    }
    let len = rows * d;
    let client = x.client.clone();
    let has_y_bias = y_bias.is_some();
    let y_bias = y_bias.unwrap_or_else(|| y.clone());
    gated_residual::launch::<f32, R>(
        &client,
        elementwise_grid(len),
        CubeDim::new_1d(UNITS as u32),
        x.into_tensor_arg(),
        modulation.table.clone().into_tensor_arg(),
        modulation.bias_arg().into_tensor_arg(),
        y.into_tensor_arg(),
        y_bias.into_tensor_arg(),
        out.into_tensor_arg(),
        len as u32,
        tokens_per_frame as u32,
        table,
        gate_col as u32,
        d,
        modulation.bias.is_some(),
        has_y_bias,
    );
}

/// The outputs of [`launch_mamba_prologue`].
pub(crate) struct PrologueOut<R: CubeRuntime> {
    /// `[batch · seq, d_inner]`
    pub x: CubeTensor<R>,
    /// `[batch · seq, groups · d_state]`
    pub b: CubeTensor<R>,
    /// `[batch · seq, groups · d_state]`
    pub c: CubeTensor<R>,
    /// `[batch · seq, heads]`
    pub dt: CubeTensor<R>,
    /// `[batch, conv_dim, d_conv − 1]`
    pub conv: CubeTensor<R>,
    /// `[heads]`, `−exp(A_log)`
    pub a: CubeTensor<R>,
}

/// Convolution, SiLU, split and Δ of a Mamba-2 layer.
///
/// # Shapes
/// - `zxbcdt`: `[batch · seq, 2·d_inner + 2·groups·d_state + heads]` in `order`, which makes
///   `batch` sequences of `seq` tokens, rows possibly padded; the outputs are in sequence order
/// - `conv_state`: `[batch, conv_dim, d_conv − 1]`; `conv_weight`: `[conv_dim, d_conv]`;
///   `conv_bias`: `[conv_dim]`; `dt_bias`, `a_log`: `[heads]`
#[allow(clippy::too_many_arguments)]
pub(crate) fn launch_mamba_prologue<R: CubeRuntime>(
    zxbcdt: CubeTensor<R>,
    conv_state: CubeTensor<R>,
    conv_weight: CubeTensor<R>,
    conv_bias: CubeTensor<R>,
    dt_bias: CubeTensor<R>,
    a_log: CubeTensor<R>,
    out: &PrologueOut<R>,
    order: BlockOrder,
    dims: MambaDims,
) {
    let MambaDims {
        d_inner,
        heads,
        groups,
        d_state,
        d_conv,
        ..
    } = dims;
    let group_state = groups * d_state;
    let conv_dim = d_inner + 2 * group_state;
    let rows = shape(&zxbcdt)[0];
    let seq = order.sequence_len();
    let batch = order.sequences(rows);
    assert_eq!(
        shape(&zxbcdt),
        [rows, d_inner + conv_dim + heads],
        "mamba_prologue: input width"
    );
    let row_width = row_stride(&zxbcdt, "mamba_prologue: zxbcdt");
    assert_eq!(
        shape(&conv_state),
        [batch, conv_dim, d_conv - 1],
        "mamba_prologue: conv state shape"
    );
    assert_eq!(
        shape(&conv_weight),
        [conv_dim, d_conv],
        "mamba_prologue: conv weight"
    );
    assert_eq!(shape(&out.x), [rows, d_inner], "mamba_prologue: x shape");
    assert_eq!(
        shape(&out.b),
        [rows, group_state],
        "mamba_prologue: B shape"
    );
    assert_eq!(
        shape(&out.c),
        [rows, group_state],
        "mamba_prologue: C shape"
    );
    assert_eq!(shape(&out.dt), [rows, heads], "mamba_prologue: dt shape");
    assert_eq!(shape(&a_log), [heads], "mamba_prologue: A_log shape");
    assert_eq!(shape(&out.a), [heads], "mamba_prologue: A shape");
    assert_eq!(
        shape(&out.conv),
        shape(&conv_state),
        "mamba_prologue: new state"
    );
    let units = rows * (conv_dim + heads);
    let client = zxbcdt.client.clone();
    mamba_prologue::launch::<f32, R>(
        &client,
        elementwise_grid(units),
        CubeDim::new_1d(UNITS as u32),
        zxbcdt.into_tensor_arg(),
        conv_state.into_tensor_arg(),
        conv_weight.into_tensor_arg(),
        conv_bias.into_tensor_arg(),
        dt_bias.into_tensor_arg(),
        a_log.into_tensor_arg(),
        out.x.clone().into_tensor_arg(),
        out.b.clone().into_tensor_arg(),
        out.c.clone().into_tensor_arg(),
        out.dt.clone().into_tensor_arg(),
        out.conv.clone().into_tensor_arg(),
        out.a.clone().into_tensor_arg(),
        units as u32,
        row_width as u32,
        seq as u32,
        order.launch_args(),
        d_inner,
        group_state,
        heads,
        d_conv,
    );
}

/// D skip and gated RMSNorm of a Mamba-2 layer.
///
/// # Shapes
/// - `y`, `x`: `[rows, d_inner]` in block-sequence order; `out`: `[rows, d_inner]` and
///   `zxbcdt`: `[rows, width]` (z in its first `d_inner` columns, rows possibly padded) in
///   `order`;
///   `d_skip`: `[heads]`; `norm_weight`: `[d_inner]`
#[allow(clippy::too_many_arguments)]
pub(crate) fn launch_mamba_epilogue<R: CubeRuntime>(
    y: CubeTensor<R>,
    x: CubeTensor<R>,
    d_skip: CubeTensor<R>,
    zxbcdt: CubeTensor<R>,
    norm_weight: CubeTensor<R>,
    out: CubeTensor<R>,
    order: BlockOrder,
    dims: MambaDims,
    eps: f32,
) {
    let MambaDims {
        d_inner,
        heads,
        head_dim,
        groups,
        ..
    } = dims;
    let rows = shape(&y)[0];
    order.sequences(rows);
    assert_eq!(shape(&y), [rows, d_inner], "mamba_epilogue: y shape");
    assert_eq!(shape(&x), [rows, d_inner], "mamba_epilogue: x shape");
    assert_eq!(shape(&out), [rows, d_inner], "mamba_epilogue: output shape");
    assert_eq!(shape(&d_skip), [heads], "mamba_epilogue: D shape");
    assert_eq!(
        shape(&norm_weight),
        [d_inner],
        "mamba_epilogue: norm weight"
    );
    assert_eq!(
        heads * head_dim,
        d_inner,
        "mamba_epilogue: heads · head_dim"
    );
    assert_eq!(d_inner % groups, 0, "mamba_epilogue: groups divide d_inner");
    assert!(shape(&zxbcdt)[1] >= d_inner, "mamba_epilogue: z columns");
    assert_eq!(shape(&zxbcdt)[0], rows, "mamba_epilogue: zxbcdt rows");
    let width = row_stride(&zxbcdt, "mamba_epilogue: zxbcdt");
    let cubes = rows * groups;
    let client = y.client.clone();
    mamba_epilogue::launch::<f32, R>(
        &client,
        row_grid(cubes),
        CubeDim::new_1d(REDUCE_UNITS as u32),
        y.into_tensor_arg(),
        x.into_tensor_arg(),
        d_skip.into_tensor_arg(),
        zxbcdt.into_tensor_arg(),
        norm_weight.into_tensor_arg(),
        out.into_tensor_arg(),
        cubes as u32,
        width as u32,
        eps,
        order.sequence_len() as u32,
        order.launch_args(),
        d_inner,
        groups,
        head_dim,
    );
}

/// The attention's three projections: biases, RoPE of q and k, heads-major layout.
///
/// # Shapes
/// - `inputs`: see [`QkvProducts`]; `biases`: `[heads · head_dim]` each; `table`:
///   [`super::rope_table`]'s for those frames
/// - `out`: `[batch, heads, frames, h·w, head_dim]` each
pub(crate) fn launch_qkv_rope<R: CubeRuntime>(
    inputs: QkvProducts<CubeTensor<R>>,
    biases: Option<[CubeTensor<R>; 3]>,
    table: CubeTensor<R>,
    out: [CubeTensor<R>; 3],
    axes: super::RopeAxes,
    [grid_h, grid_w]: [usize; 2],
) {
    let (qkv, dims, packed) = match inputs {
        QkvProducts::Separate(qkv) => {
            let dims = shape(&qkv[0]);
            for t in &qkv {
                assert_eq!(shape(t), dims, "qkv_rope: q, k and v shapes");
            }
            (qkv, dims, false)
        }
        QkvProducts::Packed(t) => {
            let mut dims = shape(&t);
            assert!(
                dims.len() == 5 && dims[3] % 3 == 0,
                "qkv_rope: the packed product must be [batch, frames, tokens, 3·heads, head_dim]"
            );
            dims[3] /= 3;
            ([t.clone(), t.clone(), t], dims, true)
        }
    };
    let [batch, frames, tokens, heads, head_dim] = dims[..] else {
        panic!("qkv_rope: q must be 5-d")
    };
    assert_eq!(tokens, grid_h * grid_w, "qkv_rope: tokens = h · w");
    let row = heads * head_dim;
    let (row_stride, offsets) = match packed {
        true => (3 * row, [0, row, 2 * row]),
        false => (row, [0, 0, 0]),
    };
    for t in &out {
        assert_eq!(
            shape(t),
            [batch, heads, frames, tokens, head_dim],
            "qkv_rope: output shapes"
        );
    }
    if let Some(biases) = &biases {
        for b in biases {
            assert_eq!(shape(b), [heads * head_dim], "qkv_rope: bias shapes");
        }
    }
    let half = head_dim / 2;
    assert_eq!(
        axes.pairs(),
        half,
        "qkv_rope: the axes share head_dim / 2 pairs"
    );
    assert_eq!(
        shape(&table),
        [super::rope_table_len(axes, frames, [grid_h, grid_w])],
        "qkv_rope: table length"
    );
    let units = batch * frames * tokens * heads * half;
    let client = qkv[0].client.clone();
    let has_bias = biases.is_some();
    // Without biases the kernel reads none: the inputs stand in.
    let [qb, kb, vb] = biases.unwrap_or_else(|| qkv.clone());
    let [q, k, v] = qkv;
    let [q_out, k_out, v_out] = out;
    qkv_rope::launch::<f32, R>(
        &client,
        elementwise_grid(units),
        CubeDim::new_1d(UNITS as u32),
        q.into_tensor_arg(),
        k.into_tensor_arg(),
        v.into_tensor_arg(),
        qb.into_tensor_arg(),
        kb.into_tensor_arg(),
        vb.into_tensor_arg(),
        table.into_tensor_arg(),
        q_out.into_tensor_arg(),
        k_out.into_tensor_arg(),
        v_out.into_tensor_arg(),
        units as u32,
        frames as u32,
        grid_h as u32,
        grid_w as u32,
        row_stride as u32,
        offsets[0] as u32,
        offsets[1] as u32,
        offsets[2] as u32,
        heads,
        half,
        axes.rows,
        axes.cols,
        has_bias,
    );
}

/// Bias and GELU.
///
/// # Shapes
/// - `y`, `out`: `[rows, width]`; `bias`: `[width]`
pub(crate) fn launch_bias_gelu<R: CubeRuntime>(
    y: CubeTensor<R>,
    bias: CubeTensor<R>,
    out: CubeTensor<R>,
) {
    let [rows, width] = shape(&y)[..] else {
        panic!("bias_gelu: y must be 2-d")
    };
    assert_eq!(shape(&bias), [width], "bias_gelu: bias shape");
    assert_eq!(shape(&out), [rows, width], "bias_gelu: output shape");
    let len = rows * width;
    let client = y.client.clone();
    bias_gelu::launch::<f32, R>(
        &client,
        elementwise_grid(len),
        CubeDim::new_1d(UNITS as u32),
        y.into_tensor_arg(),
        bias.into_tensor_arg(),
        out.into_tensor_arg(),
        len as u32,
        width,
    );
}
