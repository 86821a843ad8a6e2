//! CubeCL bodies of the SSD kernels (Mamba-2, Dao & Gu 2024): the chunked forward scan and the
//! single-token step. Tensors are contiguous and indexed flat; shapes are documented on the
//! launchers in `forward.rs`.

use cubecl::prelude::*;

use crate::grid::cube_index;

/// Chunked SSD forward, one cube per (head, sequence), one unit per head channel `p`.
///
/// Each unit keeps its row `s[p, :]` of the state in registers and walks the sequence chunk by
/// chunk, all four stages of the chunk algorithm fused (Listing 1 of the paper):
/// 1. intra-chunk: `y_i += Σ_{j≤i} G[i, j] Δ_j x_j[p]`, `G[i, j] = exp(Σ_{j<k≤i} log a_k) C_i·B_j`
///    (G is shared by the cube's units and built once per chunk in shared memory);
/// 2. state to output: `y_i += exp(Σ_{k≤i} log a_k) C_i·s`;
/// 3. chunk state and 4. state passing: `s ← exp(Σ_chunk log a) s + Σ_j exp(Σ_{j<k} log a_k) Δ_j x_j[p] B_j`.
/// Only `chunk × chunk`, `chunk × d_state` and `chunk × head_dim` tiles exist; no `seq × seq`
/// mask.
///
/// The state row is indexed only by unrolled loops over `d_state` (registers); Δx and the
/// prefix sums live in shared memory, so no thread-private array is indexed at run time.
/// Run-time loop iterations per chunk stay few (Mesa's lavapipe ends an invocation's loops
/// after 65,535 iterations in all: ≈ 20k tokens per sequence there at the model's sizes).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn chunked_ssd_forward<F: Float>(
    x: &Tensor<F>,
    dt: &Tensor<F>,
    a: &Tensor<F>,
    b: &Tensor<F>,
    c: &Tensor<F>,
    initial_state: &Tensor<F>,
    y: &mut Tensor<F>,
    final_state: &mut Tensor<F>,
    seq: u32,
    heads: u32,
    groups: u32,
    #[comptime] head_dim: usize,
    #[comptime] d_state: usize,
    #[comptime] chunk: usize,
) {
    let h = CUBE_POS_X as usize;
    let seq_index = CUBE_POS_Y as usize;
    let p = UNIT_POS as usize;
    let seq = seq as usize;
    let heads = heads as usize;
    let g = h / (heads / groups as usize);
    let groups = groups as usize;

    let state_base = ((seq_index * heads + h) * head_dim + p) * d_state;
    let mut state = Array::<F>::new(d_state);
    #[unroll]
    for n in 0..d_state {
        state[n] = initial_state[state_base + n];
    }

    let mut shared_b = SharedMemory::<F>::new(chunk * d_state);
    let mut shared_c = SharedMemory::<F>::new(chunk * d_state);
    let mut shared_g = SharedMemory::<F>::new(chunk * chunk);
    // Δ_j x_j[p] for every unit's channel p: [chunk, head_dim]; a unit touches its column only.
    let mut shared_x_dt = SharedMemory::<F>::new(chunk * head_dim);
    // Within-chunk prefix sums of log a = Δ A, written by unit 0.
    let mut shared_cumsum = SharedMemory::<F>::new(chunk);
    let a_h = a[h];

    let n_chunks = (seq + chunk - 1) / chunk;
    for k in 0..n_chunks {
        let t0 = k * chunk;
        let remaining = seq - t0;
        let len = select(remaining < chunk, remaining, chunk);

        // B and C of the chunk, zero past the end of the sequence.
        let mut idx = p;
        while idx < chunk * d_state {
            let i = idx / d_state;
            let valid = i < len;
            let row = select(valid, t0 + i, t0);
            let offset = ((seq_index * seq + row) * groups + g) * d_state + idx % d_state;
            shared_b[idx] = select(valid, b[offset], F::new(0.0));
            shared_c[idx] = select(valid, c[offset], F::new(0.0));
            idx += head_dim;
        }
        // Δ = 0 past the end: a = 1 and nothing is added, so padding changes nothing.
        let mut running = F::new(0.0);
        #[unroll]
        for i in 0..chunk {
            let valid = i < len;
            let t = select(valid, t0 + i, t0);
            let dt_i = select(valid, dt[(seq_index * seq + t) * heads + h], F::new(0.0));
            running += dt_i * a_h;
            if p == 0 {
                shared_cumsum[i] = running;
            }
            shared_x_dt[i * head_dim + p] =
                x[((seq_index * seq + t) * heads + h) * head_dim + p] * dt_i;
        }
        sync_cube();

        // Stage 1's decayed C Bᵀ, lower triangle only (zero above it).
        let mut idx = p;
        while idx < chunk * chunk {
            let i = idx / chunk;
            let j = idx % chunk;
            let mut dot = F::new(0.0);
            #[unroll]
            for n in 0..d_state {
                dot += shared_c[i * d_state + n] * shared_b[j * d_state + n];
            }
            let log_decay = shared_cumsum[i] - shared_cumsum[j];
            shared_g[idx] = select(j <= i, dot * F::exp(log_decay), F::new(0.0));
            idx += head_dim;
        }
        sync_cube();

        // Stages 1 + 2: outputs of the chunk.
        for i in 0..len {
            let mut out = F::new(0.0);
            #[unroll]
            for j in 0..chunk {
                out += shared_g[i * chunk + j] * shared_x_dt[j * head_dim + p];
            }
            let mut from_state = F::new(0.0);
            #[unroll]
            for n in 0..d_state {
                from_state += shared_c[i * d_state + n] * state[n];
            }
            out += F::exp(shared_cumsum[i]) * from_state;
            y[((seq_index * seq + t0 + i) * heads + h) * head_dim + p] = out;
        }

        // Stages 3 + 4: the decayed entering state plus the chunk's own.
        let total = shared_cumsum[chunk - 1];
        let decay = F::exp(total);
        #[unroll]
        for n in 0..d_state {
            state[n] = decay * state[n];
        }
        for j in 0..len {
            let weight = shared_x_dt[j * head_dim + p] * F::exp(total - shared_cumsum[j]);
            #[unroll]
            for n in 0..d_state {
                state[n] += weight * shared_b[j * d_state + n];
            }
        }
        // The next chunk overwrites the shared tiles.
        sync_cube();
    }

    #[unroll]
    for n in 0..d_state {
        final_state[state_base + n] = state[n];
    }
}

/// Most units in a cube of the step kernel.
pub(crate) const STEP_MAX_UNITS: usize = 256;

/// One SSD step for every (sequence, head) in one launch, one cube each:
/// `s ← exp(Δ A) s + Δ x Bᵀ`, `y = s C` (the recurrence of the paper's eq. (2)).
///
/// The step reads and writes the whole state once and does little else, so it is bound by
/// memory traffic. `lanes` units share a row of the state: unit `l` takes the row's elements
/// `l, l + lanes, …`, so a warp's reads and writes fill whole 32-byte sectors, and keeps its
/// share of `s·C`; the row's first unit adds the `lanes` shares from shared memory. A cube
/// takes `CUBE_DIM / lanes` rows a pass. Cubes are numbered over a grid [`GRID_X`](crate::dispatch::GRID_X) wide, since
/// one grid dimension may hold only 65,535 of them.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn ssd_step_forward<F: Float>(
    x: &Tensor<F>,
    dt: &Tensor<F>,
    a: &Tensor<F>,
    b: &Tensor<F>,
    c: &Tensor<F>,
    state: &Tensor<F>,
    y: &mut Tensor<F>,
    new_state: &mut Tensor<F>,
    seq_heads: u32,
    heads: u32,
    groups: u32,
    #[comptime] head_dim: usize,
    #[comptime] d_state: usize,
    #[comptime] lanes: usize,
) {
    let seq_head = cube_index();
    if seq_head >= seq_heads as usize {
        terminate!();
    }
    let unit = UNIT_POS as usize;
    let rows = CUBE_DIM as usize / lanes;
    let lane = unit % lanes;
    let heads = heads as usize;
    let h = seq_head % heads;
    let g = h / (heads / groups as usize);
    let bc_base = ((seq_head / heads) * groups as usize + g) * d_state;
    let span = comptime!(d_state.div_ceil(lanes));
    let mut shares = SharedMemory::<F>::new(STEP_MAX_UNITS);

    let dt_h = dt[seq_head];
    let decay = F::exp(dt_h * a[h]);
    let x_base = seq_head * head_dim;
    let mut p0 = 0;
    while p0 < head_dim {
        let p = p0 + unit / lanes;
        let mut share = F::new(0.0);
        if p < head_dim {
            let x_dt = x[x_base + p] * dt_h;
            let row = (x_base + p) * d_state;
            for j in 0..span {
                let n = j * lanes + lane;
                if n < d_state {
                    let s = decay * state[row + n] + x_dt * b[bc_base + n];
                    new_state[row + n] = s;
                    share += s * c[bc_base + n];
                }
            }
        }
        shares[unit] = share;
        sync_cube();
        if lane == 0 && p < head_dim {
            let mut out = F::new(0.0);
            #[unroll]
            for l in 0..lanes {
                out += shares[unit + l];
            }
            y[x_base + p] = out;
        }
        sync_cube();
        p0 += rows;
    }
}

/// The scan over chunks that SSD's state passing is (stage 4 of the chunk algorithm, and its
/// transpose in the backward pass): per row and element `e`,
/// `states[k] = s; s ← exp(log_decay[k]) s + local[k]` for `k = 0, 1, …` (or in reverse order),
/// starting from `initial`, leaving the last `s` in `last`. One unit per (row, element).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn chunk_state_scan<F: Float>(
    log_decay: &Tensor<F>,
    local: &Tensor<F>,
    initial: &Tensor<F>,
    states: &mut Tensor<F>,
    last: &mut Tensor<F>,
    chunks: u32,
    width: u32,
    reverse: u32,
) {
    let e = CUBE_POS_X as usize * CUBE_DIM_X as usize + UNIT_POS_X as usize;
    let row = CUBE_POS_Y as usize;
    let width = width as usize;
    if e >= width {
        terminate!();
    }
    let chunks = chunks as usize;
    let mut s = initial[row * width + e];
    for step in 0..chunks {
        let k = select(reverse == 1, chunks - 1 - step, step);
        let at = (row * chunks + k) * width + e;
        states[at] = s;
        s = F::exp(log_decay[row * chunks + k]) * s + local[at];
    }
    last[row * width + e] = s;
}
