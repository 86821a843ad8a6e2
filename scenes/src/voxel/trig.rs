//! Portable sine and cosine: range reduction by π/2 (Cody–Waite, two-part constant) and Taylor
//! polynomials on [-π/4, π/4], using only `+`, `*` and `round`, so that camera rays and headings
//! are bit-identical on every platform (the system `libm` may differ in the last ulp).

const FRAC_2_PI: f64 = std::f64::consts::FRAC_2_PI;
/// π/2 split into a head (the nearest f64) and the tail that the head misses.
const FRAC_PI_2_HI: f64 = std::f64::consts::FRAC_PI_2;
const FRAC_PI_2_LO: f64 = 6.123_233_995_736_766e-17;

/// `(sin x, cos x)`, accurate to a few ulp for |x| up to about 10⁶.
pub fn sin_cos(x: f64) -> (f64, f64) {
    let k = (x * FRAC_2_PI).round();
    let r = (x - k * FRAC_PI_2_HI) - k * FRAC_PI_2_LO;
    let r2 = r * r;
    // sin r = r − r³/3! + … − r¹⁵/15! ; cos r = 1 − r²/2! + … + r¹⁶/16! (|r| ≤ π/4: error < 1e-17).
    let mut s = -1.0 / 1_307_674_368_000.0;
    for c in [
        1.0 / 6_227_020_800.0,
        -1.0 / 39_916_800.0,
        1.0 / 362_880.0,
        -1.0 / 5_040.0,
        1.0 / 120.0,
        -1.0 / 6.0,
    ] {
        s = s * r2 + c;
    }
    let s = r + r * r2 * s;
    let mut c = 1.0 / 20_922_789_888_000.0;
    for k in [
        -1.0 / 87_178_291_200.0,
        1.0 / 479_001_600.0,
        -1.0 / 3_628_800.0,
        1.0 / 40_320.0,
        -1.0 / 720.0,
        1.0 / 24.0,
        -0.5,
    ] {
        c = c * r2 + k;
    }
    let c = 1.0 + r2 * c;
    match (k as i64).rem_euclid(4) {
        0 => (s, c),
        1 => (c, -s),
        2 => (-s, -c),
        _ => (-c, s),
    }
}

/// Wraps an angle into [-π, π).
pub fn wrap_angle(a: f64) -> f64 {
    let tau = std::f64::consts::TAU;
    a - tau * ((a + std::f64::consts::PI) / tau).floor()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_system_sine_and_cosine() {
        let mut worst: f64 = 0.0;
        for i in -4000..4000 {
            let x = i as f64 * 0.01237;
            let (s, c) = sin_cos(x);
            worst = worst.max((s - x.sin()).abs()).max((c - x.cos()).abs());
        }
        assert!(worst < 1e-14, "max error {worst}");
    }

    #[test]
    fn wrap_angle_lands_in_range_and_keeps_the_direction() {
        for i in -50..50 {
            let a = i as f64 * 0.7;
            let w = wrap_angle(a);
            assert!((-std::f64::consts::PI..std::f64::consts::PI).contains(&w));
            assert!((w.sin() - a.sin()).abs() < 1e-12 && (w.cos() - a.cos()).abs() < 1e-12);
        }
    }
}
