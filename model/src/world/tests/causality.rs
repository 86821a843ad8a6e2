//! Causality (SPEC §5.3): changing frame t+1 (its pixels, noise level and conditions) never
//! changes the model's output for frames ≤ t, for every preset's mixer layout.

use burn::tensor::{Int, Tensor, TensorData};
use scenes::Rng;

use super::common::*;
use crate::tolerance::{assert_close, diff, to_vec};
use crate::world::config::PRESETS;
use crate::world::diffusion::gaussian;
use crate::world::model::FrameConditions;

/// Replace frame `t` of `x` with `with`'s frame `t`.
fn splice<const D: usize, K: burn::tensor::TensorKind<B> + burn::tensor::BasicOps<B>>(
    x: &Tensor<B, D, K>,
    with: &Tensor<B, D, K>,
    t: usize,
) -> Tensor<B, D, K> {
    let f = x.dims()[1];
    let mut parts = Vec::new();
    if t > 0 {
        parts.push(x.clone().narrow(1, 0, t));
    }
    parts.push(with.clone().narrow(1, t, 1));
    if t + 1 < f {
        parts.push(x.clone().narrow(1, t + 1, f - t - 1));
    }
    Tensor::cat(parts, 1)
}

#[test]
fn future_frames_never_change_past_outputs_for_every_preset() {
    for (k, preset) in PRESETS.iter().enumerate() {
        let cfg = test_config(preset);
        let model = randomized_model(&cfg, 500 + k as u64);
        let mut rng = Rng::new(60 + k as u64);
        let (b, f) = (2, 5);
        let x = random_frames(&cfg, b, f, &mut rng);
        let tau = random_taus(b, f, &mut rng);
        let cond = random_conditions(&cfg, b, f, &mut rng);
        let base = model.forward(x.clone(), tau.clone(), &cond);

        for t in [0usize, 2] {
            // A different frame t+1: new pixels, a new τ, new action and pose.
            let x2 = splice(&x, &random_frames(&cfg, b, f, &mut rng), t + 1);
            let tau2 = splice(&tau, &random_taus(b, f, &mut rng), t + 1);
            let other = random_conditions(&cfg, b, f, &mut rng);
            let cond2 = FrameConditions {
                actions: cond.actions.as_ref().map(|a| {
                    // Guarantee a different action at t+1.
                    let n = cfg.n_actions.unwrap() as i64;
                    let mut v: Vec<i64> = to_int_vec(a);
                    for bi in 0..b {
                        v[bi * f + t + 1] = (v[bi * f + t + 1] + 1) % n;
                    }
                    Tensor::<B, 2, Int>::from_data(TensorData::new(v, [b, f]), &Default::default())
                }),
                poses: cond
                    .poses
                    .as_ref()
                    .map(|p| splice(p, other.poses.as_ref().unwrap(), t + 1)),
            };
            let out = model.forward(x2, tau2, &cond2);
            assert_close(
                &format!("{preset}: frames ≤ {t} after changing frame {}", t + 1),
                out.clone().narrow(1, 0, t + 1),
                base.clone().narrow(1, 0, t + 1),
                0.0,
                1e-6,
            );
            // The changed frame's own output does change (the test can fail).
            let d = diff(
                &to_vec(out.narrow(1, t + 1, 1)),
                &to_vec(base.clone().narrow(1, t + 1, 1)),
            );
            assert!(
                d.max_abs > 1e-3,
                "{preset}: frame {} ignored its own change",
                t + 1
            );
        }
        // And the model does look at the past: changing frame 0 changes frame 1's output.
        let x3 = splice(
            &x,
            &gaussian::<B, 5>(x.dims(), &mut rng, &Default::default()),
            0,
        );
        let out = model.forward(x3, tau.clone(), &cond);
        let d = diff(&to_vec(out.narrow(1, 1, 1)), &to_vec(base.narrow(1, 1, 1)));
        assert!(
            d.max_abs > 1e-4,
            "{preset}: frame 1 does not depend on frame 0"
        );
    }
}

fn to_int_vec(a: &Tensor<B, 2, Int>) -> Vec<i64> {
    a.clone()
        .into_data()
        .convert::<i64>()
        .to_vec::<i64>()
        .unwrap()
}
