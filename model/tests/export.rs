//! Inference checkpoints: exporting a training checkpoint's EMA weights in f32 keeps them
//! bit for bit, in f16 rounds each weight to the nearest half (checked against an independent
//! f32 → f16 → f32 rounding), in q8 to its block's 8-bit grid, and all load like any checkpoint
//! and refuse damage.

use std::fs;
use std::path::PathBuf;

use burn::backend::{Autodiff, NdArray};
use burn::module::Module;
use burn::tensor::Tensor;
use model::world::checkpoint::{open_checkpoint, Precision, EMA_FILE};
use model::world::export::export_for_inference;
use model::world::{load_for_inference, train, TauSampling, TrainOptions, TrainSettings};
use model::world::{WorldError, WorldModel, WorldModelConfig};

type B = NdArray;
type AB = Autodiff<NdArray>;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("memworld-export-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn weights(m: &WorldModel<B>) -> Vec<f32> {
    struct Collect<'a>(&'a mut Vec<f32>);
    impl burn::module::ModuleVisitor<B> for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<B, D>>) {
            self.0.extend(p.val().into_data().to_vec::<f32>().unwrap());
        }
    }
    let mut out = Vec::new();
    m.visit(&mut Collect(&mut out));
    out
}

/// f32 → nearest f16 (ties to even) → f32, computed from the bits without any half library.
fn round_to_half(x: f32) -> f32 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    // Unbiased exponent of x (normal f32 weights).
    let e = ((x.to_bits() >> 23) & 0xff) as i32 - 127;
    // Spacing of halves near x: 2^(e-10) for normal halves, 2^-24 below 2^-14.
    let ulp = 2f64.powi(e.max(-14) - 10);
    let q = x as f64 / ulp;
    let r = q.round();
    let r = if (q - q.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - q.signum()
    } else {
        r
    };
    (r * ulp) as f32
}

#[test]
fn exported_weights_load_back_in_f32_and_f16() {
    let config = WorldModelConfig::tiny();
    let run = scratch("run");
    let mut s = TrainSettings::new(&config, &"gen:maze:9:pool=2".parse().unwrap(), 2);
    s.batch = 1;
    s.tau_sampling = TauSampling::Uniform;
    let opts = TrainOptions::new(config.clone(), s, &run);
    train::<AB>(&opts, &Default::default(), &mut model::world::train::Silent).unwrap();
    let dev = Default::default();
    let ckpt = open_checkpoint(&run, None).unwrap();
    let original = weights(&ckpt.load_weights::<B>(EMA_FILE, &dev).unwrap());

    let full = scratch("f32");
    let summary = export_for_inference::<B>(&run, &full, Precision::F32, &dev).unwrap();
    assert_eq!(summary.step, 2);
    assert_eq!(summary.params, original.len());
    let (m, cfg) = load_for_inference::<B>(&full, &dev).unwrap();
    assert_eq!(cfg, config);
    assert_eq!(weights(&m), original, "an f32 export keeps every weight");
    assert!(!full.join("model.mpk").exists() && !full.join("optim.mpk").exists());

    let half = scratch("f16");
    let summary = export_for_inference::<B>(&run, &half, Precision::F16, &dev).unwrap();
    let f32_bytes = fs::metadata(full.join(EMA_FILE)).unwrap().len();
    assert!(
        (summary.weight_bytes as f64) < 0.6 * f32_bytes as f64,
        "f16 file {} bytes vs f32 {f32_bytes}",
        summary.weight_bytes
    );
    let (m, _) = load_for_inference::<B>(&half, &dev).unwrap();
    let got = weights(&m);
    assert_eq!(got.len(), original.len());
    for (i, (&g, &w)) in got.iter().zip(&original).enumerate() {
        assert_eq!(g, round_to_half(w), "weight {i}: {w} came back as {g}");
    }

    // q8: every 64-value block of every tensor comes back as round(w / s) · s, s = absmax / 127.
    let q8 = scratch("q8");
    let summary = export_for_inference::<B>(&run, &q8, Precision::Q8, &dev).unwrap();
    assert!(
        (summary.weight_bytes as f64) < 0.3 * f32_bytes as f64,
        "q8 file {} bytes vs f32 {f32_bytes}",
        summary.weight_bytes
    );
    let (m, _) = load_for_inference::<B>(&q8, &dev).unwrap();
    let (q8_weights, mut expected) = (weights(&m), Vec::new());
    let ckpt_model = ckpt.load_weights::<B>(EMA_FILE, &dev).unwrap();
    for tensor in model::world::quant::collect_params(&ckpt_model) {
        for block in tensor.chunks(64) {
            let s = block.iter().fold(0f32, |a, w| a.max(w.abs())) / 127.0;
            expected.extend(
                block
                    .iter()
                    .map(|&w| if s > 0.0 { (w / s).round() * s } else { 0.0 }),
            );
        }
    }
    assert_eq!(q8_weights.len(), expected.len());
    for (i, (&g, &e)) in q8_weights.iter().zip(&expected).enumerate() {
        assert!(
            (g - e).abs() <= 1e-6 * e.abs().max(1e-3),
            "weight {i}: {g} vs {e}"
        );
    }
    let bytes = fs::read(q8.join("ema.q8")).unwrap();
    fs::write(q8.join("ema.q8"), &bytes[..bytes.len() - 10]).unwrap();
    assert!(matches!(
        load_for_inference::<B>(&q8, &dev),
        Err(WorldError::CheckpointDamaged { .. })
    ));

    // A damaged weight file is refused, naming the file.
    let bytes = fs::read(half.join(EMA_FILE)).unwrap();
    let mut bad = bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    fs::write(half.join(EMA_FILE), &bad).unwrap();
    match load_for_inference::<B>(&half, &dev) {
        Err(e @ WorldError::CheckpointDamaged { .. }) => {
            assert!(e.to_string().contains(EMA_FILE), "{e}")
        }
        Err(e) => panic!("expected a damaged-checkpoint error, got {e}"),
        Ok(_) => panic!("a damaged export loaded"),
    }
    for d in [run, full, half, q8] {
        let _ = fs::remove_dir_all(d);
    }
}

#[test]
fn half_rounding_helper_matches_known_values() {
    // The independent rounding used above, on values whose halves are known.
    assert_eq!(round_to_half(1.0), 1.0);
    assert_eq!(round_to_half(0.1), 0.099975586);
    assert_eq!(round_to_half(-3.14159), -3.140625);
    assert_eq!(round_to_half(1.0 + 1.0 / 2048.0), 1.0); // tie → even
    assert_eq!(round_to_half(1.0 + 3.0 / 2048.0), 1.0 + 2.0 / 1024.0); // tie → even
    assert_eq!(round_to_half(1e-7), 1.1920929e-7); // subnormal half: 2 × 2^-24
}
