//! CubeCL bodies of flash-style frame-local attention (online softmax; Dao et al. 2022,
//! Algorithm 1, one query row per unit, held in registers) with the frame-window mask of
//! SPEC §5.3, and the combine step of a split over keys (flash-decoding) for calls with few
//! query rows.

use cubecl::prelude::*;

/// Below any score: the running max starts here, so the first rescale factor is exactly 0.
const NEG_BIG: f32 = -1.0e30;

/// One cube per (query frame · token tile, sequence·head, key split); one unit per query token.
///
/// The key frames are `held_frames` frames from `held_k`/`held_v` (a cache's, so they need no
/// copy into one tensor with the new ones) followed by the frames of `k`/`v`.
/// Query frame `i` is key frame `i + (key_frames − query_frames)`; it sees key frames
/// `kf` with `kf ≤ qf` and `qf − kf < window` (`window = 0`: all past frames), every token of
/// each. Those keys, frame-major, are cut into `splits` equal ranges, one per cube along z.
/// Keys and values stream through shared memory `key_tile` tokens at a time. Each unit keeps
/// its query row (pre-scaled), output accumulator, running max and normaliser in registers and
/// the scores of the current tile in its row of shared memory, so no score matrix exists
/// beyond one tile of one row; the rows are read and the products formed `N` values at a time
/// (`vectors = head_dim / N` vectors a row), so a key's values cost `head_dim / N`
/// shared-memory reads for every unit of the cube together. With one split the normalised
/// output goes to `out` (and with `write_lse` each row's log-sum-exp of its scores to `lse`,
/// which the backward pass then need not recompute); otherwise the unnormalised accumulator,
/// max and normaliser go to `partial` for [`combine_splits`].
/// `out` is `[seqs, query_frames, tokens, head_dim]` (sequence·head-major), or with
/// `token_major` `[batch, query_frames, tokens, heads, head_dim]` (see [`output_row`]).
///
/// Loops over the head are unrolled, those over a tile's keys not: measured on an H200, keeping
/// a tile's 16 scores in registers with the key loops unrolled made a dreamed `maze-small` frame
/// 29.5 → 33.8 ms and the windowed training-shape forward 3.0× → 2.4–2.6× the tensor ops.
/// Run-time loop iterations stay few per key tile (Mesa's lavapipe ends an invocation's loops
/// after 65,535 iterations in all).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn frame_attention_forward<F: Float, N: Size>(
    q: &Tensor<Vector<F, N>>,
    held_k: &Tensor<Vector<F, N>>,
    held_v: &Tensor<Vector<F, N>>,
    k: &Tensor<Vector<F, N>>,
    v: &Tensor<Vector<F, N>>,
    out: &mut Tensor<Vector<F, N>>,
    partial: &mut Tensor<F>,
    lse: &mut Tensor<F>,
    query_frames: u32,
    held_frames: u32,
    key_frames: u32,
    tokens: u32,
    window: u32,
    splits: u32,
    heads: u32,
    #[comptime] head_dim: usize,
    #[comptime] vectors: usize,
    #[comptime] query_tile: usize,
    #[comptime] key_tile: usize,
    #[comptime] token_major: bool,
    #[comptime] write_lse: bool,
) {
    let tokens = tokens as usize;
    let tiles = (tokens + query_tile - 1) / query_tile;
    let qf = CUBE_POS_X as usize / tiles;
    let tile = CUBE_POS_X as usize % tiles;
    let sh = CUBE_POS_Y as usize;
    let split = CUBE_POS_Z as usize;
    let splits = splits as usize;
    let unit = UNIT_POS as usize;
    let token = tile * query_tile + unit;
    let active = token < tokens;
    let query_frames = query_frames as usize;
    let key_frames = key_frames as usize;

    let scale = Vector::<F, N>::new(F::new(1.0) / F::sqrt(F::cast_from(head_dim as u32)));
    let row = (sh * query_frames + qf) * tokens + select(active, token, 0);
    let mut q_row = Array::<Vector<F, N>>::new(vectors);
    let mut acc = Array::<Vector<F, N>>::new(vectors);
    #[unroll]
    for e in 0..vectors {
        q_row[e] = q[row * vectors + e] * scale;
        acc[e] = Vector::<F, N>::new(F::new(0.0));
    }
    let mut running_max = F::new(NEG_BIG);
    let mut norm = F::new(0.0);
    // The tile's scores, in this unit's row of shared memory (padded by one value against bank
    // conflicts).
    let mut shared_scores = SharedMemory::<F>::new(query_tile * (key_tile + 1));
    let s_slot = unit * (key_tile + 1);
    let mut shared_k = SharedMemory::<Vector<F, N>>::new(key_tile * vectors);
    let mut shared_v = SharedMemory::<Vector<F, N>>::new(key_tile * vectors);

    // This split's share of the visible keys, as key-token indices of this sequence·head.
    let last = qf + key_frames - query_frames;
    let window = window as usize;
    let first = select(window > 0 && last + 1 > window, last + 1 - window, 0);
    let visible = (last + 1 - first) * tokens;
    let per_split = (visible + splits - 1) / splits;
    let begin = first * tokens + select(split * per_split < visible, split * per_split, visible);
    let end = select(
        begin + per_split < (last + 1) * tokens,
        begin + per_split,
        (last + 1) * tokens,
    );
    // Key tokens below `held_tokens` are the held frames', the rest this call's.
    let held_tokens = held_frames as usize * tokens;
    let held_base = sh * held_tokens;
    let new_base = sh * (key_frames - held_frames as usize) * tokens;

    let mut t0 = begin;
    while t0 < end {
        let remaining = end - t0;
        let len = select(remaining < key_tile, remaining, key_tile);
        // Stage the tile's keys and values (the loops below read only its first `len`).
        let mut idx = unit;
        while idx < len * vectors {
            let key = t0 + idx / vectors;
            let e = idx % vectors;
            if key < held_tokens {
                let at = (held_base + key) * vectors + e;
                shared_k[idx] = held_k[at];
                shared_v[idx] = held_v[at];
            } else {
                let at = (new_base + key - held_tokens) * vectors + e;
                shared_k[idx] = k[at];
                shared_v[idx] = v[at];
            }
            idx += query_tile;
        }
        sync_cube();

        let mut tile_max = F::new(NEG_BIG);
        for j in 0..len {
            let s = dot_row::<F, N>(&q_row, &shared_k, j * vectors, vectors);
            shared_scores[s_slot + j] = s;
            tile_max = F::max(tile_max, s);
        }
        let new_max = F::max(running_max, tile_max);
        let rescale = F::exp(running_max - new_max);
        norm *= rescale;
        let rescale = Vector::<F, N>::new(rescale);
        #[unroll]
        for e in 0..vectors {
            acc[e] = acc[e] * rescale;
        }
        for j in 0..len {
            let weight = F::exp(shared_scores[s_slot + j] - new_max);
            norm += weight;
            add_row::<F, N>(&mut acc, weight, &shared_v, j * vectors, vectors);
        }
        running_max = new_max;
        // The next tile overwrites shared memory.
        sync_cube();
        t0 += key_tile;
    }

    if active {
        if splits == 1 {
            let out_row = output_row(row, heads as usize, query_frames * tokens, token_major);
            let inv = Vector::<F, N>::new(F::new(1.0) / norm);
            #[unroll]
            for e in 0..vectors {
                out[out_row * vectors + e] = acc[e] * inv;
            }
            if comptime!(write_lse) {
                lse[row] = running_max + F::ln(norm);
            }
        } else {
            // Element-major ([split, element, row]): the cube's units write consecutive rows.
            let rows = partial.len() / (splits * (head_dim + 2));
            let base = split * (head_dim + 2) * rows + row;
            #[unroll]
            for e in 0..vectors {
                let a = acc[e];
                #[unroll]
                for lane in 0..N::value() {
                    partial[base + (e * N::value() + lane) * rows] = a[lane];
                }
            }
            partial[base + head_dim * rows] = running_max;
            partial[base + (head_dim + 1) * rows] = norm;
        }
    }
}

/// The sum of a vector's lanes.
#[cube]
pub(crate) fn sum_lanes<F: Float, N: Size>(v: Vector<F, N>) -> F {
    let mut s = F::new(0.0);
    #[unroll]
    for lane in 0..N::value() {
        s += v[lane];
    }
    s
}

/// `q_row · shared[at..at + vectors]`, the vectors' lanes summed.
#[cube]
pub(crate) fn dot_row<F: Float, N: Size>(
    q_row: &Array<Vector<F, N>>,
    shared: &SharedMemory<Vector<F, N>>,
    at: usize,
    #[comptime] vectors: usize,
) -> F {
    let mut dot = Vector::<F, N>::new(F::new(0.0));
    #[unroll]
    for e in 0..vectors {
        dot += q_row[e] * shared[at + e];
    }
    sum_lanes::<F, N>(dot)
}

/// `acc += weight · shared[at..at + vectors]`.
#[cube]
pub(crate) fn add_row<F: Float, N: Size>(
    acc: &mut Array<Vector<F, N>>,
    weight: F,
    shared: &SharedMemory<Vector<F, N>>,
    at: usize,
    #[comptime] vectors: usize,
) {
    let weight = Vector::<F, N>::new(weight);
    #[unroll]
    for e in 0..vectors {
        acc[e] += weight * shared[at + e];
    }
}

/// Where query row `row` (numbered `(sequence·head, frame, token)`, heads-major) goes in the
/// output: the same row heads-major, or row `((sequence, frame, token), head)` token-major
/// (`[batch, frames, tokens, heads, head_dim]`, the layout the output projection reads).
#[cube]
fn output_row(
    row: usize,
    heads: usize,
    rows_per_head: usize,
    #[comptime] token_major: bool,
) -> usize {
    let mut out_row = row;
    if token_major {
        let sequence_head = row / rows_per_head;
        let within = row % rows_per_head;
        let sequence = sequence_head / heads;
        out_row = (sequence * rows_per_head + within) * heads + sequence_head % heads;
    }
    out_row
}

/// Merge the per-split partial results of [`frame_attention_forward`] (`[splits, head_dim + 2,
/// rows]`: per split, each accumulator element's rows, then the maxima, then the
/// normalisers): one unit per output element, units of one element taking consecutive rows so
/// their reads are contiguous, `out = Σ_s e^{m_s − M} acc_s / Σ_s e^{m_s − M} l_s` with
/// `M = max_s m_s`, written in the forward's output layout; with `write_lse` also each row's
/// log-sum-exp `M + ln Σ_s e^{m_s − M} l_s` into `lse` (by the row's first element's unit).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn combine_splits<F: Float>(
    partial: &Tensor<F>,
    out: &mut Tensor<F>,
    lse: &mut Tensor<F>,
    splits: u32,
    heads: u32,
    rows_per_head: u32,
    #[comptime] head_dim: usize,
    #[comptime] token_major: bool,
    #[comptime] write_lse: bool,
) {
    let idx = ABSOLUTE_POS;
    if idx >= out.len() {
        terminate!();
    }
    let rows = out.len() / head_dim;
    let e = idx / rows;
    let row = idx % rows;
    let splits = splits as usize;
    let split_size = (head_dim + 2) * rows;
    let mut max = F::new(NEG_BIG);
    for s in 0..splits {
        max = F::max(max, partial[s * split_size + head_dim * rows + row]);
    }
    let mut num = F::new(0.0);
    let mut den = F::new(0.0);
    for s in 0..splits {
        let base = s * split_size + row;
        let weight = F::exp(partial[base + head_dim * rows] - max);
        num += weight * partial[base + e * rows];
        den += weight * partial[base + (head_dim + 1) * rows];
    }
    let out_row = output_row(row, heads as usize, rows_per_head as usize, token_major);
    out[out_row * head_dim + e] = num / den;
    if comptime!(write_lse) {
        if e == 0 {
            lse[row] = max + F::ln(den);
        }
    }
}
