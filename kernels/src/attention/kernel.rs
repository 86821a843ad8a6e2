//! CubeCL body of flash-style frame-local attention (online softmax; Dao et al. 2022,
//! Algorithm 1, one query row per unit) with the frame-window mask of SPEC §5.3.

use cubecl::prelude::*;

/// Below any score: the running max starts here, so the first rescale factor is exactly 0.
const NEG_BIG: f32 = -1.0e30;

/// One cube per (query frame, token tile, sequence·head); one unit per query token.
///
/// Query frame `i` is key frame `i + (key_frames − query_frames)`; it sees key frames
/// `kf` with `kf ≤ qf` and `qf − kf < window` (`window = 0`: all past frames), every token of
/// each. Keys and values stream through shared memory `key_tile` tokens at a time; each unit
/// keeps its output accumulator, running max and normaliser in registers (its scaled query row
/// sits in shared memory: thread-private arrays beyond ~512 bytes are unreliable on Vulkan
/// through cubecl 0.10's SPIR-V), so no score matrix exists beyond one tile of one row.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn frame_attention_forward<F: Float>(
    q: &Tensor<F>,
    k: &Tensor<F>,
    v: &Tensor<F>,
    out: &mut Tensor<F>,
    query_frames: u32,
    key_frames: u32,
    tokens: u32,
    window: u32,
    #[comptime] head_dim: usize,
    #[comptime] query_tile: usize,
    #[comptime] key_tile: usize,
) {
    let tokens = tokens as usize;
    let tiles = (tokens + query_tile - 1) / query_tile;
    let qf = CUBE_POS_X as usize / tiles;
    let tile = CUBE_POS_X as usize % tiles;
    let sh = CUBE_POS_Y as usize;
    let unit = UNIT_POS as usize;
    let token = tile * query_tile + unit;
    let active = token < tokens;
    let query_frames = query_frames as usize;
    let key_frames = key_frames as usize;

    let scale = F::new(1.0) / F::sqrt(F::cast_from(head_dim as u32));
    let q_row = ((sh * query_frames + qf) * tokens + select(active, token, 0)) * head_dim;
    let mut shared_q = SharedMemory::<F>::new(query_tile * head_dim);
    let mut acc = Array::<F>::new(head_dim);
    let q_slot = unit * head_dim;
    #[unroll]
    for e in 0..head_dim {
        shared_q[q_slot + e] = q[q_row + e] * scale;
        acc[e] = F::new(0.0);
    }
    let mut running_max = F::new(NEG_BIG);
    let mut norm = F::new(0.0);
    // This unit's scores of the current key tile.
    let mut shared_scores = SharedMemory::<F>::new(query_tile * key_tile);
    let s_slot = unit * key_tile;
    let mut shared_k = SharedMemory::<F>::new(key_tile * head_dim);
    let mut shared_v = SharedMemory::<F>::new(key_tile * head_dim);

    // Loops over the head are unrolled (the accumulator stays in registers); the run-time
    // loops are few per key tile, which also keeps lavapipe (65,535 loop iterations per
    // invocation in all) correct for windows of tens of frames.
    let last = qf + key_frames - query_frames;
    let window = window as usize;
    let first = select(window > 0 && last + 1 > window, last + 1 - window, 0);
    for kf in first..last + 1 {
        let frame_base = (sh * key_frames + kf) * tokens;
        let mut t0 = 0;
        while t0 < tokens {
            let remaining = tokens - t0;
            let len = select(remaining < key_tile, remaining, key_tile);
            let mut idx = unit;
            while idx < len * head_dim {
                let offset = (frame_base + t0) * head_dim + idx;
                shared_k[idx] = k[offset];
                shared_v[idx] = v[offset];
                idx += query_tile;
            }
            sync_cube();

            let mut tile_max = F::new(NEG_BIG);
            for j in 0..len {
                let mut s = F::new(0.0);
                #[unroll]
                for e in 0..head_dim {
                    s += shared_q[q_slot + e] * shared_k[j * head_dim + e];
                }
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
    }

    if active {
        #[unroll]
        for e in 0..head_dim {
            out[q_row + e] = acc[e] / norm;
        }
    }
}
