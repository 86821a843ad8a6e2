//! The PNG line plots of the evaluation: tick choice against its definition (1/2/5 × 10ᵏ
//! steps covering the data), data points drawn where the axis mapping puts them, in their
//! series' colour, and a legend in the corner the data leave free.

use memworld::plot::{glyph, plot_area, text_width, Axis, LinePlot, Series, PALETTE};

fn is_nice(step: f64) -> bool {
    let mag = 10f64.powf(step.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .any(|m| (step / mag - m).abs() < 1e-9)
}

#[test]
fn axes_cover_the_data_with_nice_steps() {
    for &(lo, hi) in &[
        (0.0, 1.0),
        (3.0, 97.0),
        (12.3, 31.7),
        (0.41, 0.93),
        (-5.0, 5.0),
        (1.0, 400.0),
        (7.0, 7.0),
        (0.0, 0.0),
    ] {
        let a = Axis::covering(lo, hi, 8);
        assert!(is_nice(a.step), "{lo}..{hi}: step {}", a.step);
        assert!(a.lo <= lo && a.hi >= hi && a.hi > a.lo, "{lo}..{hi}: {a:?}");
        let ticks = a.ticks();
        assert!(
            ticks.len() >= 2 && ticks.len() <= 10,
            "{lo}..{hi}: {ticks:?}"
        );
        // The axis ends on ticks, at most one step beyond the data (a single value is widened).
        if hi > lo {
            assert!(
                lo - a.lo < a.step + 1e-9 && a.hi - hi < a.step + 1e-9,
                "{a:?}"
            );
        }
    }
    let a = Axis::covering(0.0, 1.0, 5);
    assert_eq!(a.ticks().len(), 6);
    assert_eq!(a.label(0.4), "0.4");
    assert_eq!(Axis::covering(0.0, 400.0, 8).label(100.0), "100");
    assert_eq!(
        Axis {
            lo: -1.0,
            hi: 1.0,
            step: 0.5
        }
        .label(-0.0),
        "0.0"
    );
}

fn plot(series: Vec<Series>) -> LinePlot {
    LinePlot {
        title: "retrieval 8 -> 8".into(),
        x_label: "frames after the context".into(),
        y_label: "PSNR (dB)".into(),
        series,
        width: 640,
        height: 400,
    }
}

#[test]
fn points_are_drawn_where_the_axes_put_them() {
    let falling: Vec<(f64, f64)> = (1..=10).map(|d| (d as f64, 30.0 - d as f64)).collect();
    let flat: Vec<(f64, f64)> = (1..=10).map(|d| (d as f64, 15.0)).collect();
    let p = plot(vec![
        Series {
            label: "ours".into(),
            points: falling.clone(),
        },
        Series {
            label: "causal-window".into(),
            points: flat.clone(),
        },
    ]);
    let img = p.render();
    assert_eq!(img.dimensions(), (640, 400));
    let (ax, ay) = p.axes();
    let (l, t, r, b) = plot_area(640, 400);
    for (series, pts) in [falling, flat].iter().enumerate() {
        for &(x, y) in pts {
            let (px, py) = p.to_pixel(x, y);
            // Independent mapping: linear from the axis ends to the plot-area edges.
            let ex = l as f64 + (x - ax.lo) / (ax.hi - ax.lo) * (r - l) as f64;
            let ey = b as f64 - (y - ay.lo) / (ay.hi - ay.lo) * (b - t) as f64;
            assert!((px as f64 - ex).abs() <= 0.5 && (py as f64 - ey).abs() <= 0.5);
            let (lx, ly, lw, lh) = p.legend_box();
            if px >= lx && px < lx + lw && py >= ly && py < ly + lh {
                continue; // under the legend
            }
            assert_eq!(
                img.get_pixel(px as u32, py as u32).0,
                PALETTE[series],
                "series {series} at ({x}, {y})"
            );
        }
    }
    // The falling line leaves the top-right corner free: the legend goes there, and shows each
    // series' colour.
    let (lx, ly, lw, _) = p.legend_box();
    assert!(
        lx + lw > (l + r) / 2 && ly < (t + b) / 2,
        "legend at ({lx}, {ly})"
    );
    for c in &PALETTE[..2] {
        let found =
            (ly..ly + 60).any(|y| (lx..lx + 48).any(|x| img.get_pixel(x as u32, y as u32).0 == *c));
        assert!(found, "legend swatch {c:?}");
    }
    // Outside the plot area, only white, black and grey (text and ticks).
    assert_eq!(img.get_pixel(2, 2).0, [255, 255, 255]);
    assert_eq!(
        img.get_pixel(l as u32, ((t + b) / 2) as u32).0,
        [0, 0, 0],
        "left axis"
    );
    // The title is drawn (dark pixels above the plot area).
    let dark = (0..t as u32)
        .flat_map(|y| (0..640).map(move |x| (x, y)))
        .filter(|&(x, y)| img.get_pixel(x, y).0 == [0, 0, 0])
        .count();
    assert!(dark > 50, "title pixels: {dark}");
}

#[test]
fn font_has_the_characters_the_plots_use() {
    let unknown = glyph('\u{7}');
    for c in
        "0123456789.-+()/:%_=<>[]#,ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".chars()
    {
        let g = glyph(c);
        assert_ne!(g, [0; 7], "{c} is blank");
        assert!(
            g.iter().all(|row| row & !0x1F == 0),
            "{c} is wider than 5 columns"
        );
        if c != '?' {
            assert_ne!(g, unknown, "{c} has no glyph");
        }
    }
    assert_eq!(glyph('a'), glyph('A'));
    assert_eq!(glyph(' '), [0; 7]);
    // 2 characters of 5 columns + 1 column between them, 2 pixels per font pixel.
    assert_eq!(text_width("ab"), 22);
}
