//! CubeCL bodies of the flash-style backward pass of frame-local attention (Dao et al. 2022,
//! arXiv 2205.14135, Algorithm 4, one row per unit), with the frame-window mask of the
//! forward (`kernel.rs`). With `s = q·k/√d`, `p = exp(s − lse)` and `δ = rowsum(dO ∘ O)`:
//! `dv_j = Σ_i p_ij dO_i`, `ds_ij = p_ij (dO_i·v_j − δ_i)`, `dq_i = Σ_j ds_ij k_j/√d`,
//! `dk_j = Σ_i ds_ij q_i/√d`. No score matrix is stored: both kernels recompute the scores
//! tile by tile.
//!
//! - [`attention_backward_query`]: one unit per query row; reads the row's `lse`, which the
//!   forward wrote, finds `δ` and accumulates `dq` in one pass over its keys; writes `δ` for
//!   the key kernel;
//! - [`attention_backward_key`]: one unit per key row, launched twice: once accumulating `dv`
//!   over the query rows that see it, once `dk`. Split so that each launch keeps the rows it
//!   reads for every query (k, or k and v) and its one accumulator in registers: both
//!   accumulators and both rows would not fit, and rows kept in shared memory made every
//!   product wait on a shared-memory read of its own.
//!
//! As in the forward, rows are read and multiplied `N` values at a time (`vectors = head_dim /
//! N` vectors a row), a unit's own rows and accumulators live in registers, and the rows of
//! the other side are staged tile by tile in shared memory, where all units read the same
//! address at once. Loops over the head are unrolled and run-time loops stay short per tile
//! (lavapipe ends an invocation's loops after 65,535 iterations in all).

use cubecl::prelude::*;

use super::kernel::{add_row, dot_row, sum_lanes};

/// One cube per (query frame · token tile, sequence·head); one unit per query token.
///
/// Query frame `i` is key frame `i + key_frames − query_frames` and sees key frames `kf ≤ qf`
/// with `qf − kf < window` (`window = 0`: all), every token of each. Reads each query row's
/// log-sum-exp `lse` of its scaled scores (the forward's); writes `dq` and each row's `δ`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn attention_backward_query<F: Float, N: Size>(
    q: &Tensor<Vector<F, N>>,
    k: &Tensor<Vector<F, N>>,
    v: &Tensor<Vector<F, N>>,
    o: &Tensor<Vector<F, N>>,
    dout: &Tensor<Vector<F, N>>,
    lse: &Tensor<F>,
    dq: &mut Tensor<Vector<F, N>>,
    deltas: &mut Tensor<F>,
    query_frames: u32,
    key_frames: u32,
    tokens: u32,
    window: u32,
    #[comptime] head_dim: usize,
    #[comptime] vectors: usize,
    #[comptime] units: usize,
    #[comptime] key_tile: usize,
) {
    let tokens = tokens as usize;
    let tiles = (tokens + units - 1) / units;
    let qf = CUBE_POS_X as usize / tiles;
    let tile = CUBE_POS_X as usize % tiles;
    let sh = CUBE_POS_Y as usize;
    let unit = UNIT_POS as usize;
    let token = tile * units + unit;
    let active = token < tokens;
    let query_frames = query_frames as usize;
    let key_frames = key_frames as usize;

    let scale = Vector::<F, N>::new(F::new(1.0) / F::sqrt(F::cast_from(head_dim as u32)));
    let row = (sh * query_frames + qf) * tokens + select(active, token, 0);
    let mut q_row = Array::<Vector<F, N>>::new(vectors);
    let mut do_row = Array::<Vector<F, N>>::new(vectors);
    let mut acc = Array::<Vector<F, N>>::new(vectors);
    let mut delta = Vector::<F, N>::new(F::new(0.0));
    #[unroll]
    for e in 0..vectors {
        q_row[e] = q[row * vectors + e] * scale;
        let g = dout[row * vectors + e];
        do_row[e] = g;
        delta += g * o[row * vectors + e];
        acc[e] = Vector::<F, N>::new(F::new(0.0));
    }
    let delta = sum_lanes::<F, N>(delta);
    let mut shared_k = SharedMemory::<Vector<F, N>>::new(key_tile * vectors);
    let mut shared_v = SharedMemory::<Vector<F, N>>::new(key_tile * vectors);

    let last = qf + key_frames - query_frames;
    let window = window as usize;
    let first = select(window > 0 && last + 1 > window, last + 1 - window, 0);
    let keys_base = sh * key_frames * tokens;
    let begin = first * tokens;
    let end = (last + 1) * tokens;

    let lse = lse[row];
    let mut t0 = begin;
    while t0 < end {
        let len = select(end - t0 < key_tile, end - t0, key_tile);
        let mut idx = unit;
        while idx < len * vectors {
            let offset = (keys_base + t0) * vectors + idx;
            shared_k[idx] = k[offset];
            shared_v[idx] = v[offset];
            idx += units;
        }
        sync_cube();
        for j in 0..len {
            let s = dot_row::<F, N>(&q_row, &shared_k, j * vectors, vectors);
            let dp = dot_row::<F, N>(&do_row, &shared_v, j * vectors, vectors);
            let ds = F::exp(s - lse) * (dp - delta);
            add_row::<F, N>(&mut acc, ds, &shared_k, j * vectors, vectors);
        }
        sync_cube();
        t0 += key_tile;
    }

    if active {
        #[unroll]
        for e in 0..vectors {
            dq[row * vectors + e] = acc[e] * scale;
        }
        deltas[row] = delta;
    }
}

/// One cube per (key frame · token tile, sequence·head); one unit per key token.
///
/// Key frame `kf` is seen by the query frames (as key frames) `qf` with `kf ≤ qf` and
/// `qf − kf < window` (`window = 0`: all later ones) that are query frames, every token of
/// each. Reads the forward's `lse` and the `deltas` of [`attention_backward_query`]; writes `dv`
/// into `grad` when `values`, else `dk`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn attention_backward_key<F: Float, N: Size>(
    q: &Tensor<Vector<F, N>>,
    k: &Tensor<Vector<F, N>>,
    v: &Tensor<Vector<F, N>>,
    dout: &Tensor<Vector<F, N>>,
    lse: &Tensor<F>,
    deltas: &Tensor<F>,
    grad: &mut Tensor<Vector<F, N>>,
    query_frames: u32,
    key_frames: u32,
    tokens: u32,
    window: u32,
    #[comptime] head_dim: usize,
    #[comptime] vectors: usize,
    #[comptime] units: usize,
    #[comptime] query_tile: usize,
    #[comptime] values: bool,
) {
    let tokens = tokens as usize;
    let tiles = (tokens + units - 1) / units;
    let kf = CUBE_POS_X as usize / tiles;
    let tile = CUBE_POS_X as usize % tiles;
    let sh = CUBE_POS_Y as usize;
    let unit = UNIT_POS as usize;
    let token = tile * units + unit;
    let active = token < tokens;
    let query_frames = query_frames as usize;
    let key_frames = key_frames as usize;

    let scale = Vector::<F, N>::new(F::new(1.0) / F::sqrt(F::cast_from(head_dim as u32)));
    let row = (sh * key_frames + kf) * tokens + select(active, token, 0);
    let mut k_row = Array::<Vector<F, N>>::new(vectors);
    let mut v_row = Array::<Vector<F, N>>::new(comptime!(if values { 1 } else { vectors }));
    let mut acc = Array::<Vector<F, N>>::new(vectors);
    #[unroll]
    for e in 0..vectors {
        k_row[e] = k[row * vectors + e];
        if comptime!(!values) {
            v_row[e] = v[row * vectors + e];
        }
        acc[e] = Vector::<F, N>::new(F::new(0.0));
    }
    let mut shared_q = SharedMemory::<Vector<F, N>>::new(query_tile * vectors);
    let mut shared_do = SharedMemory::<Vector<F, N>>::new(query_tile * vectors);
    let mut shared_lse = SharedMemory::<F>::new(query_tile);
    let mut shared_delta = SharedMemory::<F>::new(query_tile);

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

    let mut t0 = begin;
    while t0 < end {
        let len = select(end - t0 < query_tile, end - t0, query_tile);
        let mut idx = unit;
        while idx < len * vectors {
            let at = (queries_base + t0) * vectors + idx;
            shared_q[idx] = q[at] * scale;
            shared_do[idx] = dout[at];
            idx += units;
        }
        let mut idx = unit;
        while idx < len {
            shared_lse[idx] = lse[queries_base + t0 + idx];
            shared_delta[idx] = deltas[queries_base + t0 + idx];
            idx += units;
        }
        sync_cube();
        for i in 0..len {
            let p =
                F::exp(dot_row::<F, N>(&k_row, &shared_q, i * vectors, vectors) - shared_lse[i]);
            if comptime!(values) {
                add_row::<F, N>(&mut acc, p, &shared_do, i * vectors, vectors);
            } else {
                let dp = dot_row::<F, N>(&v_row, &shared_do, i * vectors, vectors);
                add_row::<F, N>(
                    &mut acc,
                    p * (dp - shared_delta[i]),
                    &shared_q,
                    i * vectors,
                    vectors,
                );
            }
        }
        sync_cube();
        t0 += query_tile;
    }

    if active {
        #[unroll]
        for e in 0..vectors {
            grad[row * vectors + e] = acc[e];
        }
    }
}
