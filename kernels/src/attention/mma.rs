//! When frame-local attention runs on the tensor cores (`mma_kernel.rs`,
//! `mma_backward_kernel.rs`), and the launchers of those kernels.
//!
//! They take the training-shaped calls — no held frames, no key splits, heads-major output —
//! with heads of 32 or 64 values, on a device with 32-lane planes and TF32 warp-level products
//! of 16×16×8 (CUDA from Ampere; not lavapipe, which keeps the one-row-per-unit kernels).
//! Operands are rounded to TF32, as burn's own f32 matrix products are on CUDA, so results
//! agree with f32 to ~3e-4 of their scale (within 5e-3 of an f64 host loop in the tests).
//! `MEMWORLD_ATTENTION_MMA=off` keeps the one-row-per-unit kernels everywhere (for A/B runs).

use std::sync::OnceLock;

use burn_cubecl::{tensor::CubeTensor, CubeRuntime};
use cubecl::features::MmaConfig;
use cubecl::ir::{ElemType, FloatKind};
use cubecl::prelude::*;

use super::forward::vector_width;
use super::mma_backward_kernel::{attention_backward_key_mma, attention_backward_query_mma};
use super::mma_kernel::{frame_attention_forward_mma, BACKWARD_ROWS, FORWARD_ROWS, LANES};
use crate::dispatch::empty_f32;

/// Environment variable: `off` (or `0`) keeps attention off the tensor cores (the public
/// entry points then launch with [`Path::Rows`]).
pub const MMA_ENV: &str = "MEMWORLD_ATTENTION_MMA";

/// Which kernels a launcher may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Path {
    /// The tensor-core kernels where they [`serves`] the call, else the one-row-per-unit ones.
    Auto,
    /// The one-row-per-unit kernels (`kernel.rs`, `backward_kernel.rs`) always.
    Rows,
}

impl Path {
    /// The path the environment asks for: [`Path::Rows`] when [`MMA_ENV`] is `off` (or `0`,
    /// `false`, `no`), else [`Path::Auto`]. Read once.
    pub(crate) fn from_env() -> Self {
        static PATH: OnceLock<Path> = OnceLock::new();
        *PATH.get_or_init(|| {
            let off = std::env::var(MMA_ENV).is_ok_and(|v| {
                matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "off" | "0" | "false" | "no"
                )
            });
            if off {
                Path::Rows
            } else {
                Path::Auto
            }
        })
    }
}

/// Can the tensor-core kernels take a training-shaped call with heads of `head_dim` on
/// `client`'s device?
pub(crate) fn serves<R: CubeRuntime>(client: &ComputeClient<R>, head_dim: usize) -> bool {
    let hardware = &client.properties().hardware;
    let tf32 = MmaConfig {
        a_type: ElemType::Float(FloatKind::TF32).into(),
        b_type: ElemType::Float(FloatKind::TF32).into(),
        cd_type: ElemType::Float(FloatKind::F32).into(),
        m: 16,
        n: 16,
        k: 8,
    };
    (head_dim == 32 || head_dim == 64)
        && hardware.plane_size_min as usize == LANES
        && hardware.plane_size_max as usize == LANES
        && client.features().matmul.cmma.contains(&tf32)
}

/// The cube grid: one cube per (`rows`-token tile of a frame, sequence·head), a warp for
/// each 16 rows.
fn grid(frames: usize, tokens: usize, seqs: usize, rows: usize) -> (CubeCount, CubeDim) {
    (
        CubeCount::Static((frames * tokens.div_ceil(rows)) as u32, seqs as u32, 1),
        CubeDim::new_1d((rows / 16 * LANES) as u32),
    )
}

/// Frame-local attention on the tensor cores into `out` (and the rows' log-sum-exps into
/// `lse` where given); shapes as `forward::launch_frame_attention` without held frames, the
/// output heads-major. The caller has checked the shapes and [`serves`].
pub(crate) fn launch_forward<R: CubeRuntime>(
    [q, k, v]: [CubeTensor<R>; 3],
    out: CubeTensor<R>,
    lse: Option<CubeTensor<R>>,
    window: usize,
) {
    let shape = q.meta.shape().to_vec();
    let [seqs, query_frames, tokens, head_dim] = [shape[0], shape[1], shape[2], shape[3]];
    let key_frames = k.meta.shape()[1];
    let write_lse = lse.is_some();
    // Without `lse` the kernel writes none: a one-element buffer stands in.
    let lse = lse.unwrap_or_else(|| empty_f32(&q, &[1]));
    let (count, dim) = grid(query_frames, tokens, seqs, FORWARD_ROWS);
    let client = q.client.clone();
    let width = vector_width(head_dim);
    frame_attention_forward_mma::launch::<f32, R>(
        &client,
        count,
        dim,
        width,
        q.into_tensor_arg(),
        k.into_tensor_arg(),
        v.into_tensor_arg(),
        out.into_tensor_arg(),
        lse.into_tensor_arg(),
        query_frames as u32,
        key_frames as u32,
        tokens as u32,
        window as u32,
        head_dim,
        head_dim / width,
        FORWARD_ROWS,
        write_lse,
    );
}

/// Gradients of frame-local attention on the tensor cores into `dq`, `dk`, `dv`; shapes as
/// `backward::launch_frame_attention_backward`. The caller has checked the shapes and
/// [`serves`].
pub(crate) fn launch_backward<R: CubeRuntime>(
    [q, k, v, o, dout]: [CubeTensor<R>; 5],
    lse: CubeTensor<R>,
    [dq, dk, dv]: [CubeTensor<R>; 3],
    window: usize,
) {
    let shape = q.meta.shape().to_vec();
    let [seqs, query_frames, tokens, head_dim] = [shape[0], shape[1], shape[2], shape[3]];
    let key_frames = k.meta.shape()[1];
    let deltas = empty_f32(&q, &[seqs * query_frames * tokens]);
    let client = q.client.clone();
    let width = vector_width(head_dim);
    let (count, dim) = grid(query_frames, tokens, seqs, BACKWARD_ROWS);
    attention_backward_query_mma::launch::<f32, R>(
        &client,
        count,
        dim,
        width,
        q.clone().into_tensor_arg(),
        k.clone().into_tensor_arg(),
        v.clone().into_tensor_arg(),
        o.into_tensor_arg(),
        dout.clone().into_tensor_arg(),
        lse.clone().into_tensor_arg(),
        dq.into_tensor_arg(),
        deltas.clone().into_tensor_arg(),
        query_frames as u32,
        key_frames as u32,
        tokens as u32,
        window as u32,
        head_dim,
        head_dim / width,
        BACKWARD_ROWS,
    );
    let (count, dim) = grid(key_frames, tokens, seqs, BACKWARD_ROWS);
    attention_backward_key_mma::launch::<f32, R>(
        &client,
        count,
        dim,
        width,
        q.into_tensor_arg(),
        k.into_tensor_arg(),
        v.into_tensor_arg(),
        dout.into_tensor_arg(),
        lse.into_tensor_arg(),
        deltas.into_tensor_arg(),
        dk.into_tensor_arg(),
        dv.into_tensor_arg(),
        query_frames as u32,
        key_frames as u32,
        tokens as u32,
        window as u32,
        head_dim,
        head_dim / width,
        BACKWARD_ROWS,
    );
}
