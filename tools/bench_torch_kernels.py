#!/usr/bin/env python3
"""Widely used GPU kernels at the shapes of `memworld bench kernels`, for side-by-side ratios.

- SSD: flash-linear-attention's Triton `chunk_simple_gla` (scalar per-head decay, the same
  math: q = C, k = B, v = Δx, g = ΔA, scale 1), with an initial state and the final state;
  checked first against the recurrence step by step on a small problem.
- Frame-local attention: PyTorch FlexAttention (compiled) with the frame-window block mask
  (query frame f sees key frames f − window + 1 … f, every token of each).
- `ssd-backward` and `attention-backward` time forward and backward together, the gradients
  of every input for random output (and final-state) gradients, as `memworld bench kernels`
  does for its rows of those names.

Everything in float32, as memworld's kernels; products in exact f32 unless `--tf32` (then
TF32, as memworld's tensor-core attention kernels and burn's products on CUDA). Prints one
table; `--json FILE` writes the rows.
Needs torch with CUDA; rows whose library is missing say so.
"""
import argparse
import json
import time


def report(row):
    """Print a row as soon as it is measured (a long sweep can be cut off by a time limit)."""
    ms = f"{row['ms']:.3f}" if row["ms"] is not None else "-"
    extra = f" ({row['error']})" if row["error"] else ""
    print(f"{row['op']:<18} {row['impl']:<26} {ms:>10}  {row['shape']}{extra}", flush=True)
    return row


def median_ms(fn, reps, warmup):
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]


def ssd_via_fla(chunk_simple_gla, x, dt, a, b, c, s0):
    """SSD (memworld's layout: x [seqs, len, heads, p], B/C [seqs, len, 1, n], state
    [seqs, heads, n, p] as fla keeps it) through chunk_simple_gla: returns y and the final state."""
    heads = x.shape[2]
    bh = b.expand(-1, -1, heads, -1)
    ch = c.expand(-1, -1, heads, -1)
    return chunk_simple_gla(ch, bh, x * dt[..., None], dt * a, scale=1.0, initial_state=s0, output_final_state=True)


def ssd_recurrence(x, dt, a, b, c, s0):
    """The SSD recurrence step by step (the check of the mapping onto fla)."""
    import torch

    s = s0.clone()  # [seqs, heads, n, p]
    ys = []
    for t in range(x.shape[1]):
        decay = torch.exp(dt[:, t] * a)[..., None, None]
        s = decay * s + b[:, t, 0][:, None, :, None] * (x[:, t] * dt[:, t][..., None])[:, :, None, :]
        ys.append(torch.einsum("shnp,sn->shp", s, c[:, t, 0]))
    return torch.stack(ys, 1), s


def ssd_check(chunk_simple_gla, torch):
    """max |fla − recurrence| / max |recurrence| over y and the final state, small problem."""
    g = torch.Generator(device="cuda").manual_seed(0)
    r = lambda *shape: torch.rand(*shape, device="cuda", generator=g)
    x, dt, a = r(2, 100, 3, 32) * 2 - 1, r(2, 100, 3) * 0.3 + 0.01, -(r(3) * 1.5 + 0.5)
    b, c, s0 = r(2, 100, 1, 16) * 2 - 1, r(2, 100, 1, 16) * 2 - 1, r(2, 3, 16, 32) * 2 - 1
    y, s = ssd_via_fla(chunk_simple_gla, x, dt, a, b, c, s0)
    y_ref, s_ref = ssd_recurrence(x, dt, a, b, c, s0)
    err = lambda u, v: ((u - v).abs().max() / v.abs().max()).item()
    return max(err(y, y_ref), err(s, s_ref))


def ssd_rows(args, torch, backward=False):
    op = "ssd-backward" if backward else "ssd"
    try:
        from fla.ops.simple_gla import chunk_simple_gla
    except Exception as e:  # noqa: BLE001 - report any import failure as the row's reason
        return [dict(op=op, impl="fla chunk_simple_gla", shape="-", ms=None, error=f"fla: {e}")]
    print(f"fla chunk_simple_gla against the SSD recurrence: relative error {ssd_check(chunk_simple_gla, torch):.1e}", flush=True)
    rows = []
    grid, heads, p, n = args.grid, args.heads, args.head_dim, args.d_state
    for frames in args.frames:
        for side in args.blocks:
            if grid % side:
                continue
            seqs = args.batch * (grid // side) ** 2
            length = frames * side * side
            shape = f"{frames} frames, block {side}x{side}: {seqs} seqs x {length} tokens, {heads}x{p} heads, d_state {n}"
            dev = "cuda"
            x = torch.rand(seqs, length, heads, p, device=dev) * 2 - 1
            dt = torch.rand(seqs, length, heads, device=dev) * 0.099 + 0.001
            a = -(torch.rand(heads, device=dev) * 1.5 + 0.5)
            b = torch.rand(seqs, length, 1, n, device=dev) * 2 - 1
            c = torch.rand(seqs, length, 1, n, device=dev) * 2 - 1
            s0 = torch.rand(seqs, heads, n, p, device=dev) * 2 - 1  # fla keeps state as [K, V]
            inputs = [x, dt, a, b, c, s0]
            if backward:
                for t in inputs:
                    t.requires_grad_(True)
                dy, ds = torch.rand_like(x) * 2 - 1, torch.rand_like(s0) * 2 - 1

                def fn():
                    y, s = ssd_via_fla(chunk_simple_gla, *inputs)
                    return torch.autograd.grad((y * dy).sum() + (s * ds).sum(), inputs)
            else:
                fn = lambda: ssd_via_fla(chunk_simple_gla, *inputs)
            try:
                ms = median_ms(fn, args.reps, args.warmup)
                rows.append(report(dict(op=op, impl="fla chunk_simple_gla", shape=shape, ms=ms, error=None)))
            except Exception as e:  # noqa: BLE001
                rows.append(report(dict(op=op, impl="fla chunk_simple_gla", shape=shape, ms=None, error=str(e).splitlines()[0])))
            del x, dt, b, c, s0, inputs
            torch.cuda.empty_cache()
    return rows


def attention_rows(args, torch, backward=False):
    op = "attention-backward" if backward else "attention"
    try:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    except Exception as e:  # noqa: BLE001
        return [dict(op=op, impl="FlexAttention", shape="-", ms=None, error=f"flex: {e}")]
    flex = torch.compile(flex_attention)
    impl = "FlexAttention (compiled" + (", TF32)" if args.tf32 else ")")
    rows = []
    tokens = args.grid * args.grid
    window = args.window
    for frames in args.frames:
        shape = f"{frames} frames x {tokens} tokens, {args.att_heads}x{args.att_head_dim} heads, window {window if window else 'all'}"

        def frame_window(b, h, q_idx, kv_idx):
            qf = q_idx // tokens
            kf = kv_idx // tokens
            visible = kf <= qf
            if window:
                visible = visible & (qf - kf < window)
            return visible

        length = frames * tokens
        q, k, v = (
            (torch.rand(args.batch, args.att_heads, length, args.att_head_dim, device="cuda") * 2 - 1).requires_grad_(backward)
            for _ in range(3)
        )
        dout = torch.rand_like(q) * 2 - 1
        try:
            mask = create_block_mask(frame_window, None, None, length, length, device="cuda")
            if backward:
                fn = lambda: torch.autograd.grad((flex(q, k, v, block_mask=mask) * dout).sum(), [q, k, v])
            else:
                fn = lambda: flex(q, k, v, block_mask=mask)
            ms = median_ms(fn, args.reps, args.warmup)
            rows.append(report(dict(op=op, impl=impl, shape=shape, ms=ms, error=None)))
        except Exception as e:  # noqa: BLE001
            rows.append(report(dict(op=op, impl=impl, shape=shape, ms=None, error=str(e).splitlines()[0])))
        del q, k, v
        torch.cuda.empty_cache()
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=8, help="clips per batch (default 8)")
    ap.add_argument("--frames", type=lambda s: [int(v) for v in s.split(",")], default=[16, 64], help="clip lengths, comma-separated")
    ap.add_argument("--blocks", type=lambda s: [int(v) for v in s.split(",")], default=[1, 2, 4, 8, 16], help="SSD block sides in tokens")
    ap.add_argument("--grid", type=int, default=16, help="token grid side (64x64 frames, patch 4: 16)")
    ap.add_argument("--heads", type=int, default=8, help="SSD heads (maze-small: 8)")
    ap.add_argument("--head-dim", type=int, default=64, help="SSD head size")
    ap.add_argument("--d-state", type=int, default=64, help="SSD state size")
    ap.add_argument("--att-heads", type=int, default=4, help="attention heads")
    ap.add_argument("--att-head-dim", type=int, default=64, help="attention head size")
    ap.add_argument("--window", type=int, default=10, help="frames per attention window (0: all past frames)")
    ap.add_argument(
        "--ops",
        default="ssd,ssd-backward,attention,attention-backward",
        help="comma list of ssd, ssd-backward, attention, attention-backward",
    )
    ap.add_argument("--reps", type=int, default=5, help="timed calls (median reported)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed calls first (compilation)")
    ap.add_argument("--json", help="write the rows to this JSON file")
    ap.add_argument("--tf32", action="store_true", help="let f32 products run on TF32 tensor cores")
    args = ap.parse_args()

    import torch

    if not torch.cuda.is_available():
        raise SystemExit("bench_torch_kernels: no CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    rows = []
    ops = args.ops.split(",")
    unknown = set(ops) - {"ssd", "ssd-backward", "attention", "attention-backward"}
    if unknown:
        raise SystemExit(f"bench_torch_kernels: unknown --ops {sorted(unknown)}")
    print(f"{'kernel':<18} {'impl':<26} {'ms':>10}  shape", flush=True)
    for op in ops:
        backward = op.endswith("-backward")
        rows += (ssd_rows if op.startswith("ssd") else attention_rows)(args, torch, backward)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
