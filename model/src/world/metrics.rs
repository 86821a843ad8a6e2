//! Image quality metrics for generated frames (SPEC §5.6): PSNR and SSIM.
//!
//! SSIM follows Wang, Bovik, Sheikh & Simoncelli, "Image Quality Assessment: From Error Visibility
//! to Structural Similarity" (IEEE TIP 2004), eq. (13), with the paper's settings: an 11×11
//! circular-symmetric Gaussian window (σ = 1.5), K1 = 0.01, K2 = 0.03, L = the data range, local
//! statistics weighted by the window (population covariance), the SSIM map averaged over every
//! position where the window fits inside the image, and colour images scored per channel and
//! averaged. These are the settings of `skimage.metrics.structural_similarity(...,
//! gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`.
//!
//! Plain Rust on host images (u8 or f32, channels-last, row-major), computed in f64.

use scenes::Frame;

/// Side of the SSIM Gaussian window.
pub const SSIM_WINDOW: usize = 11;
/// Standard deviation of the SSIM Gaussian window, in pixels.
pub const SSIM_SIGMA: f64 = 1.5;
const SSIM_K1: f64 = 0.01;
const SSIM_K2: f64 = 0.03;

/// Mean squared error between two equally long sample arrays.
pub fn mse(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(
        a.len(),
        b.len(),
        "mse: length mismatch ({} vs {})",
        a.len(),
        b.len()
    );
    assert!(!a.is_empty(), "mse: empty images");
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum();
    sum / a.len() as f64
}

/// Peak signal-to-noise ratio in dB: `10 log10(data_range² / MSE)`. `data_range` is the span of
/// the value scale (255 for u8, 2 for [-1, 1], 1 for [0, 1]). Identical images give `+inf`.
pub fn psnr(a: &[f32], b: &[f32], data_range: f64) -> f64 {
    let e = mse(a, b);
    if e == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (data_range * data_range / e).log10()
}

/// PSNR of two u8 images (data range 255). Identical images give `+inf`.
pub fn psnr_u8(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(
        a.len(),
        b.len(),
        "psnr: length mismatch ({} vs {})",
        a.len(),
        b.len()
    );
    assert!(!a.is_empty(), "psnr: empty images");
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum();
    let e = sum / a.len() as f64;
    if e == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (255.0 * 255.0 / e).log10()
}

/// PSNR of two RGB frames of the same size.
pub fn psnr_frames(a: &Frame, b: &Frame) -> f64 {
    assert_eq!(
        (a.width, a.height),
        (b.width, b.height),
        "psnr: frame sizes differ"
    );
    psnr_u8(&a.rgb, &b.rgb)
}

/// The normalised 1-D Gaussian of the SSIM window (the 2-D window is its outer product).
pub fn gaussian_window_1d() -> [f64; SSIM_WINDOW] {
    let r = (SSIM_WINDOW / 2) as f64;
    let mut w = [0.0; SSIM_WINDOW];
    for (i, v) in w.iter_mut().enumerate() {
        let d = i as f64 - r;
        *v = (-d * d / (2.0 * SSIM_SIGMA * SSIM_SIGMA)).exp();
    }
    let s: f64 = w.iter().sum();
    w.iter_mut().for_each(|v| *v /= s);
    w
}

/// Valid-mode separable filtering of one channel plane with the window `w`.
/// Input `h × w_px`, output `(h − 10) × (w_px − 10)`.
fn filter_valid(plane: &[f64], height: usize, width: usize, win: &[f64; SSIM_WINDOW]) -> Vec<f64> {
    let (oh, ow) = (height + 1 - SSIM_WINDOW, width + 1 - SSIM_WINDOW);
    // Horizontal pass: height × ow.
    let mut tmp = vec![0.0; height * ow];
    for y in 0..height {
        let row = &plane[y * width..(y + 1) * width];
        for x in 0..ow {
            tmp[y * ow + x] = win
                .iter()
                .zip(&row[x..x + SSIM_WINDOW])
                .map(|(k, v)| k * v)
                .sum();
        }
    }
    // Vertical pass: oh × ow.
    let mut out = vec![0.0; oh * ow];
    for y in 0..oh {
        for x in 0..ow {
            out[y * ow + x] = (0..SSIM_WINDOW)
                .map(|k| win[k] * tmp[(y + k) * ow + x])
                .sum();
        }
    }
    out
}

/// Mean SSIM of one channel plane pair (Wang et al. 2004, eq. 13, Gaussian-weighted statistics).
fn ssim_plane(x: &[f64], y: &[f64], height: usize, width: usize, data_range: f64) -> f64 {
    let win = gaussian_window_1d();
    let c1 = (SSIM_K1 * data_range).powi(2);
    let c2 = (SSIM_K2 * data_range).powi(2);
    let mu_x = filter_valid(x, height, width, &win);
    let mu_y = filter_valid(y, height, width, &win);
    let xx: Vec<f64> = x.iter().map(|v| v * v).collect();
    let yy: Vec<f64> = y.iter().map(|v| v * v).collect();
    let xy: Vec<f64> = x.iter().zip(y).map(|(a, b)| a * b).collect();
    let e_xx = filter_valid(&xx, height, width, &win);
    let e_yy = filter_valid(&yy, height, width, &win);
    let e_xy = filter_valid(&xy, height, width, &win);
    let n = mu_x.len();
    let mut total = 0.0;
    for i in 0..n {
        let (mx, my) = (mu_x[i], mu_y[i]);
        let var_x = e_xx[i] - mx * mx;
        let var_y = e_yy[i] - my * my;
        let cov = e_xy[i] - mx * my;
        total += ((2.0 * mx * my + c1) * (2.0 * cov + c2))
            / ((mx * mx + my * my + c1) * (var_x + var_y + c2));
    }
    total / n as f64
}

/// Mean SSIM of two channels-last images of `height × width × channels` samples on a scale of
/// span `data_range`, averaged over channels. Both sides must be at least 11 pixels.
pub fn ssim(
    a: &[f32],
    b: &[f32],
    height: usize,
    width: usize,
    channels: usize,
    data_range: f64,
) -> f64 {
    let n = height * width * channels;
    assert!(
        a.len() == n && b.len() == n,
        "ssim: expected {height}×{width}×{channels} = {n} samples, got {} and {}",
        a.len(),
        b.len()
    );
    assert!(
        height >= SSIM_WINDOW && width >= SSIM_WINDOW,
        "ssim: images must be at least {SSIM_WINDOW}×{SSIM_WINDOW} (got {height}×{width})"
    );
    let mut sum = 0.0;
    for c in 0..channels {
        let x: Vec<f64> = (0..height * width)
            .map(|p| a[p * channels + c] as f64)
            .collect();
        let y: Vec<f64> = (0..height * width)
            .map(|p| b[p * channels + c] as f64)
            .collect();
        sum += ssim_plane(&x, &y, height, width, data_range);
    }
    sum / channels as f64
}

/// SSIM of two u8 images (data range 255), channels-last.
pub fn ssim_u8(a: &[u8], b: &[u8], height: usize, width: usize, channels: usize) -> f64 {
    let fa: Vec<f32> = a.iter().map(|&v| v as f32).collect();
    let fb: Vec<f32> = b.iter().map(|&v| v as f32).collect();
    ssim(&fa, &fb, height, width, channels, 255.0)
}

/// SSIM of two RGB frames of the same size.
pub fn ssim_frames(a: &Frame, b: &Frame) -> f64 {
    assert_eq!(
        (a.width, a.height),
        (b.width, b.height),
        "ssim: frame sizes differ"
    );
    ssim_u8(&a.rgb, &b.rgb, a.height, a.width, 3)
}
