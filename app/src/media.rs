//! Pictures out of frames: animated GIFs of rollouts and PNG contact sheets (a grid of evenly
//! spaced frames), both written atomically.

use std::io::BufWriter;
use std::path::Path;

use anyhow::{ensure, Context, Result};
use image::codecs::gif::{GifEncoder, Repeat};
use image::codecs::png::PngEncoder;
use image::{Delay, ExtendedColorType, ImageEncoder, RgbImage, RgbaImage};
use scenes::episode::atomic::write_atomic;
use scenes::Frame;

/// GIF colour quantisation speed (1 best … 30 fastest); 10 is NeuQuant's usual trade-off.
const GIF_SPEED: i32 = 10;

/// Background of the gaps between frames on a contact sheet.
const SHEET_BACKGROUND: [u8; 3] = [24, 24, 24];

/// Gap in pixels between frames on a contact sheet.
const SHEET_GAP: u32 = 2;

/// `frame` enlarged `scale` times with nearest-neighbour sampling (pixels stay crisp).
pub fn upscale(frame: &Frame, scale: u32) -> RgbImage {
    let s = scale.max(1) as usize;
    let (w, h) = (frame.width * s, frame.height * s);
    let mut out = RgbImage::new(w as u32, h as u32);
    for (y, row) in out.as_mut().chunks_exact_mut(w * 3).enumerate() {
        for (x, px) in row.chunks_exact_mut(3).enumerate() {
            px.copy_from_slice(&frame.pixel(x / s, y / s));
        }
    }
    out
}

/// Writes `frames` as a looping animated GIF at `fps` frames per second, each frame enlarged
/// `scale` times. `on_frame` is called after each frame is encoded (GIF encoding is slow).
pub fn write_gif(
    path: &Path,
    frames: &[Frame],
    fps: u32,
    scale: u32,
    on_frame: &mut dyn FnMut(),
) -> Result<()> {
    ensure!(
        !frames.is_empty(),
        "no frames to write to {}",
        path.display()
    );
    ensure!(fps > 0, "--fps must be at least 1");
    let delay = Delay::from_numer_denom_ms(1000, fps);
    write_atomic(path, |file| {
        let mut encoder = GifEncoder::new_with_speed(BufWriter::new(file), GIF_SPEED);
        encoder
            .set_repeat(Repeat::Infinite)
            .map_err(std::io::Error::other)?;
        for frame in frames {
            let rgba: RgbaImage =
                image::DynamicImage::ImageRgb8(upscale(frame, scale)).into_rgba8();
            encoder
                .encode_frame(image::Frame::from_parts(rgba, 0, 0, delay))
                .map_err(std::io::Error::other)?;
            on_frame();
        }
        Ok(())
    })
    .with_context(|| format!("writing {}", path.display()))
}

/// Height of the strip under a side-by-side pair that marks a generated right frame.
const MARK_STRIP: usize = 3;

/// `left` and `right` (same size) side by side with a `SHEET_GAP` gap, over a strip that shows
/// a red bar under the right frame when `marked` (e.g. a dreamed frame next to the real one).
pub fn side_by_side(left: &Frame, right: &Frame, marked: bool) -> Frame {
    assert_eq!(
        (left.width, left.height),
        (right.width, right.height),
        "side-by-side frames differ in size"
    );
    let (r, h, gap) = (left.width, left.height, SHEET_GAP as usize);
    let (w, total_h) = (2 * r + gap, h + MARK_STRIP);
    let mut out = Frame {
        width: w,
        height: total_h,
        rgb: SHEET_BACKGROUND.repeat(w * total_h),
    };
    for (x0, frame) in [(0, left), (r + gap, right)] {
        for y in 0..h {
            for x in 0..r {
                out.set_pixel(x0 + x, y, frame.pixel(x, y));
            }
        }
    }
    if marked {
        for x in 0..r {
            out.set_pixel(r + gap + x, h + 1, [230, 60, 60]);
        }
    }
    out
}

/// Indices of `count` frames spread evenly over `len` frames, first and last included.
pub fn evenly_spaced(len: usize, count: usize) -> Vec<usize> {
    let count = count.clamp(1, len.max(1));
    if count == 1 {
        return vec![0];
    }
    (0..count).map(|i| i * (len - 1) / (count - 1)).collect()
}

/// A grid of the given frames, `columns` wide, each enlarged `scale` times, separated by
/// `SHEET_GAP`-pixel gaps. All frames must have the size of the first.
pub fn contact_sheet(frames: &[&Frame], columns: usize, scale: u32) -> RgbImage {
    assert!(
        !frames.is_empty(),
        "a contact sheet needs at least one frame"
    );
    let columns = columns.clamp(1, frames.len());
    let rows = frames.len().div_ceil(columns);
    let s = scale.max(1);
    let (fw, fh) = (frames[0].width as u32 * s, frames[0].height as u32 * s);
    let width = columns as u32 * (fw + SHEET_GAP) + SHEET_GAP;
    let height = rows as u32 * (fh + SHEET_GAP) + SHEET_GAP;
    let mut sheet = RgbImage::from_pixel(width, height, image::Rgb(SHEET_BACKGROUND));
    for (i, frame) in frames.iter().enumerate() {
        assert_eq!(
            (frame.width, frame.height),
            (frames[0].width, frames[0].height),
            "frames differ in size"
        );
        let x = SHEET_GAP + (i % columns) as u32 * (fw + SHEET_GAP);
        let y = SHEET_GAP + (i / columns) as u32 * (fh + SHEET_GAP);
        image::imageops::replace(&mut sheet, &upscale(frame, s), x as i64, y as i64);
    }
    sheet
}

/// Writes an RGB image as PNG, atomically.
pub fn write_png(path: &Path, image: &RgbImage) -> Result<()> {
    write_atomic(path, |file| {
        PngEncoder::new(BufWriter::new(file))
            .write_image(
                image.as_raw(),
                image.width(),
                image.height(),
                ExtendedColorType::Rgb8,
            )
            .map_err(std::io::Error::other)
    })
    .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: usize, h: usize, seed: u8) -> Frame {
        let mut f = Frame::new(w, h);
        for (i, b) in f.rgb.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
        }
        f
    }

    #[test]
    fn upscale_repeats_each_pixel() {
        let f = frame(3, 2, 5);
        let big = upscale(&f, 3);
        assert_eq!(big.dimensions(), (9, 6));
        for y in 0..6 {
            for x in 0..9 {
                assert_eq!(
                    big.get_pixel(x, y).0,
                    f.pixel(x as usize / 3, y as usize / 3)
                );
            }
        }
    }

    #[test]
    fn contact_sheet_places_frames_row_major_with_gaps() {
        let frames: Vec<Frame> = (0..5).map(|i| frame(4, 4, i * 40)).collect();
        let refs: Vec<&Frame> = frames.iter().collect();
        let sheet = contact_sheet(&refs, 3, 2);
        assert_eq!(sheet.dimensions(), (3 * 10 + 2, 2 * 10 + 2));
        // Frame 4 is in row 1, column 1; its pixel (1, 2) lands at the scaled offset.
        let (x0, y0) = (2 + 10, 2 + 10);
        assert_eq!(sheet.get_pixel(x0 + 2, y0 + 4).0, frames[4].pixel(1, 2));
        assert_eq!(sheet.get_pixel(0, 0).0, SHEET_BACKGROUND);
        assert_eq!(sheet.get_pixel(31, 21).0, SHEET_BACKGROUND);
        assert_eq!(
            sheet.get_pixel(24, 14).0,
            SHEET_BACKGROUND,
            "the empty grid cell stays background"
        );
    }

    #[test]
    fn evenly_spaced_includes_both_ends() {
        assert_eq!(evenly_spaced(101, 5), vec![0, 25, 50, 75, 100]);
        assert_eq!(evenly_spaced(3, 10), vec![0, 1, 2]);
        assert_eq!(evenly_spaced(7, 1), vec![0]);
    }
}
