//! Helpers shared by the workspace's GPU tests: the wgpu device (lavapipe in CI) and
//! deterministic test inputs.

use burn::backend::wgpu::WgpuDevice;
use burn::backend::Wgpu;
use burn::tensor::Tensor;

/// The wgpu device, or `None` (with a notice) when this machine has no adapter and `CI` is
/// unset; on CI a missing adapter fails the test.
pub fn wgpu_device() -> Option<WgpuDevice> {
    let device = WgpuDevice::default();
    let probe =
        std::panic::catch_unwind(|| Tensor::<Wgpu, 1>::ones([1], &device.clone()).into_data());
    match probe {
        Ok(_) => Some(device),
        Err(e) if std::env::var_os("CI").is_some() => std::panic::resume_unwind(e),
        Err(_) => {
            eprintln!("skipping wgpu test: no wgpu adapter (install mesa-vulkan-drivers)");
            None
        }
    }
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
