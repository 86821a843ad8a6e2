//! How a linear layer's input rows are grouped into matrix products (`MEMWORLD_LINEAR_ROWS`).
//!
//! `y = x·W + b` is the same arithmetic however the rows of `x` are grouped, but not the same
//! work on the GPU. burn multiplies a D-dimensional input as a product batched over all its
//! leading dimensions; its weight gradient is then one `d_in × d_out` product per batch entry,
//! written out and summed afterwards. For the world model's `[batch, frames, 16, 16, d]` tokens
//! that is `batch · frames · 16` products of 16 rows each, and a gradient tensor of
//! gigabytes per layer. One product over all rows writes the gradient once, but then one long
//! reduction makes it with too little parallelism (measured slower, README "Measured").
//! Between the two, one product per frame (its `16 × 16` tokens) writes `batch · frames`
//! partial gradients; measured fastest (README "Measured"), so it is the default.
//!
//! - `grouped` (the default): the last two leading dimensions make each product's rows (a
//!   frame's tokens for the token tensors), the ones before them its batch. In training on
//!   the GPU its products run on the cubek routine `MEMWORLD_MATMUL` names
//!   (`linear_routine.rs`).
//! - `batched`: burn's grouping, [`burn::tensor::module::linear`] as it is.
//! - `flat`: one product over all rows.

use std::sync::OnceLock;

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// The environment variable that picks the grouping.
pub const LINEAR_ROWS_ENV: &str = "MEMWORLD_LINEAR_ROWS";

/// How the rows of a linear layer's input are grouped into products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowGrouping {
    /// Batched over every leading dimension (burn's own).
    Batched,
    /// The last two leading dimensions form each product's rows.
    Grouped,
    /// One product over all rows.
    Flat,
}

impl RowGrouping {
    /// Parses `batched`, `grouped` or `flat`.
    pub fn parse(word: &str) -> Result<Self, String> {
        match word.trim().to_ascii_lowercase().as_str() {
            "batched" => Ok(Self::Batched),
            "grouped" => Ok(Self::Grouped),
            "flat" => Ok(Self::Flat),
            other => Err(format!(
                "{LINEAR_ROWS_ENV}: unknown grouping `{other}` (batched, grouped, flat)"
            )),
        }
    }
}

/// The grouping set by `MEMWORLD_LINEAR_ROWS` (read once; `grouped` when unset or unknown).
pub fn row_grouping() -> RowGrouping {
    static GROUPING: OnceLock<RowGrouping> = OnceLock::new();
    *GROUPING.get_or_init(|| match std::env::var(LINEAR_ROWS_ENV) {
        Err(_) => RowGrouping::Grouped,
        Ok(v) => RowGrouping::parse(&v).unwrap_or_else(|e| {
            eprintln!("warning: {e}; using grouped");
            RowGrouping::Grouped
        }),
    })
}

/// `burn::tensor::module::linear(x, weight, bias)` with the rows grouped as
/// [`row_grouping`] says.
pub fn product<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
) -> Tensor<B, D> {
    grouped_product(row_grouping(), x, weight, bias)
}

/// [`product`] with the grouping given.
pub fn grouped_product<B: Backend, const D: usize>(
    grouping: RowGrouping,
    x: Tensor<B, D>,
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
) -> Tensor<B, D> {
    if D <= 2 {
        return burn::tensor::module::linear(x, weight, bias);
    }
    let mut dims = x.dims();
    let d_in = dims[D - 1];
    dims[D - 1] = weight.dims()[1];
    match grouping {
        RowGrouping::Batched => burn::tensor::module::linear(x, weight, bias),
        RowGrouping::Flat => {
            let rows = dims[..D - 1].iter().product();
            burn::tensor::module::linear(x.reshape([rows, d_in]), weight, bias).reshape(dims)
        }
        RowGrouping::Grouped => {
            let groups = dims[..D - 3].iter().product();
            let rows = dims[D - 3] * dims[D - 2];
            let x = x.reshape([groups, rows, d_in]);
            match crate::linear_routine::product(&x, &weight) {
                Some(y) => match bias {
                    Some(b) => y + b.unsqueeze::<3>(),
                    None => y,
                },
                None => burn::tensor::module::linear(x, weight, bias),
            }
            .reshape(dims)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::{Distribution, Int, Tolerance};

    type A = Autodiff<NdArray>;

    #[test]
    fn words_parse_and_unknown_words_are_named() {
        assert_eq!(RowGrouping::parse("batched"), Ok(RowGrouping::Batched));
        assert_eq!(RowGrouping::parse(" Grouped "), Ok(RowGrouping::Grouped));
        assert_eq!(RowGrouping::parse("flat"), Ok(RowGrouping::Flat));
        let err = RowGrouping::parse("rows").unwrap_err();
        assert!(
            err.contains("`rows`") && err.contains(LINEAR_ROWS_ENV),
            "{err}"
        );
    }

    /// Outputs and the gradients of the input, the weight and the bias of a `D`-d input under
    /// `grouping`, for a loss that weighs every output element differently.
    fn run<const D: usize>(
        grouping: RowGrouping,
        shape: [usize; D],
        x: &Tensor<A, 1>,
        w: &Tensor<A, 2>,
        b: &Tensor<A, 1>,
    ) -> [burn::tensor::TensorData; 4] {
        let (x, w, b) = (
            x.clone().require_grad(),
            w.clone().require_grad(),
            b.clone().require_grad(),
        );
        let y = grouped_product(
            grouping,
            x.clone().reshape(shape),
            w.clone(),
            Some(b.clone()),
        );
        let mut out_shape = shape;
        out_shape[D - 1] = b.dims()[0];
        assert_eq!(y.dims(), out_shape);
        let y = y.flatten::<1>(0, D - 1);
        let weights = Tensor::<A, 1, Int>::arange(0..y.dims()[0] as i64, &y.device())
            .float()
            .cos();
        let grads = (y.clone() * weights).sum().backward();
        [
            y.inner().into_data(),
            x.grad(&grads).expect("x gradient").into_data(),
            w.grad(&grads).expect("w gradient").into_data(),
            b.grad(&grads).expect("b gradient").into_data(),
        ]
    }

    /// Every grouping gives burn's batched linear: outputs and all three gradients, for a 5-d
    /// input (the world model's token layout), a 4-d, a 3-d and a 2-d one.
    #[test]
    fn every_grouping_equals_burns_linear_with_gradients() {
        fn check<const D: usize>(shape: [usize; D]) {
            let device = Default::default();
            let normal =
                |n: usize| Tensor::<A, 1>::random([n], Distribution::Normal(0.0, 1.0), &device);
            let x = normal(shape.iter().product());
            let w = normal(shape[D - 1] * 7).reshape([shape[D - 1], 7]);
            let b = normal(7);
            let want = run(RowGrouping::Batched, shape, &x, &w, &b);
            for grouping in [RowGrouping::Grouped, RowGrouping::Flat] {
                let got = run(grouping, shape, &x, &w, &b);
                for (g, r) in got.iter().zip(&want) {
                    g.assert_approx_eq::<f32>(r, Tolerance::absolute(1e-4));
                }
            }
        }
        check([2, 3, 4, 5, 6]);
        check([3, 4, 5, 6]);
        check([3, 5, 6]);
        check([4, 6]);
    }
}
