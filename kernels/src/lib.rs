//! memworld kernels: CubeCL kernels for the mixers' hot loops (SPEC §6), selected at run time
//! for burn's CubeCL backends (`dispatch`), each with an independent host reference its tests
//! compare against; plus the one tolerance helper every equivalence test in the workspace uses
//! (STYLE.md item 3).

pub mod attention;
pub mod dispatch;
pub mod fused;
mod grid;
pub mod layer_ops;
pub mod matmul;
pub mod optim;
pub mod ssd;
pub mod testing;
pub mod tolerance;

pub use dispatch::{kernel_selected, kernels_serve, KernelKind, KERNELS_ENV};
