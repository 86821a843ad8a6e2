//! Mixed precision ("autocast"): the matrix products of the linear layers and of attention can
//! run with half-precision inputs while everything else stays f32.
//!
//! Inside an [`autocast`] scope on the current thread, [`linear`] and [`matmul`] cast their
//! operands to the scope's dtype (bf16 for training on CUDA), multiply, and cast the product
//! back to f32; a bias is added in f32. Outside a scope they are plain f32 products. The model
//! calls them for the mixers' projections, the MLP, the patch embedding, the head and the
//! attention products; the small conditioning MLPs (noise level, pose, adaLN) stay f32. Never
//! cast, because half precision is unsafe there: the weights themselves (the f32 master copy
//! that AdamW updates), layer norms, softmax, the SSD decays, cumulative sums and scan, the
//! loss, the gradient clipping and the EMA. Gradients flow through the casts
//! (burn's autodiff casts each gradient back to its input's dtype), so parameter gradients
//! arrive in f32.
//!
//! The scope is a thread-local setting, like PyTorch's autocast, so the model's signatures do
//! not carry it; the training loop enters it for the forward and backward of each update.

use std::cell::Cell;

use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, FloatDType, Tensor};
use serde::{Deserialize, Serialize};

use crate::linear_rows;

/// The precision of the matrix products during training.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatmulPrecision {
    /// Everything in f32.
    #[default]
    F32,
    /// bf16 operands for the linear layers' and attention's matrix products (f32 master
    /// weights, norms, softmax, SSD scan, loss and optimizer).
    Bf16,
}

impl MatmulPrecision {
    /// The dtype the matrix products take inside an autocast scope (`None`: no casting).
    pub fn matmul_dtype(self) -> Option<FloatDType> {
        match self {
            MatmulPrecision::F32 => None,
            MatmulPrecision::Bf16 => Some(FloatDType::BF16),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MatmulPrecision::F32 => "f32",
            MatmulPrecision::Bf16 => "bf16",
        }
    }

    /// Whether `B` can run this precision on `device` (bf16 needs a backend with bf16 tensors,
    /// e.g. CUDA; neither ndarray nor wgpu has them).
    pub fn supported<B: Backend>(self, device: &B::Device) -> bool {
        self.matmul_dtype()
            .is_none_or(|d| B::supports_dtype(device, DType::from(d)))
    }
}

impl std::str::FromStr for MatmulPrecision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(MatmulPrecision::F32),
            "bf16" => Ok(MatmulPrecision::Bf16),
            other => Err(format!(
                "unknown precision {other:?} (expected f32 or bf16)"
            )),
        }
    }
}

thread_local! {
    static MATMUL_DTYPE: Cell<Option<FloatDType>> = const { Cell::new(None) };
}

/// Restores the previous setting when dropped.
#[must_use = "the autocast scope ends when the guard is dropped"]
pub struct AutocastGuard {
    previous: Option<FloatDType>,
}

impl Drop for AutocastGuard {
    fn drop(&mut self) {
        MATMUL_DTYPE.with(|c| c.set(self.previous));
    }
}

/// Makes [`linear`] and [`matmul`] on this thread compute in `dtype` (`None`: f32) until the
/// guard is dropped.
pub fn autocast(dtype: Option<FloatDType>) -> AutocastGuard {
    AutocastGuard {
        previous: MATMUL_DTYPE.with(|c| c.replace(dtype)),
    }
}

fn current() -> Option<FloatDType> {
    MATMUL_DTYPE.with(|c| c.get())
}

/// Is a lower-precision matmul dtype set on this thread?
pub fn autocast_active() -> bool {
    current().is_some()
}

/// `layer.forward(x)` under the thread's autocast setting, its rows grouped into products as
/// [`crate::linear_rows`] says.
pub fn linear<B: Backend, const D: usize>(layer: &Linear<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    let Some(dtype) = current() else {
        return linear_rows::product(x, layer.weight.val(), layer.bias.as_ref().map(|b| b.val()));
    };
    let out_dtype = x.dtype();
    let w = layer.weight.val().cast(dtype);
    let y = linear_rows::product(x.cast(dtype), w, None).cast(out_dtype);
    match &layer.bias {
        Some(bias) => y + bias.val().unsqueeze(),
        None => y,
    }
}

/// `a.matmul(b)` under the thread's autocast setting.
pub fn matmul<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> Tensor<B, D> {
    let Some(dtype) = current() else {
        return a.matmul(b);
    };
    let out_dtype = a.dtype();
    a.cast(dtype).matmul(b.cast(dtype)).cast(out_dtype)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::nn::LinearConfig;
    use burn::tensor::{Distribution, TensorData};

    type A = Autodiff<NdArray>;

    /// The plumbing with a dtype ndarray has (f64): inside the scope the products are computed
    /// in that dtype, agree with f32, come back as f32, and the weight gradients are f32 and
    /// equal to the unscoped ones; the guard restores the previous setting.
    #[test]
    fn autocast_casts_products_and_gradients_flow_back_in_f32() {
        let device = Default::default();
        let layer = LinearConfig::new(6, 5).init::<A>(&device);
        let x = Tensor::<A, 3>::random([2, 3, 6], Distribution::Normal(0.0, 1.0), &device);
        let run = |scope: Option<FloatDType>| {
            let _guard = autocast(scope);
            let y = linear(&layer, x.clone());
            let z = matmul(y.clone(), y.clone().swap_dims(1, 2));
            assert_eq!(y.dtype(), DType::F32);
            assert_eq!(z.dtype(), DType::F32);
            let grads = z.sum().backward();
            let gw = layer.weight.grad(&grads).expect("weight gradient");
            assert_eq!(gw.dtype(), DType::F32);
            (y.inner().into_data(), gw.into_data())
        };
        let (y32, g32) = run(None);
        let (y64, g64) = run(Some(FloatDType::F64));
        y64.assert_approx_eq::<f32>(&y32, burn::tensor::Tolerance::absolute(1e-5));
        g64.assert_approx_eq::<f32>(&g32, burn::tensor::Tolerance::relative(1e-5));
        assert_eq!(current(), None, "the guard restores the setting");
    }

    /// The scope really changes the arithmetic: products that overflow f32 (1e30 · 1e30) but
    /// cancel exactly in f64 give 0 inside an f64 scope and a non-finite number outside it.
    #[test]
    fn autocast_computes_in_the_scope_dtype() {
        let device = Default::default();
        let a =
            Tensor::<NdArray, 2>::from_data(TensorData::new(vec![1e30f32, 1e30], [1, 2]), &device);
        let b =
            Tensor::<NdArray, 2>::from_data(TensorData::new(vec![1e30f32, -1e30], [2, 1]), &device);
        let plain: f32 = matmul(a.clone(), b.clone()).into_scalar();
        let scoped: f32 = {
            let _g = autocast(Some(FloatDType::F64));
            matmul(a, b).into_scalar()
        };
        assert!(!plain.is_finite(), "f32 products overflow (got {plain})");
        assert_eq!(scoped, 0.0);
        assert_eq!(MatmulPrecision::Bf16.matmul_dtype(), Some(FloatDType::BF16));
        assert!(!MatmulPrecision::Bf16.supported::<NdArray>(&device));
        assert!(MatmulPrecision::F32.supported::<NdArray>(&device));
        assert_eq!("bf16".parse::<MatmulPrecision>(), Ok(MatmulPrecision::Bf16));
        assert!("fp8".parse::<MatmulPrecision>().is_err());
    }
}
