//! Inference-side packing of the adaLN modulation (SPEC §5.5): every layer's modulation and
//! the final norm's read the same SiLU(c), so their weights side by side make one matrix and
//! one product gives every layer's vectors, for every pass of a generated frame at once
//! (`S` Euler passes and the commit), instead of `layers + 1` products per pass. The fused
//! kernels read each layer's vectors and bias in place from that table.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::block::AdaVectors;
use super::model::WorldModel;

/// The model's adaLN weights side by side.
#[derive(Clone)]
pub(crate) struct PackedAda<B: Backend> {
    /// `[d_model, Σ widths]`: every layer's modulation weight, then the final norm's.
    weight: Tensor<B, 2>,
    /// Per layer, then the final norm: its first column and its bias.
    layers: Vec<(usize, Option<Tensor<B, 1>>)>,
    d_model: usize,
}

impl<B: Backend> PackedAda<B> {
    /// Pack `model`'s weights (one concatenation, done once per session), or `None` where the
    /// fused kernels do not serve the model's backend, which then keeps its per-layer products.
    pub fn new(model: &WorldModel<B>) -> Option<Self> {
        let weight = model.final_ada.weight.val();
        if !kernels::fused::serves::<B>(weight.dtype()) {
            return None;
        }
        let linears: Vec<_> = model
            .blocks
            .iter()
            .map(|b| &b.ada)
            .chain([&model.final_ada])
            .collect();
        let mut first = 0;
        let layers = linears
            .iter()
            .map(|l| {
                let column = first;
                first += l.weight.dims()[1];
                (column, l.bias.as_ref().map(|b| b.val()))
            })
            .collect();
        Some(Self {
            weight: Tensor::cat(linears.iter().map(|l| l.weight.val()).collect(), 1),
            layers,
            d_model: model.config().d_model,
        })
    }

    /// Every layer's products for the frames of `silu_c` (`[batch, frames, d_model]`): one
    /// matrix product, `[batch, frames, Σ widths]`.
    pub fn table(&self, silu_c: Tensor<B, 3>) -> Tensor<B, 3> {
        burn::tensor::module::linear(silu_c, self.weight.clone(), None)
    }

    /// The vectors of every layer, then of the final norm, for frame `frame` of every video
    /// of `table` ([`Self::table`]), as [`WorldModel`]'s body takes them.
    pub fn vectors(&self, table: &Tensor<B, 3>, frame: usize) -> Vec<AdaVectors<B>> {
        self.layers
            .iter()
            .map(|(first_col, bias)| {
                let modulation = kernels::fused::Modulation {
                    table: table.clone(),
                    bias: bias.clone(),
                    first_frame: frame,
                    first_col: *first_col,
                };
                AdaVectors::made(modulation, self.d_model, 1)
            })
            .collect()
    }
}
