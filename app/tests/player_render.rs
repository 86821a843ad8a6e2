//! Offscreen checks of the player's frame pass (`memworld::player::render`), on the software
//! adapter (Mesa lavapipe) when present:
//! - the WGSL uniform struct and its `#[repr(C)]` Rust twin agree (naga reflection);
//! - the shader's nearest-neighbour upscale equals a CPU upscale of the same frame, pixel for
//!   pixel, with letterbox and background where they belong;
//! - the full pass with the HUD matches the committed golden image (per-pixel tolerance), and
//!   the HUD leaves the pane's upscaled pixels untouched.
//!
//! Without any wgpu adapter the GPU tests print why and pass, unless `CI` is set: there
//! they must run. `MEMWORLD_UPDATE_GOLDEN=1` rewrites the golden image.

use std::path::PathBuf;
use std::sync::Arc;

use memworld::player::gpu::{BackendChoice, Gpu};
use memworld::player::hud::{self, HudModel};
use memworld::player::layout::{fit_frame, PixelRect};
use memworld::player::offscreen::Offscreen;
use memworld::player::render::{BlitUniforms, FramePass, BACKGROUND_SRGB, BLIT_WGSL};
use scenes::{Frame, MazeInfo, Pose, SceneKind};

const FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;

fn gpu_or_skip(test: &str) -> Option<Gpu> {
    match Gpu::headless(BackendChoice::Auto, true) {
        Ok(gpu) => {
            eprintln!("{test}: rendering on {}", gpu.describe());
            Some(gpu)
        }
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("{test}: no wgpu adapter under CI: {e}")
        }
        Err(e) => {
            eprintln!(
                "SKIPPED {test}: no wgpu adapter ({e}); install mesa-vulkan-drivers to run it"
            );
            None
        }
    }
}

/// A frame in which every texel differs from its neighbours, so any off-by-one in the
/// upscale shows.
fn test_pattern(w: usize, h: usize) -> Frame {
    let mut f = Frame::new(w, h);
    for y in 0..h {
        for x in 0..w {
            f.set_pixel(
                x,
                y,
                [(x * 4) as u8, (y * 4) as u8, (((x ^ y) * 8) % 256) as u8],
            );
        }
    }
    f
}

fn px(img: &[u8], width: u32, x: u32, y: u32) -> [u8; 4] {
    let i = ((y * width + x) * 4) as usize;
    [img[i], img[i + 1], img[i + 2], img[i + 3]]
}

/// CPU nearest-neighbour reference: the frame texel under target pixel (x, y) of `image`.
fn reference_texel(frame: &Frame, image: PixelRect, x: u32, y: u32) -> [u8; 4] {
    let (dx, dy) = (x as i64 - image.x as i64, y as i64 - image.y as i64);
    let tx = (dx * frame.width as i64 / image.w as i64) as usize;
    let ty = (dy * frame.height as i64 / image.h as i64) as usize;
    let [r, g, b] = frame.pixel(tx, ty);
    [r, g, b, 255]
}

/// Checks every pixel of `views[i]` against the CPU upscale of `frames[i]`; returns the count.
fn check_panes(img: &[u8], width: u32, frames: &[&Frame], views: &[PixelRect]) -> usize {
    let mut checked = 0;
    for (frame, view) in frames.iter().zip(views) {
        let image = fit_frame(*view, frame.width as u32, frame.height as u32);
        for y in view.y as u32..(view.y as u32 + view.h) {
            for x in view.x as u32..(view.x as u32 + view.w) {
                let got = px(img, width, x, y);
                let want = if image.contains(x as i32, y as i32) {
                    reference_texel(frame, image, x, y)
                } else {
                    BACKGROUND_SRGB
                };
                assert_eq!(
                    got, want,
                    "pixel ({x}, {y}) of view {view:?} (image {image:?})"
                );
                checked += 1;
            }
        }
    }
    checked
}

#[test]
fn blit_uniforms_match_wgsl_struct() {
    let module = naga::front::wgsl::parse_str(BLIT_WGSL).expect("shaders/blit.wgsl parses");
    let (_, ty) = module
        .types
        .iter()
        .find(|(_, t)| t.name.as_deref() == Some("BlitUniforms"))
        .expect("struct BlitUniforms in the shader");
    let naga::TypeInner::Struct { members, span } = &ty.inner else {
        panic!("BlitUniforms is not a struct")
    };
    assert_eq!(
        *span as usize,
        std::mem::size_of::<BlitUniforms>(),
        "struct size"
    );
    let rust = [
        (
            "image_origin",
            std::mem::offset_of!(BlitUniforms, image_origin),
        ),
        ("image_size", std::mem::offset_of!(BlitUniforms, image_size)),
        ("frame_size", std::mem::offset_of!(BlitUniforms, frame_size)),
        ("_pad", std::mem::offset_of!(BlitUniforms, _pad)),
        ("letterbox", std::mem::offset_of!(BlitUniforms, letterbox)),
    ];
    let wgsl: Vec<(String, usize)> = members
        .iter()
        .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize))
        .collect();
    let rust: Vec<(String, usize)> = rust.iter().map(|(n, o)| (n.to_string(), *o)).collect();
    assert_eq!(wgsl, rust, "member names and offsets");
}

#[test]
fn shader_upscale_equals_cpu_upscale() {
    let Some(gpu) = gpu_or_skip("shader_upscale_equals_cpu_upscale") else {
        return;
    };
    let size = [360u32, 220u32];
    let target = Offscreen::new(&gpu.device, size, FORMAT);
    let mut pass = FramePass::new(&gpu.device, FORMAT);
    let a = test_pattern(64, 64);
    let b = test_pattern(40, 24);
    let c = test_pattern(64, 64);
    pass.set_frame(&gpu.device, &gpu.queue, 0, &a);
    pass.set_frame(&gpu.device, &gpu.queue, 1, &b);
    pass.set_frame(&gpu.device, &gpu.queue, 2, &c);
    let views = [
        PixelRect::new(4, 10, 140, 180), // integer scale 2, letterboxed top and bottom
        PixelRect::new(150, 3, 150, 200), // 40×24 at scale 3, letterboxed
        PixelRect::new(305, 40, 50, 45), // smaller than the frame: aspect-preserving shrink
    ];
    // The geometry the shader is asked to draw, stated independently.
    assert_eq!(
        fit_frame(views[0], 64, 64),
        PixelRect::new(10, 36, 128, 128)
    );
    assert_eq!(
        fit_frame(views[1], 40, 24),
        PixelRect::new(165, 67, 120, 72)
    );
    assert_eq!(fit_frame(views[2], 64, 64), PixelRect::new(307, 40, 45, 45));
    pass.render(&gpu.device, &gpu.queue, &target.view, size, &views, None);
    let img = target.read_rgba(&gpu.device, &gpu.queue).expect("readback");
    let checked = check_panes(&img, size[0], &[&a, &b, &c], &views);
    // Outside every view: the cleared background.
    let mut outside = 0;
    for y in 0..size[1] {
        for x in 0..size[0] {
            if views.iter().all(|v| !v.contains(x as i32, y as i32)) {
                assert_eq!(
                    px(&img, size[0], x, y),
                    BACKGROUND_SRGB,
                    "background at ({x}, {y})"
                );
                outside += 1;
            }
        }
    }
    assert_eq!(checked + outside, (size[0] * size[1]) as usize);
}

/// A fixed HUD state: a 9×9 maze ring with three objects, mid-episode, recording, with a
/// saved recording.
fn golden_model() -> HudModel {
    let n = 9;
    let mut layout = vec![0u8; n * n];
    for y in 1..n - 1 {
        for x in 1..n - 1 {
            if x == 1 || y == 1 || x == n - 2 || y == n - 2 || x == 4 {
                layout[y * n + x] = 1;
            }
        }
    }
    let mut m = HudModel::new(SceneKind::Maze, Some(n), 64, 42, 4.0);
    m.display_fps = 60.0;
    m.control_rate = 4.0;
    m.steps = 137;
    m.action = "forward_left".into();
    m.pose = Some(Pose {
        position: [2.5, 1.5, 0.0],
        yaw: 0.5,
    });
    m.reward = 1.0;
    m.score = 2.0;
    // Object 1 in the Memory Maze palette (green): the minimap colours every object.
    let green = scenes::maze::TARGET_COLORS[1];
    m.target_color = Some(green);
    m.maze = Some(MazeInfo {
        size: n,
        layout: Arc::new(layout),
        targets_pos: vec![[1.5, 7.5], [7.5, 7.5], [4.5, 4.5]],
        target: 1,
        target_color: green,
    });
    m.recording = Some(138);
    m.last_saved = Some("recordings/maze-seed42-001.npz\nrecordings/maze-seed42-001.gif".into());
    m.adapter = "offscreen test".into();
    m
}

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/golden/player_hud.png")
}

#[test]
fn frame_pass_with_hud_matches_golden() {
    let Some(gpu) = gpu_or_skip("frame_pass_with_hud_matches_golden") else {
        return;
    };
    let size = [720u32, 540u32];
    let target = Offscreen::new(&gpu.device, size, FORMAT);
    let mut pass = FramePass::new(&gpu.device, FORMAT);
    let frame = test_pattern(64, 64);
    pass.set_frame(&gpu.device, &gpu.queue, 0, &frame);
    let ctx = egui::Context::default();
    let model = golden_model();
    let labels = vec!["real · maze".to_string()];
    let mut views = Vec::new();
    // Two egui frames (the first one lays out grids and uploads the font atlas).
    for pass_no in 0..2 {
        let raw = egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(
                egui::Pos2::ZERO,
                egui::vec2(size[0] as f32, size[1] as f32),
            )),
            time: Some(pass_no as f64),
            ..Default::default()
        };
        let out = hud::run(&ctx, raw, &model, &labels);
        views = out.views.clone();
        pass.render(
            &gpu.device,
            &gpu.queue,
            &target.view,
            size,
            &out.views,
            Some(out.ui),
        );
    }
    let img = target.read_rgba(&gpu.device, &gpu.queue).expect("readback");
    assert_eq!(views.len(), 1);
    // The HUD panel sits beside the pane: the upscaled frame is untouched by it.
    assert!(
        views[0].x + views[0].w as i32 <= (size[0] as f32 - hud::PANEL_WIDTH) as i32,
        "{views:?}"
    );
    let checked = check_panes(&img, size[0], &[&frame], &views);
    assert!(checked > 300 * 300, "pane too small: {views:?}");

    let actual = image::RgbaImage::from_raw(size[0], size[1], img).expect("image size");
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let _ = actual.save(out_dir.join("player_hud_actual.png"));
    let golden = golden_path();
    if std::env::var_os("MEMWORLD_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        actual.save(&golden).expect("write golden");
        eprintln!("wrote {}", golden.display());
        return;
    }
    let expected = image::open(&golden)
        .unwrap_or_else(|e| {
            panic!(
                "golden {} unreadable ({e}); MEMWORLD_UPDATE_GOLDEN=1 writes it",
                golden.display()
            )
        })
        .to_rgba8();
    assert_eq!(expected.dimensions(), actual.dimensions(), "golden size");
    // Per-pixel tolerance: text antialiasing may differ by a few levels between rasterisers;
    // at most 0.01% of the pixels may differ by more than 8 levels;
    // a moved or missing widget changes thousands of pixels.
    let (mut over, mut max_diff) = (0usize, 0u8);
    for (a, e) in actual.pixels().zip(expected.pixels()) {
        let d = (0..4).map(|c| a.0[c].abs_diff(e.0[c])).max().unwrap();
        max_diff = max_diff.max(d);
        if d > 8 {
            over += 1;
        }
    }
    let total = (size[0] * size[1]) as usize;
    assert!(
        over * 10000 <= total,
        "{over} of {total} pixels differ by more than 8 levels from {} (max {max_diff}); actual image in {}",
        golden.display(),
        out_dir.join("player_hud_actual.png").display()
    );
}
