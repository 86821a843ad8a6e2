//! Helpers shared by the workspace's GPU tests: the GPU backends they run on (wgpu always,
//! lavapipe in CI; CUDA in builds with the `cuda` feature), the [`gpu_tests!`] macro that
//! instantiates a generic test for each, and deterministic test inputs.

use burn::backend::wgpu::WgpuDevice;
use burn::backend::Wgpu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use burn_cubecl::CubeRuntime;
#[cfg(test)]
use {
    crate::dispatch::{from_cube, to_cube},
    crate::tolerance::to_vec,
    burn::tensor::TensorData,
    burn_cubecl::tensor::CubeTensor,
};

/// Set this to make a missing CUDA device fail the CUDA tests instead of skipping them.
pub const REQUIRE_CUDA_ENV: &str = "MEMWORLD_REQUIRE_CUDA";

/// A GPU backend a test runs on: the burn backend, its CubeCL runtime, and its device when this
/// machine has one.
pub trait GpuTarget {
    type B: Backend;
    type R: CubeRuntime;
    /// The device, or `None` (with a notice) when the machine has none and the tests may skip.
    fn device() -> Option<burn::tensor::Device<Self::B>>;
}

/// burn-wgpu (lavapipe in CI).
pub struct OnWgpu;

impl GpuTarget for OnWgpu {
    type B = Wgpu;
    type R = cubecl::wgpu::WgpuRuntime;
    fn device() -> Option<WgpuDevice> {
        wgpu_device()
    }
}

/// burn-cuda.
#[cfg(feature = "cuda")]
pub struct OnCuda;

#[cfg(feature = "cuda")]
impl GpuTarget for OnCuda {
    type B = burn::backend::Cuda;
    type R = cubecl::cuda::CudaRuntime;
    fn device() -> Option<burn::backend::cuda::CudaDevice> {
        let required = std::env::var_os(REQUIRE_CUDA_ENV).is_some();
        probe::<Self::B>(
            Default::default(),
            required,
            &format!("no CUDA device (set {REQUIRE_CUDA_ENV} to fail)"),
        )
    }
}

/// Instantiates generic GPU tests `fn name<T: GpuTarget>()` as `wgpu::name` and, in builds
/// with the calling crate's `cuda` feature, `cuda::name`.
#[macro_export]
macro_rules! gpu_tests {
    ($($name:ident),* $(,)?) => {
        mod wgpu {
            $(#[test]
            fn $name() {
                super::$name::<$crate::testing::OnWgpu>()
            })*
        }
        #[cfg(feature = "cuda")]
        mod cuda {
            $(#[test]
            fn $name() {
                super::$name::<$crate::testing::OnCuda>()
            })*
        }
    };
}

/// The wgpu device, or `None` (with a notice) when this machine has no adapter and `CI` is
/// unset; on CI a missing adapter fails the test.
pub fn wgpu_device() -> Option<WgpuDevice> {
    let on_ci = std::env::var_os("CI").is_some();
    probe::<Wgpu>(
        WgpuDevice::default(),
        on_ci,
        "no wgpu adapter (install mesa-vulkan-drivers)",
    )
}

/// `device` if a one-element tensor round-trips through it; else the probe's panic goes on
/// when `required`, or `None` after printing why the test skips.
fn probe<B: Backend>(device: B::Device, required: bool, why: &str) -> Option<B::Device> {
    let probe = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Tensor::<B, 1>::ones([1], &device).into_data()
    }));
    match probe {
        Ok(_) => Some(device),
        Err(e) if required => std::panic::resume_unwind(e),
        Err(_) => {
            eprintln!("skipping GPU test: {why}");
            None
        }
    }
}

/// The device type of a [`GpuTarget`].
#[cfg(test)]
pub(crate) type Device<T> = burn::tensor::Device<<T as GpuTarget>::B>;

/// Host values as a contiguous kernel input on `T`'s device.
#[cfg(test)]
pub(crate) fn cube_input<T: GpuTarget, const D: usize>(
    values: &[f32],
    shape: [usize; D],
    device: &Device<T>,
) -> CubeTensor<T::R> {
    to_cube::<T::B, T::R, D>(Tensor::from_data(
        TensorData::new(values.to_vec(), shape),
        device,
    ))
}

/// Host values `[rows, width]` as a kernel input whose rows lie `width + pad` elements apart,
/// the padding NaN (so a kernel that reads it fails the comparison), as burn's CUDA allocations
/// pad rows.
#[cfg(test)]
pub(crate) fn padded_rows_input<T: GpuTarget>(
    values: &[f32],
    [rows, width]: [usize; 2],
    pad: usize,
    device: &Device<T>,
) -> CubeTensor<T::R> {
    let padded: Vec<f32> = values
        .chunks(width)
        .flat_map(|row| {
            row.iter()
                .copied()
                .chain(std::iter::repeat_n(f32::NAN, pad))
        })
        .collect();
    let wide = Tensor::<T::B, 2>::from_data(TensorData::new(padded, [rows, width + pad]), device);
    // The same buffer seen as its first `width` columns (burn's own slice would copy them).
    let mut cube = to_cube::<T::B, T::R, 2>(wide);
    cube.meta.shape = burn::tensor::Shape::from(vec![rows, width]);
    assert_eq!(
        cube.meta.strides()[0],
        width + pad,
        "padded_rows_input: the rows stay padded"
    );
    cube
}

/// A NaN-filled contiguous kernel output, so an element the kernel never writes fails the
/// comparison (read it back with [`host`]).
#[cfg(test)]
pub(crate) fn nan_output<T: GpuTarget, const D: usize>(
    shape: [usize; D],
    device: &Device<T>,
) -> CubeTensor<T::R> {
    to_cube::<T::B, T::R, D>(Tensor::full(shape, f32::NAN, device))
}

/// The values of a kernel's output tensor on the host.
#[cfg(test)]
pub(crate) fn host<T: GpuTarget, const D: usize>(t: CubeTensor<T::R>) -> Vec<f32> {
    to_vec(from_cube::<T::B, T::R, D>(t))
}

/// `n` numbers uniform in `[lo, hi)` from a fixed-seed xorshift generator.
pub fn uniform(n: usize, lo: f32, hi: f32, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            lo + (hi - lo) * ((s >> 40) as f32 / (1u64 << 24) as f32)
        })
        .collect()
}
