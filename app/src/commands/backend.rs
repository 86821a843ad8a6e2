//! The compute backend a command runs a model on (`--backend ndarray|wgpu|cuda`), chosen at run
//! time: a job generic over the burn backend is run on the one the flag names.

use anyhow::Result;
use burn::tensor::backend::Backend;

pub use super::train::BackendKind;

/// Work generic over the burn backend (a closure cannot be generic over a type).
pub trait OnBackend {
    type Output;
    fn run<B: Backend>(self, device: B::Device) -> Result<Self::Output>;
}

/// Runs `job` on the backend `kind` names, on that backend's default device. `cuda` needs a
/// build with the `cuda` feature and says so otherwise.
pub fn run_on<J: OnBackend>(kind: BackendKind, job: J) -> Result<J::Output> {
    match kind {
        BackendKind::Ndarray => job.run::<burn::backend::NdArray>(Default::default()),
        BackendKind::Wgpu => {
            require_wgpu_adapter()?;
            job.run::<burn::backend::Wgpu>(Default::default())
        }
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => job.run::<burn::backend::Cuda>(Default::default()),
        #[cfg(not(feature = "cuda"))]
        BackendKind::Cuda => anyhow::bail!(
            "--backend cuda: this memworld was built without CUDA support (rebuild with \
             `cargo build --release --features cuda`)"
        ),
    }
}

/// Fails with one line when wgpu finds no adapter at all (burn-wgpu would panic on its device
/// thread instead), e.g. on a machine without a Vulkan, Metal, DX12 or GL driver.
fn require_wgpu_adapter() -> Result<()> {
    let instance = wgpu::Instance::new(crate::player::gpu::instance_descriptor(
        crate::player::BackendChoice::Auto,
        None,
    ));
    let backends = crate::player::BackendChoice::Auto.backends();
    let adapters = pollster::block_on(instance.enumerate_adapters(backends));
    if adapters.is_empty() {
        anyhow::bail!(
            "--backend wgpu: no GPU adapter found (no Vulkan, Metal, DX12 or OpenGL driver); \
             use --backend ndarray (CPU) or cuda"
        );
    }
    Ok(())
}
