//! Host f64 form of the AdamW update ([`super::AdamWStep`]), the kernel's reference in tests.

use super::AdamWStep;

/// The new parameter, first and second moments of every element.
pub fn adamw(
    param: &[f32],
    grad: &[f32],
    moment_1: &[f32],
    moment_2: &[f32],
    step: &AdamWStep,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (b1, b2) = (step.beta_1 as f64, step.beta_2 as f64);
    let t = step.time as i32;
    let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
    let keep = 1.0 - step.lr * step.weight_decay as f64;
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..param.len() {
        let g = grad[i] as f64;
        let m = b1 * moment_1[i] as f64 + (1.0 - b1) * g;
        let v = b2 * moment_2[i] as f64 + (1.0 - b2) * g * g;
        let delta = (m / c1) / ((v / c2).sqrt() + step.epsilon as f64);
        out.0
            .push((param[i] as f64 * keep - step.lr * delta) as f32);
        out.1.push(m as f32);
        out.2.push(v as f32);
    }
    out
}
