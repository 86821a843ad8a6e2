//! `memworld bench kernels`: on wgpu (lavapipe in CI) it checks each kernel against the tensor
//! ops and reports agreement and times; on a backend without kernels it says so in one line.

mod common;

use common::{assert_one_line_error, memworld, scratch, text};

#[test]
fn kernel_bench_reports_agreement_with_the_tensor_ops() {
    let Some(_device) = kernels::testing::wgpu_device() else {
        return;
    };
    let dir = scratch("bench_kernels");
    let out = dir.join("report.json");
    let run = memworld(&[
        "bench",
        "kernels",
        "--backend",
        "wgpu",
        "--config",
        "tiny",
        "--batch",
        "1",
        "--frames",
        "3",
        "--blocks",
        "1,2",
        "--reps",
        "1",
        "--warmup",
        "0",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "bench failed: {}", text(&run.stderr));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let rows = report["rows"].as_array().unwrap();
    // two SSD block sizes forward and forward+backward, one step row, attention forward and
    // forward+backward (tiny has attention)
    assert_eq!(rows.len(), 7, "{report:#}");
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
    for row in rows {
        assert!(row["error"].is_null(), "{row}");
        let rel = row["rel_error"].as_f64().unwrap();
        assert!(rel < 1e-3, "kernel disagrees with the tensor ops: {row}");
        assert!(row["kernel_ms"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn kernel_bench_on_a_backend_without_kernels_is_one_line() {
    let run = memworld(&["bench", "kernels", "--backend", "ndarray", "--reps", "1"]);
    assert_one_line_error(&run, "no kernels on this backend");
}
