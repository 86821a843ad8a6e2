//! Frame-local attention as a flash-style CubeCL kernel (SPEC §6): every token of query frame
//! `t` attends to every token of key frames `t − window + 1 ..= t` (all past frames without a
//! window), softmax computed online so no score matrix is stored. The same kernel serves
//! training-shaped calls (query frames = key frames) and the streaming path (a few new query
//! frames against the cached frames before them).
//!
//! The tensor-op reference is `model::mixers::attention` (dense and blocked paths);
//! [`reference`] here is an independent f64 host loop the tests compare against.
//! [`frame_attention_backward`] is the matching flash-style backward pass (scores recomputed,
//! never stored, from the row log-sum-exps that [`frame_attention_with_lse`] hands over),
//! which the model registers as the gradient of that forward in training.

mod backward;
mod backward_kernel;
mod forward;
mod kernel;
mod mma;
mod mma_backward_kernel;
mod mma_kernel;
pub mod reference;
#[cfg(test)]
mod tests;

use burn::tensor::{backend::Backend, Tensor};

use crate::dispatch::{empty_f32, from_cube, kernel_runtime, to_cube, with_runtime};
use backward::launch_frame_attention_backward;
use forward::{launch_frame_attention, OutputLayout};
use mma::Path;
pub use mma::MMA_ENV;

/// Can the kernels (forward and backward) take this call: they serve `B` and `q`'s dtype
/// ([`crate::kernels_serve`]) and the head fits (≤ 64: the accumulator row is thread-private)?
/// Outside autodiff the model then always uses the forward kernel: measured on an H200
/// (`memworld bench kernels`), with the query row in registers and keys and values read as
/// vectors of 4, it ran 3.0–3.2× faster than burn's tensor ops on windowed whole clips
/// (`maze-small`, batch 8, 16 / 64 frames) and 2.9–6.1× on full causal attention
/// (`causal-full`); streamed frames split their few query rows' keys across cubes.
pub fn takes<B: Backend>(q: &Tensor<B, 5>) -> bool {
    crate::kernels_serve::<B>(crate::KernelKind::Attention, q.dtype())
        && q.dims()[4] <= forward::MAX_HEAD_DIM
}

/// Frame-local attention on the kernel, whatever the caller's own choice; `B` must have the
/// kernels and the head at most 64 values.
/// Queries and keys come with their rotary embedding applied; scores are scaled by
/// `1/√head_dim`.
///
/// # Shapes
/// - `q`: `[batch, heads, query_frames, tokens, head_dim]`
/// - `k`, `v`: `[batch, heads, key_frames, tokens, head_dim]`: the query frames are the last
///   `query_frames` of the key frames, oldest first
/// - returns `[batch, heads, query_frames, tokens, head_dim]`
pub fn frame_attention<B: Backend>(
    q: Tensor<B, 5>,
    k: Tensor<B, 5>,
    v: Tensor<B, 5>,
    window: Option<usize>,
) -> Tensor<B, 5> {
    let [batch, heads, query_frames, tokens, head_dim] = q.dims();
    let (out, _) = launch_on::<B>(q, None, k, v, window, OutputLayout::HeadsMajor, false);
    out.reshape([batch, heads, query_frames, tokens, head_dim])
}

/// [`frame_attention`] that also returns each query row's log-sum-exp of its scaled scores
/// (`ln Σ_j exp(q·k_j/√d)` over the keys it sees), which [`frame_attention_backward`] takes.
///
/// # Shapes
/// - as [`frame_attention`]; the log-sum-exps are `[batch, heads, query_frames, tokens]`
pub fn frame_attention_with_lse<B: Backend>(
    q: Tensor<B, 5>,
    k: Tensor<B, 5>,
    v: Tensor<B, 5>,
    window: Option<usize>,
) -> (Tensor<B, 5>, Tensor<B, 4>) {
    let [batch, heads, query_frames, tokens, head_dim] = q.dims();
    let (out, lse) = launch_on::<B>(q, None, k, v, window, OutputLayout::HeadsMajor, true);
    (
        out.reshape([batch, heads, query_frames, tokens, head_dim]),
        lse.expect("log-sum-exps asked for")
            .reshape([batch, heads, query_frames, tokens]),
    )
}

/// [`frame_attention`] for the streaming path: the keys and values of `held` frames (a cache's)
/// come before those of `k` and `v` and are read where they lie instead of being copied into
/// one tensor with them, and the output has its heads merged, as the output projection reads
/// it. The held frames come oldest first; when every held frame is visible to every query
/// frame (one query frame, fewer held frames than the window) their order does not matter, so
/// a ring buffer's slot order will do.
///
/// # Shapes
/// - `q`: `[batch, heads, query_frames, tokens, head_dim]`
/// - `held`: keys, values `[batch, heads, held_frames, tokens, head_dim]`
/// - `k`, `v`: `[batch, heads, new_frames, tokens, head_dim]`, the query frames being the last
///   `query_frames` of the held and new frames
/// - returns `[batch, query_frames, tokens, heads · head_dim]`
pub fn frame_attention_after<B: Backend>(
    q: Tensor<B, 5>,
    held: Option<(Tensor<B, 5>, Tensor<B, 5>)>,
    k: Tensor<B, 5>,
    v: Tensor<B, 5>,
    window: Option<usize>,
) -> Tensor<B, 4> {
    let [batch, heads, query_frames, tokens, head_dim] = q.dims();
    let layout = OutputLayout::TokenMajor { heads };
    let (out, _) = launch_on::<B>(q, held, k, v, window, layout, false);
    out.reshape([batch, query_frames, tokens, heads * head_dim])
}

/// Checks the shapes and runs the forward kernel; returns the output flat, in `layout`, and
/// with `with_lse` the rows' log-sum-exps flat.
fn launch_on<B: Backend>(
    q: Tensor<B, 5>,
    held: Option<(Tensor<B, 5>, Tensor<B, 5>)>,
    k: Tensor<B, 5>,
    v: Tensor<B, 5>,
    window: Option<usize>,
    layout: OutputLayout,
    with_lse: bool,
) -> (Tensor<B, 1>, Option<Tensor<B, 1>>) {
    let ([batch, heads, query_frames, tokens, head_dim], new_frames) =
        check_layout("frame attention", &q, [("k", &k), ("v", &v)], [], window);
    let held_frames = held.as_ref().map_or(0, |(hk, _)| hk.dims()[2]);
    if let Some((hk, hv)) = &held {
        check_layout(
            "frame attention",
            &q,
            [("held k", hk), ("held v", hv)],
            [],
            window,
        );
    }
    assert!(
        held_frames + new_frames >= query_frames,
        "frame attention: {held_frames} held + {new_frames} new key frames < {query_frames} query frames"
    );
    let kind = kernel_runtime::<B>(q.dtype()).expect("attention kernel: backend has no kernels");
    let flat = |t: Tensor<B, 5>, frames| t.reshape([batch * heads, frames, tokens, head_dim]);
    with_runtime!(kind, R => {
        let q = to_cube::<B, R, 4>(flat(q, query_frames));
        let out = empty_f32(&q, &[batch * heads * query_frames * tokens * head_dim]);
        let lse = with_lse.then(|| empty_f32(&q, &[batch * heads * query_frames * tokens]));
        let held = held.map(|(hk, hv)| {
            (
                to_cube::<B, R, 4>(flat(hk, held_frames)),
                to_cube::<B, R, 4>(flat(hv, held_frames)),
            )
        });
        launch_frame_attention::<R>(
            q,
            held,
            to_cube::<B, R, 4>(flat(k, new_frames)),
            to_cube::<B, R, 4>(flat(v, new_frames)),
            out.clone(),
            lse.clone(),
            layout,
            window.unwrap_or(0),
            None,
            Path::from_env(),
        );
        (from_cube::<B, R, 1>(out), lse.map(from_cube::<B, R, 1>))
    })
}

/// Gradients `[dq, dk, dv]` of [`frame_attention`] at `(q, k, v)` with output `o` and row
/// log-sum-exps `lse` (both from [`frame_attention_with_lse`]), for the output gradient
/// `dout`; same requirements as [`frame_attention`].
///
/// # Shapes
/// - as [`frame_attention`]; `o`, `dout`: like `q`; `lse`: `[batch, heads, query_frames,
///   tokens]`; returns tensors shaped like `q`, `k`, `v`
pub fn frame_attention_backward<B: Backend>(
    [q, k, v, o, dout]: [Tensor<B, 5>; 5],
    lse: Tensor<B, 4>,
    window: Option<usize>,
) -> [Tensor<B, 5>; 3] {
    let ([batch, heads, query_frames, tokens, head_dim], key_frames) = check_layout(
        "frame attention backward",
        &q,
        [("k", &k), ("v", &v)],
        [("o", &o), ("dout", &dout)],
        window,
    );
    assert_eq!(
        lse.dims(),
        [batch, heads, query_frames, tokens],
        "frame attention backward: lse must be [batch, heads, query_frames, tokens]"
    );
    let kind =
        kernel_runtime::<B>(q.dtype()).expect("attention backward kernel: backend has no kernels");
    let flat = |t: Tensor<B, 5>, frames| t.reshape([batch * heads, frames, tokens, head_dim]);
    let grads = with_runtime!(kind, R => {
        let cube = |t, frames| to_cube::<B, R, 4>(flat(t, frames));
        let inputs = [
            cube(q, query_frames),
            cube(k, key_frames),
            cube(v, key_frames),
            cube(o, query_frames),
            cube(dout, query_frames),
        ];
        let q_shape = [batch * heads, query_frames, tokens, head_dim];
        let k_shape = [batch * heads, key_frames, tokens, head_dim];
        let outputs = [
            empty_f32(&inputs[0], &q_shape),
            empty_f32(&inputs[0], &k_shape),
            empty_f32(&inputs[0], &k_shape),
        ];
        let lse = to_cube::<B, R, 3>(lse.reshape([batch * heads, query_frames, tokens]));
        launch_frame_attention_backward::<R>(
            inputs,
            lse,
            outputs.clone(),
            window.unwrap_or(0),
            Path::from_env(),
        );
        outputs.map(from_cube::<B, R, 4>)
    });
    let [dq, dk, dv] = grads;
    [
        dq.reshape([batch, heads, query_frames, tokens, head_dim]),
        dk.reshape([batch, heads, key_frames, tokens, head_dim]),
        dv.reshape([batch, heads, key_frames, tokens, head_dim]),
    ]
}

/// Panics unless `keys` are laid out like `q` over their own number of frames (taken from the
/// first), `like_q` exactly like `q`, and the window is at least one frame; returns `q`'s
/// dims and the number of key frames.
fn check_layout<B: Backend, const N: usize>(
    what: &str,
    q: &Tensor<B, 5>,
    keys: [(&str, &Tensor<B, 5>); 2],
    like_q: [(&str, &Tensor<B, 5>); N],
    window: Option<usize>,
) -> ([usize; 5], usize) {
    let [batch, heads, query_frames, tokens, head_dim] = q.dims();
    let key_frames = keys[0].1.dims()[2];
    let expected = |frames| [batch, heads, frames, tokens, head_dim];
    for (name, t, frames) in keys
        .into_iter()
        .map(|(n, t)| (n, t, key_frames))
        .chain(like_q.into_iter().map(|(n, t)| (n, t, query_frames)))
    {
        assert_eq!(
            t.dims(),
            expected(frames),
            "{what}: {name} must be [batch, heads, frames, tokens, head_dim] like the queries"
        );
    }
    assert!(window != Some(0), "{what}: window must be ≥ 1");
    (q.dims(), key_frames)
}
