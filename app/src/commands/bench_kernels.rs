//! `memworld bench kernels` (SPEC §6, §8): each CubeCL kernel against its tensor-op reference
//! at the world model's shapes, in one process on one device. Every row first checks that the
//! two agree (max error relative to the reference's scale), then times both; the report gives
//! kernel speed as a ratio to the reference measured in the same run.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::backend::Autodiff;
use burn::tensor::{backend::Backend, Distribution, ElementConversion, Tensor};
use clap::{Args, ValueEnum};
use model::linear_rows::RowGrouping;
use model::mixers::attention::tensor_op_frame_attention;
use model::mixers::ssd::{chunked_ssd, ssd_scan, step_by_tensor_ops, Mamba2Config};
use model::world::data::panic_message;
use model::world::{AttentionKind, WorldModelConfig};
use scenes::episode::atomic::write_bytes_atomic;
use serde::Serialize;

use super::backend::{run_on, BackendKind, OnBackend};
use super::bench::stats;
use super::{bench_layer_ops, bench_linear};

/// Kernels the bench can time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KernelOp {
    /// Chunked SSD forward over block-wise sequences (one per spatial block).
    Ssd,
    /// Chunked SSD forward and backward, as training runs it (`ssd_scan` under autodiff: the
    /// kernel forward with the recomputing chunk backward), against burn's autodiff through the
    /// chunk algorithm by tensor ops. Gradients of every input are compared.
    SsdBackward,
    /// One SSD step for every block sequence and head.
    Step,
    /// Frame-local attention forward over whole clips.
    Attention,
    /// Frame-local attention forward and backward over whole clips, against the model's
    /// tensor-op training path under autodiff (with `MEMWORLD_KERNELS=none`: burn's autodiff
    /// storing the scores; else the backward that recomputes them). Gradients of all three
    /// inputs are compared.
    AttentionBackward,
    /// The linear layers over the tokens, forward and backward, with one product per frame's
    /// tokens (`MEMWORLD_LINEAR_ROWS=grouped`) against burn's batched products. The output and
    /// the input, weight and bias gradients are compared.
    LinearGrouped,
    /// The same with one product over all rows (`MEMWORLD_LINEAR_ROWS=flat`).
    LinearFlat,
    /// adaLN's layer norm + modulation over the tokens, forward and backward, on the layer-op
    /// kernels as training records it, against burn's autodiff through the tensor ops. The
    /// output and the input, shift and scale gradients are compared.
    NormModulate,
    /// The MLP's GELU over its hidden tokens, forward and backward, the same way (burn's GELU
    /// backward is the derivative of the tanh approximation: ~1e-3 off the kernel's exact one).
    Gelu,
    /// Mamba-2's causal depthwise convolution + SiLU over the SSD channels of the tokens in
    /// sequence order, forward and backward, the same way. The output and the input, carried
    /// input, weight and bias gradients are compared.
    ConvSilu,
    /// Mamba-2's D skip + gated RMSNorm over the tokens in sequence order, forward and
    /// backward, the same way. The output and the y, x, z, D and weight gradients are compared.
    GatedNorm,
    /// The linear layers' three products with one product per frame's tokens (forward
    /// `x·W`, input gradient `dy·Wᵀ`, weight gradient `xᵀ·dy`) by each of cubek's matrix
    /// routines (`--routines`) against burn's own product (cubek's `auto`).
    Matmul,
}

/// Time each kernel against its tensor-op reference over a sweep of the model's shapes.
///
/// SSD rows use the block-wise layout: with square blocks of side `b` on the token grid,
/// a clip of F frames is (grid/b)² sequences of F·b² tokens per batch element.
#[derive(Args, Debug)]
pub struct KernelsBenchArgs {
    /// Model preset whose sizes are used (heads, head sizes, d_state, window, token grid).
    #[arg(long, default_value = "maze-small", value_name = "PRESET")]
    pub config: String,
    /// Clips per batch.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Clip lengths in frames.
    #[arg(long, value_delimiter = ',', default_value = "16,64")]
    pub frames: Vec<usize>,
    /// Block sides (in tokens) for the SSD rows.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16")]
    pub blocks: Vec<usize>,
    /// Kernels to time (ssd-backward, attention-backward: forward and backward together;
    /// linear-grouped, linear-flat, norm-modulate, gelu, conv-silu and gated-norm, also
    /// forward and backward, and matmul are timed when asked for).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ssd,ssd-backward,step,attention,attention-backward"
    )]
    pub ops: Vec<KernelOp>,
    /// Routines the matmul rows try (default: every one; see `MEMWORLD_MATMUL`).
    #[arg(long, value_delimiter = ',', value_name = "ROUTINE", value_parser = clap::builder::PossibleValuesParser::new(kernels::matmul::ROUTINES))]
    pub routines: Vec<String>,
    /// Timed calls per implementation and shape (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Untimed calls first (kernel compilation, autotuning, allocation).
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Compute backend: the kernels exist for wgpu and cuda.
    #[arg(long, value_enum, default_value_t = BackendKind::Wgpu)]
    pub backend: BackendKind,
    /// JSON report to write [default: bench-kernels.json].
    #[arg(long, value_name = "FILE.json")]
    pub out: Option<PathBuf>,
}

/// One shape of one kernel.
#[derive(Debug, Serialize)]
pub struct KernelRow {
    pub op: KernelOp,
    pub shape: String,
    pub reference_ms: Option<f64>,
    pub kernel_ms: Option<f64>,
    /// reference_ms / kernel_ms.
    pub speedup: Option<f64>,
    /// max |kernel − reference| / max |reference|.
    pub rel_error: Option<f64>,
    /// Why the row has no figures (e.g. out of memory).
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    config: String,
    backend: &'static str,
    batch: usize,
    reps: usize,
    rows: Vec<KernelRow>,
}

struct KernelsJob(KernelsBenchArgs);

impl OnBackend for KernelsJob {
    type Output = ();
    fn run<B: Backend>(self, device: B::Device) -> Result<()> {
        bench_kernels::<B>(&self.0, &device)
    }
}

pub fn run(args: KernelsBenchArgs) -> Result<()> {
    if args.reps == 0 || args.batch == 0 {
        bail!("--reps and --batch must be at least 1");
    }
    if args.frames.contains(&0) || args.blocks.contains(&0) {
        bail!("--frames and --blocks must be at least 1");
    }
    run_on(args.backend, KernelsJob(args))
}

/// Median wall time of `f` in ms, the device synchronised around each call.
fn time<B: Backend, T>(
    device: &B::Device,
    warmup: usize,
    reps: usize,
    mut f: impl FnMut() -> T,
) -> f64 {
    for _ in 0..warmup {
        drop(f());
    }
    let _ = B::sync(device);
    let times: Vec<f64> = (0..reps)
        .map(|_| {
            let t0 = Instant::now();
            drop(f());
            let _ = B::sync(device);
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    stats(&times).0
}

/// max |a − b| / max |b| on the device.
fn rel_error<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f64 {
    let err: f32 = (a - b.clone()).abs().max().into_scalar().elem();
    let scale: f32 = b.abs().max().into_scalar().elem();
    err as f64 / (scale as f64).max(1e-30)
}

fn uniform<B: Backend, const D: usize>(
    shape: [usize; D],
    lo: f64,
    hi: f64,
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::random(shape, Distribution::Uniform(lo, hi), device)
}

/// Check, then time, one shape; a failure (e.g. out of memory) becomes a row with the reason.
fn measure<B: Backend, const D: usize>(
    op: KernelOp,
    shape: String,
    args: &KernelsBenchArgs,
    device: &B::Device,
    reference: impl Fn() -> Tensor<B, D>,
    kernel: impl Fn() -> Tensor<B, D>,
) -> KernelRow {
    let run = || {
        let rel = rel_error(kernel(), reference());
        let k = time::<B, _>(device, args.warmup, args.reps, &kernel);
        let r = time::<B, _>(device, args.warmup, args.reps, &reference);
        (rel, r, k)
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok((rel, r, k)) => KernelRow {
            op,
            shape,
            reference_ms: Some(r),
            kernel_ms: Some(k),
            speedup: Some(r / k),
            rel_error: Some(rel),
            error: None,
        },
        Err(e) => KernelRow {
            op,
            shape,
            reference_ms: None,
            kernel_ms: None,
            speedup: None,
            rel_error: None,
            error: Some(
                panic_message(e.as_ref())
                    .lines()
                    .next()
                    .unwrap_or("failed")
                    .to_string(),
            ),
        },
    }
}

/// `t` on autodiff, tracked: a leaf whose gradient the bench reads.
pub(super) fn track<B: Backend, const D: usize>(t: &Tensor<B, D>) -> Tensor<Autodiff<B>, D> {
    Tensor::from_inner(t.clone()).require_grad()
}

/// `[dq, dk, dv]` (concatenated over frames) of the tensor-op attention under autodiff for the
/// output gradient `dout`, forward included.
fn tensor_op_gradients<B: Backend>(
    [q, k, v, dout]: [&Tensor<B, 5>; 4],
    window: Option<usize>,
) -> Tensor<B, 5> {
    let (q, k, v) = (track(q), track(k), track(v));
    let out = tensor_op_frame_attention(q.clone(), k.clone(), v.clone(), window, 1);
    let grads = (out * Tensor::from_inner(dout.clone())).sum().backward();
    let grad = |t: &Tensor<Autodiff<B>, 5>| t.grad(&grads).expect("attention input has a gradient");
    Tensor::cat(vec![grad(&q), grad(&k), grad(&v)], 2)
}

/// Inputs of one SSD row.
#[derive(Clone)]
struct SsdArgs<B: Backend> {
    x: Tensor<B, 4>,
    dt: Tensor<B, 3>,
    a: Tensor<B, 1>,
    b: Tensor<B, 4>,
    c: Tensor<B, 4>,
    s0: Tensor<B, 4>,
}

/// The gradients of every input of `scan` under autodiff (flattened and concatenated) for the
/// output gradient `dy` and final-state gradient `ds`, forward included.
fn ssd_gradients<B: Backend>(
    i: &SsdArgs<B>,
    [dy, ds]: [&Tensor<B, 4>; 2],
    scan: impl Fn(
        Tensor<Autodiff<B>, 4>,
        Tensor<Autodiff<B>, 3>,
        Tensor<Autodiff<B>, 1>,
        Tensor<Autodiff<B>, 4>,
        Tensor<Autodiff<B>, 4>,
        Tensor<Autodiff<B>, 4>,
    ) -> (Tensor<Autodiff<B>, 4>, Tensor<Autodiff<B>, 4>),
) -> Tensor<B, 1> {
    let (x, dt, a, b, c, s0) = (
        track(&i.x),
        track(&i.dt),
        track(&i.a),
        track(&i.b),
        track(&i.c),
        track(&i.s0),
    );
    let (y, s) = scan(
        x.clone(),
        dt.clone(),
        a.clone(),
        b.clone(),
        c.clone(),
        s0.clone(),
    );
    let loss =
        (y * Tensor::from_inner(dy.clone())).sum() + (s * Tensor::from_inner(ds.clone())).sum();
    let grads = loss.backward();
    let missing = "SSD input has a gradient";
    Tensor::cat(
        vec![
            x.grad(&grads).expect(missing).flatten(0, 3),
            dt.grad(&grads).expect(missing).flatten(0, 2),
            a.grad(&grads).expect(missing),
            b.grad(&grads).expect(missing).flatten(0, 3),
            c.grad(&grads).expect(missing).flatten(0, 3),
            s0.grad(&grads).expect(missing).flatten(0, 3),
        ],
        0,
    )
}

/// An op's name as on the command line.
fn op_name(op: KernelOp) -> String {
    op.to_possible_value()
        .map_or_else(|| format!("{op:?}"), |v| v.get_name().to_string())
}

fn bench_kernels<B: Backend>(args: &KernelsBenchArgs, device: &B::Device) -> Result<()> {
    if kernels::dispatch::kernel_runtime::<B>(burn::tensor::DType::F32).is_none() {
        bail!(
            "--backend {}: no kernels on this backend (they exist for wgpu and cuda)",
            args.backend.name()
        );
    }
    let cfg = WorldModelConfig::preset(&args.config)?;
    let grid = cfg.resolution / cfg.patch;
    let heads = cfg.d_model * cfg.expand / cfg.ssm_head_dim;
    let (p, n) = (cfg.ssm_head_dim, cfg.d_state);
    let att_hd = cfg.d_model / cfg.n_heads;
    // None: the preset has no attention; Some(None): attention over all past frames.
    let attention_window = match cfg.attention {
        AttentionKind::Window(w) => Some(Some(w)),
        AttentionKind::Full => Some(None),
        AttentionKind::None => None,
    };
    let batch = args.batch;
    let mut rows = Vec::new();
    // Quiet the default panic message while a row may fail (it becomes the row's error).
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for &op in &args.ops {
        for &frames in &args.frames {
            match op {
                KernelOp::Ssd | KernelOp::SsdBackward => {
                    for &side in &args.blocks {
                        if grid % side != 0 {
                            continue;
                        }
                        let seqs = batch * (grid / side).pow(2);
                        let len = frames * side * side;
                        let shape = format!("{frames} frames, block {side}x{side}: {seqs} seqs x {len} tokens, {heads}x{p} heads, d_state {n}");
                        eprintln!("{}: {shape}", op_name(op));
                        let x = uniform::<B, 4>([seqs, len, heads, p], -1.0, 1.0, device);
                        let dt = uniform::<B, 3>([seqs, len, heads], 0.001, 0.1, device);
                        let a = uniform::<B, 1>([heads], -2.0, -0.5, device);
                        let b = uniform::<B, 4>([seqs, len, 1, n], -1.0, 1.0, device);
                        let c = uniform::<B, 4>([seqs, len, 1, n], -1.0, 1.0, device);
                        let s0 = uniform::<B, 4>([seqs, heads, p, n], -1.0, 1.0, device);
                        let inputs = SsdArgs { x, dt, a, b, c, s0 };
                        let row = if op == KernelOp::Ssd {
                            measure(
                                op,
                                shape,
                                args,
                                device,
                                || {
                                    let i = inputs.clone();
                                    chunked_ssd(
                                        i.x,
                                        i.dt,
                                        i.a,
                                        i.b,
                                        i.c,
                                        Some(i.s0),
                                        cfg.chunk_size,
                                    )
                                    .0
                                },
                                || {
                                    let i = inputs.clone();
                                    kernels::ssd::chunked_ssd(i.x, i.dt, i.a, i.b, i.c, Some(i.s0))
                                        .0
                                },
                            )
                        } else {
                            let dy = uniform::<B, 4>([seqs, len, heads, p], -1.0, 1.0, device);
                            let ds = uniform::<B, 4>([seqs, heads, p, n], -1.0, 1.0, device);
                            let chunk = cfg.chunk_size;
                            measure(
                                op,
                                shape,
                                args,
                                device,
                                || {
                                    ssd_gradients(&inputs, [&dy, &ds], |x, dt, a, b, c, s0| {
                                        chunked_ssd(x, dt, a, b, c, Some(s0), chunk)
                                    })
                                },
                                || {
                                    ssd_gradients(&inputs, [&dy, &ds], |x, dt, a, b, c, s0| {
                                        ssd_scan(x, dt, a, b, c, Some(s0), chunk)
                                    })
                                },
                            )
                        };
                        rows.push(row);
                    }
                }
                KernelOp::Step => {
                    if frames != args.frames[0] {
                        continue; // a step has no length
                    }
                    let seqs = batch * grid * grid;
                    let shape = format!("{seqs} seqs, {heads}x{p} heads, d_state {n}");
                    eprintln!("step: {shape}");
                    let x = uniform::<B, 3>([seqs, heads, p], -1.0, 1.0, device);
                    let dt = uniform::<B, 2>([seqs, heads], 0.001, 0.1, device);
                    let a = uniform::<B, 1>([heads], -2.0, -0.5, device);
                    let b = uniform::<B, 3>([seqs, 1, n], -1.0, 1.0, device);
                    let c = uniform::<B, 3>([seqs, 1, n], -1.0, 1.0, device);
                    let s = uniform::<B, 4>([seqs, heads, p, n], -1.0, 1.0, device);
                    let inputs = || {
                        (
                            x.clone(),
                            dt.clone(),
                            a.clone(),
                            b.clone(),
                            c.clone(),
                            s.clone(),
                        )
                    };
                    rows.push(measure(
                        op,
                        shape,
                        args,
                        device,
                        || {
                            let (x, dt, a, b, c, s) = inputs();
                            step_by_tensor_ops(x, dt, a, b, c, s).1
                        },
                        || {
                            let (x, dt, a, b, c, s) = inputs();
                            kernels::ssd::ssd_step(x, dt, a, b, c, s).1
                        },
                    ));
                }
                KernelOp::LinearGrouped | KernelOp::LinearFlat => {
                    let grouping = match op {
                        KernelOp::LinearGrouped => RowGrouping::Grouped,
                        _ => RowGrouping::Flat,
                    };
                    for (name, d_in, d_out) in bench_linear::layers(&cfg) {
                        let shape = format!(
                            "{name}: {} rows x {d_in} -> {d_out}",
                            batch * frames * grid * grid
                        );
                        eprintln!("{}: {shape}", op_name(op));
                        let (b, f, g) = (batch, frames, grid);
                        let x = uniform::<B, 5>([b, f, g, g, d_in], -1.0, 1.0, device);
                        let dy = uniform::<B, 5>([b, f, g, g, d_out], -1.0, 1.0, device);
                        let weight = uniform::<B, 2>([d_in, d_out], -0.1, 0.1, device);
                        let bias = uniform::<B, 1>([d_out], -0.1, 0.1, device);
                        let run = |g| bench_linear::gradients(g, [&x, &dy], &weight, &bias);
                        rows.push(measure(
                            op,
                            shape,
                            args,
                            device,
                            || run(RowGrouping::Batched),
                            || run(grouping),
                        ));
                    }
                }
                KernelOp::Matmul => {
                    let routines: Vec<&str> = match args.routines.is_empty() {
                        true => kernels::matmul::ROUTINES.to_vec(),
                        false => args.routines.iter().map(String::as_str).collect(),
                    };
                    let groups = batch * frames;
                    for (name, d_in, d_out) in bench_linear::layers(&cfg) {
                        let products = bench_linear::products::<B>(
                            [groups, grid * grid],
                            [d_in, d_out],
                            device,
                        );
                        for (kind, lhs, rhs) in &products {
                            let [count, m, k] = lhs.dims();
                            let n = rhs.dims()[2];
                            for &routine in &routines {
                                let shape = format!(
                                    "{name} {kind}: {count} x [{m}x{k}]·[{k}x{n}], {routine}"
                                );
                                eprintln!("{}: {shape}", op_name(op));
                                rows.push(measure(
                                    op,
                                    shape,
                                    args,
                                    device,
                                    || lhs.clone().matmul(rhs.clone()),
                                    || {
                                        kernels::matmul::routine_matmul(
                                            routine,
                                            lhs.clone(),
                                            rhs.clone(),
                                        )
                                        .unwrap_or_else(|e| panic!("{e}"))
                                    },
                                ));
                            }
                        }
                    }
                }
                KernelOp::NormModulate | KernelOp::Gelu => {
                    let (b, f, g, d) = (batch, frames, grid, cfg.d_model);
                    let width = match op {
                        KernelOp::Gelu => cfg.mlp_ratio * d,
                        _ => d,
                    };
                    let shape = format!("{} rows x {width}", b * f * g * g);
                    eprintln!("{}: {shape}", op_name(op));
                    let x = uniform::<B, 5>([b, f, g, g, width], -2.0, 2.0, device);
                    let dy = uniform::<B, 5>([b, f, g, g, width], -1.0, 1.0, device);
                    let shift = uniform::<B, 3>([b, f, d], -1.0, 1.0, device);
                    let scale = uniform::<B, 3>([b, f, d], -0.5, 0.5, device);
                    let run = |kernels| match op {
                        KernelOp::Gelu => bench_layer_ops::gelu_gradients(kernels, [&x, &dy]),
                        _ => bench_layer_ops::norm_gradients(kernels, [&x, &dy], [&shift, &scale]),
                    };
                    rows.push(measure(
                        op,
                        shape,
                        args,
                        device,
                        || run(false),
                        || run(true),
                    ));
                }
                KernelOp::ConvSilu => {
                    let mamba = Mamba2Config::new(cfg.d_model)
                        .with_d_state(cfg.d_state)
                        .with_head_dim(cfg.ssm_head_dim)
                        .with_expand(cfg.expand);
                    let (tokens, channels) = (frames * grid * grid, mamba.conv_dim());
                    let shape = format!("{batch} x {tokens} tokens x {channels} channels");
                    eprintln!("{}: {shape}", op_name(op));
                    let xbc = uniform::<B, 3>([batch, tokens, channels], -2.0, 2.0, device);
                    let dy = uniform::<B, 3>([batch, tokens, channels], -1.0, 1.0, device);
                    let state = uniform::<B, 3>([batch, channels, 3], -1.0, 1.0, device);
                    let weight = uniform::<B, 2>([channels, 4], -0.5, 0.5, device);
                    let bias = uniform::<B, 1>([channels], -0.5, 0.5, device);
                    let run = |kernels| {
                        bench_layer_ops::conv_gradients(
                            kernels,
                            [&xbc, &dy, &state],
                            &weight,
                            &bias,
                        )
                    };
                    rows.push(measure(
                        op,
                        shape,
                        args,
                        device,
                        || run(false),
                        || run(true),
                    ));
                }
                KernelOp::GatedNorm => {
                    let tokens = frames * grid * grid;
                    let d_inner = cfg.d_model * cfg.expand;
                    let heads = d_inner / cfg.ssm_head_dim;
                    let shape = format!("{batch} x {tokens} tokens x {d_inner} channels");
                    eprintln!("{}: {shape}", op_name(op));
                    let head_rows = [batch, tokens, heads, cfg.ssm_head_dim];
                    let y = uniform::<B, 4>(head_rows, -2.0, 2.0, device);
                    let x = uniform::<B, 4>(head_rows, -2.0, 2.0, device);
                    let flat = [batch * tokens, d_inner];
                    let z = uniform::<B, 2>(flat, -2.0, 2.0, device);
                    let dy = uniform::<B, 2>(flat, -1.0, 1.0, device);
                    let d_skip = uniform::<B, 1>([heads], 0.5, 1.5, device);
                    let weight = uniform::<B, 1>([d_inner], 0.5, 1.5, device);
                    let run = |kernels| {
                        bench_layer_ops::gated_norm_gradients(
                            kernels,
                            [&y, &x],
                            [&z, &dy],
                            [&d_skip, &weight],
                        )
                    };
                    rows.push(measure(
                        op,
                        shape,
                        args,
                        device,
                        || run(false),
                        || run(true),
                    ));
                }
                KernelOp::Attention | KernelOp::AttentionBackward => {
                    let Some(window) = attention_window else {
                        continue;
                    };
                    let tokens = grid * grid;
                    let shape = format!(
                        "{frames} frames x {tokens} tokens, {}x{att_hd} heads, window {}",
                        cfg.n_heads,
                        window.map_or("all".into(), |w| w.to_string())
                    );
                    eprintln!("attention: {shape}");
                    let qkv = || {
                        uniform::<B, 5>(
                            [batch, cfg.n_heads, frames, tokens, att_hd],
                            -1.0,
                            1.0,
                            device,
                        )
                    };
                    let (q, k, v) = (qkv(), qkv(), qkv());
                    let kernel = || {
                        kernels::attention::frame_attention(q.clone(), k.clone(), v.clone(), window)
                    };
                    let row = if op == KernelOp::Attention {
                        measure(
                            op,
                            shape,
                            args,
                            device,
                            || {
                                tensor_op_frame_attention(
                                    q.clone(),
                                    k.clone(),
                                    v.clone(),
                                    window,
                                    1,
                                )
                            },
                            kernel,
                        )
                    } else {
                        let dout = qkv();
                        measure(
                            op,
                            shape,
                            args,
                            device,
                            || tensor_op_gradients([&q, &k, &v, &dout], window),
                            || {
                                let (out, lse) = kernels::attention::frame_attention_with_lse(
                                    q.clone(),
                                    k.clone(),
                                    v.clone(),
                                    window,
                                );
                                let grads = kernels::attention::frame_attention_backward(
                                    [q.clone(), k.clone(), v.clone(), out, dout.clone()],
                                    lse,
                                    window,
                                );
                                Tensor::cat(grads.to_vec(), 2)
                            },
                        )
                    };
                    rows.push(row);
                }
            }
        }
    }
    std::panic::set_hook(hook);

    let report = Report {
        config: cfg.name.clone(),
        backend: args.backend.name(),
        batch,
        reps: args.reps,
        rows,
    };
    println!(
        "kernel bench: {} shapes, backend {}, batch {batch}, median of {} calls",
        report.config, report.backend, args.reps
    );
    println!(
        "{:<18} {:>12} {:>12} {:>9} {:>10}  shape",
        "kernel", "reference ms", "kernel ms", "speedup", "rel error"
    );
    for r in &report.rows {
        let op = op_name(r.op);
        match (
            &r.error,
            r.reference_ms,
            r.kernel_ms,
            r.speedup,
            r.rel_error,
        ) {
            (None, Some(rm), Some(km), Some(s), Some(e)) => println!(
                "{op:<18} {rm:>12.3} {km:>12.3} {s:>8.2}x {e:>10.1e}  {}",
                r.shape
            ),
            (err, ..) => println!(
                "{op:<18} {:>12} {:>12} {:>9} {:>10}  {} ({})",
                "-",
                "-",
                "-",
                "-",
                r.shape,
                err.as_deref().unwrap_or("failed")
            ),
        }
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("bench-kernels.json"));
    let mut json = serde_json::to_string_pretty(&report).expect("reports serialise");
    json.push('\n');
    write_bytes_atomic(&out, json.as_bytes())
        .with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(())
}
