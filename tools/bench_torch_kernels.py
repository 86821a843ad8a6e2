#!/usr/bin/env python3
"""Widely used GPU kernels at the shapes of `memworld bench kernels`, for side-by-side ratios.

- SSD forward: flash-linear-attention's Triton `chunk_simple_gla` (scalar per-head decay, the
  same math: q = C, k = B, v = Δx, g = ΔA, scale 1), with an initial state and the final state.
- Frame-local attention forward: PyTorch FlexAttention (compiled) with the frame-window block
  mask (query frame f sees key frames f − window + 1 … f, every token of each).

Everything in float32, as memworld's kernels. Prints one table; `--json FILE` writes the rows.
Needs torch with CUDA; rows whose library is missing say so.
"""
import argparse
import json
import time


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


def ssd_rows(args, torch):
    try:
        from fla.ops.simple_gla import chunk_simple_gla
    except Exception as e:  # noqa: BLE001 - report any import failure as the row's reason
        return [dict(op="ssd", impl="fla chunk_simple_gla", shape="-", ms=None, error=f"fla: {e}")]
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
            b = (torch.rand(seqs, length, 1, n, device=dev) * 2 - 1).expand(-1, -1, heads, -1).contiguous()
            c = (torch.rand(seqs, length, 1, n, device=dev) * 2 - 1).expand(-1, -1, heads, -1).contiguous()
            s0 = torch.rand(seqs, heads, n, p, device=dev) * 2 - 1  # fla keeps state as [K, V]
            v = x * dt[..., None]
            g = dt * a
            try:
                fn = lambda: chunk_simple_gla(c, b, v, g, scale=1.0, initial_state=s0, output_final_state=True)
                ms = median_ms(fn, args.reps, args.warmup)
                rows.append(dict(op="ssd", impl="fla chunk_simple_gla", shape=shape, ms=ms, error=None))
            except Exception as e:  # noqa: BLE001
                rows.append(dict(op="ssd", impl="fla chunk_simple_gla", shape=shape, ms=None, error=str(e).splitlines()[0]))
            del x, dt, b, c, s0, v, g
            torch.cuda.empty_cache()
    return rows


def attention_rows(args, torch):
    try:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    except Exception as e:  # noqa: BLE001
        return [dict(op="attention", impl="FlexAttention", shape="-", ms=None, error=f"flex: {e}")]
    flex = torch.compile(flex_attention)
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
        q, k, v = (torch.rand(args.batch, args.att_heads, length, args.att_head_dim, device="cuda") * 2 - 1 for _ in range(3))
        try:
            mask = create_block_mask(frame_window, None, None, length, length, device="cuda")
            ms = median_ms(lambda: flex(q, k, v, block_mask=mask), args.reps, args.warmup)
            rows.append(dict(op="attention", impl="FlexAttention (compiled)", shape=shape, ms=ms, error=None))
        except Exception as e:  # noqa: BLE001
            rows.append(dict(op="attention", impl="FlexAttention (compiled)", shape=shape, ms=None, error=str(e).splitlines()[0]))
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
    ap.add_argument("--ops", default="ssd,attention", help="ssd, attention or both")
    ap.add_argument("--reps", type=int, default=5, help="timed calls (median reported)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed calls first (compilation)")
    ap.add_argument("--json", help="write the rows to this JSON file")
    args = ap.parse_args()

    import torch

    if not torch.cuda.is_available():
        raise SystemExit("bench_torch_kernels: no CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = False
    rows = []
    ops = args.ops.split(",")
    if "ssd" in ops:
        rows += ssd_rows(args, torch)
    if "attention" in ops:
        rows += attention_rows(args, torch)
    print(f"{'kernel':<10} {'impl':<26} {'ms':>10}  shape")
    for r in rows:
        ms = f"{r['ms']:.3f}" if r["ms"] is not None else "-"
        extra = f" ({r['error']})" if r["error"] else ""
        print(f"{r['op']:<10} {r['impl']:<26} {ms:>10}  {r['shape']}{extra}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
