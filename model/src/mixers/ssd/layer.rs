//! The Mamba-2 layer (Dao & Gu 2024, §7.1, Figure 6; SPEC §5.3): one input projection to
//! [z, xBC, dt], a causal depthwise convolution over xBC with its own carried state, SiLU, the
//! SSD scan, the D skip, a gated RMSNorm (norm(y · SiLU(z)), normalised after the gate) and an
//! output projection. `forward` runs the chunked scan over a sequence; `step` runs the recurrence
//! for one token; both read and return a caller-owned [`Mamba2State`].

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::silu;
use burn::tensor::{backend::Backend, Distribution, Tensor, TensorData};

use super::{conv_op, gated_norm_op, ssd_scan, ssd_step};
use crate::mixers::blockwise::{from_sequence_order, to_sequence_order};
use crate::precision::linear;
use kernels::fused::{BlockOrder, MambaDims, ScanInputs};

/// Configuration of a [`Mamba2`] layer. Defaults follow Mamba-2.
#[derive(Config, Debug)]
pub struct Mamba2Config {
    /// Width of the residual stream.
    pub d_model: usize,
    /// State size N per head. Default: 64.
    #[config(default = 64)]
    pub d_state: usize,
    /// Channels P per head. Default: 64.
    #[config(default = 64)]
    pub head_dim: usize,
    /// d_inner = expand · d_model. Default: 2.
    #[config(default = 2)]
    pub expand: usize,
    /// Groups of heads sharing B and C (and the norm's groups). Default: 1.
    #[config(default = 1)]
    pub n_groups: usize,
    /// Width of the causal depthwise convolution. Default: 4.
    #[config(default = 4)]
    pub d_conv: usize,
    /// Chunk length of the chunked scan. Default: 64.
    #[config(default = 64)]
    pub chunk_size: usize,
    /// Smallest initial Δ. Default: 0.001.
    #[config(default = 0.001)]
    pub dt_min: f64,
    /// Largest initial Δ. Default: 0.1.
    #[config(default = 0.1)]
    pub dt_max: f64,
    /// Floor on the initial Δ. Default: 1e-4.
    #[config(default = 1e-4)]
    pub dt_init_floor: f64,
    /// −A is initialised uniformly in [a_init_min, a_init_max]. Default: 1.0.
    #[config(default = 1.0)]
    pub a_init_min: f64,
    /// Default: 16.0.
    #[config(default = 16.0)]
    pub a_init_max: f64,
    /// Epsilon of the gated RMSNorm. Default: 1e-5.
    #[config(default = 1e-5)]
    pub norm_eps: f64,
}

impl Mamba2Config {
    /// Inner width, expand · d_model.
    pub fn d_inner(&self) -> usize {
        self.expand * self.d_model
    }

    /// Number of SSD heads, d_inner / head_dim.
    pub fn n_heads(&self) -> usize {
        self.d_inner() / self.head_dim
    }

    /// Channels the convolution runs over: x, B and C.
    pub fn conv_dim(&self) -> usize {
        self.d_inner() + 2 * self.n_groups * self.d_state
    }

    /// Width of the input projection: z and x (d_inner each), B and C, and Δ per head.
    pub fn d_in_proj(&self) -> usize {
        2 * self.d_inner() + 2 * self.n_groups * self.d_state + self.n_heads()
    }

    /// Build the layer with Mamba-2's initialisation: Δ log-uniform in [dt_min, dt_max]
    /// (floored) stored as dt_bias = softplus⁻¹(Δ), A_log = log U[a_init_min, a_init_max],
    /// D = 1, norm weight 1, projections and conv as PyTorch's defaults.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Mamba2<B> {
        let d_inner = self.d_inner();
        assert!(
            self.head_dim > 0 && d_inner % self.head_dim == 0,
            "Mamba2: d_inner ({d_inner}) must be a multiple of head_dim ({})",
            self.head_dim
        );
        let n_heads = self.n_heads();
        assert!(
            self.n_groups > 0 && n_heads % self.n_groups == 0,
            "Mamba2: heads ({n_heads}) must be a multiple of n_groups ({})",
            self.n_groups
        );
        assert!(self.d_conv >= 2, "Mamba2: d_conv must be at least 2");
        assert!(
            0.0 < self.dt_min && self.dt_min <= self.dt_max,
            "Mamba2: need 0 < dt_min <= dt_max"
        );
        assert!(
            0.0 < self.a_init_min && self.a_init_min <= self.a_init_max,
            "Mamba2: need 0 < a_init_min <= a_init_max"
        );
        let conv_dim = self.conv_dim();
        let d_in_proj = self.d_in_proj();

        // Δ = exp(U[log dt_min, log dt_max]) floored; dt_bias = Δ + log(−expm1(−Δ)).
        let (log_min, log_max) = (self.dt_min.ln(), self.dt_max.ln());
        let dt = Tensor::<B, 1>::random([n_heads], Distribution::Uniform(log_min, log_max), device)
            .exp()
            .clamp_min(self.dt_init_floor);
        let dt_bias = inverse_softplus(dt);
        let a = Tensor::<B, 1>::random(
            [n_heads],
            Distribution::Uniform(self.a_init_min, self.a_init_max),
            device,
        );
        // PyTorch's Conv1d default: U(±1/√fan_in), fan_in = d_conv for a depthwise conv.
        let bound = 1.0 / (self.d_conv as f64).sqrt();
        let conv_weight = Tensor::random(
            [conv_dim, self.d_conv],
            Distribution::Uniform(-bound, bound),
            device,
        );
        let conv_bias = Tensor::random([conv_dim], Distribution::Uniform(-bound, bound), device);

        Mamba2 {
            in_proj: LinearConfig::new(self.d_model, d_in_proj)
                .with_bias(false)
                .init(device),
            conv_weight: Param::from_tensor(conv_weight),
            conv_bias: Param::from_tensor(conv_bias),
            dt_bias: Param::from_tensor(dt_bias),
            a_log: Param::from_tensor(a.log()),
            d: Param::from_tensor(Tensor::ones([n_heads], device)),
            norm_weight: Param::from_tensor(Tensor::ones([d_inner], device)),
            out_proj: LinearConfig::new(d_inner, self.d_model)
                .with_bias(false)
                .init(device),
            d_model: self.d_model,
            d_inner,
            d_state: self.d_state,
            head_dim: self.head_dim,
            n_heads,
            n_groups: self.n_groups,
            d_conv: self.d_conv,
            chunk_size: self.chunk_size,
            norm_eps: self.norm_eps,
        }
    }
}

/// A Mamba-2 layer; build it with [`Mamba2Config::init`].
#[derive(Module, Debug)]
pub struct Mamba2<B: Backend> {
    /// d_model → [z (d_inner), xBC (d_inner + 2·groups·d_state), dt (heads)], no bias.
    pub in_proj: Linear<B>,
    /// Depthwise causal conv weights, `[conv_dim, d_conv]`.
    pub conv_weight: Param<Tensor<B, 2>>,
    /// `[conv_dim]`
    pub conv_bias: Param<Tensor<B, 1>>,
    /// `[heads]`, added to dt before the softplus.
    pub dt_bias: Param<Tensor<B, 1>>,
    /// `[heads]`, A = −exp(A_log).
    pub a_log: Param<Tensor<B, 1>>,
    /// `[heads]`, skip connection y += D x.
    pub d: Param<Tensor<B, 1>>,
    /// `[d_inner]`, gated RMSNorm weight.
    pub norm_weight: Param<Tensor<B, 1>>,
    /// d_inner → d_model, no bias.
    pub out_proj: Linear<B>,
    d_model: usize,
    d_inner: usize,
    d_state: usize,
    head_dim: usize,
    n_heads: usize,
    n_groups: usize,
    d_conv: usize,
    chunk_size: usize,
    norm_eps: f64,
}

/// The recurrent state of a [`Mamba2`] layer, owned by the caller.
#[derive(Clone, Debug)]
pub struct Mamba2State<B: Backend> {
    /// The last d_conv − 1 conv inputs, `[batch, conv_dim, d_conv − 1]`, oldest first.
    pub conv: Tensor<B, 3>,
    /// SSD state, `[batch, heads, head_dim, d_state]`.
    pub ssm: Tensor<B, 4>,
}

impl<B: Backend> Mamba2<B> {
    /// Run the layer over a sequence (chunked SSD), continuing from `state` (zeros if `None`).
    /// Calling it on consecutive pieces with the returned state equals one call on the whole.
    ///
    /// # Shapes
    /// - `x`: `[batch, seq, d_model]` → `[batch, seq, d_model]`
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        state: Option<Mamba2State<B>>,
    ) -> (Tensor<B, 3>, Mamba2State<B>) {
        let [batch, seq, d_model] = x.dims();
        let rows = x.reshape([batch * seq, d_model]);
        let (y, state) = self.forward_ordered(rows, BlockOrder::sequential(seq), state);
        (y.reshape([batch, seq, d_model]), state)
    }

    /// [`Self::forward`] on tokens whose sequences lie in `order` (a block-wise scan's video
    /// tokens, see [`BlockOrder`]); the output rows are in the same order. The fused kernels
    /// read and write that order directly; the tensor ops reorder around the scan.
    ///
    /// # Shapes
    /// - `x`: `[rows, d_model]` in `order` → `[rows, d_model]` in `order`; the state has one
    ///   row per sequence (`order.sequences(rows)`)
    pub fn forward_ordered(
        &self,
        x: Tensor<B, 2>,
        order: BlockOrder,
        state: Option<Mamba2State<B>>,
    ) -> (Tensor<B, 2>, Mamba2State<B>) {
        let [rows, d_model] = x.dims();
        assert_eq!(d_model, self.d_model, "Mamba2: input width must be d_model");
        let (batch, seq) = (order.sequences(rows), order.sequence_len());
        let state = state.unwrap_or_else(|| self.zero_state(batch, &x.device()));
        self.check_state(&state, batch);
        let fused = kernels::fused::serves::<B>(x.dtype());
        // The tensor ops run in sequence order.
        let x = match fused {
            true => x,
            false => to_sequence_order(x, order),
        };

        let zxbcdt = linear(&self.in_proj, x);
        let scan_inputs = if fused {
            kernels::fused::mamba_prologue(
                zxbcdt.clone(),
                state.conv,
                self.conv_weight.val(),
                self.conv_bias.val(),
                self.dt_bias.val(),
                self.a_log.val(),
                order,
                self.fused_dims(),
            )
        } else {
            let width = zxbcdt.dims()[1];
            self.prologue(zxbcdt.clone().reshape([batch, seq, width]), state.conv)
        };
        let ScanInputs {
            x: x_ssm,
            b,
            c,
            dt,
            conv,
            a,
        } = scan_inputs;

        let (y, ssm) = ssd_scan(x_ssm.clone(), dt, a, b, c, Some(state.ssm), self.chunk_size);
        let state = Mamba2State { conv, ssm };
        if fused {
            let y = kernels::fused::mamba_epilogue(
                y,
                x_ssm,
                self.d.val(),
                zxbcdt,
                self.norm_weight.val(),
                order,
                self.fused_dims(),
                self.norm_eps,
            );
            return (linear(&self.out_proj, y), state);
        }
        let z = zxbcdt.narrow(1, 0, self.d_inner);
        let (d_skip, weight) = (self.d.val(), self.norm_weight.val());
        let (groups, eps) = (self.n_groups, self.norm_eps);
        let y =
            match gated_norm_op::skip_gated_norm([&y, &x_ssm], &z, &d_skip, &weight, groups, eps) {
                Some(y) => y.reshape([batch, seq, self.d_inner]),
                None => {
                    let y = y + x_ssm * d_skip.reshape([1, 1, self.n_heads, 1]);
                    let y = y.reshape([batch, seq, self.d_inner]);
                    gated_norm(
                        y,
                        z.reshape([batch, seq, self.d_inner]),
                        weight,
                        groups,
                        eps,
                    )
                }
            };
        let y = linear(&self.out_proj, y).reshape([rows, d_model]);
        (from_sequence_order(y, order), state)
    }

    /// The tensor-op reference of [`kernels::fused::mamba_prologue`]: from the input
    /// projection's output `[batch, seq, ·]` and the carried conv inputs to the scan's inputs.
    fn prologue(&self, zxbcdt: Tensor<B, 3>, conv_state: Tensor<B, 3>) -> ScanInputs<B> {
        let [batch, seq, _] = zxbcdt.dims();
        let (h, p, g, n) = (self.n_heads, self.head_dim, self.n_groups, self.d_state);
        let xbc = zxbcdt.clone().narrow(2, self.d_inner, self.conv_dim());
        let dt = zxbcdt.narrow(2, self.d_inner + self.conv_dim(), h);

        let (weight, bias) = (self.conv_weight.val(), self.conv_bias.val());
        let (xbc, conv) = match conv_op::conv_silu(&xbc, &conv_state, &weight, &bias) {
            Some(y) => (y, carried_after(xbc, conv_state)),
            None => {
                let (pre, conv) = causal_conv(xbc, conv_state, weight, bias);
                (silu(pre), conv)
            }
        };
        let x = xbc
            .clone()
            .narrow(2, 0, self.d_inner)
            .reshape([batch, seq, h, p]);
        let b = xbc
            .clone()
            .narrow(2, self.d_inner, g * n)
            .reshape([batch, seq, g, n]);
        let c = xbc
            .narrow(2, self.d_inner + g * n, g * n)
            .reshape([batch, seq, g, n]);
        let dt = softplus(dt + self.dt_bias.val().reshape([1, 1, h]));
        let a = self.a();
        ScanInputs {
            x,
            b,
            c,
            dt,
            conv,
            a,
        }
    }

    /// The layer's sizes as the fused kernels take them.
    fn fused_dims(&self) -> MambaDims {
        MambaDims {
            d_inner: self.d_inner,
            heads: self.n_heads,
            head_dim: self.head_dim,
            groups: self.n_groups,
            d_state: self.d_state,
            d_conv: self.d_conv,
        }
    }

    /// Advance by one token with the recurrence (no chunking), updating `state` in place.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_model]` → `[batch, d_model]`
    pub fn step(&self, x: Tensor<B, 2>, state: &mut Mamba2State<B>) -> Tensor<B, 2> {
        let [batch, d_model] = x.dims();
        assert_eq!(d_model, self.d_model, "Mamba2: input width must be d_model");
        self.check_state(state, batch);
        let (h, p, g, n) = (self.n_heads, self.head_dim, self.n_groups, self.d_state);
        let conv_dim = self.conv_dim();

        let zxbcdt = linear(&self.in_proj, x);
        let z = zxbcdt.clone().narrow(1, 0, self.d_inner);
        let xbc = zxbcdt.clone().narrow(1, self.d_inner, conv_dim);
        let dt = zxbcdt.narrow(1, self.d_inner + conv_dim, h);

        // Conv over the window [carried d_conv − 1 inputs, this input].
        let window = Tensor::cat(
            vec![state.conv.clone(), xbc.reshape([batch, conv_dim, 1])],
            2,
        );
        let xbc = (window.clone() * self.conv_weight.val().unsqueeze_dim(0))
            .sum_dim(2)
            .reshape([batch, conv_dim])
            + self.conv_bias.val().unsqueeze_dim(0);
        state.conv = window.narrow(2, 1, self.d_conv - 1);
        let xbc = silu(xbc);

        let x_t = xbc
            .clone()
            .narrow(1, 0, self.d_inner)
            .reshape([batch, h, p]);
        let b_t = xbc
            .clone()
            .narrow(1, self.d_inner, g * n)
            .reshape([batch, g, n]);
        let c_t = xbc
            .narrow(1, self.d_inner + g * n, g * n)
            .reshape([batch, g, n]);
        let dt = softplus(dt + self.dt_bias.val().unsqueeze_dim(0)); // [batch, heads]

        // h_t = a_t h_{t−1} + Δ_t x_t B_tᵀ ; y_t = h_t C_t + D x_t
        let (y, ssm) = ssd_step(x_t.clone(), dt, self.a(), b_t, c_t, state.ssm.clone());
        state.ssm = ssm;
        let y = y + x_t * self.d.val().reshape([1, h, 1]);
        let y = gated_norm(
            y.reshape([batch, 1, self.d_inner]),
            z.unsqueeze_dim(1),
            self.norm_weight.val(),
            self.n_groups,
            self.norm_eps,
        );
        linear(&self.out_proj, y).reshape([batch, self.d_model])
    }

    /// A zero state for `batch` sequences.
    pub fn zero_state(&self, batch: usize, device: &B::Device) -> Mamba2State<B> {
        Mamba2State {
            conv: Tensor::zeros([batch, self.conv_dim(), self.d_conv - 1], device),
            ssm: Tensor::zeros([batch, self.n_heads, self.head_dim, self.d_state], device),
        }
    }

    /// A = −exp(A_log), `[heads]`.
    pub fn a(&self) -> Tensor<B, 1> {
        self.a_log.val().exp().neg()
    }

    /// Width of the residual stream.
    pub fn d_model(&self) -> usize {
        self.d_model
    }

    /// Number of SSD heads.
    pub fn n_heads(&self) -> usize {
        self.n_heads
    }

    /// Channels the convolution runs over: x, B and C.
    pub fn conv_dim(&self) -> usize {
        self.d_inner + 2 * self.n_groups * self.d_state
    }

    fn check_state(&self, state: &Mamba2State<B>, batch: usize) {
        assert_eq!(
            state.conv.dims(),
            [batch, self.conv_dim(), self.d_conv - 1],
            "Mamba2: conv state must be [batch, conv_dim, d_conv - 1]"
        );
        assert_eq!(
            state.ssm.dims(),
            [batch, self.n_heads, self.head_dim, self.d_state],
            "Mamba2: ssm state must be [batch, heads, head_dim, d_state]"
        );
    }
}

/// Causal depthwise conv over the sequence, preceded by the carried inputs; returns the
/// output and the new carried inputs (the last d_conv − 1 of [carried, xbc]).
///
/// # Shapes
/// - `xbc`: `[batch, seq, conv_dim]`, `conv`: `[batch, conv_dim, d_conv − 1]`, `weight`:
///   `[conv_dim, d_conv]`, `bias`: `[conv_dim]`
pub fn causal_conv<B: Backend>(
    xbc: Tensor<B, 3>,
    conv: Tensor<B, 3>,
    weight: Tensor<B, 2>,
    bias: Tensor<B, 1>,
) -> (Tensor<B, 3>, Tensor<B, 3>) {
    let [batch, seq, conv_dim] = xbc.dims();
    let k = weight.dims()[1];
    // [batch, conv_dim, seq + k − 1]
    let padded = Tensor::cat(vec![conv, xbc.swap_dims(1, 2)], 2);
    // out[t] = bias + Σ_j w[j] · padded[t + j] (cross-correlation, as PyTorch's Conv1d)
    let mut out = bias
        .reshape([1, conv_dim, 1])
        .expand([batch, conv_dim, seq]);
    for j in 0..k {
        let w_j = weight.clone().narrow(1, j, 1).reshape([1, conv_dim, 1]);
        out = out + padded.clone().narrow(2, j, seq) * w_j;
    }
    let carried = padded.narrow(2, seq, k - 1);
    (out.swap_dims(1, 2), carried)
}

/// Gated RMSNorm, normalised after the gate: RMSNorm(y · SiLU(z)) · w, per group of
/// d_inner / groups channels.
///
/// # Shapes
/// - `y`, `z`: `[batch, seq, d_inner]`; `weight`: `[d_inner]`
pub fn gated_norm<B: Backend>(
    y: Tensor<B, 3>,
    z: Tensor<B, 3>,
    weight: Tensor<B, 1>,
    groups: usize,
    eps: f64,
) -> Tensor<B, 3> {
    let [batch, seq, d_inner] = y.dims();
    let gated = (y * silu(z)).reshape([batch, seq, groups, d_inner / groups]);
    let rms = (gated.clone().square().mean_dim(3) + eps).sqrt();
    (gated / rms).reshape([batch, seq, d_inner]) * weight.reshape([1, 1, d_inner])
}

/// The carried conv inputs after a sequence: the last `d_conv − 1` of `[conv, xbc]` (what
/// [`causal_conv`] returns beside its output), without building the whole padded input.
///
/// # Shapes
/// - `xbc`: `[batch, seq, conv_dim]`, `conv`: `[batch, conv_dim, d_conv − 1]` → `conv`'s shape
pub(super) fn carried_after<B: Backend>(xbc: Tensor<B, 3>, conv: Tensor<B, 3>) -> Tensor<B, 3> {
    let (seq, keep) = (xbc.dims()[1], conv.dims()[2]);
    let tail = xbc
        .narrow(1, seq.saturating_sub(keep), seq.min(keep))
        .swap_dims(1, 2);
    let both = Tensor::cat(vec![conv, tail], 2);
    let len = both.dims()[2];
    both.narrow(2, len - keep, keep)
}

/// softplus(x) = log(1 + eˣ), written as max(x, 0) + log(1 + e^(−|x|)) so it never overflows.
pub(crate) fn softplus<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    x.clone().clamp_min(0.0) + x.abs().neg().exp().log1p()
}

/// softplus⁻¹(Δ) = Δ + log(−expm1(−Δ)), evaluated on the host in f64 because Δ can be 1e-4,
/// where 1 − e^(−Δ) loses most of its digits in f32.
fn inverse_softplus<B: Backend>(dt: Tensor<B, 1>) -> Tensor<B, 1> {
    let device = dt.device();
    let values: Vec<f32> = dt
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("dt converts to f32");
    let inverted: Vec<f32> = values
        .iter()
        .map(|&v| {
            let v = v as f64;
            (v + (-(-v).exp_m1()).ln()) as f32
        })
        .collect();
    let n = inverted.len();
    Tensor::from_data(TensorData::new(inverted, [n]), &device)
}
