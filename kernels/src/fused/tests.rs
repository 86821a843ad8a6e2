//! Fused kernels against the f64 host loops on wgpu (lavapipe in CI) and CUDA, on awkward
//! shapes (widths that are not multiples of the cube, one-token sequences shorter than the
//! carried convolution inputs, more rows than one grid row), outputs pre-filled with NaN so an
//! element the kernel never writes fails the comparison.

use super::launch::{
    launch_bias_gelu, launch_gated_residual, launch_mamba_epilogue, launch_mamba_prologue,
    launch_norm_modulate, launch_qkv_rope, Packed, PrologueOut,
};
use super::{reference, BlockOrder, MambaDims, QkvProducts};
use crate::testing::{cube_input, host, nan_output, padded_rows_input, uniform, Device, GpuTarget};
use crate::tolerance::assert_close_slices;

const TOL: f64 = 1e-5;

/// Where the modulated rows find their vectors in a packed table: `videos` videos of `frames`
/// frames each, read from rows `first_frame..` of the video's `table_frames` rows, the layer's
/// columns starting at `first_col` (a table made once for several passes and layers).
#[derive(Clone, Copy)]
struct TableLayout {
    videos: usize,
    frames: usize,
    table_frames: usize,
    first_frame: usize,
    first_col: usize,
}

impl TableLayout {
    /// One row per frame, the layer's columns first.
    fn plain(frames: usize) -> Self {
        Self {
            videos: 1,
            frames,
            table_frames: frames,
            first_frame: 0,
            first_col: 0,
        }
    }
}

/// A packed modulation table laid out as `layout` says, `width` columns for the layer (and its
/// bias when `biased`) plus spare columns around them, on the device, with the host copy of
/// the vector of `d` columns from `col` per modulated frame, bias added.
struct PackedCase<T: GpuTarget> {
    packed: Packed<T::R>,
    table: Vec<f32>,
    bias: Option<Vec<f32>>,
    layout: TableLayout,
    table_width: usize,
}

impl<T: GpuTarget> PackedCase<T> {
    fn new(layout: TableLayout, width: usize, biased: bool, seed: u64, device: &Device<T>) -> Self {
        let table_width = layout.first_col + width + 2;
        let table_rows = layout.videos * layout.table_frames;
        let table = uniform(table_rows * table_width, -1.0, 1.0, seed);
        let bias = biased.then(|| uniform(width, -0.5, 0.5, seed + 1));
        let packed = Packed {
            table: cube_input::<T, 2>(&table, [table_rows, table_width], device),
            table_frames: layout.table_frames,
            first_frame: layout.first_frame,
            first_col: layout.first_col,
            bias: bias
                .as_ref()
                .map(|b| cube_input::<T, 1>(b, [width], device)),
        };
        Self {
            packed,
            table,
            bias,
            layout,
            table_width,
        }
    }

    fn vector(&self, col: usize, d: usize) -> Vec<f32> {
        let l = self.layout;
        (0..l.videos * l.frames * d)
            .map(|k| {
                let (frame, i) = (k / d, k % d);
                let row = (frame / l.frames) * l.table_frames + l.first_frame + frame % l.frames;
                let b = self.bias.as_ref().map_or(0.0, |b| b[col + i]);
                self.table[row * self.table_width + l.first_col + col + i] + b
            })
            .collect()
    }
}

fn check_norm_modulate<T: GpuTarget>(
    rows: usize,
    d: usize,
    tokens: usize,
    biased: bool,
    layout: Option<TableLayout>,
    device: &Device<T>,
) {
    let layout = layout.unwrap_or(TableLayout::plain(rows / tokens));
    let x: Vec<f32> = uniform(rows * d, -2.0, 3.0, 1);
    // Three vectors and a few spare columns, as a sublayer's (shift, scale, gate) among others.
    let width = 3 * d + 5;
    let (shift_col, scale_col) = (d + 2, 3);
    let m = PackedCase::<T>::new(layout, width, biased, 2, device);
    let eps = 1e-6;
    let y = nan_output::<T, 2>([rows, d], device);
    launch_norm_modulate(
        cube_input::<T, 2>(&x, [rows, d], device),
        &m.packed,
        [shift_col, scale_col],
        y.clone(),
        tokens,
        eps as f32,
    );
    let (shift, scale) = (m.vector(shift_col, d), m.vector(scale_col, d));
    let want = reference::norm_modulate(&x, &shift, &scale, d, tokens, eps);
    assert_close_slices(
        &format!(
            "norm_modulate rows {rows} d {d} biased {biased} first_col {}",
            layout.first_col
        ),
        &host::<T, 2>(y),
        &want,
        TOL,
        TOL,
    );
}

fn norm_modulate_matches_host<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    check_norm_modulate::<T>(3 * 5, 37, 5, true, None, &device);
    check_norm_modulate::<T>(2 * 16, 256, 16, false, None, &device);
    check_norm_modulate::<T>(4, 1, 2, true, None, &device);
    // More rows than one grid row holds: the grid continues along y.
    check_norm_modulate::<T>(40_000, 3, 8, false, None, &device);
    // Two videos of one frame reading pass 2 of 3 from a table of several layers.
    check_norm_modulate::<T>(2 * 5, 37, 5, true, Some(PASS_LAYOUT), &device);
}

/// Two videos of one frame reading pass 2 of 3 from a table whose layer starts at column 41.
const PASS_LAYOUT: TableLayout = TableLayout {
    videos: 2,
    frames: 1,
    table_frames: 3,
    first_frame: 2,
    first_col: 41,
};

fn check_gated_residual<T: GpuTarget>(
    biased: bool,
    y_biased: bool,
    layout: Option<TableLayout>,
    device: &Device<T>,
) {
    let d = 37;
    let (rows, tokens) = match layout {
        Some(l) => (l.videos * l.frames * 7, 7),
        None => (3 * 7, 7),
    };
    let layout = layout.unwrap_or(TableLayout::plain(rows / tokens));
    let x = uniform(rows * d, -1.0, 1.0, 4);
    let y = uniform(rows * d, -1.0, 1.0, 5);
    let y_bias = y_biased.then(|| uniform(d, -1.0, 1.0, 6));
    let (width, gate_col) = (2 * d + 3, d + 1);
    let m = PackedCase::<T>::new(layout, width, biased, 7, device);
    let out = nan_output::<T, 2>([rows, d], device);
    launch_gated_residual(
        cube_input::<T, 2>(&x, [rows, d], device),
        &m.packed,
        gate_col,
        cube_input::<T, 2>(&y, [rows, d], device),
        y_bias.as_ref().map(|b| cube_input::<T, 1>(b, [d], device)),
        out.clone(),
        tokens,
    );
    let y_full: Vec<f32> = match &y_bias {
        Some(b) => y.iter().enumerate().map(|(i, v)| v + b[i % d]).collect(),
        None => y,
    };
    let want = reference::gated_residual(&x, &m.vector(gate_col, d), &y_full, d, tokens);
    assert_close_slices(
        &format!("gated_residual biased {biased} y_biased {y_biased}"),
        &host::<T, 2>(out),
        &want,
        TOL,
        TOL,
    );
}

fn gated_residual_matches_host<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    for (biased, y_biased) in [(false, false), (true, false), (false, true), (true, true)] {
        check_gated_residual::<T>(biased, y_biased, None, &device);
    }
    check_gated_residual::<T>(true, true, Some(PASS_LAYOUT), &device);
}

/// For each row of sequence order, the row of `order` it comes from: per video, blocks in
/// raster order, each block's frames in order, each frame's tokens of the block in raster
/// order (written as the loops of that definition, not from the kernels' formula).
fn source_rows(order: BlockOrder, videos: usize) -> Vec<usize> {
    let ([h, w], [bh, bw], frames) = (order.grid, order.block, order.frames);
    let mut rows = Vec::with_capacity(videos * frames * h * w);
    for video in 0..videos {
        for by in 0..h / bh {
            for bx in 0..w / bw {
                for f in 0..frames {
                    for ty in 0..bh {
                        for tx in 0..bw {
                            rows.push(((video * frames + f) * h + by * bh + ty) * w + bx * bw + tx);
                        }
                    }
                }
            }
        }
    }
    rows
}

/// Rows `sources[r]` of `x` (rows `width` wide), in that order.
fn gather_rows(x: &[f32], width: usize, sources: &[usize]) -> Vec<f32> {
    sources
        .iter()
        .flat_map(|&r| x[r * width..(r + 1) * width].iter().copied())
        .collect()
}

fn check_prologue<T: GpuTarget>(
    videos: usize,
    order: BlockOrder,
    dims: MambaDims,
    device: &Device<T>,
) {
    let conv_dim = dims.conv_dim();
    let width = dims.d_inner + conv_dim + dims.heads;
    let k = dims.d_conv;
    let sources = source_rows(order, videos);
    let rows = sources.len();
    let (batch, seq) = (order.sequences(rows), order.sequence_len());
    let gs = dims.groups * dims.d_state;
    let zxbcdt = uniform(rows * width, -2.0, 2.0, 7);
    let state = uniform(batch * conv_dim * (k - 1), -1.0, 1.0, 8);
    let weight = uniform(conv_dim * k, -0.7, 0.7, 9);
    let bias = uniform(conv_dim, -0.3, 0.3, 10);
    // Large and small raw Δ: softplus's overflow-free form is exercised on both sides.
    let dt_bias: Vec<f32> = uniform(dims.heads, -30.0, 30.0, 11);
    let a_log: Vec<f32> = uniform(dims.heads, -3.0, 2.0, 12);
    let out = PrologueOut {
        x: nan_output::<T, 2>([rows, dims.d_inner], device),
        b: nan_output::<T, 2>([rows, gs], device),
        c: nan_output::<T, 2>([rows, gs], device),
        dt: nan_output::<T, 2>([rows, dims.heads], device),
        conv: nan_output::<T, 3>([batch, conv_dim, k - 1], device),
        a: nan_output::<T, 1>([dims.heads], device),
    };
    // Rows padded as burn's CUDA allocations pad them (the padding is NaN).
    launch_mamba_prologue(
        padded_rows_input::<T>(&zxbcdt, [rows, width], 3, device),
        cube_input::<T, 3>(&state, [batch, conv_dim, k - 1], device),
        cube_input::<T, 2>(&weight, [conv_dim, k], device),
        cube_input::<T, 1>(&bias, [conv_dim], device),
        cube_input::<T, 1>(&dt_bias, [dims.heads], device),
        cube_input::<T, 1>(&a_log, [dims.heads], device),
        &out,
        order,
        dims,
    );
    let in_sequence_order = gather_rows(&zxbcdt, width, &sources);
    let want = reference::mamba_prologue(
        &in_sequence_order,
        &state,
        &weight,
        &bias,
        &dt_bias,
        batch,
        seq,
        dims,
    );
    let what = |part: &str| format!("mamba_prologue {part}, {videos} videos {order:?} {dims:?}");
    assert_close_slices(&what("x"), &host::<T, 2>(out.x), &want.x, TOL, TOL);
    assert_close_slices(&what("B"), &host::<T, 2>(out.b), &want.b, TOL, TOL);
    assert_close_slices(&what("C"), &host::<T, 2>(out.c), &want.c, TOL, TOL);
    assert_close_slices(&what("dt"), &host::<T, 2>(out.dt), &want.dt, TOL, TOL);
    let want_a: Vec<f32> = a_log.iter().map(|&l| -(l as f64).exp() as f32).collect();
    assert_close_slices(&what("A"), &host::<T, 1>(out.a), &want_a, TOL, TOL);
    assert_close_slices(
        &what("conv state"),
        &host::<T, 3>(out.conv),
        &want.conv,
        0.0,
        0.0,
    );
}

fn dims(d_inner: usize, heads: usize, groups: usize, d_state: usize, d_conv: usize) -> MambaDims {
    MambaDims {
        d_inner,
        heads,
        head_dim: d_inner / heads,
        groups,
        d_state,
        d_conv,
    }
}

/// Block orders: 2×2 blocks of a 4×6 grid over 3 frames, 1×1 blocks (one sequence per token
/// position), the whole frame as one block.
fn block_orders() -> [BlockOrder; 3] {
    let order = |frames, grid, block| BlockOrder {
        frames,
        grid,
        block,
    };
    [
        order(3, [4, 6], [2, 2]),
        order(2, [2, 3], [1, 1]),
        order(2, [3, 2], [3, 2]),
    ]
}

fn mamba_prologue_matches_host<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    let sequential = BlockOrder::sequential;
    // One token: the convolution reads mostly carried inputs, and the new carried inputs are
    // two old ones and the token.
    check_prologue::<T>(3, sequential(1), dims(8, 2, 1, 3, 4), &device);
    check_prologue::<T>(2, sequential(2), dims(8, 2, 2, 3, 4), &device);
    check_prologue::<T>(2, sequential(70), dims(12, 3, 1, 5, 4), &device);
    check_prologue::<T>(1, sequential(5), dims(8, 4, 2, 4, 2), &device);
    for order in block_orders() {
        check_prologue::<T>(2, order, dims(8, 2, 1, 3, 4), &device);
    }
}

fn check_epilogue<T: GpuTarget>(
    videos: usize,
    order: BlockOrder,
    extra: usize,
    dims: MambaDims,
    device: &Device<T>,
) {
    let d_inner = dims.d_inner;
    let sources = source_rows(order, videos);
    let rows = sources.len();
    // z occupies the first d_inner columns of a wider row, as in the input projection.
    let width = d_inner + extra;
    let y = uniform(rows * d_inner, -1.0, 1.0, 12);
    let x = uniform(rows * d_inner, -1.0, 1.0, 13);
    let d_skip = uniform(dims.heads, 0.5, 1.5, 14);
    let zxbcdt = uniform(rows * width, -3.0, 3.0, 15);
    let w = uniform(d_inner, 0.5, 1.5, 16);
    let eps = 1e-5;
    let out = nan_output::<T, 2>([rows, d_inner], device);
    launch_mamba_epilogue(
        cube_input::<T, 2>(&y, [rows, d_inner], device),
        cube_input::<T, 2>(&x, [rows, d_inner], device),
        cube_input::<T, 1>(&d_skip, [dims.heads], device),
        padded_rows_input::<T>(&zxbcdt, [rows, width], 5, device),
        cube_input::<T, 1>(&w, [d_inner], device),
        out.clone(),
        order,
        dims,
        eps as f32,
    );
    // In sequence order, then each row back to where it came from.
    let z_in_sequence_order = gather_rows(&zxbcdt, width, &sources);
    let in_sequence_order =
        reference::mamba_epilogue(&y, &x, &d_skip, &z_in_sequence_order, width, &w, dims, eps);
    let mut want = vec![f32::NAN; rows * d_inner];
    for (r, &source) in sources.iter().enumerate() {
        want[source * d_inner..(source + 1) * d_inner]
            .copy_from_slice(&in_sequence_order[r * d_inner..(r + 1) * d_inner]);
    }
    assert_close_slices(
        &format!("mamba_epilogue {videos} videos {order:?} {dims:?}"),
        &host::<T, 2>(out),
        &want,
        TOL,
        TOL,
    );
}

fn mamba_epilogue_matches_host<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    let sequential = BlockOrder::sequential;
    check_epilogue::<T>(1, sequential(7), 9, dims(12, 3, 1, 4, 4), &device);
    check_epilogue::<T>(1, sequential(5), 3, dims(12, 3, 3, 4, 4), &device);
    check_epilogue::<T>(2, sequential(2), 40, dims(200, 4, 2, 4, 4), &device);
    for order in block_orders() {
        check_epilogue::<T>(2, order, 5, dims(12, 3, 3, 4, 4), &device);
    }
}

/// `[batch, frames, tokens, heads, head_dim]` → `[batch, heads, frames, tokens, head_dim]`.
fn heads_major(x: &[f32], [_, frames, tokens, heads, head_dim]: [usize; 5]) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    for (i, &value) in x.iter().enumerate() {
        let e = i % head_dim;
        let h = (i / head_dim) % heads;
        let t = (i / head_dim / heads) % tokens;
        let f = (i / head_dim / heads / tokens) % frames;
        let b = i / head_dim / heads / tokens / frames;
        out[(((b * heads + h) * frames + f) * tokens + t) * head_dim + e] = value;
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn check_qkv_rope<T: GpuTarget>(
    batch: usize,
    frames: usize,
    grid: [usize; 2],
    heads: usize,
    axes: super::RopeAxes,
    first_frame: usize,
    biased: bool,
    packed: bool,
    device: &Device<T>,
) {
    let head_dim = 2 * axes.pairs();
    let dims = [batch, frames, grid[0] * grid[1], heads, head_dim];
    let n: usize = dims.iter().product();
    let inputs = [17, 18, 19].map(|seed| uniform(n, -1.0, 1.0, seed));
    let biases =
        biased.then(|| [20, 21, 22].map(|seed| uniform(heads * head_dim, -1.0, 1.0, seed)));
    let theta = 10_000.0;
    let table = super::rope_table(axes, theta, first_frame, frames, grid);
    let out_dims = [batch, heads, frames, grid[0] * grid[1], head_dim];
    let out = [(); 3].map(|_| nan_output::<T, 5>(out_dims, device));
    let row = heads * head_dim;
    let device_inputs = match packed {
        // Each token's q row, then its k row, then its v row.
        true => QkvProducts::Packed(cube_input::<T, 5>(
            &(0..3 * n)
                .map(|i| inputs[(i / row) % 3][(i / (3 * row)) * row + i % row])
                .collect::<Vec<_>>(),
            [dims[0], dims[1], dims[2], 3 * heads, head_dim],
            device,
        )),
        false => {
            QkvProducts::Separate(inputs.clone().map(|x| cube_input::<T, 5>(&x, dims, device)))
        }
    };
    launch_qkv_rope(
        device_inputs,
        biases
            .clone()
            .map(|bs| bs.map(|b| cube_input::<T, 1>(&b, [heads * head_dim], device))),
        cube_input::<T, 1>(&table, [table.len()], device),
        out.clone(),
        axes,
        grid,
    );
    let split = [axes.rows, axes.cols, axes.frames];
    for (i, (name, out)) in ["q", "k", "v"].into_iter().zip(out).enumerate() {
        let biased_input: Vec<f32> = match &biases {
            Some(bs) => inputs[i]
                .iter()
                .enumerate()
                .map(|(j, x)| x + bs[i][j % (heads * head_dim)])
                .collect(),
            None => inputs[i].clone(),
        };
        let want = match name {
            "v" => biased_input,
            _ => reference::rope(
                &biased_input,
                frames,
                grid,
                heads,
                head_dim,
                split,
                theta,
                first_frame,
            ),
        };
        assert_close_slices(
            &format!("qkv_rope {name}, frames {first_frame}.. ×{frames}, grid {grid:?}, {axes:?}, biased {biased}, packed {packed}"),
            &host::<T, 5>(out),
            &heads_major(&want, dims),
            TOL,
            TOL,
        );
    }
}

fn qkv_rope_matches_host<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    let axes = |rows, cols, frames| super::RopeAxes { rows, cols, frames };
    check_qkv_rope::<T>(2, 3, [3, 5], 2, axes(2, 1, 3), 0, true, false, &device);
    // A long rollout's frame index: the table's f64 angles keep sin/cos exact.
    check_qkv_rope::<T>(
        1,
        1,
        [4, 4],
        3,
        axes(11, 10, 11),
        4_999,
        false,
        false,
        &device,
    );
    check_qkv_rope::<T>(1, 2, [1, 7], 1, axes(1, 1, 1), 12, true, false, &device);
    // One product of the three projections side by side.
    check_qkv_rope::<T>(2, 3, [3, 5], 2, axes(2, 1, 3), 7, true, true, &device);
    check_qkv_rope::<T>(
        1,
        1,
        [4, 4],
        3,
        axes(11, 10, 11),
        4_999,
        false,
        true,
        &device,
    );
}

fn bias_gelu_matches_host<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    let (rows, width) = (13, 37);
    let y = uniform(rows * width, -5.0, 5.0, 19);
    let bias = uniform(width, -1.0, 1.0, 20);
    let out = nan_output::<T, 2>([rows, width], &device);
    launch_bias_gelu(
        cube_input::<T, 2>(&y, [rows, width], &device),
        cube_input::<T, 1>(&bias, [width], &device),
        out.clone(),
    );
    let want = reference::bias_gelu(&y, &bias);
    assert_close_slices("bias_gelu", &host::<T, 2>(out), &want, 1e-5, 1e-6);
}

#[test]
fn erfc_matches_known_values() {
    // erfc(0) = 1, erfc(1) = 0.157299207050285, erfc(−0.5) = 1.520499877813047
    for (x, want) in [
        (0.0, 1.0),
        (1.0, 0.157_299_207_050_285),
        (-0.5, 1.520_499_877_813_047),
    ] {
        assert!((reference::erfc(x) - want).abs() < 2e-7, "erfc({x})");
    }
}

crate::gpu_tests!(
    bias_gelu_matches_host,
    qkv_rope_matches_host,
    norm_modulate_matches_host,
    gated_residual_matches_host,
    mamba_prologue_matches_host,
    mamba_epilogue_matches_host,
);
