//! Matrix products through a named cubek routine, for measuring which of cubek's routines
//! suits the world model's shapes (`memworld bench kernels --ops matmul`) and for running the
//! linear layers' products in training on the one chosen (`MEMWORLD_MATMUL`;
//! `model/src/linear_routine.rs`).
//!
//! burn's CubeCL backends multiply with cubek's `Auto` strategy when built without burn's
//! autotune (this workspace builds it without: autotune timed every candidate for every shape
//! and a training run never got going). `Auto` is always the simple cyclic routine on the
//! tensor cores. The routines here are cubek's others, launched on the same tensors; their
//! results are the same products up to rounding, which the bench checks against burn's.

use std::sync::OnceLock;

use burn::tensor::{backend::Backend, DType, Tensor};
use burn_cubecl::{tensor::CubeTensor, CubeRuntime};
use cubek::matmul::definition::{MatmulElems, MatmulGlobalElems};
use cubek::matmul::launch::Strategy;
use cubek::matmul::routines::double_buffering::DoubleBufferingArgs;
use cubek::matmul::routines::simple::SimpleArgs;
use cubek::matmul::routines::BlueprintStrategy;
use cubek::std::InputBinding;

use crate::dispatch::{cube_of, empty_f32, from_cube, kernel_runtime, with_runtime};

/// Environment variable naming the routine of the linear layers' products in training: one
/// of [`ROUTINES`], or `burn` for burn's own product; unset, [`DEFAULT_ROUTINE`].
pub const MATMUL_ENV: &str = "MEMWORLD_MATMUL";

/// The routine the linear layers' products take in training unless [`MATMUL_ENV`] says
/// otherwise: the double-buffered one loading through the tensor memory accelerator, 1.3–1.4×
/// burn's product over the world model's linear shapes on an H200 (`memworld bench kernels
/// --ops matmul`; README "Measured"). Where a device lacks what it needs (TMA: NVIDIA Hopper
/// and later; tensor cores at all on most wgpu adapters), its setup fails and burn's product
/// runs.
pub const DEFAULT_ROUTINE: &str = "double-tma";

/// The routines by name: cubek's strategies on the tensor cores (`cmma`: the warp-level
/// matrix API, `mma`: explicit register fragments) and one without them. Not listed: cubek's
/// double-buffered unit routine, whose product with a transposed operand of 152 columns was
/// wrong (21% of the scale on lavapipe), and the vector-matrix ones (the shapes here are
/// matrices).
pub const ROUTINES: [&str; 15] = [
    "auto",
    "simple-multi-rows",
    "simple-mma",
    "double-cyclic",
    "double-cyclic-mma",
    "double-cyclic-specialized",
    "double-tilewise",
    "double-hybrid",
    "ordered-double",
    "ordered-double-mma",
    "specialized-cyclic",
    "simple-tma",
    "double-tma",
    "specialized-tma",
    "simple-unit",
];

/// cubek's strategy for a routine name.
fn strategy(name: &str) -> Option<Strategy> {
    let simple = |multi_rows| SimpleArgs {
        multi_rows,
        ..Default::default()
    };
    let double = |specialized| DoubleBufferingArgs {
        specialized,
        ..Default::default()
    };
    use BlueprintStrategy::Inferred;
    Some(match name {
        "auto" => Strategy::Auto,
        "simple-multi-rows" => Strategy::SimpleCyclicCmma(Inferred(simple(true))),
        "simple-mma" => Strategy::SimpleCyclicMma(Inferred(simple(false))),
        "double-cyclic" => Strategy::DoubleCyclicCmma(Inferred(double(false))),
        "double-cyclic-mma" => Strategy::DoubleCyclicMma(Inferred(double(false))),
        "double-cyclic-specialized" => Strategy::DoubleCyclicCmma(Inferred(double(true))),
        "double-tilewise" => Strategy::DoubleTilewiseCmma(Inferred(double(false))),
        "double-hybrid" => Strategy::DoubleHybridCmma(Inferred(double(false))),
        "ordered-double" => Strategy::OrderedDoubleCmma(Inferred(Default::default())),
        "ordered-double-mma" => Strategy::OrderedDoubleMma(Inferred(Default::default())),
        "specialized-cyclic" => Strategy::SpecializedCyclicCmma(Inferred(Default::default())),
        "simple-tma" => Strategy::SimpleTmaCmma(Inferred(simple(false))),
        "specialized-tma" => Strategy::SpecializedTmaCmma(Inferred(Default::default())),
        "double-tma" => Strategy::DoubleTmaCmma(Inferred(double(false))),
        "simple-unit" => Strategy::SimpleUnit(Inferred(Default::default())),
        _ => return None,
    })
}

/// The routine [`MATMUL_ENV`] names, read once: `None` for burn's product. Unset, it is
/// [`DEFAULT_ROUTINE`]; an unknown name is reported once and burn's product runs.
pub fn selected_routine() -> Option<&'static str> {
    static ROUTINE: OnceLock<Option<&'static str>> = OnceLock::new();
    *ROUTINE.get_or_init(|| {
        let Ok(name) = std::env::var(MATMUL_ENV) else {
            return Some(DEFAULT_ROUTINE);
        };
        let name = name.trim();
        if name == "burn" {
            return None;
        }
        let found = ROUTINES.into_iter().find(|r| *r == name);
        if found.is_none() {
            eprintln!(
                "warning: {MATMUL_ENV}: unknown routine `{name}` (burn, {}); using burn's product",
                ROUTINES.join(", ")
            );
        }
        found
    })
}

/// `lhs · rhs` over the last two dimensions, batched (and broadcast, where one side's batch
/// size is 1) over the others, by cubek's routine `name`. Inputs may be strided views (e.g.
/// transposed). `Err` when `B` is not a CubeCL backend in f32, the name is unknown, or the
/// routine cannot run this product on this device.
pub fn routine_matmul<B: Backend, const D: usize>(
    name: &str,
    lhs: Tensor<B, D>,
    rhs: Tensor<B, D>,
) -> Result<Tensor<B, D>, String> {
    let runtime = kernel_runtime::<B>(lhs.dtype())
        .ok_or_else(|| "matmul routines need a CubeCL backend in f32".to_string())?;
    let strategy = strategy(name).ok_or_else(|| format!("unknown matmul routine `{name}`"))?;
    let (l, r) = (lhs.dims(), rhs.dims());
    assert_eq!(
        l[D - 1],
        r[D - 2],
        "routine_matmul: inner dimensions differ"
    );
    let mut out_shape: Vec<usize> = (0..D - 2).map(|i| l[i].max(r[i])).collect();
    out_shape.extend([l[D - 2], r[D - 1]]);
    with_runtime!(runtime, R => {
        let lhs = cube_of::<B, R, D>(lhs);
        let out = empty_f32(&lhs, &out_shape);
        launch::<R>(&strategy, lhs, cube_of::<B, R, D>(rhs), out.clone())?;
        Ok(from_cube::<B, R, D>(out))
    })
}

fn launch<R: CubeRuntime>(
    strategy: &Strategy,
    lhs: CubeTensor<R>,
    rhs: CubeTensor<R>,
    out: CubeTensor<R>,
) -> Result<(), String> {
    let f32_type = DType::F32.into();
    let mut dtypes = MatmulElems::from_globals(&MatmulGlobalElems {
        lhs: f32_type,
        rhs: f32_type,
        out: f32_type,
    });
    let client = out.client.clone();
    cubek::matmul::launch::launch_ref(
        strategy,
        &client,
        InputBinding::new(lhs.binding(), f32_type),
        InputBinding::new(rhs.binding(), f32_type),
        out.binding(),
        &mut dtypes,
    )
    .map_err(|e| format!("{e:?}"))
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Tensor, TensorData};

    use super::*;
    use crate::testing::{uniform, GpuTarget};
    use crate::tolerance::{assert_close_slices, to_vec};

    /// `a · b` on the host in f64: `a` `[batch_a, m, k]`, `b` `[batch_b, k, n]` row-major,
    /// a batch of 1 broadcast.
    fn host_matmul(a: &[f32], b: &[f32], [ba, bb, m, k, n]: [usize; 5]) -> Vec<f32> {
        let batch = ba.max(bb);
        let mut out = vec![0.0; batch * m * n];
        for z in 0..batch {
            let (za, zb) = (if ba == 1 { 0 } else { z }, if bb == 1 { 0 } else { z });
            for i in 0..m {
                for j in 0..n {
                    let dot: f64 = (0..k)
                        .map(|l| a[(za * m + i) * k + l] as f64 * b[(zb * k + l) * n + j] as f64)
                        .sum();
                    out[(z * m + i) * n + j] = dot as f32;
                }
            }
        }
        out
    }

    /// Every routine that runs on the device gives the host product — on awkward sizes, with
    /// one side broadcast over the batch and operands given as transposed views (as the
    /// gradients take them) — and the routines the linear layers need on any device run.
    fn routines_equal_the_host_product<T: GpuTarget>() {
        let Some(device) = T::device() else { return };
        let mut ran = Vec::new();
        for [ba, bb, m, k, n] in [[3, 1, 7, 5, 9], [2, 2, 64, 152, 32], [1, 1, 130, 33, 66]] {
            let a = uniform(ba * m * k, -1.0, 1.0, 1);
            let b = uniform(bb * k * n, -1.0, 1.0, 2);
            let want = host_matmul(&a, &b, [ba, bb, m, k, n]);
            // a given as the transpose of its transpose: a strided view of [ba, k, m] data
            let a_t: Vec<f32> = (0..ba * m * k)
                .map(|t| {
                    let (z, l, i) = (t / (k * m), t / m % k, t % m);
                    a[(z * m + i) * k + l]
                })
                .collect();
            let lhs_views = [
                Tensor::<T::B, 3>::from_data(TensorData::new(a.clone(), [ba, m, k]), &device),
                Tensor::<T::B, 3>::from_data(TensorData::new(a_t, [ba, k, m]), &device)
                    .swap_dims(1, 2),
            ];
            let rhs = Tensor::<T::B, 3>::from_data(TensorData::new(b.clone(), [bb, k, n]), &device);
            for (view, lhs) in lhs_views.into_iter().enumerate() {
                for routine in ROUTINES {
                    let Ok(got) = routine_matmul(routine, lhs.clone(), rhs.clone()) else {
                        continue;
                    };
                    assert_eq!(got.dims(), [ba.max(bb), m, n], "{routine}");
                    let what = format!("{routine} {:?} view {view}", [ba, bb, m, k, n]);
                    // the tensor-core routines multiply in TF32 (10-bit mantissas)
                    assert_close_slices(&what, &to_vec(got), &want, 3e-3, 1e-5);
                    ran.push(routine);
                }
            }
        }
        for routine in ["auto", "simple-unit"] {
            assert_eq!(
                ran.iter().filter(|r| **r == routine).count(),
                6,
                "{routine} ran"
            );
        }
        assert!(routine_matmul::<T::B, 3>(
            "nope",
            Tensor::zeros([1, 2, 2], &device),
            Tensor::zeros([1, 2, 2], &device)
        )
        .is_err());
    }

    crate::gpu_tests!(routines_equal_the_host_product);

    #[test]
    fn other_backends_are_refused() {
        type Cpu = burn::backend::NdArray;
        let device = Default::default();
        let t = || Tensor::<Cpu, 3>::zeros([1, 2, 2], &device);
        let err = routine_matmul("auto", t(), t()).unwrap_err();
        assert!(err.contains("CubeCL"), "{err}");
    }
}
