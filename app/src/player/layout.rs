//! Pixel geometry of the player window: where each pane sits, and where its frame lands inside
//! it — nearest-neighbour upscaling with the aspect ratio preserved, an integer scale whenever
//! the frame fits at least once (every texel the same size), centred and letterboxed.

/// A rectangle in target pixels, y down, origin at the top-left of the target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PixelRect {
    pub x: i32,
    pub y: i32,
    pub w: u32,
    pub h: u32,
}

impl PixelRect {
    pub fn new(x: i32, y: i32, w: u32, h: u32) -> Self {
        Self { x, y, w, h }
    }

    pub fn is_empty(&self) -> bool {
        self.w == 0 || self.h == 0
    }

    pub fn contains(&self, px: i32, py: i32) -> bool {
        px >= self.x && py >= self.y && px < self.x + self.w as i32 && py < self.y + self.h as i32
    }

    /// The part of `self` inside a `width × height` target (for scissor rectangles).
    pub fn clamp_to(&self, width: u32, height: u32) -> PixelRect {
        let x0 = self.x.clamp(0, width as i32);
        let y0 = self.y.clamp(0, height as i32);
        let x1 = (self.x + self.w as i32).clamp(0, width as i32);
        let y1 = (self.y + self.h as i32).clamp(0, height as i32);
        PixelRect::new(x0, y0, (x1 - x0) as u32, (y1 - y0) as u32)
    }
}

/// Where a `frame_w × frame_h` frame lands inside `area`: the largest integer multiple of the
/// frame that fits, or, when not even one copy fits, the largest aspect-preserving shrink;
/// centred, the remainder of `area` being letterbox.
pub fn fit_frame(area: PixelRect, frame_w: u32, frame_h: u32) -> PixelRect {
    if area.is_empty() || frame_w == 0 || frame_h == 0 {
        return PixelRect::new(area.x, area.y, 0, 0);
    }
    let k = (area.w / frame_w).min(area.h / frame_h);
    let (w, h) = if k >= 1 {
        (frame_w * k, frame_h * k)
    } else if area.w as u64 * frame_h as u64 <= area.h as u64 * frame_w as u64 {
        // Width-limited shrink.
        (
            area.w,
            ((frame_h as u64 * area.w as u64) / frame_w as u64).max(1) as u32,
        )
    } else {
        (
            ((frame_w as u64 * area.h as u64) / frame_h as u64).max(1) as u32,
            area.h,
        )
    };
    PixelRect::new(
        area.x + ((area.w - w) / 2) as i32,
        area.y + ((area.h - h) / 2) as i32,
        w,
        h,
    )
}

/// One pane of the window: a label strip on top and the view that shows its frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaneSlot {
    pub label: PixelRect,
    pub view: PixelRect,
}

/// Splits `area` into `n` side-by-side panes separated by `gap` pixels, each with a label strip
/// of `label_h` pixels above its view.
pub fn pane_slots(area: PixelRect, n: usize, label_h: u32, gap: u32) -> Vec<PaneSlot> {
    if n == 0 {
        return Vec::new();
    }
    let gaps = gap.saturating_mul(n as u32 - 1).min(area.w);
    let each = (area.w - gaps) / n as u32;
    let label_h = label_h.min(area.h);
    (0..n)
        .map(|i| {
            let x = area.x + (i as u32 * (each + gap)) as i32;
            PaneSlot {
                label: PixelRect::new(x, area.y, each, label_h),
                view: PixelRect::new(x, area.y + label_h as i32, each, area.h - label_h),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_scale_centred() {
        let r = fit_frame(PixelRect::new(10, 20, 300, 200), 64, 64);
        // min(300/64, 200/64) = 3 → 192×192, centred.
        assert_eq!(r, PixelRect::new(10 + 54, 20 + 4, 192, 192));
    }

    #[test]
    fn shrink_preserves_aspect() {
        let r = fit_frame(PixelRect::new(0, 0, 50, 40), 64, 64);
        assert_eq!(r, PixelRect::new(5, 0, 40, 40));
        let r = fit_frame(PixelRect::new(0, 0, 30, 100), 64, 32);
        assert_eq!((r.w, r.h), (30, 15));
    }

    #[test]
    fn panes_tile_the_area() {
        let slots = pane_slots(PixelRect::new(0, 0, 410, 300), 2, 20, 10);
        assert_eq!(slots[0].view, PixelRect::new(0, 20, 200, 280));
        assert_eq!(slots[1].view, PixelRect::new(210, 20, 200, 280));
        assert_eq!(slots[1].label, PixelRect::new(210, 0, 200, 20));
    }

    #[test]
    fn clamp_scissor() {
        assert_eq!(
            PixelRect::new(-5, 10, 20, 100).clamp_to(12, 50),
            PixelRect::new(0, 10, 12, 40)
        );
    }
}
