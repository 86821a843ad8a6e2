//! 2-D gradient noise (Perlin, "Improved Noise", SIGGRAPH 2002: quintic fade, hashed gradients)
//! and fractal sums of octaves, with the permutation table drawn from `scenes::Rng` so that the
//! terrain is a pure function of the seed.

use crate::Rng;

/// One gradient-noise field. Values lie in about [-1, 1], zero at integer lattice points.
#[derive(Clone, Debug)]
pub struct GradientNoise {
    /// The permutation of 0..256, stored twice so that `perm[perm[i] + j]` never wraps.
    perm: [u8; 512],
}

fn fade(t: f64) -> f64 {
    t * t * t * (t * (t * 6.0 - 15.0) + 10.0)
}

fn lerp(t: f64, a: f64, b: f64) -> f64 {
    a + t * (b - a)
}

/// Dot product of the offset with one of eight lattice gradients.
fn grad(hash: u8, x: f64, z: f64) -> f64 {
    match hash & 7 {
        0 => x + z,
        1 => -x + z,
        2 => x - z,
        3 => -x - z,
        4 => x,
        5 => -x,
        6 => z,
        _ => -z,
    }
}

impl GradientNoise {
    pub fn new(rng: &mut Rng) -> Self {
        let mut p: Vec<u8> = (0..=255).collect();
        rng.shuffle(&mut p);
        let mut perm = [0u8; 512];
        for (i, slot) in perm.iter_mut().enumerate() {
            *slot = p[i & 255];
        }
        Self { perm }
    }

    fn hash(&self, xi: usize, zi: usize) -> u8 {
        self.perm[self.perm[xi] as usize + zi]
    }

    /// Noise at `(x, z)`.
    pub fn sample(&self, x: f64, z: f64) -> f64 {
        let (xf, zf) = (x.floor(), z.floor());
        let (xi, zi) = ((xf as i64 & 255) as usize, (zf as i64 & 255) as usize);
        let (fx, fz) = (x - xf, z - zf);
        let (u, v) = (fade(fx), fade(fz));
        let g00 = grad(self.hash(xi, zi), fx, fz);
        let g10 = grad(self.hash(xi + 1, zi), fx - 1.0, fz);
        let g01 = grad(self.hash(xi, zi + 1), fx, fz - 1.0);
        let g11 = grad(self.hash(xi + 1, zi + 1), fx - 1.0, fz - 1.0);
        lerp(v, lerp(u, g00, g10), lerp(u, g01, g11))
    }

    /// Fractal sum of `octaves` octaves (frequency ×2, amplitude ×½ each), normalised by the total
    /// amplitude so it stays in about [-1, 1]. Each octave is shifted so lattice zeros don't line up.
    pub fn fbm(&self, x: f64, z: f64, octaves: usize) -> f64 {
        let (mut sum, mut norm, mut amp, mut freq) = (0.0, 0.0, 1.0, 1.0);
        for o in 0..octaves {
            let shift = 17.31 * o as f64;
            sum += amp * self.sample(x * freq + shift, z * freq - shift);
            norm += amp;
            amp *= 0.5;
            freq *= 2.0;
        }
        sum / norm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_bounded_zero_on_the_lattice_and_continuous() {
        let n = GradientNoise::new(&mut Rng::new(3));
        let mut spread = (f64::MAX, f64::MIN);
        for i in 0..200 {
            for j in 0..200 {
                let (x, z) = (i as f64 * 0.173, j as f64 * 0.191);
                let v = n.sample(x, z);
                assert!(v.abs() <= 1.0 + 1e-12, "{v} at ({x}, {z})");
                spread = (spread.0.min(v), spread.1.max(v));
                // Lipschitz: the gradient of the interpolant is bounded (|∇| < 4 for these grads).
                let dv = (n.sample(x + 1e-3, z) - v).abs();
                assert!(dv < 4e-3, "jump {dv} at ({x}, {z})");
            }
            assert_eq!(n.sample(i as f64, (i * 7) as f64), 0.0);
        }
        assert!(spread.0 < -0.4 && spread.1 > 0.4, "too flat: {spread:?}");
    }

    #[test]
    fn different_permutations_give_different_fields() {
        let a = GradientNoise::new(&mut Rng::new(1));
        let b = GradientNoise::new(&mut Rng::new(2));
        let differ =
            (0..100).filter(|&i| a.fbm(i as f64 * 0.37, 0.5, 3) != b.fbm(i as f64 * 0.37, 0.5, 3));
        assert!(differ.count() > 90);
    }
}
