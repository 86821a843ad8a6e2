//! SSD (Mamba-2's state-space dual scan) as CubeCL kernels: the chunked forward over a
//! sequence with initial and final state, and the single-token step (SPEC §6).
//!
//! The scan, per head with a scalar decay and B/C shared within groups of heads:
//! `h_t = exp(Δ_t A) h_{t−1} + Δ_t x_t B_tᵀ`, `y_t = h_t C_t` (no D skip; the layer adds it).
//! The tensor-op references are `model::mixers::ssd::{chunked_ssd, reference_ssd}`;
//! [`reference`] here is an independent f64 host recurrence the tests compare against.

mod forward;
mod kernel;
pub mod reference;
#[cfg(test)]
mod tests;

use burn::tensor::{backend::Backend, Tensor};

use crate::dispatch::{empty_f32, from_cube, kernel_runtime, to_cube, with_runtime};
use forward::{dims4, launch_chunk_scan, launch_chunked_ssd, launch_ssd_step};

/// Should [`chunked_ssd`] serve this call instead of the caller's tensor ops? Yes when the
/// kernels serve `B` and `x`'s dtype ([`crate::kernels_serve`]) and the heads fit
/// ([`supports`]); the kernel measured faster than the tensor ops at every size it takes.
///
/// # Shapes
/// - `x`: `[batch, seq, heads, head_dim]`
pub fn serves<B: Backend>(x: &Tensor<B, 4>, d_state: usize) -> bool {
    crate::kernels_serve::<B>(crate::KernelKind::Ssd, x.dtype()) && supports(x.dims()[3], d_state)
}

/// Does the chunked kernel take heads of this size? (Larger ones run the reference.)
pub(crate) fn supports(head_dim: usize, d_state: usize) -> bool {
    head_dim <= forward::MAX_HEAD_DIM
        && d_state <= forward::MAX_D_STATE
        && forward::kernel_chunk(head_dim, d_state).is_some()
}

/// The chunked SSD forward on the kernel, whatever [`serves`] would say; `B` must have the
/// kernels and the heads must fit.
///
/// The kernel gives each (sequence, head) one cube that walks the whole sequence, so a few long
/// sequences (the block-wise layout's large blocks) leave most of a GPU idle. Those are cut
/// into segments ([`segment_length`]) that run in parallel: a first pass from zero states gives
/// each segment's own final state, the chunk scan ([`chunk_scan`]) the state entering each
/// segment, and a second pass from those states the outputs; exact for any segment length.
///
/// # Shapes
/// - `x`: `[batch, seq, heads, head_dim]`, `dt`: `[batch, seq, heads]` (Δ after softplus),
///   `a`: `[heads]` (A < 0), `b`, `c`: `[batch, seq, groups, d_state]`
/// - `initial_state`: `[batch, heads, head_dim, d_state]` (zeros if `None`)
/// - returns `y` `[batch, seq, heads, head_dim]` and the final state
pub fn chunked_ssd<B: Backend>(
    x: Tensor<B, 4>,
    dt: Tensor<B, 3>,
    a: Tensor<B, 1>,
    b: Tensor<B, 4>,
    c: Tensor<B, 4>,
    initial_state: Option<Tensor<B, 4>>,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let [batch, seq, heads, _] = x.dims();
    match segment_length(batch * heads, seq) {
        Some(segment) => segmented_ssd(x, dt, a, b, c, initial_state, segment),
        None => one_pass_ssd(x, dt, a, b, c, initial_state),
    }
}

/// Sequences are cut only when a launch would have fewer cubes than this (about one per
/// multiprocessor of an H200, which has 132). Measured there at `maze-small`'s heads (8 × 64,
/// d_state 64): 64 cubes of 16,384 steps ran 2.4× faster cut into 2,048 cubes (11.4 → 4.8 ms),
/// but 256 cubes of 4,096 steps ran 1.4× slower cut (3.4 → 4.8 ms): the second pass doubles
/// the work, which pays only when most of the GPU would otherwise idle.
const SEGMENT_BELOW_CUBES: usize = 128;

/// Cubes a cut launch aims for.
const TARGET_CUBES: usize = 2048;

/// Shortest segment.
const MIN_SEGMENT: usize = 256;

/// Segment length for `cubes` (sequence, head) pairs of `seq` steps, or `None` when the
/// sequences run whole: there are cubes enough, or they are too short to cut.
pub(crate) fn segment_length(cubes: usize, seq: usize) -> Option<usize> {
    if cubes >= SEGMENT_BELOW_CUBES {
        return None;
    }
    let pieces = TARGET_CUBES.div_ceil(cubes);
    let segment = seq.div_ceil(pieces).max(MIN_SEGMENT).next_multiple_of(16);
    (segment < seq).then_some(segment)
}

/// [`chunked_ssd`] with the sequences cut into segments of `segment` steps (see there).
pub(crate) fn segmented_ssd<B: Backend>(
    x: Tensor<B, 4>,
    dt: Tensor<B, 3>,
    a: Tensor<B, 1>,
    b: Tensor<B, 4>,
    c: Tensor<B, 4>,
    initial_state: Option<Tensor<B, 4>>,
    segment: usize,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let [batch, seq, heads, head_dim] = x.dims();
    let d_state = b.dims()[3];
    let pieces = seq.div_ceil(segment);
    let padded = pieces * segment;
    // Zero padding is exact: Δ = 0 there, so a = 1 and nothing is added.
    let cut = |t: Tensor<B, 4>| {
        let [_, _, m, k] = t.dims();
        let t = if padded > seq {
            let zeros = Tensor::zeros([batch, padded - seq, m, k], &t.device());
            Tensor::cat(vec![t, zeros], 1)
        } else {
            t
        };
        t.reshape([batch * pieces, segment, m, k])
    };
    let (x, b, c) = (cut(x), cut(b), cut(c));
    let dt = cut(dt.unsqueeze_dim(3)).reshape([batch * pieces, segment, heads]);

    // Each segment's own final state, from a zero state: [batch·pieces, heads, head_dim, d_state].
    let (_, own) = one_pass_ssd(x.clone(), dt.clone(), a.clone(), b.clone(), c.clone(), None);
    // The state entering each segment: a scan over segments per (sequence, head).
    let rows = batch * heads;
    let width = head_dim * d_state;
    let by_row = |t: Tensor<B, 4>| {
        t.reshape([batch, pieces, heads, width])
            .swap_dims(1, 2)
            .reshape([rows, pieces, width])
    };
    let log_decay = (dt.clone().sum_dim(1).reshape([batch, pieces, heads])
        * a.clone().reshape([1, 1, heads]))
    .swap_dims(1, 2)
    .reshape([rows, pieces]);
    let initial = initial_state
        .unwrap_or_else(|| Tensor::zeros([batch, heads, head_dim, d_state], &x.device()))
        .reshape([rows, width]);
    let (entering, last) = chunk_scan(log_decay, by_row(own), initial, false);
    let entering = entering
        .reshape([batch, heads, pieces, width])
        .swap_dims(1, 2)
        .reshape([batch * pieces, heads, head_dim, d_state]);
    let (y, _) = one_pass_ssd(x, dt, a, b, c, Some(entering));
    (
        y.reshape([batch, padded, heads, head_dim])
            .narrow(1, 0, seq),
        last.reshape([batch, heads, head_dim, d_state]),
    )
}

/// The chunked SSD forward in one launch: one cube per (sequence, head).
fn one_pass_ssd<B: Backend>(
    x: Tensor<B, 4>,
    dt: Tensor<B, 3>,
    a: Tensor<B, 1>,
    b: Tensor<B, 4>,
    c: Tensor<B, 4>,
    initial_state: Option<Tensor<B, 4>>,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let [batch, seq, heads, head_dim] = x.dims();
    let d_state = b.dims()[3];
    assert!(seq > 0, "SSD kernel: empty sequence");
    let initial_state = initial_state
        .unwrap_or_else(|| Tensor::zeros([batch, heads, head_dim, d_state], &x.device()));
    let kind = kernel_runtime::<B>(x.dtype()).expect("SSD kernel: backend has no kernels");
    with_runtime!(kind, R => {
        let x = to_cube::<B, R, 4>(x);
        let y = empty_f32(&x, &[batch, seq, heads, head_dim]);
        let final_state = empty_f32(&x, &[batch, heads, head_dim, d_state]);
        launch_chunked_ssd::<R>(
            x,
            to_cube::<B, R, 3>(dt),
            to_cube::<B, R, 1>(a),
            to_cube::<B, R, 4>(b),
            to_cube::<B, R, 4>(c),
            to_cube::<B, R, 4>(initial_state),
            y.clone(),
            final_state.clone(),
        );
        (from_cube::<B, R, 4>(y), from_cube::<B, R, 4>(final_state))
    })
}

/// Should [`ssd_step`] serve this call instead of the caller's tensor ops? Yes when the kernels
/// serve `B` and `x`'s dtype ([`crate::kernels_serve`]); the kernel takes heads of any size.
///
/// # Shapes
/// - `x`: `[batch, heads, head_dim]`
pub fn serves_step<B: Backend>(x: &Tensor<B, 3>) -> bool {
    crate::kernels_serve::<B>(crate::KernelKind::Ssd, x.dtype())
}

/// One SSD step on the kernel for all sequences and heads in one launch; `B` must have the
/// kernels.
///
/// # Shapes
/// - `x`: `[batch, heads, head_dim]`, `dt`: `[batch, heads]`, `a`: `[heads]`
/// - `b`, `c`: `[batch, groups, d_state]`, `state`: `[batch, heads, head_dim, d_state]`
/// - returns `y` `[batch, heads, head_dim]` and the new state
pub fn ssd_step<B: Backend>(
    x: Tensor<B, 3>,
    dt: Tensor<B, 2>,
    a: Tensor<B, 1>,
    b: Tensor<B, 3>,
    c: Tensor<B, 3>,
    state: Tensor<B, 4>,
) -> (Tensor<B, 3>, Tensor<B, 4>) {
    let kind = kernel_runtime::<B>(x.dtype()).expect("SSD kernel: backend has no kernels");
    with_runtime!(kind, R => {
        let state = to_cube::<B, R, 4>(state);
        let [batch, heads, head_dim, d_state] = dims4(&state);
        let y = empty_f32(&state, &[batch, heads, head_dim]);
        let new_state = empty_f32(&state, &[batch, heads, head_dim, d_state]);
        launch_ssd_step::<R>(
            to_cube::<B, R, 3>(x),
            to_cube::<B, R, 2>(dt),
            to_cube::<B, R, 1>(a),
            to_cube::<B, R, 3>(b),
            to_cube::<B, R, 3>(c),
            state,
            y.clone(),
            new_state.clone(),
        );
        (from_cube::<B, R, 3>(y), from_cube::<B, R, 4>(new_state))
    })
}

/// The scan over chunks on the kernel, for every row in one launch: per row,
/// `states[k] = s; s ← exp(log_decay[k]) s + local[k]` over `k = 0, 1, …` (`k` descending when
/// `reverse`), `s` starting at `initial`; returns `states` and the last `s`. `B` must have the
/// kernels (see [`crate::dispatch::kernel_runtime`]).
///
/// Forward, it gives the state entering each chunk from the states the chunks make; in
/// reverse, the gradient each chunk's final state receives from the chunks after it.
///
/// # Shapes
/// - `log_decay`: `[rows, chunks]`, `local`: `[rows, chunks, width]`, `initial`: `[rows, width]`
/// - returns `[rows, chunks, width]` and `[rows, width]`
pub fn chunk_scan<B: Backend>(
    log_decay: Tensor<B, 2>,
    local: Tensor<B, 3>,
    initial: Tensor<B, 2>,
    reverse: bool,
) -> (Tensor<B, 3>, Tensor<B, 2>) {
    let [rows, chunks, width] = local.dims();
    assert_eq!(
        log_decay.dims(),
        [rows, chunks],
        "chunk scan: log_decay must be [rows, chunks]"
    );
    assert_eq!(
        initial.dims(),
        [rows, width],
        "chunk scan: initial must be [rows, width]"
    );
    let kind = kernel_runtime::<B>(local.dtype()).expect("chunk scan: backend has no kernels");
    with_runtime!(kind, R => {
        let local = to_cube::<B, R, 3>(local);
        let states = empty_f32(&local, &[rows, chunks, width]);
        let last = empty_f32(&local, &[rows, width]);
        launch_chunk_scan::<R>(
            to_cube::<B, R, 2>(log_decay),
            local,
            to_cube::<B, R, 2>(initial),
            states.clone(),
            last.clone(),
            reverse,
        );
        (from_cube::<B, R, 3>(states), from_cube::<B, R, 2>(last))
    })
}
