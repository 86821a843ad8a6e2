//! Which implementation runs: the CubeCL kernel or the caller's tensor-op reference.
//!
//! The kernels run on burn's CubeCL backends (wgpu, and cuda when built with the `cuda`
//! feature) in f32. Everything else — ndarray, autodiff graphs, other float types — gets
//! `None` from the kernel entry points and the caller runs its reference. (Under autodiff the
//! model records the kernels as single operations on the inner backend with their own
//! backward passes: attention in `model/src/mixers/attention/recompute.rs`, the SSD scan in
//! `model/src/mixers/ssd/autodiff.rs`, the layer ops in `model/src/world/layer_ops.rs`,
//! `model/src/mixers/ssd/conv_op.rs` and `gated_norm_op.rs`.) The
//! selection is made per call from the tensor's backend type, so a model that is generic over
//! `B: Backend` needs no extra bound: a bound on every generic would have to hold for
//! `B::InnerBackend` too, which burn's derived `AutodiffModule` cannot promise.
//!
//! `MEMWORLD_KERNELS` picks the kernels: `all`, `none` (alias `reference`: the tensor ops
//! everywhere, for A/B runs and bisecting), or a comma list of `ssd`, `attention`, `fused`,
//! `optim`.
//! Unset, the default is [`DEFAULT_SELECTION`].

use std::any::{Any, TypeId};
use std::sync::OnceLock;

use burn::tensor::{backend::Backend, DType, Shape, Tensor, TensorPrimitive};
use burn_cubecl::{ops::numeric::empty_device_contiguous_dtype, tensor::CubeTensor, CubeRuntime};

/// Environment variable that selects the kernels (see the module docs).
pub const KERNELS_ENV: &str = "MEMWORLD_KERNELS";

/// Cubes along x of a one-cube-per-row grid (WebGPU's limit per dimension is 65,535); more
/// rows continue along y, so a kernel's row is `CUBE_POS_X + CUBE_POS_Y · GRID_X`.
pub(crate) const GRID_X: usize = 32768;

/// A grid of `cubes` cubes, [`GRID_X`] wide.
pub(crate) fn row_grid(cubes: usize) -> cubecl::prelude::CubeCount {
    let x = cubes.clamp(1, GRID_X);
    cubecl::prelude::CubeCount::Static(x as u32, cubes.div_ceil(GRID_X).max(1) as u32, 1)
}

/// A benchmarking knob: a positive integer read once from the environment variable `name`,
/// else `default`.
pub(crate) struct Knob {
    name: &'static str,
    default: usize,
    value: OnceLock<usize>,
}

impl Knob {
    pub(crate) const fn new(name: &'static str, default: usize) -> Self {
        Self {
            name,
            default,
            value: OnceLock::new(),
        }
    }

    pub(crate) fn get(&self) -> usize {
        *self.value.get_or_init(|| {
            std::env::var(self.name)
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|&k| k > 0)
                .unwrap_or(self.default)
        })
    }
}

/// The kernel families that can be switched on or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelKind {
    /// Chunked SSD and the SSD step.
    Ssd,
    /// Frame-local attention.
    Attention,
    /// The fused inference kernels of a layer's small ops ([`crate::fused`]) and the training
    /// layer ops ([`crate::layer_ops`]).
    Fused,
    /// The optimizer's update ([`crate::optim`]).
    Optim,
}

/// Which kernel families run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selection {
    pub ssd: bool,
    pub attention: bool,
    pub fused: bool,
    pub optim: bool,
}

impl Selection {
    /// Every family.
    pub const ALL: Self = Self {
        ssd: true,
        attention: true,
        fused: true,
        optim: true,
    };
    /// None: the tensor ops everywhere.
    pub const NONE: Self = Self {
        ssd: false,
        attention: false,
        fused: false,
        optim: false,
    };

    fn has(&self, kind: KernelKind) -> bool {
        match kind {
            KernelKind::Ssd => self.ssd,
            KernelKind::Attention => self.attention,
            KernelKind::Fused => self.fused,
            KernelKind::Optim => self.optim,
        }
    }
}

/// Kernels used when [`KERNELS_ENV`] is unset.
pub const DEFAULT_SELECTION: Selection = Selection::ALL;

/// Parse a [`KERNELS_ENV`] value; `Err` names an unknown word.
pub fn parse_selection(value: &str) -> Result<Selection, String> {
    let mut selection = Selection::NONE;
    for word in value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        match word.to_ascii_lowercase().as_str() {
            "all" => selection = Selection::ALL,
            "none" | "reference" => {}
            "ssd" => selection.ssd = true,
            "attention" => selection.attention = true,
            "fused" => selection.fused = true,
            "optim" => selection.optim = true,
            other => {
                return Err(format!(
                    "{KERNELS_ENV}: unknown kernel `{other}` (all, none, reference, ssd, attention, fused, optim)"
                ))
            }
        }
    }
    Ok(selection)
}

/// Is this kernel family selected? The environment is read once per process; an unknown word
/// is reported once and the default used.
pub fn kernel_selected(kind: KernelKind) -> bool {
    static SELECTION: OnceLock<Selection> = OnceLock::new();
    SELECTION
        .get_or_init(|| match std::env::var(KERNELS_ENV) {
            Err(_) => DEFAULT_SELECTION,
            Ok(v) => parse_selection(&v).unwrap_or_else(|e| {
                eprintln!("warning: {e}; using the default");
                DEFAULT_SELECTION
            }),
        })
        .has(kind)
}

/// The CubeCL runtime behind backend `B`, if `B`'s float tensors are CubeCL tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CubeRuntimeKind {
    /// burn-wgpu (Vulkan, Metal, DX12; lavapipe in CI).
    Wgpu,
    /// burn-cuda.
    #[cfg(feature = "cuda")]
    Cuda,
}

/// The runtime whose kernels serve backend `B` for tensors of this dtype, or `None` when the
/// reference must run (other backend, autodiff, non-f32).
pub fn kernel_runtime<B: Backend>(dtype: DType) -> Option<CubeRuntimeKind> {
    if dtype != DType::F32 {
        return None;
    }
    let float = TypeId::of::<B::FloatTensorPrimitive>();
    if float == TypeId::of::<CubeTensor<cubecl::wgpu::WgpuRuntime>>() {
        return Some(CubeRuntimeKind::Wgpu);
    }
    #[cfg(feature = "cuda")]
    if float == TypeId::of::<CubeTensor<cubecl::cuda::CudaRuntime>>() {
        return Some(CubeRuntimeKind::Cuda);
    }
    None
}

/// Would this kernel family serve backend `B` for tensors of `dtype` (selected, and `B` has the
/// kernels)? Lets a caller decide before it gives up ownership of its inputs.
pub fn kernels_serve<B: Backend>(kind: KernelKind, dtype: DType) -> bool {
    kernel_selected(kind) && kernel_runtime::<B>(dtype).is_some()
}

/// The CubeCL tensor inside a `Tensor<B, D>`, as it lies.
///
/// Panics if `B`'s float primitive is not `CubeTensor<R>`; callers check with
/// [`kernel_runtime`] first.
pub(crate) fn cube_of<B: Backend, R: CubeRuntime, const D: usize>(
    t: Tensor<B, D>,
) -> CubeTensor<R> {
    let primitive: Box<dyn Any> = Box::new(t.into_primitive().tensor());
    *primitive
        .downcast::<CubeTensor<R>>()
        .expect("kernel dispatch: backend is not this CubeCL runtime")
}

/// The CubeCL tensor inside a `Tensor<B, D>`, made contiguous (the kernels index flat); same
/// requirement as [`cube_of`].
pub(crate) fn to_cube<B: Backend, R: CubeRuntime, const D: usize>(
    t: Tensor<B, D>,
) -> CubeTensor<R> {
    burn_cubecl::kernel::into_contiguous(cube_of::<B, R, D>(t))
}

/// Are `t`'s elements within a row adjacent (2-d, unit column stride, rows at least their width
/// apart)?
fn rows_adjacent<R: CubeRuntime>(t: &CubeTensor<R>) -> bool {
    let (shape, strides) = (t.meta.shape(), t.meta.strides());
    shape.len() == 2 && strides[1] == 1 && strides[0] >= shape[1]
}

/// A 2-D CubeCL tensor whose rows may lie further apart than their width (burn's CUDA
/// allocations pad rows, e.g. a matrix product's output), for kernels that take a row stride;
/// copied only when its elements within a row are not adjacent.
pub(crate) fn to_cube_rows<B: Backend, R: CubeRuntime>(t: Tensor<B, 2>) -> CubeTensor<R> {
    let cube = cube_of::<B, R, 2>(t);
    match rows_adjacent(&cube) {
        true => cube,
        false => burn_cubecl::kernel::into_contiguous(cube),
    }
}

/// A CubeCL tensor's shape.
pub(crate) fn shape<R: CubeRuntime>(t: &CubeTensor<R>) -> Vec<usize> {
    t.meta.shape().to_vec()
}

/// A 2-D tensor's distance between rows, in elements; panics unless its rows' elements are
/// adjacent (what [`to_cube_rows`] returns).
pub(crate) fn row_stride<R: CubeRuntime>(t: &CubeTensor<R>, what: &str) -> usize {
    assert!(
        rows_adjacent(t),
        "{what}: rows must be 2-d with adjacent elements"
    );
    t.meta.strides()[0]
}

/// Wrap a CubeCL tensor back into a `Tensor<B, D>` (inverse of [`to_cube`]).
pub(crate) fn from_cube<B: Backend, R: CubeRuntime, const D: usize>(
    t: CubeTensor<R>,
) -> Tensor<B, D> {
    let primitive: Box<dyn Any> = Box::new(t);
    let float = *primitive
        .downcast::<B::FloatTensorPrimitive>()
        .expect("kernel dispatch: backend is not this CubeCL runtime");
    Tensor::from_primitive(TensorPrimitive::Float(float))
}

/// An uninitialised contiguous f32 tensor on `like`'s device (the kernels index flat; burn's
/// default allocation may pad rows, e.g. on CUDA for rows not a multiple of 16 bytes).
pub(crate) fn empty_f32<R: CubeRuntime>(like: &CubeTensor<R>, shape: &[usize]) -> CubeTensor<R> {
    empty_device_contiguous_dtype::<R>(
        like.client.clone(),
        like.device.clone(),
        Shape::from(shape.to_vec()),
        DType::F32,
    )
}

/// Run `$body` with `$R` bound to the CubeCL runtime type of `$kind`.
macro_rules! with_runtime {
    ($kind:expr, $R:ident => $body:expr) => {
        match $kind {
            $crate::dispatch::CubeRuntimeKind::Wgpu => {
                type $R = cubecl::wgpu::WgpuRuntime;
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::dispatch::CubeRuntimeKind::Cuda => {
                type $R = cubecl::cuda::CudaRuntime;
                $body
            }
        }
    };
}
pub(crate) use with_runtime;

#[cfg(test)]
mod tests {
    use super::parse_selection;

    #[test]
    fn selection_words_combine_and_unknown_words_are_named() {
        let only = |ssd, attention, fused, optim| super::Selection {
            ssd,
            attention,
            fused,
            optim,
        };
        assert_eq!(parse_selection("all"), Ok(only(true, true, true, true)));
        assert_eq!(
            parse_selection("none"),
            Ok(only(false, false, false, false))
        );
        assert_eq!(
            parse_selection("Reference"),
            Ok(only(false, false, false, false))
        );
        assert_eq!(parse_selection("ssd"), Ok(only(true, false, false, false)));
        assert_eq!(
            parse_selection("fused"),
            Ok(only(false, false, true, false))
        );
        assert_eq!(
            parse_selection("optim"),
            Ok(only(false, false, false, true))
        );
        assert_eq!(
            parse_selection(" attention , ssd "),
            Ok(only(true, true, false, false))
        );
        assert_eq!(parse_selection(""), Ok(only(false, false, false, false)));
        let err = parse_selection("ssd,flash").unwrap_err();
        assert!(err.contains("`flash`"), "{err}");
    }
}
