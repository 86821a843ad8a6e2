//! PSNR and SSIM (SPEC §5.6) against independent values: PSNR of a known noise level computed
//! by hand, and SSIM against scikit-image.
//!
//! The SSIM reference numbers were obtained with scikit-image 0.26.0 (numpy, Python 3.11) on the
//! same integer-defined images as `pattern`, `noisy` and `shifted` below:
//! `skimage.metrics.structural_similarity(a, b, data_range=255, gaussian_weights=True,
//! sigma=1.5, use_sample_covariance=False, channel_axis=-1)` (for the float case the images
//! were mapped to v/127.5 − 1 and `data_range=2.0`).

use model::world::metrics::{gaussian_window_1d, psnr, psnr_u8, ssim, ssim_u8};

/// a(x, y, c) = ((x² + 2y² + 3xy + 40c) / 7) mod 256 (integer division).
fn pattern(h: usize, w: usize, ch: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(h * w * ch);
    for y in 0..h {
        for x in 0..w {
            for c in 0..ch {
                v.push((((x * x + 2 * y * y + 3 * x * y + 40 * c) / 7) % 256) as u8);
            }
        }
    }
    v
}

/// a + n(x, y, c) clamped to [0, 255], n a fixed integer "noise" in [-20, 20].
fn noisy(a: &[u8], h: usize, w: usize, ch: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(a.len());
    for y in 0..h {
        for x in 0..w {
            for c in 0..ch {
                let m = ((x * 7919 + y * 104_729 + c * 1_299_709) as u64 * 2_654_435_761) % 41;
                let n = m as i64 - 20;
                v.push((a[(y * w + x) * ch + c] as i64 + n).clamp(0, 255) as u8);
            }
        }
    }
    v
}

/// The image moved one pixel left (numpy.roll(a, -1, axis=1)).
fn shifted(a: &[u8], h: usize, w: usize, ch: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(a.len());
    for y in 0..h {
        for x in 0..w {
            for c in 0..ch {
                v.push(a[(y * w + (x + 1) % w) * ch + c]);
            }
        }
    }
    v
}

#[test]
fn psnr_of_a_known_noise_level() {
    // ±5 in a checkerboard on values that never clip: MSE = 25 exactly.
    let (h, w) = (16, 16);
    let a: Vec<u8> = (0..h * w * 3)
        .map(|i| (10 + (i * 37) % 230) as u8)
        .collect();
    let b: Vec<u8> = a
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if (i / 3 + i / (3 * w)) % 2 == 0 {
                v + 5
            } else {
                v - 5
            }
        })
        .collect();
    let want = 10.0 * (255.0f64 * 255.0 / 25.0).log10(); // 34.151 dB
    assert!(
        (psnr_u8(&a, &b) - want).abs() < 1e-9,
        "{} vs {want}",
        psnr_u8(&a, &b)
    );
    // The same images on the [-1, 1] scale (range 2) give the same PSNR.
    let fa: Vec<f32> = a.iter().map(|&v| v as f32 / 127.5 - 1.0).collect();
    let fb: Vec<f32> = b.iter().map(|&v| v as f32 / 127.5 - 1.0).collect();
    assert!((psnr(&fa, &fb, 2.0) - want).abs() < 1e-4);
    assert_eq!(psnr_u8(&a, &a), f64::INFINITY);
}

#[test]
fn ssim_window_is_the_normalised_gaussian() {
    let w = gaussian_window_1d();
    assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-15);
    // exp(-25 / (2·1.5²)) relative to the centre.
    assert!((w[0] / w[5] - (-25.0f64 / 4.5).exp()).abs() < 1e-15);
    assert_eq!(w[0], w[10]);
}

#[test]
fn ssim_is_one_for_identical_images() {
    let a = pattern(32, 40, 3);
    assert!((ssim_u8(&a, &a, 32, 40, 3) - 1.0).abs() < 1e-12);
}

#[test]
fn ssim_matches_scikit_image() {
    // (h, w, ch, noisy, shifted) from scikit-image 0.26.0.
    let cases = [
        (64, 64, 3, 0.974242189339, 0.523294458118),
        (20, 27, 1, 0.851851333818, 0.937904045330),
    ];
    for (h, w, ch, want_noisy, want_shift) in cases {
        let a = pattern(h, w, ch);
        let got_noisy = ssim_u8(&a, &noisy(&a, h, w, ch), h, w, ch);
        let got_shift = ssim_u8(&a, &shifted(&a, h, w, ch), h, w, ch);
        assert!(
            (got_noisy - want_noisy).abs() < 1e-9,
            "{h}×{w}×{ch} noisy: {got_noisy} vs {want_noisy}"
        );
        assert!(
            (got_shift - want_shift).abs() < 1e-9,
            "{h}×{w}×{ch} shifted: {got_shift} vs {want_shift}"
        );
        assert!(got_noisy < 1.0 && got_shift < 1.0);
    }
    // Float images in [-1, 1] with data range 2 (SSIM's constants are not shift-invariant, so
    // this differs from the u8 value).
    let (h, w, ch) = (64, 64, 3);
    let a = pattern(h, w, ch);
    let b = noisy(&a, h, w, ch);
    let fa: Vec<f32> = a.iter().map(|&v| v as f32 / 127.5 - 1.0).collect();
    let fb: Vec<f32> = b.iter().map(|&v| v as f32 / 127.5 - 1.0).collect();
    let got = ssim(&fa, &fb, h, w, ch, 2.0);
    assert!((got - 0.968645946044).abs() < 1e-6, "float: {got}");
}
