//! The shared tensor-comparison helper (STYLE.md item 3): reports max-abs and relative error
//! and fails on NaN or infinity, so a test that compares two computations can actually fail.

use burn::tensor::{backend::Backend, Tensor};

/// How two arrays differ.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Diff {
    /// max |a - b|
    pub max_abs: f64,
    /// max |a - b| / max(max |b|, tiny): error relative to the reference's scale.
    pub rel: f64,
    /// Index of the element with the largest absolute difference.
    pub worst_index: usize,
}

/// Compare `actual` against `expected` elementwise. Panics (with the first offending index) if
/// either holds NaN/inf or the lengths differ.
pub fn diff(actual: &[f32], expected: &[f32]) -> Diff {
    assert_eq!(
        actual.len(),
        expected.len(),
        "length mismatch: actual {} vs expected {}",
        actual.len(),
        expected.len()
    );
    let mut max_abs = 0.0f64;
    let mut worst_index = 0;
    let mut scale = 0.0f64;
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        assert!(a.is_finite(), "actual[{i}] is not finite ({a})");
        assert!(e.is_finite(), "expected[{i}] is not finite ({e})");
        let d = (a as f64 - e as f64).abs();
        if d > max_abs {
            max_abs = d;
            worst_index = i;
        }
        scale = scale.max((e as f64).abs());
    }
    Diff {
        max_abs,
        rel: max_abs / scale.max(1e-12),
        worst_index,
    }
}

/// Assert that `actual` matches `expected` to `rel_tol` relative to the reference's scale (or
/// `abs_tol` absolute, whichever is looser). The message names `what` and both errors.
pub fn assert_close_slices(
    what: &str,
    actual: &[f32],
    expected: &[f32],
    rel_tol: f64,
    abs_tol: f64,
) {
    let d = diff(actual, expected);
    assert!(
        d.rel <= rel_tol || d.max_abs <= abs_tol,
        "{what}: max-abs error {:.3e}, relative {:.3e} (tolerance rel {rel_tol:.1e} / abs {abs_tol:.1e}); \
         worst at flat index {}: actual {} vs expected {}",
        d.max_abs,
        d.rel,
        d.worst_index,
        actual[d.worst_index],
        expected[d.worst_index],
    );
}

/// Flatten a tensor of any backend into f32s on the host.
pub fn to_vec<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("tensor data converts to f32")
}

/// Relative error that `B`'s f32 matrix products may carry: on CUDA, burn's matmul runs f32
/// operands on TF32 tensor cores (10-bit mantissa), so results agree with exact f32 to about
/// 1e-3 of their scale; elsewhere (ndarray, wgpu on lavapipe) products are plain f32.
pub fn matmul_rel_error<B: Backend>() -> f64 {
    #[cfg(feature = "cuda")]
    if crate::dispatch::kernel_runtime::<B>(burn::tensor::DType::F32)
        == Some(crate::dispatch::CubeRuntimeKind::Cuda)
    {
        return 2e-3;
    }
    0.0
}

/// Tensor version of [`assert_close_slices`]; also checks that the shapes agree. The relative
/// tolerance is at least [`matmul_rel_error`] of the backend (comparisons of tensor-op
/// computations on CUDA include TF32 products).
pub fn assert_close<B: Backend, const D: usize>(
    what: &str,
    actual: Tensor<B, D>,
    expected: Tensor<B, D>,
    rel_tol: f64,
    abs_tol: f64,
) {
    assert_eq!(actual.dims(), expected.dims(), "{what}: shape mismatch");
    let rel_tol = rel_tol.max(matmul_rel_error::<B>());
    assert_close_slices(what, &to_vec(actual), &to_vec(expected), rel_tol, abs_tol);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_inputs_have_zero_error() {
        let d = diff(&[1.0, -2.0, 3.0], &[1.0, -2.0, 3.0]);
        assert_eq!(d.max_abs, 0.0);
        assert_eq!(d.rel, 0.0);
    }

    #[test]
    fn reports_worst_element_and_relative_error() {
        let d = diff(&[1.0, 2.5, 4.0], &[1.0, 2.0, 4.0]);
        assert_eq!(d.worst_index, 1);
        assert!((d.max_abs - 0.5).abs() < 1e-12);
        assert!((d.rel - 0.125).abs() < 1e-12);
    }

    #[test]
    #[should_panic(expected = "not finite")]
    fn nan_fails() {
        diff(&[f32::NAN], &[0.0]);
    }

    #[test]
    #[should_panic(expected = "max-abs error")]
    fn mismatch_beyond_tolerance_fails() {
        assert_close_slices("x", &[1.0, 2.0], &[1.0, 2.1], 1e-4, 1e-6);
    }
}
