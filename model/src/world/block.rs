//! One layer of the world model (SPEC §5.3) with adaLN-Zero conditioning (DiT, Peebles & Xie
//! 2023): per frame t, c_t gives a (shift, scale, gate) triple per sublayer,
//!
//! ```text
//! x = x + gate1 * BlockwiseSSM(modulate(norm(x)))      (absent without an SSM)
//! x = x + gate2 * FrameLocalAttention(modulate(norm(x)))  (absent without attention)
//! x = x + gate3 * MLP(modulate(norm(x)))
//! ```
//! with modulate(h) = h·(1 + scale) + shift broadcast over the tokens of the frame. The
//! modulation projection starts at zero, so every block starts as the identity.

use burn::module::Module;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::config::WorldModelConfig;
use crate::mixers::attention::{FrameLocalAttention, FrameLocalAttentionConfig, KvCache};
use crate::mixers::blockwise::{BlockwiseMamba2, BlockwiseMamba2Config};
use crate::mixers::ssd::{Mamba2Config, Mamba2State};
use crate::precision::linear;

/// Epsilon of the parameter-free layer norms.
pub(crate) const NORM_EPS: f64 = 1e-6;

/// How the attention sublayer sees the past.
pub enum AttentionContext<'a, B: Backend> {
    /// The input holds every frame from `first_frame` on (training / reference path).
    Sequence { first_frame: usize },
    /// The input continues the frames held in `cache`; `commit` appends its keys/values.
    Cached {
        cache: &'a mut KvCache<B>,
        commit: bool,
    },
}

/// Layer norm over the last dimension without learned affine parameters (adaLN supplies them).
pub fn layer_norm<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let mean = x.clone().mean_dim(D - 1);
    let centred = x - mean;
    let var = centred.clone().powi_scalar(2).mean_dim(D - 1);
    centred / var.add_scalar(NORM_EPS).sqrt()
}

/// adaLN's per-frame vectors of one layer (or of the final norm), `SiLU(c)·W + b`: consecutive
/// `d_model`-wide vectors, numbered from 0. On the GPU backends outside autodiff the product
/// stays packed and the fused kernels ([`kernels::fused::norm_modulate`],
/// [`kernels::fused::gated_residual`]) read each vector and the bias in place; elsewhere the
/// vectors are slices of `linear(SiLU(c))` and the tensor ops below run (their reference).
pub struct AdaVectors<B: Backend> {
    packed: kernels::fused::Modulation<B>,
    d: usize,
    /// Frames of the tensors modulated (rows `first_frame..first_frame + frames` of the table).
    frames: usize,
    fused: bool,
}

impl<B: Backend> AdaVectors<B> {
    /// The vectors `ada` makes of `silu_c` (`[batch, frames, d_model]`), `d` wide each.
    pub fn new(ada: &Linear<B>, silu_c: Tensor<B, 3>, d: usize) -> Self {
        let frames = silu_c.dims()[1];
        let fused = kernels::fused::serves::<B>(silu_c.dtype());
        let packed = if fused {
            kernels::fused::Modulation::new(
                burn::tensor::module::linear(silu_c, ada.weight.val(), None),
                ada.bias.as_ref().map(|b| b.val()),
            )
        } else {
            kernels::fused::Modulation::new(ada.forward(silu_c), None)
        };
        Self {
            packed,
            d,
            frames,
            fused,
        }
    }

    /// Vectors read from a table made beforehand for several passes and layers at once (see
    /// [`super::packed::PackedAda`]): `frames` frames from `modulation.first_frame`, `d` wide
    /// each from `modulation.first_col`, the layer's bias apart.
    pub(crate) fn made(modulation: kernels::fused::Modulation<B>, d: usize, frames: usize) -> Self {
        let fused = kernels::fused::serves::<B>(modulation.table.dtype());
        Self {
            packed: modulation,
            d,
            frames,
            fused,
        }
    }

    /// Vector `i`, `[batch, frames, d]` (the tensor-op path), its bias added.
    fn vector(&self, i: usize) -> Tensor<B, 3> {
        let m = &self.packed;
        let column = m.first_col + i * self.d;
        let v = m
            .table
            .clone()
            .narrow(1, m.first_frame, self.frames)
            .narrow(2, column, self.d);
        match &m.bias {
            Some(b) => {
                v + b
                    .clone()
                    .narrow(0, i * self.d, self.d)
                    .reshape([1, 1, self.d])
            }
            None => v,
        }
    }

    /// `modulate(layer_norm(x), shift, scale)` with vectors `shift` and `scale`.
    pub fn norm_modulate(&self, x: Tensor<B, 5>, shift: usize, scale: usize) -> Tensor<B, 5> {
        if self.fused {
            let cols = [shift * self.d, scale * self.d];
            return kernels::fused::norm_modulate(x, &self.packed, cols, NORM_EPS);
        }
        super::layer_ops::norm_modulate(x, self.vector(shift), self.vector(scale))
    }

    /// `x + gate · y` with vector `gate`.
    pub fn gated_residual(&self, x: Tensor<B, 5>, gate: usize, y: Tensor<B, 5>) -> Tensor<B, 5> {
        if self.fused {
            return kernels::fused::gated_residual(x, &self.packed, gate * self.d, y, None);
        }
        x + per_frame(self.vector(gate)) * y
    }

    /// `x + gate · layer(h)`; on the fused path the layer's bias is added inside the gated
    /// residual's kernel instead of by a launch of its own.
    pub fn gated_linear_residual(
        &self,
        x: Tensor<B, 5>,
        gate: usize,
        layer: &Linear<B>,
        h: Tensor<B, 5>,
    ) -> Tensor<B, 5> {
        if self.fused && !crate::precision::autocast_active() {
            let y = crate::linear_rows::product(h, layer.weight.val(), None);
            let bias = layer.bias.as_ref().map(|b| b.val());
            return kernels::fused::gated_residual(x, &self.packed, gate * self.d, y, bias);
        }
        self.gated_residual(x, gate, linear(layer, h))
    }
}

/// h·(1 + scale) + shift with per-frame `[batch, frames, d]` shift/scale.
pub fn modulate<B: Backend>(
    h: Tensor<B, 5>,
    shift: Tensor<B, 3>,
    scale: Tensor<B, 3>,
) -> Tensor<B, 5> {
    let [b, f, d] = shift.dims();
    h * scale.reshape([b, f, 1, 1, d]).add_scalar(1.0) + shift.reshape([b, f, 1, 1, d])
}

fn per_frame<B: Backend>(t: Tensor<B, 3>) -> Tensor<B, 5> {
    let [b, f, d] = t.dims();
    t.reshape([b, f, 1, 1, d])
}

/// A zero-initialised linear map (adaLN-Zero's modulation and the output head).
pub fn zero_linear<B: Backend>(d_in: usize, d_out: usize, device: &B::Device) -> Linear<B> {
    LinearConfig::new(d_in, d_out)
        .with_initializer(Initializer::Zeros)
        .init(device)
}

/// One world-model layer; see the module docs.
#[derive(Module, Debug)]
pub struct WorldBlock<B: Backend> {
    pub ssm: Option<BlockwiseMamba2<B>>,
    pub attention: Option<FrameLocalAttention<B>>,
    pub mlp_in: Linear<B>,
    pub mlp_out: Linear<B>,
    /// SiLU(c) → (shift, scale, gate) for each present sublayer, zero-initialised.
    pub ada: Linear<B>,
}

impl<B: Backend> WorldBlock<B> {
    /// Layer `layer` of a model with `config` (its block size is `config.block_size(layer)`).
    pub fn new(config: &WorldModelConfig, layer: usize, device: &B::Device) -> Self {
        let d = config.d_model;
        let ssm = config.block_size(layer).map(|block| {
            let mamba = Mamba2Config::new(d)
                .with_d_state(config.d_state)
                .with_head_dim(config.ssm_head_dim)
                .with_expand(config.expand)
                .with_chunk_size(config.chunk_size);
            BlockwiseMamba2Config::new(mamba, block).init(device)
        });
        let attention = config.attention_window().map(|window| {
            FrameLocalAttentionConfig::new(d, config.n_heads)
                .with_window(window)
                .with_rope_theta(config.rope_theta)
                .init(device)
        });
        let sublayers = 1 + ssm.is_some() as usize + attention.is_some() as usize;
        Self {
            ssm,
            attention,
            mlp_in: LinearConfig::new(d, config.mlp_ratio * d).init(device),
            mlp_out: LinearConfig::new(config.mlp_ratio * d, d).init(device),
            ada: zero_linear(d, 3 * sublayers * d, device),
        }
    }

    /// `gelu(mlp_in(h))`; the bias and GELU fused on the GPU backends outside autodiff (and
    /// outside autocast, whose products the tensor-op path keeps).
    fn mlp_hidden(&self, h: Tensor<B, 5>) -> Tensor<B, 5> {
        match &self.mlp_in.bias {
            Some(bias)
                if kernels::fused::serves::<B>(h.dtype())
                    && !crate::precision::autocast_active() =>
            {
                let y = crate::linear_rows::product(h, self.mlp_in.weight.val(), None);
                kernels::fused::bias_gelu(y, bias.val())
            }
            _ => super::layer_ops::gelu(linear(&self.mlp_in, h)),
        }
    }

    /// This layer's adaLN vectors from SiLU of the condition (`[batch, frames, d_model]`).
    pub fn ada_vectors(&self, silu_c: Tensor<B, 3>) -> AdaVectors<B> {
        let d = self.mlp_out.weight.dims()[1];
        AdaVectors::new(&self.ada, silu_c, d)
    }

    /// Run the layer with its adaLN vectors `ada` ([`Self::ada_vectors`], or made beforehand
    /// for several layers at once). `ssm_state` continues the block-wise scan (zeros if
    /// `None`); the returned state is the scan's state after the last frame (`None` without an
    /// SSM).
    ///
    /// # Shapes
    /// - x: `[batch, frames, grid, grid, d_model]`
    /// - returns `[batch, frames, grid, grid, d_model]`
    pub fn forward(
        &self,
        x: Tensor<B, 5>,
        ada: &AdaVectors<B>,
        ssm_state: Option<Mamba2State<B>>,
        attention: AttentionContext<'_, B>,
    ) -> (Tensor<B, 5>, Option<Mamba2State<B>>) {
        let [b, f, _, _, d] = x.dims();
        assert!(
            ada.d == d && ada.frames == f && ada.packed.table.dims()[0] == b,
            "adaLN vectors must be d_model wide, one per frame"
        );
        // Sublayer s reads vectors 3s (shift), 3s + 1 (scale) and 3s + 2 (gate).
        let mut sublayer = 0;
        let mut next = || {
            sublayer += 1;
            let s = 3 * (sublayer - 1);
            (s, s + 1, s + 2)
        };

        let mut x = x;
        let mut state_out = None;
        if let Some(ssm) = &self.ssm {
            let (shift, scale, gate) = next();
            let (y, state) = ssm.forward(ada.norm_modulate(x.clone(), shift, scale), ssm_state);
            x = ada.gated_residual(x, gate, y);
            state_out = Some(state);
        }
        if let Some(attn) = &self.attention {
            let (shift, scale, gate) = next();
            let h = ada.norm_modulate(x.clone(), shift, scale);
            x = match attention {
                AttentionContext::Sequence { first_frame } => {
                    ada.gated_residual(x, gate, attn.forward(h, first_frame))
                }
                // Streaming: the output projection's bias goes into the gated residual.
                AttentionContext::Cached { cache, commit } => {
                    let heads = attn.forward_cached_heads(h, cache, commit);
                    ada.gated_linear_residual(x, gate, &attn.o_proj, heads)
                }
            };
        }
        let (shift, scale, gate) = next();
        let h = ada.norm_modulate(x.clone(), shift, scale);
        let hidden = self.mlp_hidden(h);
        (
            ada.gated_linear_residual(x, gate, &self.mlp_out, hidden),
            state_out,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::{Distribution, TensorData};

    type B = NdArray;

    #[test]
    fn layer_norm_matches_scalar_formula() {
        let dev = Default::default();
        let v = vec![1.0f32, 2.0, 4.0, 7.0, -1.0, 0.0, 0.5, 3.0];
        let x = Tensor::<B, 2>::from_data(TensorData::new(v.clone(), [2, 4]), &dev);
        let y = layer_norm(x).into_data().to_vec::<f32>().unwrap();
        for r in 0..2 {
            let row = &v[r * 4..r * 4 + 4];
            let mean = row.iter().sum::<f32>() / 4.0;
            let var = row.iter().map(|a| (a - mean).powi(2)).sum::<f32>() / 4.0;
            for i in 0..4 {
                let want = (row[i] - mean) / (var + NORM_EPS as f32).sqrt();
                assert!((y[r * 4 + i] - want).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn fresh_block_is_the_identity() {
        let dev = Default::default();
        let cfg = WorldModelConfig::tiny();
        let block = WorldBlock::<B>::new(&cfg, 0, &dev);
        let x = Tensor::<B, 5>::random(
            [1, 3, 8, 8, cfg.d_model],
            Distribution::Normal(0.0, 1.0),
            &dev,
        );
        let c = Tensor::<B, 3>::random([1, 3, cfg.d_model], Distribution::Normal(0.0, 1.0), &dev);
        let (y, state) = block.forward(
            x.clone(),
            &block.ada_vectors(c),
            None,
            AttentionContext::Sequence { first_frame: 0 },
        );
        assert!(state.is_some());
        model_tolerance_identical(y, x);
    }

    fn model_tolerance_identical(a: Tensor<B, 5>, b: Tensor<B, 5>) {
        crate::tolerance::assert_close("zero-gated block output", a, b, 0.0, 0.0);
    }
}
