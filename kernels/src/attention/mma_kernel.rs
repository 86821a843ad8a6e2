//! CubeCL body of frame-local attention on the tensor cores (TF32 warp-level matrix products,
//! `cmma`, 16×16×8), flash-style (Dao 2023, FlashAttention-2: one query block per cube, the
//! key blocks streamed through shared memory, softmax online), with the frame-window mask of
//! `kernel.rs`.
//!
//! A cube holds [`FORWARD_ROWS`] query rows of one query frame, a warp for each 16; each
//! key tile of [`KEYS`] keys goes: scores `S = Q·Kᵀ` (products, into the warp's rows of shared
//! memory) → each row's running max, probabilities and normaliser (two lanes a row, each a
//! half of the tile's columns, see [`score_column`]) → `P·V` (products, into shared memory) →
//! the output accumulator, kept in registers (each lane a column of the head, 32 apart, for
//! the warp's 16 rows) and rescaled there. Only the staging of keys and values needs the
//! whole cube in step; the rest synchronises the warp. Operands are rounded to TF32 (10
//! mantissa bits, as burn's f32 products on CUDA) and accumulated in f32.
//!
//! Needs 32-lane planes and TF32 `cmma` (NVIDIA from Ampere); `mma.rs` says when it runs.

use cubecl::prelude::*;

/// Query rows per cube of the forward, 16 a warp: 128 stage each key tile for twice the rows
/// of 64 in ~106 KiB of shared memory. Measured on an H200 together with the tiles read four
/// values at a time (windowed `maze-small`, batch 8, 16 frames): forward 3.01 → 2.75 ms.
pub(crate) const FORWARD_ROWS: usize = 128;
/// Rows per cube of the backward kernels, which keep twice the forward's tiles of their own
/// rows (q and dO, or k and v) and four tiles of scores (~80–90 KiB at 64 rows).
pub(crate) const BACKWARD_ROWS: usize = 64;
/// Keys per tile streamed through shared memory.
pub(crate) const KEYS: usize = 32;
/// Lanes per warp (the kernels assume 32).
pub(crate) const LANES: usize = 32;
/// Values added to every row of a tile in shared memory: rows then start 4 banks apart, so
/// the fragment loads (8 rows × 4 values at once) and the lanes' row reads hit 32 different
/// banks. Measured on an H200, unpadded rows 64 or 32 values long made these kernels slower
/// than the one-row-per-unit ones (forward 6.5 against 3.6 ms at the windowed 16-frame
/// training shape).
pub(crate) const PAD: usize = 4;
/// Row stride of a score tile in shared memory.
pub(crate) const SCORE_STRIDE: usize = KEYS + PAD;

/// Below any score (see `kernel.rs`).
const NEG_BIG: f32 = -1.0e30;

/// An accumulator fragment of 16×16, zeroed.
#[cube]
pub(crate) fn zero_fragment<F: Float>() -> cmma::Matrix<F> {
    cmma::Matrix::<F>::from_value(
        cmma::MatrixIdent::Accumulator,
        16usize,
        16usize,
        8usize,
        cmma::MatrixLayout::Undefined,
        F::new(0.0),
    )
}

/// `frags` zeroed accumulator fragments of 16×16, side by side: a 16-row block of a result
/// `16 · frags` wide.
#[cube]
pub(crate) fn zero_row_block<F: Float>(#[comptime] frags: usize) -> Sequence<cmma::Matrix<F>> {
    let mut block = Sequence::<cmma::Matrix<F>>::new();
    #[unroll]
    for _ in 0..frags {
        block.push(zero_fragment::<F>());
    }
    block
}

/// `block += A·B` for a 16-row `A` (from `a` at `a_at`, row-major with stride `a_stride`,
/// `8 · steps` wide) and `B` (from `b`, `8 · steps` rows, `16 · frags` columns, fragment `n`
/// of `block` taking columns `16n..16n + 16`): row-major with stride `b_stride`, or with
/// `b_transposed` column-major (`B`'s columns are rows of `b`). Each step loads one fragment
/// of `A` for all of `block`.
#[cube]
#[allow(clippy::too_many_arguments)]
pub(crate) fn products_into<F: Float>(
    block: &Sequence<cmma::Matrix<F>>,
    a: &SharedMemory<tf32>,
    a_at: usize,
    #[comptime] a_stride: usize,
    b: &SharedMemory<tf32>,
    #[comptime] b_stride: usize,
    #[comptime] b_transposed: bool,
    #[comptime] steps: usize,
    #[comptime] frags: usize,
) {
    // Offsets in `b` of a step's 8 rows of `B`, and of a fragment's 16 columns.
    let b_step = comptime!(if b_transposed { 8 } else { 8 * b_stride });
    let b_frag = comptime!(if b_transposed { 16 * b_stride } else { 16 });
    let b_layout = comptime!(if b_transposed {
        cmma::MatrixLayout::ColMajor
    } else {
        cmma::MatrixLayout::RowMajor
    });
    #[unroll]
    for s in 0..steps {
        let a_frag = cmma::Matrix::<tf32>::from_slice(
            cmma::MatrixIdent::A,
            16usize,
            16usize,
            8usize,
            cmma::MatrixLayout::RowMajor,
            &a.slice(a_at + s * 8, a.len()),
            comptime!(a_stride as u32),
        );
        #[unroll]
        for n in 0..frags {
            let b_frag = cmma::Matrix::<tf32>::from_slice(
                cmma::MatrixIdent::B,
                16usize,
                16usize,
                8usize,
                b_layout,
                &b.slice(s * b_step + n * b_frag, b.len()),
                comptime!(b_stride as u32),
            );
            let acc = &block[n];
            cmma::execute::<tf32, tf32, F, F>(&a_frag, &b_frag, acc, acc);
        }
    }
}

/// Store fragments `first..first + frags` of a 16-row block into `out` at `at`, side by side,
/// rows `stride` apart.
#[cube]
pub(crate) fn store_row_block<F: Float>(
    block: &Sequence<cmma::Matrix<F>>,
    out: &mut SharedMemory<F>,
    at: usize,
    #[comptime] stride: usize,
    #[comptime] first: usize,
    #[comptime] frags: usize,
) {
    #[unroll]
    for n in 0..frags {
        cmma::store(
            &mut out.slice_mut(at + n * 16, out.len()),
            &block[first + n],
            comptime!(stride as u32),
            cmma::MatrixLayout::RowMajor,
        );
    }
}

/// This warp's 16 rows of `A·Bᵀ` (`A` rows at `a_at`, `B` the [`KEYS`] rows of `b`, both
/// `depth` wide, with row strides `a_stride`, `b_stride`) into `out` at `out_at`, rows
/// [`SCORE_STRIDE`] apart.
#[cube]
#[allow(clippy::too_many_arguments)]
pub(crate) fn rows_by_rows<F: Float>(
    a: &SharedMemory<tf32>,
    a_at: usize,
    #[comptime] a_stride: usize,
    b: &SharedMemory<tf32>,
    #[comptime] b_stride: usize,
    out: &mut SharedMemory<F>,
    out_at: usize,
    #[comptime] depth: usize,
) {
    let block = zero_row_block::<F>(KEYS / 16);
    products_into::<F>(
        &block,
        a,
        a_at,
        a_stride,
        b,
        b_stride,
        true,
        depth / 8,
        KEYS / 16,
    );
    store_row_block::<F>(&block, out, out_at, SCORE_STRIDE, 0usize, KEYS / 16);
}

/// Stage `count` rows of `head_dim` values from `src` (rows `from..from + count`, `scale`d,
/// read `head_dim / vectors` values at a time) into `dst` as TF32, rows `head_dim + PAD`
/// apart, rows at or past `valid` as zeros; all the cube's units take part.
#[cube]
#[allow(clippy::too_many_arguments)]
pub(crate) fn stage_rows<F: Float, N: Size>(
    src: &Tensor<Vector<F, N>>,
    from: usize,
    valid: usize,
    scale: F,
    dst: &mut SharedMemory<tf32>,
    #[comptime] count: usize,
    #[comptime] head_dim: usize,
    #[comptime] vectors: usize,
) {
    let width = comptime!(head_dim / vectors);
    let mut idx = UNIT_POS as usize;
    while idx < count * vectors {
        let r = idx / vectors;
        let e = idx % vectors;
        let mut x = Vector::<F, N>::new(F::new(0.0));
        if r < valid {
            x = src[(from + r) * vectors + e] * Vector::<F, N>::new(scale);
        }
        let at = r * (head_dim + PAD) + e * width;
        #[unroll]
        for l in 0..width {
            dst[at + l] = <tf32 as Cast>::cast_from(x[l]);
        }
        idx += CUBE_DIM as usize;
    }
}

/// [`stage_rows`] of two tensors' same rows: `a`'s times `scale` into `sa`, `b`'s into `sb`.
#[cube]
#[allow(clippy::too_many_arguments)]
pub(crate) fn stage_row_pair<F: Float, N: Size>(
    a: &Tensor<Vector<F, N>>,
    b: &Tensor<Vector<F, N>>,
    from: usize,
    valid: usize,
    scale: F,
    sa: &mut SharedMemory<tf32>,
    sb: &mut SharedMemory<tf32>,
    #[comptime] count: usize,
    #[comptime] head_dim: usize,
    #[comptime] vectors: usize,
) {
    stage_rows::<F, N>(a, from, valid, scale, sa, count, head_dim, vectors);
    stage_rows::<F, N>(b, from, valid, F::new(1.0), sb, count, head_dim, vectors);
}

/// The column of a score tile that the lane on row `row` (of its warp's 16) and half `half`
/// handles at step `i` of 16: its half of the columns, rotated by the row, so that at each
/// step the warp's 32 lanes read 32 different banks.
#[cube]
pub(crate) fn score_column(row: usize, half: usize, i: usize) -> usize {
    half * 16 + (i + row) % 16
}

/// One cube per (query frame · `rows`-token tile, sequence·head), a warp for each 16 rows;
/// `q`, `k`, `v` read `head_dim / vectors` values at a time. Shapes and mask as
/// `kernel::frame_attention_forward` without held frames or key splits: `q`, `out`
/// `[seqs, query_frames, tokens, head_dim]`, `k`, `v` `[seqs, key_frames, tokens, head_dim]`,
/// `lse` `[seqs, query_frames, tokens]` (written with `write_lse`).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn frame_attention_forward_mma<F: Float, N: Size>(
    q: &Tensor<Vector<F, N>>,
    k: &Tensor<Vector<F, N>>,
    v: &Tensor<Vector<F, N>>,
    out: &mut Tensor<F>,
    lse: &mut Tensor<F>,
    query_frames: u32,
    key_frames: u32,
    tokens: u32,
    window: u32,
    #[comptime] head_dim: usize,
    #[comptime] vectors: usize,
    #[comptime] rows: usize,
    #[comptime] write_lse: bool,
) {
    let tokens = tokens as usize;
    let tiles = (tokens + rows - 1) / rows;
    let qf = CUBE_POS_X as usize / tiles;
    let token0 = (CUBE_POS_X as usize % tiles) * rows;
    let sh = CUBE_POS_Y as usize;
    let query_frames = query_frames as usize;
    let key_frames = key_frames as usize;
    let warp_rows = UNIT_POS as usize / LANES * 16;
    let lane = UNIT_POS as usize % LANES;
    // In the softmax passes: this lane's row of the warp's 16 and half of the tile's columns.
    let r = lane / 2;
    let half = lane % 2;
    let stride = comptime!(head_dim + PAD);
    let columns = comptime!(head_dim / LANES);

    let mut sq = SharedMemory::<tf32>::new(rows * stride);
    let mut sk = SharedMemory::<tf32>::new(KEYS * stride);
    let mut sv = SharedMemory::<tf32>::new(KEYS * stride);
    // Per warp, 16 rows: the scores ([`SCORE_STRIDE`] apart), then `P·V` (`stride` apart).
    let mut ss = SharedMemory::<F>::new(rows * stride);
    let mut sp = SharedMemory::<tf32>::new(rows * SCORE_STRIDE);
    // Per row: the tile's rescale factor, at the end the inverse normaliser.
    let mut factor = SharedMemory::<F>::new(rows);
    let s_base = warp_rows * stride;
    let p_base = warp_rows * SCORE_STRIDE;

    let rows_base = (sh * query_frames + qf) * tokens + token0;
    let valid = tokens - token0;
    let scale = F::new(1.0) / F::sqrt(F::cast_from(head_dim as u32));
    stage_rows::<F, N>(q, rows_base, valid, scale, &mut sq, rows, head_dim, vectors);

    let last = qf + key_frames - query_frames;
    let window = window as usize;
    let first = select(window > 0 && last + 1 > window, last + 1 - window, 0);
    let keys_base = sh * key_frames * tokens;
    let end = (last + 1) * tokens;

    // acc[rr · columns + j]: row `rr` of the warp's, column `j · 32 + lane` of the head.
    let mut acc = Array::<F>::new(16 * columns);
    #[unroll]
    for i in 0..16 * columns {
        acc[i] = F::new(0.0);
    }
    let mut running_max = F::new(NEG_BIG);
    let mut norm = F::new(0.0);
    let my_scores = s_base + r * SCORE_STRIDE;
    let my_probs = p_base + r * SCORE_STRIDE;

    let mut t0 = first * tokens;
    while t0 < end {
        let len = select(end - t0 < KEYS, end - t0, KEYS);
        stage_row_pair::<F, N>(
            k,
            v,
            keys_base + t0,
            len,
            F::new(1.0),
            &mut sk,
            &mut sv,
            KEYS,
            head_dim,
            vectors,
        );
        sync_cube();
        rows_by_rows::<F>(
            &sq,
            warp_rows * stride,
            stride,
            &sk,
            stride,
            &mut ss,
            s_base,
            head_dim,
        );
        sync_plane();

        let mut tile_max = F::new(NEG_BIG);
        #[unroll]
        for i in 0..16usize {
            let c = score_column(r, half, i);
            tile_max = F::max(
                tile_max,
                select(c < len, ss[my_scores + c], F::new(NEG_BIG)),
            );
        }
        tile_max = F::max(tile_max, plane_shuffle_xor(tile_max, 1));
        let new_max = F::max(running_max, tile_max);
        let rescale = F::exp(running_max - new_max);
        let mut sum = F::new(0.0);
        #[unroll]
        for i in 0..16usize {
            let c = score_column(r, half, i);
            let p = select(c < len, F::exp(ss[my_scores + c] - new_max), F::new(0.0));
            sp[my_probs + c] = <tf32 as Cast>::cast_from(p);
            sum += p;
        }
        sum += plane_shuffle_xor(sum, 1);
        norm = norm * rescale + sum;
        running_max = new_max;
        if half == 0 {
            factor[warp_rows + r] = rescale;
        }
        sync_plane();

        let pv = zero_row_block::<F>(head_dim / 16);
        products_into::<F>(
            &pv,
            &sp,
            p_base,
            SCORE_STRIDE,
            &sv,
            stride,
            false,
            KEYS / 8,
            head_dim / 16,
        );
        store_row_block::<F>(&pv, &mut ss, s_base, stride, 0usize, head_dim / 16);
        sync_plane();
        #[unroll]
        for rr in 0..16usize {
            let f = factor[warp_rows + rr];
            #[unroll]
            for j in 0..columns {
                let at = rr * columns + j;
                acc[at] = acc[at] * f + ss[s_base + rr * stride + j * LANES + lane];
            }
        }
        // The next tile restages keys and values and rewrites this warp's rows.
        sync_cube();
        t0 += KEYS;
    }

    if half == 0 {
        factor[warp_rows + r] = F::new(1.0) / norm;
        if comptime!(write_lse) {
            if warp_rows + r < valid {
                lse[rows_base + warp_rows + r] = running_max + F::ln(norm);
            }
        }
    }
    sync_plane();
    #[unroll]
    for rr in 0..16usize {
        if warp_rows + rr < valid {
            let f = factor[warp_rows + rr];
            let at = (rows_base + warp_rows + rr) * head_dim + lane;
            #[unroll]
            for j in 0..columns {
                out[at + j * LANES] = acc[rr * columns + j] * f;
            }
        }
    }
}
