//! CubeCL bodies of the flash-style backward pass of frame-local attention on the tensor
//! cores (TF32 `cmma`, as `mma_kernel.rs`; the math of `backward_kernel.rs`: with
//! `s = q·k/√d`, `p = exp(s − lse)`, `δ = rowsum(dO ∘ O)`: `dv_j = Σ_i p_ij dO_i`,
//! `ds_ij = p_ij (dO_i·v_j − δ_i)`, `dq_i = Σ_j ds_ij k_j/√d`, `dk_j = Σ_i ds_ij q_i/√d`).
//!
//! - [`attention_backward_query_mma`]: a cube of `BACKWARD_ROWS` query rows streams its keys
//!   [`KEYS`] at a time: `S = Q·Kᵀ` and `dP = dO·Vᵀ` (products), `dS` (two lanes a row),
//!   `dQ += dS·K` (products, accumulators held in fragments across the tiles); writes `dq` and
//!   each row's `δ`;
//! - [`attention_backward_key_mma`]: a cube of `BACKWARD_ROWS` key rows streams the query rows that
//!   see them: `Sᵀ = K·Qᵀ` and `dPᵀ = V·dOᵀ`, then `Pᵀ` and `dSᵀ`, then `dV += Pᵀ·dO` and
//!   `dK += dSᵀ·Q`; reads the `δ` of the query kernel, so it runs second.
//!
//! (`BACKWARD_ROWS`: `mma_kernel.rs`.) Both recompute the scores tile by tile; none is
//! stored. Tiles in shared memory are padded and the lanes' passes over the scores rotated as
//! in the forward (`mma_kernel.rs`).

use cubecl::prelude::*;

use super::kernel::sum_lanes;

use super::mma_kernel::{
    products_into, rows_by_rows, score_column, stage_row_pair, store_row_block, zero_row_block,
    KEYS, LANES, PAD, SCORE_STRIDE,
};

/// Write this warp's 16-row block of fragments (`head_dim` wide, times `scale`) to rows
/// `rows_base + warp_rows + rr` of `dst` for the rows `warp_rows + rr` of the cube below
/// `valid`, 32 columns at a time through the warp's rows of `bounce` (a score tile's layout),
/// each lane a column.
#[cube]
#[allow(clippy::too_many_arguments)]
fn write_row_block<F: Float>(
    block: &Sequence<cmma::Matrix<F>>,
    bounce: &mut SharedMemory<F>,
    dst: &mut Tensor<F>,
    rows_base: usize,
    valid: usize,
    scale: F,
    #[comptime] head_dim: usize,
) {
    let warp_rows = UNIT_POS as usize / LANES * 16;
    let lane = UNIT_POS as usize % LANES;
    let base = warp_rows * SCORE_STRIDE;
    #[unroll]
    for g in 0..head_dim / LANES {
        let frags = comptime!(LANES / 16);
        store_row_block::<F>(block, bounce, base, SCORE_STRIDE, g * frags, frags);
        sync_plane();
        #[unroll]
        for rr in 0..16usize {
            if warp_rows + rr < valid {
                let at = (rows_base + warp_rows + rr) * head_dim + g * LANES + lane;
                dst[at] = bounce[base + rr * SCORE_STRIDE + lane] * scale;
            }
        }
        sync_plane();
    }
}

/// One cube per (query frame · `rows`-token tile, sequence·head), a warp for each 16 rows;
/// `q`, `k`, `v`, `o`, `dout` read `head_dim / vectors` values at a time; shapes and mask as
/// `backward_kernel::attention_backward_query`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn attention_backward_query_mma<F: Float, N: Size>(
    q: &Tensor<Vector<F, N>>,
    k: &Tensor<Vector<F, N>>,
    v: &Tensor<Vector<F, N>>,
    o: &Tensor<Vector<F, N>>,
    dout: &Tensor<Vector<F, N>>,
    lse: &Tensor<F>,
    dq: &mut Tensor<F>,
    deltas: &mut Tensor<F>,
    query_frames: u32,
    key_frames: u32,
    tokens: u32,
    window: u32,
    #[comptime] head_dim: usize,
    #[comptime] vectors: usize,
    #[comptime] rows: usize,
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
    let r = lane / 2;
    let half = lane % 2;
    let stride = comptime!(head_dim + PAD);

    let mut sq = SharedMemory::<tf32>::new(rows * stride);
    let mut sdo = SharedMemory::<tf32>::new(rows * stride);
    let mut sk = SharedMemory::<tf32>::new(KEYS * stride);
    let mut sv = SharedMemory::<tf32>::new(KEYS * stride);
    let mut ss = SharedMemory::<F>::new(rows * SCORE_STRIDE);
    let mut sdp = SharedMemory::<F>::new(rows * SCORE_STRIDE);
    let mut sds = SharedMemory::<tf32>::new(rows * SCORE_STRIDE);
    let s_base = warp_rows * SCORE_STRIDE;
    let mine = s_base + r * SCORE_STRIDE;

    let rows_base = (sh * query_frames + qf) * tokens + token0;
    let valid = tokens - token0;
    let scale = F::new(1.0) / F::sqrt(F::cast_from(head_dim as u32));
    stage_row_pair::<F, N>(
        q, dout, rows_base, valid, scale, &mut sq, &mut sdo, rows, head_dim, vectors,
    );

    // This lane's row: its log-sum-exp, and δ from the lane's half of the head and its pair's.
    let row = rows_base + select(warp_rows + r < valid, warp_rows + r, 0);
    let row_lse = lse[row];
    let mut products = Vector::<F, N>::new(F::new(0.0));
    #[unroll]
    for i in 0..vectors / 2 {
        let at = row * vectors + half * (vectors / 2) + i;
        products += dout[at] * o[at];
    }
    let mut delta = sum_lanes::<F, N>(products);
    delta += plane_shuffle_xor(delta, 1);

    let last = qf + key_frames - query_frames;
    let window = window as usize;
    let first = select(window > 0 && last + 1 > window, last + 1 - window, 0);
    let keys_base = sh * key_frames * tokens;
    let end = (last + 1) * tokens;
    let acc = zero_row_block::<F>(head_dim / 16);

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
        let a_at = warp_rows * stride;
        rows_by_rows::<F>(&sq, a_at, stride, &sk, stride, &mut ss, s_base, head_dim);
        rows_by_rows::<F>(&sdo, a_at, stride, &sv, stride, &mut sdp, s_base, head_dim);
        sync_plane();
        #[unroll]
        for i in 0..16usize {
            let c = score_column(r, half, i);
            let ds = F::exp(ss[mine + c] - row_lse) * (sdp[mine + c] - delta);
            sds[mine + c] = <tf32 as Cast>::cast_from(select(c < len, ds, F::new(0.0)));
        }
        sync_plane();
        products_into::<F>(
            &acc,
            &sds,
            s_base,
            SCORE_STRIDE,
            &sk,
            stride,
            false,
            KEYS / 8,
            head_dim / 16,
        );
        sync_cube();
        t0 += KEYS;
    }

    write_row_block::<F>(&acc, &mut ss, dq, rows_base, valid, scale, head_dim);
    if warp_rows + r < valid && half == 0 {
        deltas[row] = delta;
    }
}

/// One cube per (key frame · [`rows`]-token tile, sequence·head); shapes and mask as
/// `backward_kernel::attention_backward_key`; writes `dk` and `dv` together.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn attention_backward_key_mma<F: Float, N: Size>(
    q: &Tensor<Vector<F, N>>,
    k: &Tensor<Vector<F, N>>,
    v: &Tensor<Vector<F, N>>,
    dout: &Tensor<Vector<F, N>>,
    lse: &Tensor<F>,
    deltas: &Tensor<F>,
    dk: &mut Tensor<F>,
    dv: &mut Tensor<F>,
    query_frames: u32,
    key_frames: u32,
    tokens: u32,
    window: u32,
    #[comptime] head_dim: usize,
    #[comptime] vectors: usize,
    #[comptime] rows: usize,
) {
    let tokens = tokens as usize;
    let tiles = (tokens + rows - 1) / rows;
    let kf = CUBE_POS_X as usize / tiles;
    let token0 = (CUBE_POS_X as usize % tiles) * rows;
    let sh = CUBE_POS_Y as usize;
    let query_frames = query_frames as usize;
    let key_frames = key_frames as usize;
    let warp_rows = UNIT_POS as usize / LANES * 16;
    let lane = UNIT_POS as usize % LANES;
    let r = lane / 2;
    let half = lane % 2;
    let stride = comptime!(head_dim + PAD);

    let mut sk = SharedMemory::<tf32>::new(rows * stride);
    let mut sv = SharedMemory::<tf32>::new(rows * stride);
    let mut sq = SharedMemory::<tf32>::new(KEYS * stride);
    let mut sdo = SharedMemory::<tf32>::new(KEYS * stride);
    let mut slse = SharedMemory::<F>::new(KEYS);
    let mut sdelta = SharedMemory::<F>::new(KEYS);
    let mut ss = SharedMemory::<F>::new(rows * SCORE_STRIDE);
    let mut sdp = SharedMemory::<F>::new(rows * SCORE_STRIDE);
    let mut sp = SharedMemory::<tf32>::new(rows * SCORE_STRIDE);
    let mut sds = SharedMemory::<tf32>::new(rows * SCORE_STRIDE);
    let s_base = warp_rows * SCORE_STRIDE;
    let mine = s_base + r * SCORE_STRIDE;

    let rows_base = (sh * key_frames + kf) * tokens + token0;
    let valid = tokens - token0;
    stage_row_pair::<F, N>(
        k,
        v,
        rows_base,
        valid,
        F::new(1.0),
        &mut sk,
        &mut sv,
        rows,
        head_dim,
        vectors,
    );
    let scale = F::new(1.0) / F::sqrt(F::cast_from(head_dim as u32));

    // Query rows that see this key frame, as query-token indices of this sequence·head.
    let offset = key_frames - query_frames;
    let window = window as usize;
    let first = select(kf > offset, kf, offset) - offset;
    let last_seen = select(
        window > 0 && kf + window < key_frames,
        kf + window - 1,
        key_frames - 1,
    );
    let begin = first * tokens;
    let end = select(
        last_seen + 1 > offset + first,
        (last_seen + 1 - offset) * tokens,
        begin,
    );
    let queries_base = sh * query_frames * tokens;
    let acc_dv = zero_row_block::<F>(head_dim / 16);
    let acc_dk = zero_row_block::<F>(head_dim / 16);

    let mut t0 = begin;
    while t0 < end {
        let len = select(end - t0 < KEYS, end - t0, KEYS);
        let from = queries_base + t0;
        stage_row_pair::<F, N>(
            q, dout, from, len, scale, &mut sq, &mut sdo, KEYS, head_dim, vectors,
        );
        let u = UNIT_POS as usize;
        if u < KEYS {
            let mut l = F::new(0.0);
            let mut d = F::new(0.0);
            if u < len {
                l = lse[from + u];
                d = deltas[from + u];
            }
            slse[u] = l;
            sdelta[u] = d;
        }
        sync_cube();
        let a_at = warp_rows * stride;
        rows_by_rows::<F>(&sk, a_at, stride, &sq, stride, &mut ss, s_base, head_dim);
        rows_by_rows::<F>(&sv, a_at, stride, &sdo, stride, &mut sdp, s_base, head_dim);
        sync_plane();
        #[unroll]
        for i in 0..16usize {
            let c = score_column(r, half, i);
            let p = select(c < len, F::exp(ss[mine + c] - slse[c]), F::new(0.0));
            sp[mine + c] = <tf32 as Cast>::cast_from(p);
            sds[mine + c] = <tf32 as Cast>::cast_from(p * (sdp[mine + c] - sdelta[c]));
        }
        sync_plane();
        let frags = head_dim / 16;
        products_into::<F>(
            &acc_dv,
            &sp,
            s_base,
            SCORE_STRIDE,
            &sdo,
            stride,
            false,
            KEYS / 8,
            frags,
        );
        products_into::<F>(
            &acc_dk,
            &sds,
            s_base,
            SCORE_STRIDE,
            &sq,
            stride,
            false,
            KEYS / 8,
            frags,
        );
        sync_cube();
        t0 += KEYS;
    }

    write_row_block::<F>(
        &acc_dv,
        &mut ss,
        dv,
        rows_base,
        valid,
        F::new(1.0),
        head_dim,
    );
    write_row_block::<F>(
        &acc_dk,
        &mut ss,
        dk,
        rows_base,
        valid,
        F::new(1.0),
        head_dim,
    );
}
