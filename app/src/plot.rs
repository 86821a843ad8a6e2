//! Line plots as images, without a plotting crate: a title, axes with "nice" ticks (steps of
//! 1, 2 or 5 × 10ᵏ) and light grid lines, axis labels, one coloured polyline per series and a
//! legend placed in the emptiest corner. Text uses a built-in 5×7 bitmap font (upper case,
//! digits and common punctuation; lower case is drawn in capitals).

use image::{Rgb, RgbImage};

/// One line of the plot.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub label: String,
    /// (x, y) points in drawing order; non-finite points are skipped.
    pub points: Vec<(f64, f64)>,
}

/// A plot of several series against a shared x axis.
#[derive(Clone, Debug, PartialEq)]
pub struct LinePlot {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub width: u32,
    pub height: u32,
}

/// Series colours, in order (then repeated).
pub const PALETTE: [[u8; 3]; 8] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
];

const WHITE: [u8; 3] = [255, 255, 255];
const BLACK: [u8; 3] = [0, 0, 0];
const GRID: [u8; 3] = [225, 225, 225];
/// Text is drawn at this many pixels per font pixel.
const TEXT_SCALE: u32 = 2;
const GLYPH_W: u32 = 5;
const GLYPH_H: u32 = 7;
/// Horizontal advance of one character (glyph + 1 column of space), in font pixels.
const ADVANCE: u32 = GLYPH_W + 1;

/// Margins around the plot area: left, right, top, bottom.
const MARGINS: [u32; 4] = [100, 30, 50, 80];

/// An axis from `lo` to `hi` with ticks every `step`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub step: f64,
}

impl Axis {
    /// The smallest axis with a 1/2/5 × 10ᵏ step covering [lo, hi] with at most `max_ticks`
    /// intervals, its ends on ticks. A degenerate range is widened to ±0.5 (or ±5% of |lo|).
    pub fn covering(lo: f64, hi: f64, max_ticks: usize) -> Self {
        let (mut lo, mut hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        if hi <= lo {
            let pad = if lo.abs() > 0.0 { lo.abs() * 0.05 } else { 0.5 };
            lo -= pad;
            hi += pad;
        }
        let max_ticks = max_ticks.max(1) as f64;
        let raw = (hi - lo) / max_ticks;
        let mag = 10f64.powf(raw.log10().floor());
        let mut step = mag;
        for m in [1.0, 2.0, 5.0, 10.0] {
            step = m * mag;
            if ((hi / step).ceil() - (lo / step).floor()) <= max_ticks {
                break;
            }
        }
        Axis {
            lo: (lo / step).floor() * step,
            hi: (hi / step).ceil() * step,
            step,
        }
    }

    /// Tick positions from `lo` to `hi`.
    pub fn ticks(&self) -> Vec<f64> {
        let n = ((self.hi - self.lo) / self.step).round() as usize;
        (0..=n).map(|i| self.lo + i as f64 * self.step).collect()
    }

    /// A tick label with as many decimals as the step needs.
    pub fn label(&self, v: f64) -> String {
        let decimals = (-self.step.log10().floor()).max(0.0) as usize;
        let s = format!("{v:.decimals$}");
        // Avoid "-0" / "-0.0".
        if s.trim_start_matches('-')
            .chars()
            .all(|c| c == '0' || c == '.')
        {
            s.trim_start_matches('-').to_string()
        } else {
            s
        }
    }
}

/// Rows of the 5×7 glyph of `c` (bit 4 is the leftmost column); `?` for unknown characters.
pub fn glyph(c: char) -> [u8; 7] {
    let c = c.to_ascii_uppercase();
    match c {
        ' ' => [0; 7],
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        ',' => [0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '+' => [0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '[' => [0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E],
        ']' => [0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E],
        '/' => [0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '_' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F],
        '=' => [0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        '<' => [0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02],
        '>' => [0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08],
        '#' => [0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A],
        _ => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04],
    }
}

/// Width in pixels of `text` drawn at the plot's text scale.
pub fn text_width(text: &str) -> u32 {
    let n = text.chars().count() as u32;
    (n * ADVANCE).saturating_sub(1) * TEXT_SCALE
}

/// Height in pixels of a line of text.
pub const TEXT_HEIGHT: u32 = GLYPH_H * TEXT_SCALE;

fn put(img: &mut RgbImage, x: i64, y: i64, c: [u8; 3]) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, Rgb(c));
    }
}

fn fill_rect(img: &mut RgbImage, x0: i64, y0: i64, w: i64, h: i64, c: [u8; 3]) {
    for y in y0..y0 + h {
        for x in x0..x0 + w {
            put(img, x, y, c);
        }
    }
}

/// Draws `text` with its top-left corner at (x, y); `vertical` draws it bottom to top
/// (rotated a quarter turn counter-clockwise) with its bottom-left corner at (x, y).
fn draw_text(img: &mut RgbImage, text: &str, x: i64, y: i64, c: [u8; 3], vertical: bool) {
    let s = TEXT_SCALE as i64;
    for (i, ch) in text.chars().enumerate() {
        let rows = glyph(ch);
        for (row, bits) in rows.iter().enumerate() {
            for col in 0..GLYPH_W as i64 {
                if bits & (0x10 >> col) == 0 {
                    continue;
                }
                let along = (i as i64 * ADVANCE as i64 + col) * s;
                let across = row as i64 * s;
                let (px, py) = if vertical {
                    (x + across, y - along - s)
                } else {
                    (x + along, y + across)
                };
                fill_rect(img, px, py, s, s, c);
            }
        }
    }
}

/// A line of thickness 2 from (x0, y0) to (x1, y1) (Bresenham).
fn draw_line(img: &mut RgbImage, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: [u8; 3]) {
    let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
    let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
    let (mut x, mut y, mut err) = (x0, y0, dx + dy);
    loop {
        fill_rect(img, x, y, 2, 2, c);
        if x == x1 && y == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

/// Pixel rectangle of the plot area: (left, top, right, bottom), inclusive.
pub fn plot_area(width: u32, height: u32) -> (i64, i64, i64, i64) {
    let [l, r, t, b] = MARGINS;
    (
        l as i64,
        t as i64,
        width as i64 - r as i64 - 1,
        height as i64 - b as i64 - 1,
    )
}

impl LinePlot {
    /// The axes the data span (all finite points of all series).
    pub fn axes(&self) -> (Axis, Axis) {
        let pts = self
            .series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|(x, y)| x.is_finite() && y.is_finite());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in pts {
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
        if x0 > x1 {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        (Axis::covering(x0, x1, 10), Axis::covering(y0, y1, 8))
    }

    /// The pixel of data point (x, y).
    pub fn to_pixel(&self, x: f64, y: f64) -> (i64, i64) {
        self.pixel_on(self.axes(), x, y)
    }

    fn pixel_on(&self, (ax, ay): (Axis, Axis), x: f64, y: f64) -> (i64, i64) {
        let (l, t, r, b) = plot_area(self.width, self.height);
        let px = l as f64 + (x - ax.lo) / (ax.hi - ax.lo) * (r - l) as f64;
        let py = b as f64 - (y - ay.lo) / (ay.hi - ay.lo) * (b - t) as f64;
        (px.round() as i64, py.round() as i64)
    }

    /// The legend box (x, y, w, h) in the corner of the plot area that covers the fewest data
    /// points.
    pub fn legend_box(&self) -> (i64, i64, i64, i64) {
        let widest = self
            .series
            .iter()
            .map(|s| text_width(&s.label))
            .max()
            .unwrap_or(0);
        let line_h = TEXT_HEIGHT as i64 + 8;
        let (w, h) = (widest as i64 + 56, self.series.len() as i64 * line_h + 12);
        let (l, t, r, b) = plot_area(self.width, self.height);
        let axes = self.axes();
        let pixels: Vec<(i64, i64)> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|(px, py)| px.is_finite() && py.is_finite())
            .map(|&(px, py)| self.pixel_on(axes, px, py))
            .collect();
        let corners = [
            (r - w - 8, t + 8),
            (l + 8, t + 8),
            (r - w - 8, b - h - 8),
            (l + 8, b - h - 8),
        ];
        let covered = |&(x, y): &(i64, i64)| {
            pixels
                .iter()
                .filter(|&&(px, py)| px >= x && px < x + w && py >= y && py < y + h)
                .count()
        };
        let &(x, y) = corners
            .iter()
            .min_by_key(|c| covered(c))
            .expect("four corners");
        (x, y, w, h)
    }

    /// The plot as an RGB image.
    pub fn render(&self) -> RgbImage {
        let mut img = RgbImage::from_pixel(self.width, self.height, Rgb(WHITE));
        let axes = self.axes();
        let (ax, ay) = axes;
        let (l, t, r, b) = plot_area(self.width, self.height);

        // Grid, ticks and tick labels.
        for v in ax.ticks() {
            let (px, _) = self.pixel_on(axes, v, ay.lo);
            for y in t..=b {
                put(&mut img, px, y, GRID);
            }
            fill_rect(&mut img, px, b + 1, 1, 6, BLACK);
            let label = ax.label(v);
            let x = px - text_width(&label) as i64 / 2;
            draw_text(&mut img, &label, x, b + 10, BLACK, false);
        }
        for v in ay.ticks() {
            let (_, py) = self.pixel_on(axes, ax.lo, v);
            for x in l..=r {
                put(&mut img, x, py, GRID);
            }
            fill_rect(&mut img, l - 6, py, 6, 1, BLACK);
            let label = ay.label(v);
            let x = l - 10 - text_width(&label) as i64;
            draw_text(
                &mut img,
                &label,
                x,
                py - TEXT_HEIGHT as i64 / 2,
                BLACK,
                false,
            );
        }

        // Axes box (under the series, which may touch it).
        for x in l..=r {
            put(&mut img, x, t, BLACK);
            put(&mut img, x, b, BLACK);
        }
        for y in t..=b {
            put(&mut img, l, y, BLACK);
            put(&mut img, r, y, BLACK);
        }

        // Series.
        for (i, s) in self.series.iter().enumerate() {
            let c = PALETTE[i % PALETTE.len()];
            let pts: Vec<(i64, i64)> = s
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|&(x, y)| self.pixel_on(axes, x, y))
                .collect();
            for w in pts.windows(2) {
                draw_line(&mut img, w[0], w[1], c);
            }
            if pts.len() <= 40 {
                for &(x, y) in &pts {
                    fill_rect(&mut img, x - 2, y - 2, 5, 5, c);
                }
            }
        }

        // Title and axis labels.
        let cx = (l + r) / 2;
        let title_x = cx - text_width(&self.title) as i64 / 2;
        draw_text(
            &mut img,
            &self.title,
            title_x,
            (t - TEXT_HEIGHT as i64) / 2,
            BLACK,
            false,
        );
        let xl = cx - text_width(&self.x_label) as i64 / 2;
        draw_text(
            &mut img,
            &self.x_label,
            xl,
            b + 20 + TEXT_HEIGHT as i64,
            BLACK,
            false,
        );
        let cy = (t + b) / 2 + text_width(&self.y_label) as i64 / 2;
        draw_text(&mut img, &self.y_label, 16, cy, BLACK, true);

        // Legend.
        if !self.series.is_empty() {
            let (x, y, w, h) = self.legend_box();
            fill_rect(&mut img, x, y, w, h, WHITE);
            for i in x..x + w {
                put(&mut img, i, y, BLACK);
                put(&mut img, i, y + h - 1, BLACK);
            }
            for j in y..y + h {
                put(&mut img, x, j, BLACK);
                put(&mut img, x + w - 1, j, BLACK);
            }
            let line_h = TEXT_HEIGHT as i64 + 8;
            for (i, s) in self.series.iter().enumerate() {
                let row = y + 8 + i as i64 * line_h;
                let c = PALETTE[i % PALETTE.len()];
                fill_rect(&mut img, x + 8, row + TEXT_HEIGHT as i64 / 2 - 2, 32, 4, c);
                draw_text(&mut img, &s.label, x + 48, row, BLACK, false);
            }
        }
        img
    }
}
