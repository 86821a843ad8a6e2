//! `memworld bench kernels`: on wgpu (lavapipe in CI) it checks each kernel against the tensor
//! ops and reports agreement and times; on a backend without kernels it says so in one line.

mod common;

use common::{assert_one_line_error, memworld, scratch, text};

/// The report's rows of `memworld bench kernels` on wgpu for the `tiny` preset, batch 1, one
/// timed call, with `args` added; `None` without a wgpu adapter.
fn tiny_bench_rows(name: &str, args: &[&str]) -> Option<Vec<serde_json::Value>> {
    kernels::testing::wgpu_device()?;
    let out = scratch(name).join("report.json");
    let mut all = vec![
        "bench",
        "kernels",
        "--backend",
        "wgpu",
        "--config",
        "tiny",
        "--batch",
        "1",
        "--reps",
        "1",
        "--warmup",
        "0",
    ];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", out.to_str().unwrap()]);
    let run = memworld(&all);
    assert!(run.status.success(), "bench failed: {}", text(&run.stderr));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    Some(report["rows"].as_array().unwrap().clone())
}

#[test]
fn kernel_bench_reports_agreement_with_the_tensor_ops() {
    let Some(rows) = tiny_bench_rows("bench_kernels", &["--frames", "3", "--blocks", "1,2"]) else {
        return;
    };
    // two SSD block sizes forward and forward+backward, one step row, attention forward and
    // forward+backward (tiny has attention)
    assert_eq!(rows.len(), 7, "{rows:#?}");
    let ops: Vec<&str> = rows.iter().map(|r| r["op"].as_str().unwrap()).collect();
    assert_eq!(
        ops,
        [
            "ssd",
            "ssd",
            "ssd-backward",
            "ssd-backward",
            "step",
            "attention",
            "attention-backward"
        ]
    );
    for row in &rows {
        assert!(row["error"].is_null(), "{row}");
        let rel = row["rel_error"].as_f64().unwrap();
        assert!(rel < 1e-3, "kernel disagrees with the tensor ops: {row}");
        assert!(row["kernel_ms"].as_f64().unwrap() > 0.0);
    }
}

/// The linear rows group the tokens' rows per frame and flat, against burn's batched products:
/// one row per linear layer of the preset, output and gradients in agreement.
#[test]
fn linear_rows_bench_compares_each_layer_with_burns_batched_products() {
    let Some(rows) = tiny_bench_rows(
        "bench_linear",
        &["--ops", "linear-grouped,linear-flat", "--frames", "2"],
    ) else {
        return;
    };
    // tiny: d_model 32, expand 2, d_state 8, SSM head dim 8 (8 heads), MLP ratio 4, 8 × 8 tokens a
    // frame
    let layers = [
        "ssm in: 128 rows x 32 -> 152",
        "ssm out: 128 rows x 64 -> 32",
        "attention q/k/v/o: 128 rows x 32 -> 32",
        "mlp in: 128 rows x 32 -> 128",
        "mlp out: 128 rows x 128 -> 32",
    ];
    assert_eq!(rows.len(), 2 * layers.len(), "{rows:#?}");
    for (i, row) in rows.iter().enumerate() {
        let op = if i < layers.len() {
            "linear-grouped"
        } else {
            "linear-flat"
        };
        assert_eq!(row["op"], op, "{row}");
        assert_eq!(row["shape"], layers[i % layers.len()], "{row}");
        assert!(row["error"].is_null(), "{row}");
        let rel = row["rel_error"].as_f64().unwrap();
        assert!(rel < 1e-5, "grouping changes the arithmetic: {row}");
    }
}

/// The layer-op rows run the norm + modulation and the GELU forward and backward on their
/// kernels against burn's autodiff through the tensor ops, at the preset's token shapes.
#[test]
fn layer_op_rows_compare_the_kernels_with_burns_autodiff() {
    let Some(rows) = tiny_bench_rows(
        "bench_layer_ops",
        &[
            "--ops",
            "norm-modulate,gelu,conv-silu,gated-norm",
            "--frames",
            "2",
        ],
    ) else {
        return;
    };
    // tiny: d_model 32, MLP ratio 4, 80 SSD conv channels, 8 × 8 tokens a frame; one clip of
    // 2 frames.
    assert_eq!(rows.len(), 4, "{rows:#?}");
    for (row, (op, shape, tolerance)) in rows.iter().zip([
        ("norm-modulate", "128 rows x 32", 1e-5),
        // burn's GELU backward is the tanh approximation's derivative.
        ("gelu", "128 rows x 128", 5e-3),
        ("conv-silu", "1 x 128 tokens x 80 channels", 1e-5),
        ("gated-norm", "1 x 128 tokens x 64 channels", 1e-5),
    ]) {
        assert_eq!(row["op"], op, "{row}");
        assert_eq!(row["shape"], shape, "{row}");
        assert!(row["error"].is_null(), "{row}");
        let rel = row["rel_error"].as_f64().unwrap();
        assert!(rel < tolerance, "kernels and tensor ops disagree: {row}");
        assert!(row["kernel_ms"].as_f64().unwrap() > 0.0, "{row}");
    }
}

/// The matmul rows time each linear layer's products on each routine asked for against
/// burn's: one row per layer, product and routine; a routine the adapter cannot run (TMA on
/// lavapipe) is a row with its reason, the others agree with burn's products.
#[test]
fn matmul_rows_compare_each_routine_with_burns_product() {
    let Some(rows) = tiny_bench_rows(
        "bench_matmul",
        &[
            "--ops",
            "matmul",
            "--routines",
            "auto,simple-unit,double-tma",
            "--frames",
            "1",
        ],
    ) else {
        return;
    };
    // tiny: 5 linear layers; one frame, so no 8-frame weight gradient: 5 products each.
    assert_eq!(rows.len(), 5 * 5 * 3, "{rows:#?}");
    let first = rows[0]["shape"].as_str().unwrap();
    assert_eq!(first, "ssm in forward: 1 x [64x32]·[32x152], auto");
    for row in &rows {
        let shape = row["shape"].as_str().unwrap();
        if row["error"].is_null() {
            let rel = row["rel_error"].as_f64().unwrap();
            assert!(rel < 1e-4, "routine and burn disagree: {row}");
        } else {
            assert!(
                shape.ends_with("double-tma"),
                "only TMA may be missing: {row}"
            );
        }
        if shape.ends_with("auto") || shape.ends_with("simple-unit") {
            assert!(row["error"].is_null(), "{row}");
        }
    }
}

#[test]
fn kernel_bench_on_a_backend_without_kernels_is_one_line() {
    let run = memworld(&["bench", "kernels", "--backend", "ndarray", "--reps", "1"]);
    assert_one_line_error(&run, "no kernels on this backend");
}
