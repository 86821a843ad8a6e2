//! CubeCL bodies of flash-style frame-local attention (online softmax; Dao et al. 2022,
//! Algorithm 1, one query row per unit) with the frame-window mask of SPEC §5.3, and the
//! combine step of a split over keys (flash-decoding) for calls with few query rows.

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
/// Keys and values stream through shared memory `key_tile` tokens at a time; each unit keeps
/// its output accumulator, running max and normaliser in registers, so no score matrix exists
/// beyond one tile of one row. With one split the normalised output goes to `out`; otherwise
/// the unnormalised accumulator, max and normaliser go to `partial` for [`combine_splits`].
/// `out` is `[seqs, query_frames, tokens, head_dim]` (sequence·head-major), or with
/// `token_major` `[batch, query_frames, tokens, heads, head_dim]` (see [`output_row`]).
///
/// Loops over the head are unrolled; run-time loops are few per key tile (Mesa's lavapipe ends
/// an invocation's loops after 65,535 iterations in all).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn frame_attention_forward<F: Float>(
    q: &Tensor<F>,
    held_k: &Tensor<F>,
    held_v: &Tensor<F>,
    k: &Tensor<F>,
    v: &Tensor<F>,
    out: &mut Tensor<F>,
    partial: &mut Tensor<F>,
    query_frames: u32,
    held_frames: u32,
    key_frames: u32,
    tokens: u32,
    window: u32,
    splits: u32,
    heads: u32,
    #[comptime] head_dim: usize,
    #[comptime] query_tile: usize,
    #[comptime] key_tile: usize,
    #[comptime] token_major: bool,
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

    let scale = F::new(1.0) / F::sqrt(F::cast_from(head_dim as u32));
    let row = (sh * query_frames + qf) * tokens + select(active, token, 0);
    // Rows are padded by one value so the units' rows start in different shared-memory banks
    // (an unpadded row of 64 values puts all 32 units of a warp on one bank).
    let mut shared_q = SharedMemory::<F>::new(query_tile * (head_dim + 1));
    let mut acc = Array::<F>::new(head_dim);
    let q_slot = unit * (head_dim + 1);
    #[unroll]
    for e in 0..head_dim {
        shared_q[q_slot + e] = q[row * head_dim + e] * scale;
        acc[e] = F::new(0.0);
    }
    let mut running_max = F::new(NEG_BIG);
    let mut norm = F::new(0.0);
    // This unit's scores of the current key tile.
    let mut shared_scores = SharedMemory::<F>::new(query_tile * (key_tile + 1));
    let s_slot = unit * (key_tile + 1);
    let mut shared_k = SharedMemory::<F>::new(key_tile * head_dim);
    let mut shared_v = SharedMemory::<F>::new(key_tile * head_dim);

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
        let mut idx = unit;
        while idx < len * head_dim {
            let key = t0 + idx / head_dim;
            let e = idx % head_dim;
            if key < held_tokens {
                let offset = (held_base + key) * head_dim + e;
                shared_k[idx] = held_k[offset];
                shared_v[idx] = held_v[offset];
            } else {
                let offset = (new_base + key - held_tokens) * head_dim + e;
                shared_k[idx] = k[offset];
                shared_v[idx] = v[offset];
            }
            idx += query_tile;
        }
        sync_cube();

        let mut tile_max = F::new(NEG_BIG);
        for j in 0..len {
            // Four partial sums break the dependency chain of the dot product.
            let mut s0 = F::new(0.0);
            let mut s1 = F::new(0.0);
            let mut s2 = F::new(0.0);
            let mut s3 = F::new(0.0);
            #[unroll]
            for e4 in 0..head_dim / 4 {
                let e = e4 * 4;
                s0 += shared_q[q_slot + e] * shared_k[j * head_dim + e];
                s1 += shared_q[q_slot + e + 1] * shared_k[j * head_dim + e + 1];
                s2 += shared_q[q_slot + e + 2] * shared_k[j * head_dim + e + 2];
                s3 += shared_q[q_slot + e + 3] * shared_k[j * head_dim + e + 3];
            }
            #[unroll]
            for e in (head_dim / 4) * 4..head_dim {
                s0 += shared_q[q_slot + e] * shared_k[j * head_dim + e];
            }
            let s = (s0 + s1) + (s2 + s3);
            shared_scores[s_slot + j] = s;
            tile_max = F::max(tile_max, s);
        }
        let new_max = F::max(running_max, tile_max);
        let rescale = F::exp(running_max - new_max);
        norm *= rescale;
        #[unroll]
        for e in 0..head_dim {
            acc[e] = acc[e] * rescale;
        }
        for j in 0..len {
            let weight = F::exp(shared_scores[s_slot + j] - new_max);
            norm += weight;
            #[unroll]
            for e in 0..head_dim {
                acc[e] += weight * shared_v[j * head_dim + e];
            }
        }
        running_max = new_max;
        // The next tile overwrites shared memory.
        sync_cube();
        t0 += key_tile;
    }

    if active {
        if splits == 1 {
            let out_row = output_row(row, heads as usize, query_frames * tokens, token_major);
            #[unroll]
            for e in 0..head_dim {
                out[out_row * head_dim + e] = acc[e] / norm;
            }
        } else {
            let base = (split * q.len() / head_dim + row) * (head_dim + 2);
            #[unroll]
            for e in 0..head_dim {
                partial[base + e] = acc[e];
            }
            partial[base + head_dim] = running_max;
            partial[base + head_dim + 1] = norm;
        }
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

/// Merge the per-split partial results of [`frame_attention_forward`]: one unit per output
/// element, `out = Σ_s e^{m_s − M} acc_s / Σ_s e^{m_s − M} l_s` with `M = max_s m_s`, written
/// in the forward's output layout.
#[cube(launch)]
pub fn combine_splits<F: Float>(
    partial: &Tensor<F>,
    out: &mut Tensor<F>,
    splits: u32,
    heads: u32,
    rows_per_head: u32,
    #[comptime] head_dim: usize,
    #[comptime] token_major: bool,
) {
    let idx = ABSOLUTE_POS;
    if idx >= out.len() {
        terminate!();
    }
    let rows = out.len() / head_dim;
    let row = idx / head_dim;
    let e = idx % head_dim;
    let splits = splits as usize;
    let mut max = F::new(NEG_BIG);
    for s in 0..splits {
        max = F::max(max, partial[(s * rows + row) * (head_dim + 2) + head_dim]);
    }
    let mut num = F::new(0.0);
    let mut den = F::new(0.0);
    for s in 0..splits {
        let base = (s * rows + row) * (head_dim + 2);
        let weight = F::exp(partial[base + head_dim] - max);
        num += weight * partial[base + e];
        den += weight * partial[base + head_dim + 1];
    }
    let out_row = output_row(row, heads as usize, rows_per_head as usize, token_major);
    out[out_row * head_dim + e] = num / den;
}
