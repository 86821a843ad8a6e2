//! CubeCL bodies of the fused inference kernels. Tensors are contiguous and indexed flat;
//! shapes are documented on the launchers in `launch.rs`. Row reductions use one cube of
//! [`REDUCE_UNITS`] units per row: each unit sums a strided slice, the partial sums meet in
//! shared memory and every unit reads the total back (no tree, no second barrier).

use cubecl::prelude::*;

use crate::grid::cube_index;

/// Units of a row-reducing cube.
pub(crate) const REDUCE_UNITS: usize = 64;

/// Sum `partial` over the cube's units (all units get the total). `shared` holds
/// [`REDUCE_UNITS`] values; it may be reused after the call.
#[cube]
pub(crate) fn cube_sum<F: Float>(partial: F, shared: &mut SharedMemory<F>) -> F {
    let u = UNIT_POS as usize;
    shared[u] = partial;
    sync_cube();
    let mut total = F::new(0.0);
    for i in 0..REDUCE_UNITS {
        total += shared[i];
    }
    sync_cube();
    total
}

/// The mean of the `d` values of `x` from `base`, summed by the cube's units (all get it).
#[cube]
pub(crate) fn row_mean<F: Float>(
    x: &Tensor<F>,
    base: usize,
    shared: &mut SharedMemory<F>,
    #[comptime] d: usize,
) -> F {
    let mut sum = F::new(0.0);
    let mut i = UNIT_POS as usize;
    while i < d {
        sum += x[base + i];
        i += REDUCE_UNITS;
    }
    cube_sum::<F>(sum, shared) / F::cast_from(d as u32)
}

/// `1/√(var + eps)` of the `d` values of `x` from `base` with mean `mean` (population
/// variance), summed by the cube's units (all get it).
#[cube]
pub(crate) fn row_rstd<F: Float>(
    x: &Tensor<F>,
    base: usize,
    mean: F,
    eps: f32,
    shared: &mut SharedMemory<F>,
    #[comptime] d: usize,
) -> F {
    let mut squares = F::new(0.0);
    let mut i = UNIT_POS as usize;
    while i < d {
        let c = x[base + i] - mean;
        squares += c * c;
        i += REDUCE_UNITS;
    }
    let var = cube_sum::<F>(squares, shared) / F::cast_from(d as u32);
    F::new(1.0) / F::sqrt(var + F::cast_from(eps))
}

/// SiLU, x·σ(x).
#[cube]
pub(crate) fn silu<F: Float>(x: F) -> F {
    x / (F::new(1.0) + F::exp(-x))
}

/// Where frame `frame_index` (numbered `video · frames + frame` over the rows being modulated)
/// finds its adaLN vectors: the first column of its row of the packed table, whose videos hold
/// `table_frames` rows each, frame `f` of a video reading row `first_frame + f`, a layer's
/// vectors starting at column `first_col`.
#[cube]
fn modulation_base(frame_index: usize, table: &TableArgs) -> usize {
    let video = frame_index / table.frames;
    let row = video * table.table_frames + table.first_frame + frame_index % table.frames;
    row * table.width + table.first_col
}

/// [`modulation_base`]'s layout of a packed adaLN table, as run-time sizes.
#[derive(CubeLaunch, CubeType, Clone, Copy)]
pub struct TableArgs {
    pub frames: usize,
    pub table_frames: usize,
    pub first_frame: usize,
    pub width: usize,
    pub first_col: usize,
}

/// Layer norm without affine parameters, then adaLN's modulation:
/// `y = (x − mean) / √(var + eps) · (1 + scale[f]) + shift[f]` for row `r` of frame
/// `f = r / tokens_per_frame`. The per-frame vectors are read in place from the packed adaLN
/// output: `shift[f][i] = modulation[base(f) + shift_col + i] (+ bias[shift_col + i])` with
/// `base` from [`modulation_base`], and likewise `scale` from `scale_col`. One cube per row.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn norm_modulate<F: Float>(
    x: &Tensor<F>,
    modulation: &Tensor<F>,
    bias: &Tensor<F>,
    y: &mut Tensor<F>,
    rows: u32,
    tokens_per_frame: u32,
    table: TableArgs,
    shift_col: u32,
    scale_col: u32,
    eps: f32,
    #[comptime] d: usize,
    #[comptime] has_bias: bool,
) {
    let row = cube_index();
    if row >= rows as usize {
        terminate!();
    }
    let u = UNIT_POS as usize;
    let base = row * d;
    let frame_base = modulation_base(row / tokens_per_frame as usize, &table);
    let (shift_col, scale_col) = (shift_col as usize, scale_col as usize);
    let mut shared = SharedMemory::<F>::new(REDUCE_UNITS);

    let mean = row_mean::<F>(x, base, &mut shared, d);
    let inv = row_rstd::<F>(x, base, mean, eps, &mut shared, d);

    let mut i = u;
    while i < d {
        let mut shift = modulation[frame_base + shift_col + i];
        let mut scale = modulation[frame_base + scale_col + i];
        if has_bias {
            shift += bias[shift_col + i];
            scale += bias[scale_col + i];
        }
        y[base + i] = (x[base + i] - mean) * inv * (F::new(1.0) + scale) + shift;
        i += REDUCE_UNITS;
    }
}

/// adaLN's gated residual, `out = x + gate[f] · (y + y_bias)` for element `(r, i)` of frame
/// `f = r / tokens_per_frame`, the gate read in place from the packed adaLN output as
/// [`norm_modulate`]'s shift (`gate_col`, plus `bias` when `has_bias`); `y_bias` (`[d]`, the
/// bias of the linear layer that made `y`) only when `has_y_bias`. One unit per element.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn gated_residual<F: Float>(
    x: &Tensor<F>,
    modulation: &Tensor<F>,
    bias: &Tensor<F>,
    y: &Tensor<F>,
    y_bias: &Tensor<F>,
    out: &mut Tensor<F>,
    len: u32,
    tokens_per_frame: u32,
    table: TableArgs,
    gate_col: u32,
    #[comptime] d: usize,
    #[comptime] has_bias: bool,
    #[comptime] has_y_bias: bool,
) {
    let idx = ABSOLUTE_POS;
    if idx >= len as usize {
        terminate!();
    }
    let row = idx / d;
    let i = idx % d;
    let column = gate_col as usize + i;
    let mut gate = modulation[modulation_base(row / tokens_per_frame as usize, &table) + column];
    if has_bias {
        gate += bias[column];
    }
    let mut y_value = y[idx];
    if has_y_bias {
        y_value += y_bias[i];
    }
    out[idx] = x[idx] + gate * y_value;
}

/// The input projection's row of token `t` of block sequence `sequence`. The rows hold, per
/// video, `frames` frames of `grid_h × grid_w` tokens in raster order; the frame is cut into
/// `block_h × block_w` blocks numbered in raster order, and a block's sequence is its tokens of
/// frame 0 in raster order, then of frame 1, … (`model::mixers::blockwise`). A grid of
/// `1 × seq` tokens in one block of one frame is plain sequence order.
#[cube]
fn token_row(sequence: usize, t: usize, order: &BlockOrderArgs) -> usize {
    let blocks_w = order.grid_w / order.block_w;
    let blocks = (order.grid_h / order.block_h) * blocks_w;
    let video = sequence / blocks;
    let block = sequence % blocks;
    let per_frame = order.block_h * order.block_w;
    let frame = t / per_frame;
    let within = t % per_frame;
    let row = (block / blocks_w) * order.block_h + within / order.block_w;
    let col = (block % blocks_w) * order.block_w + within % order.block_w;
    ((video * order.frames + frame) * order.grid_h + row) * order.grid_w + col
}

/// [`token_row`]'s layout, as run-time sizes.
#[derive(CubeLaunch, CubeType, Clone, Copy)]
pub struct BlockOrderArgs {
    pub frames: usize,
    pub grid_h: usize,
    pub grid_w: usize,
    pub block_h: usize,
    pub block_w: usize,
}

/// Position `pos` of one channel's convolution input, padded in front with the carried
/// inputs: `conv_state[state_base + pos]` for `pos < carried`, else column `column` of token
/// `pos − carried` of block sequence `sequence` of `zxbcdt` (rows `row_width` apart).
#[cube]
#[allow(clippy::too_many_arguments)]
fn padded_input<F: Float>(
    zxbcdt: &Tensor<F>,
    conv_state: &Tensor<F>,
    state_base: usize,
    sequence: usize,
    order: &BlockOrderArgs,
    column: usize,
    row_width: usize,
    pos: usize,
    #[comptime] carried: usize,
) -> F {
    if pos < carried {
        conv_state[state_base + pos]
    } else {
        zxbcdt[token_row(sequence, pos - carried, order) * row_width + column]
    }
}

/// Mamba-2 between the input projection and the scan: the causal depthwise convolution over
/// xBC (continuing the carried inputs), SiLU, the split into x, B and C, and
/// `Δ = softplus(dt + dt_bias)`; also the new carried inputs and `A = −exp(A_log)` (by the
/// first `heads` units, so the scan needs no launches for it). One unit per (token, channel)
/// over `conv_dim + heads` channels: channels below `conv_dim` are convolution channels, the
/// rest are heads. Outputs are in block-sequence order (row `sequence · seq + t`); `zxbcdt` is
/// read in the order `frames`, `grid_*` and `block_*` describe ([`token_row`]), so a block-wise
/// scan needs no reordering copy before it, with its rows `row_width` elements apart.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn mamba_prologue<F: Float>(
    zxbcdt: &Tensor<F>,
    conv_state: &Tensor<F>,
    conv_weight: &Tensor<F>,
    conv_bias: &Tensor<F>,
    dt_bias: &Tensor<F>,
    a_log: &Tensor<F>,
    x: &mut Tensor<F>,
    b: &mut Tensor<F>,
    c: &mut Tensor<F>,
    dt: &mut Tensor<F>,
    new_state: &mut Tensor<F>,
    a: &mut Tensor<F>,
    units: u32,
    row_width: u32,
    seq: u32,
    order: BlockOrderArgs,
    #[comptime] d_inner: usize,
    #[comptime] group_state: usize,
    #[comptime] heads: usize,
    #[comptime] d_conv: usize,
) {
    let idx = ABSOLUTE_POS;
    if idx >= units as usize {
        terminate!();
    }
    let conv_dim = d_inner + 2 * group_state;
    let width = conv_dim + heads;
    let row_width = row_width as usize;
    let seq = seq as usize;
    let row = idx / width;
    let ch = idx % width;
    let t = row % seq;
    let sequence = row / seq;
    let carried = d_conv - 1;
    if idx < heads {
        a[idx] = -F::exp(a_log[idx]);
    }

    if ch < conv_dim {
        // padded[i] = carried input i for i < d_conv − 1, else token i − (d_conv − 1).
        let state_base = (sequence * conv_dim + ch) * carried;
        let column = d_inner + ch;
        let mut acc = conv_bias[ch];
        #[unroll]
        for j in 0..d_conv {
            let v = padded_input::<F>(
                zxbcdt,
                conv_state,
                state_base,
                sequence,
                &order,
                column,
                row_width,
                t + j,
                carried,
            );
            acc += conv_weight[ch * d_conv + j] * v;
        }
        let s = silu::<F>(acc);
        if ch < d_inner {
            x[row * d_inner + ch] = s;
        } else if ch < d_inner + group_state {
            b[row * group_state + ch - d_inner] = s;
        } else {
            c[row * group_state + ch - d_inner - group_state] = s;
        }
        // The last d_conv − 1 entries of padded become the carried inputs.
        if t == 0 {
            #[unroll]
            for i in 0..carried {
                new_state[state_base + i] = padded_input::<F>(
                    zxbcdt,
                    conv_state,
                    state_base,
                    sequence,
                    &order,
                    column,
                    row_width,
                    seq + i,
                    carried,
                );
            }
        }
    } else {
        let h = ch - conv_dim;
        let v = zxbcdt[token_row(sequence, t, &order) * row_width + d_inner + conv_dim + h]
            + dt_bias[h];
        // softplus without overflow: max(v, 0) + log(1 + e^(−|v|))
        dt[row * heads + h] = F::max(v, F::new(0.0)) + F::log1p(F::exp(-F::abs(v)));
    }
}

/// Mamba-2 between the scan and the output projection: the D skip and the gated RMSNorm,
/// `g = (y + D_h x) · SiLU(z)`, `out = g / √(mean_group(g²) + eps) · w`. One cube per
/// (token, group); z is read from the input projection's output (its first `d_inner` columns).
/// `y` and `x` are in block-sequence order; z is read and `out` written in the projections'
/// token order, as in [`mamba_prologue`].
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn mamba_epilogue<F: Float>(
    y: &Tensor<F>,
    x: &Tensor<F>,
    d_skip: &Tensor<F>,
    zxbcdt: &Tensor<F>,
    norm_weight: &Tensor<F>,
    out: &mut Tensor<F>,
    cubes: u32,
    row_width: u32,
    eps: f32,
    seq: u32,
    order: BlockOrderArgs,
    #[comptime] d_inner: usize,
    #[comptime] groups: usize,
    #[comptime] head_dim: usize,
) {
    let cube = cube_index();
    if cube >= cubes as usize {
        terminate!();
    }
    let row = cube / groups;
    let group = cube % groups;
    let u = UNIT_POS as usize;
    let group_width = d_inner / groups;
    let first = row * d_inner + group * group_width;
    // z and the output are rows of the projections' token order.
    let seq = seq as usize;
    let token = token_row(row / seq, row % seq, &order);
    let z_first = token * row_width as usize + group * group_width;
    let out_first = token * d_inner + group * group_width;
    let mut shared = SharedMemory::<F>::new(REDUCE_UNITS);

    let mut squares = F::new(0.0);
    let mut i = u;
    while i < group_width {
        let ch = group * group_width + i;
        let g =
            (y[first + i] + d_skip[ch / head_dim] * x[first + i]) * silu::<F>(zxbcdt[z_first + i]);
        squares += g * g;
        i += REDUCE_UNITS;
    }
    let mean = cube_sum::<F>(squares, &mut shared) / F::cast_from(group_width as u32);
    let inv = F::new(1.0) / F::sqrt(mean + F::cast_from(eps));

    i = u;
    while i < group_width {
        let ch = group * group_width + i;
        let g =
            (y[first + i] + d_skip[ch / head_dim] * x[first + i]) * silu::<F>(zxbcdt[z_first + i]);
        out[out_first + i] = g * inv * norm_weight[ch];
        i += REDUCE_UNITS;
    }
}

/// The attention's inputs from its three projections (products without their biases, token
/// `t`'s row of `heads · head_dim` values starting at `t · row_stride + offset` of each input,
/// so one packed product `[tokens, 3 · heads · head_dim]` may stand for all three): each bias
/// added (when `has_bias`), the axial rotary embedding applied to queries and keys, and all
/// three written in the attention's layout `[batch, heads, frames, tokens, head_dim]`. Pair `j`
/// of a head, `(x[j], x[j + half])`, turns by the angle of its axis — the token's row for
/// `j < rows`, its column for the next `cols`, its frame for the rest — read from the packed
/// per-axis table (see `super::rope_table`). One unit per pair.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn qkv_rope<F: Float>(
    q: &Tensor<F>,
    k: &Tensor<F>,
    v: &Tensor<F>,
    q_bias: &Tensor<F>,
    k_bias: &Tensor<F>,
    v_bias: &Tensor<F>,
    table: &Tensor<F>,
    q_out: &mut Tensor<F>,
    k_out: &mut Tensor<F>,
    v_out: &mut Tensor<F>,
    units: u32,
    frames: u32,
    grid_h: u32,
    grid_w: u32,
    row_stride: u32,
    q_offset: u32,
    k_offset: u32,
    v_offset: u32,
    #[comptime] heads: usize,
    #[comptime] half: usize,
    #[comptime] rows: usize,
    #[comptime] cols: usize,
    #[comptime] has_bias: bool,
) {
    let idx = ABSOLUTE_POS;
    if idx >= units as usize {
        terminate!();
    }
    let (frames, grid_h, grid_w) = (frames as usize, grid_h as usize, grid_w as usize);
    let tokens = grid_h * grid_w;
    let j = idx % half;
    let token_head = idx / half; // ((batch · frames + frame) · tokens + token) · heads + head
    let head = token_head % heads;
    let token = (token_head / heads) % tokens;
    let batch_frame = token_head / heads / tokens;
    let frame = batch_frame % frames;
    let batch = batch_frame / frames;
    let frame_pairs = half - rows - cols;

    // Packed table: cos/sin of rows [h, rows], then of columns [w, cols], then of frames.
    let col_base = 2 * grid_h * rows;
    let frame_base = col_base + 2 * grid_w * cols;
    let mut at = frame_base;
    let mut sin_offset = frames * frame_pairs;
    if j < rows {
        at = (token / grid_w) * rows + j;
        sin_offset = grid_h * rows;
    } else if j < rows + cols {
        at = col_base + (token % grid_w) * cols + (j - rows);
        sin_offset = grid_w * cols;
    } else {
        at += frame * frame_pairs + (j - rows - cols);
    }
    let cos = table[at];
    let sin = table[at + sin_offset];

    let head_first = (token_head / heads) * row_stride as usize + head * 2 * half + j;
    let out_first = (((batch * heads + head) * frames + frame) * tokens + token) * 2 * half + j;
    let b_first = head * 2 * half + j;
    let (qi, ki, vi) = (
        head_first + q_offset as usize,
        head_first + k_offset as usize,
        head_first + v_offset as usize,
    );
    let (mut q1, mut q2) = (q[qi], q[qi + half]);
    let (mut k1, mut k2) = (k[ki], k[ki + half]);
    let (mut v1, mut v2) = (v[vi], v[vi + half]);
    if has_bias {
        q1 += q_bias[b_first];
        q2 += q_bias[b_first + half];
        k1 += k_bias[b_first];
        k2 += k_bias[b_first + half];
        v1 += v_bias[b_first];
        v2 += v_bias[b_first + half];
    }
    q_out[out_first] = q1 * cos - q2 * sin;
    q_out[out_first + half] = q1 * sin + q2 * cos;
    k_out[out_first] = k1 * cos - k2 * sin;
    k_out[out_first + half] = k1 * sin + k2 * cos;
    v_out[out_first] = v1;
    v_out[out_first + half] = v2;
}

/// A linear layer's bias and the exact GELU after it: `v = y + bias[i]`,
/// `out = v/2 · (1 + erf(v/√2))`. One unit per element.
#[cube(launch)]
pub fn bias_gelu<F: Float>(
    y: &Tensor<F>,
    bias: &Tensor<F>,
    out: &mut Tensor<F>,
    len: u32,
    #[comptime] width: usize,
) {
    let idx = ABSOLUTE_POS;
    if idx >= len as usize {
        terminate!();
    }
    let v = y[idx] + bias[idx % width];
    out[idx] =
        F::new(0.5) * v * (F::new(1.0) + F::erf(v * F::new(std::f32::consts::FRAC_1_SQRT_2)));
}
