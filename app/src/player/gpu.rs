//! GPU setup for the player: backend choice from `--backend`, adapter and device selection, and
//! the one-line errors (with a hint) when there is no display or no usable adapter.

use std::fmt;

/// The hint printed with every "cannot open the player" error.
pub const HINT: &str = "use --backend gl, or run `memworld rollout` headless";

/// Which wgpu backend(s) the player may use (`--backend`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// Vulkan, Metal or DX12, then OpenGL.
    Auto,
    Vulkan,
    Gl,
    Metal,
    Dx12,
}

impl BackendChoice {
    pub fn backends(self) -> wgpu::Backends {
        match self {
            BackendChoice::Auto => wgpu::Backends::PRIMARY | wgpu::Backends::GL,
            BackendChoice::Vulkan => wgpu::Backends::VULKAN,
            BackendChoice::Gl => wgpu::Backends::GL,
            BackendChoice::Metal => wgpu::Backends::METAL,
            BackendChoice::Dx12 => wgpu::Backends::DX12,
        }
    }
}

impl fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            BackendChoice::Auto => "auto",
            BackendChoice::Vulkan => "vulkan",
            BackendChoice::Gl => "gl",
            BackendChoice::Metal => "metal",
            BackendChoice::Dx12 => "dx12",
        };
        f.write_str(name)
    }
}

/// Why the player could not get a GPU to draw with.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("no display to open a window on ({0}); run it in a desktop session (or under Xvfb), or run `memworld rollout` headless")]
    NoDisplay(String),
    #[error("no GPU adapter for backend '{backend}' ({reason}); {HINT}")]
    NoAdapter { backend: String, reason: String },
    #[error("could not create a wgpu device on {adapter} ({reason}); {HINT}")]
    NoDevice { adapter: String, reason: String },
    #[error("could not create a drawing surface for the window ({0}); {HINT}")]
    Surface(String),
    #[error("reading back the rendered image failed: {0}")]
    Readback(String),
}

impl GpuError {
    /// A display error from winit, without the source location winit puts in its messages.
    pub fn no_display(err: impl fmt::Display) -> GpuError {
        let s = err.to_string();
        let clean = match s.find("os error at ") {
            Some(i) => match s[i..].find(": ") {
                Some(j) => format!("{}{}", &s[..i], &s[i + j + 2..]),
                None => s.clone(),
            },
            None => s.clone(),
        };
        GpuError::NoDisplay(clean.trim_end_matches('.').to_string())
    }
}

/// An adapter with its device and queue.
pub struct Gpu {
    pub instance: wgpu::Instance,
    pub adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
}

impl Gpu {
    /// A GPU without a window, for offscreen rendering. `prefer_software` picks a CPU adapter
    /// (Mesa lavapipe / llvmpipe) when one exists, so images are the same on every machine.
    pub fn headless(choice: BackendChoice, prefer_software: bool) -> Result<Gpu, GpuError> {
        let instance = wgpu::Instance::new(instance_descriptor(choice, None));
        let adapters = pollster::block_on(instance.enumerate_adapters(choice.backends()));
        let pick = |kind: Option<wgpu::DeviceType>| {
            adapters
                .iter()
                .find(|a| kind.is_none_or(|k| a.get_info().device_type == k))
                .cloned()
        };
        let adapter = if prefer_software {
            pick(Some(wgpu::DeviceType::Cpu)).or_else(|| pick(None))
        } else {
            None
        };
        let adapter = match adapter {
            Some(a) => a,
            None => pollster::block_on(
                instance.request_adapter(&wgpu::RequestAdapterOptions::default()),
            )
            .map_err(|e| GpuError::NoAdapter {
                backend: choice.to_string(),
                reason: e.to_string(),
            })?,
        };
        let (device, queue) = request_device(&adapter)?;
        Ok(Gpu {
            instance,
            adapter,
            device,
            queue,
        })
    }

    /// One line naming the adapter and backend, for the HUD and logs.
    pub fn describe(&self) -> String {
        let info = self.adapter.get_info();
        format!("{} ({:?})", info.name, info.backend)
    }
}

/// The instance descriptor for `choice`; the display handle is needed by OpenGL to present.
pub fn instance_descriptor(
    choice: BackendChoice,
    display: Option<Box<dyn wgpu::wgt::WgpuHasDisplayHandle>>,
) -> wgpu::InstanceDescriptor {
    wgpu::InstanceDescriptor {
        backends: choice.backends(),
        flags: wgpu::InstanceFlags::from_build_config().with_env(),
        memory_budget_thresholds: wgpu::MemoryBudgetThresholds::default(),
        backend_options: wgpu::BackendOptions::from_env_or_default(),
        display,
    }
}

/// Device and queue with the adapter's own texture-size limits on top of portable defaults.
pub fn request_device(adapter: &wgpu::Adapter) -> Result<(wgpu::Device, wgpu::Queue), GpuError> {
    let base = if adapter.get_info().backend == wgpu::Backend::Gl {
        wgpu::Limits::downlevel_webgl2_defaults()
    } else {
        wgpu::Limits::downlevel_defaults()
    };
    let desc = wgpu::DeviceDescriptor {
        label: Some("memworld player"),
        required_limits: base.using_resolution(adapter.limits()),
        ..Default::default()
    };
    pollster::block_on(adapter.request_device(&desc)).map_err(|e| GpuError::NoDevice {
        adapter: adapter.get_info().name,
        reason: e.to_string(),
    })
}
