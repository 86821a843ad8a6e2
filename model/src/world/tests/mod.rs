//! Tests of the assembled world model: the streaming session against the full-sequence
//! forward, causality, the sampler, constant memory, and the dreamed `Env`.

mod causality;
mod common;
mod dream;
mod kernels;
mod presets;
mod session;
