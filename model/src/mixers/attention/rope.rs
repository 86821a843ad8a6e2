//! Axial rotary position embedding over (row, column, frame) for video tokens.
//!
//! RoPE (Su et al., "RoFormer", arXiv 2104.09864, eq. 34) rotates each pair of query/key
//! components by an angle proportional to the position, so that after rotation
//! `q(p)·k(p')` depends only on `p − p'`. For video tokens the position is three-dimensional;
//! the head's rotary pairs are split into three groups, one per axis, and each group is an
//! ordinary 1-D RoPE over its axis (the "axial" layout used by video transformers).
//!
//! Layout ("rotate half"): pair `j` of a head vector `x` of size `head_dim` is
//! `(x[j], x[j + head_dim/2])`, `j < head_dim/2`. Pairs `0..rows` rotate with the row index,
//! the next `cols` with the column index, the last `frames` with the frame index
//! (see [`AxialRopeSplit::for_head_dim`]). Inside a group of `m` pairs, pair `i` turns at
//! `θ^(−i/m)` radians per step, `θ` being `rope_theta`.

use burn::tensor::{backend::Backend, Tensor, TensorData};

/// How a head's `head_dim / 2` rotary pairs are shared among the three position axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AxialRopeSplit {
    /// Pairs rotated by the token's row in the frame's token grid.
    pub rows: usize,
    /// Pairs rotated by the token's column.
    pub cols: usize,
    /// Pairs rotated by the absolute frame index.
    pub frames: usize,
}

impl AxialRopeSplit {
    /// Even split of the `head_dim / 2` pairs; a remainder goes to frames first, then rows
    /// (e.g. head_dim 8 → 4 pairs → rows 1, cols 1, frames 2; head_dim 64 → 32 pairs →
    /// rows 11, cols 10, frames 11).
    ///
    /// Panics unless `head_dim` is even and at least 6 (one pair per axis).
    pub fn for_head_dim(head_dim: usize) -> Self {
        assert!(
            head_dim % 2 == 0 && head_dim >= 6,
            "axial RoPE needs an even head_dim >= 6 (one rotary pair per axis), got {head_dim}"
        );
        let pairs = head_dim / 2;
        let base = pairs / 3;
        let rem = pairs % 3;
        Self {
            rows: base + usize::from(rem > 1),
            cols: base,
            frames: base + usize::from(rem > 0),
        }
    }

    /// Total number of rotary pairs (`head_dim / 2`).
    pub fn pairs(&self) -> usize {
        self.rows + self.cols + self.frames
    }

    /// Rotation angles of every pair for one token at `(row, col, frame)`.
    pub fn angles(&self, theta: f64, row: usize, col: usize, frame: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.pairs());
        for (m, pos) in [(self.rows, row), (self.cols, col), (self.frames, frame)] {
            for i in 0..m {
                let freq = theta.powf(-(i as f64) / m as f64);
                out.push(pos as f64 * freq);
            }
        }
        out
    }
}

/// Cosine and sine tables for the tokens of frames `first_frame..first_frame + frames` on an
/// `h × w` grid (raster order inside a frame).
///
/// Each pair turns with one axis only, so the tables are built per axis on the host in f64
/// (`h·rows + w·cols + frames·frames_pairs` values: exact for long rollouts) and broadcast to all
/// tokens on the device.
///
/// # Shapes
/// - returns `(cos, sin)`, each `[frames, h * w, head_dim / 2]`
pub fn rope_tables<B: Backend>(
    split: AxialRopeSplit,
    theta: f64,
    first_frame: usize,
    frames: usize,
    [h, w]: [usize; 2],
    device: &B::Device,
) -> (Tensor<B, 3>, Tensor<B, 3>) {
    let full = [frames, h, w];
    let axes = [
        (split.rows, 0..h, [1, h, 1]),
        (split.cols, 0..w, [1, 1, w]),
        (
            split.frames,
            first_frame..first_frame + frames,
            [frames, 1, 1],
        ),
    ];
    let mut cos = Vec::with_capacity(3);
    let mut sin = Vec::with_capacity(3);
    for (m, positions, [d0, d1, d2]) in axes {
        let angles: Vec<f64> = positions
            .flat_map(|p| (0..m).map(move |i| p as f64 * theta.powf(-(i as f64) / m as f64)))
            .collect();
        let table = |f: fn(f64) -> f64| {
            let v: Vec<f32> = angles.iter().map(|&a| f(a) as f32).collect();
            Tensor::<B, 4>::from_data(TensorData::new(v, [d0, d1, d2, m]), device)
                .expand([full[0], full[1], full[2], m])
        };
        cos.push(table(f64::cos));
        sin.push(table(f64::sin));
    }
    let pairs = split.pairs();
    (
        Tensor::cat(cos, 3).reshape([frames, h * w, pairs]),
        Tensor::cat(sin, 3).reshape([frames, h * w, pairs]),
    )
}

/// Rotate the pairs `(x[j], x[j + half])` of the last axis by the angles whose cosines and
/// sines are given: `(x1 cos − x2 sin, x1 sin + x2 cos)`.
///
/// # Shapes
/// - `x`: `[..., head_dim]`
/// - `cos`, `sin`: broadcastable to `[..., head_dim / 2]`
/// - returns `[..., head_dim]`
pub fn apply_rope<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    cos: Tensor<B, D>,
    sin: Tensor<B, D>,
) -> Tensor<B, D> {
    let head_dim = x.dims()[D - 1];
    let half = head_dim / 2;
    let x1 = x.clone().narrow(D - 1, 0, half);
    let x2 = x.narrow(D - 1, half, half);
    let r1 = x1.clone() * cos.clone() - x2.clone() * sin.clone();
    let r2 = x1 * sin + x2 * cos;
    Tensor::cat(vec![r1, r2], D - 1)
}
