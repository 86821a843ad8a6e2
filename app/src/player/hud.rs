//! The egui HUD: a side panel with measured display FPS and control rate, step, action, pose,
//! reward and score, target colour, seed, recording state, a top-down maze minimap and the key
//! legend; plus the pane labels. Also lays out the panes in the space the panel leaves free.

use std::collections::VecDeque;
use std::time::Duration;

use egui::{Align2, Color32, FontId, Pos2, Rect, RichText, Sense, Stroke, StrokeKind, Vec2};
use scenes::{MazeInfo, Pose, SceneKind};

use crate::player::input::KEY_LEGEND;
use crate::player::layout::{pane_slots, PixelRect};
use crate::player::render::UiFrame;

/// Width of the HUD side panel, points.
pub const PANEL_WIDTH: f32 = 280.0;
/// Height of a pane's label strip, points.
pub const LABEL_HEIGHT: f32 = 22.0;
/// Margin around the panes and gap between them, points.
pub const PANE_MARGIN: f32 = 8.0;

/// Everything the HUD shows, filled by the app from the simulation's events.
#[derive(Clone, Debug)]
pub struct HudModel {
    pub scene: SceneKind,
    /// Maze side length (cells), when the scene has one.
    pub maze_size: Option<usize>,
    pub resolution: usize,
    pub seed: u64,
    pub display_fps: f64,
    pub control_rate: f64,
    pub control_hz: f64,
    pub steps: usize,
    pub action: String,
    pub pose: Option<Pose>,
    pub reward: f64,
    pub score: f64,
    pub target_color: Option<[f64; 3]>,
    pub maze: Option<MazeInfo>,
    pub paused: bool,
    /// Frames in the recording under way.
    pub recording: Option<usize>,
    pub last_saved: Option<String>,
    /// Errors and notices (save failures, episode ends), newest last.
    pub message: Option<String>,
    pub adapter: String,
    /// Per-frame latency of the dreaming model, milliseconds (dreamed play only).
    pub model_latency_ms: Option<f64>,
}

impl HudModel {
    pub fn new(
        scene: SceneKind,
        maze_size: Option<usize>,
        resolution: usize,
        seed: u64,
        control_hz: f64,
    ) -> Self {
        Self {
            scene,
            maze_size,
            resolution,
            seed,
            display_fps: 0.0,
            control_rate: 0.0,
            control_hz,
            steps: 0,
            action: "noop".into(),
            pose: None,
            reward: 0.0,
            score: 0.0,
            target_color: None,
            maze: None,
            paused: false,
            recording: None,
            last_saved: None,
            message: None,
            adapter: String::new(),
            model_latency_ms: None,
        }
    }
}

/// Events per second over a sliding window (display frames, control steps).
#[derive(Clone, Debug)]
pub struct RateMeter {
    window: Duration,
    stamps: VecDeque<Duration>,
}

impl RateMeter {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            stamps: VecDeque::new(),
        }
    }

    /// Record an event at time `t` (any fixed origin, non-decreasing).
    pub fn tick(&mut self, t: Duration) {
        self.stamps.push_back(t);
        while self
            .stamps
            .front()
            .is_some_and(|&s| t.saturating_sub(s) > self.window)
        {
            self.stamps.pop_front();
        }
    }

    /// Events per second: intervals between the first and last event in the window.
    pub fn rate(&self) -> f64 {
        match (self.stamps.front(), self.stamps.back()) {
            (Some(a), Some(b)) if self.stamps.len() >= 2 && b > a => {
                (self.stamps.len() - 1) as f64 / (*b - *a).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

/// What one HUD pass produced: the egui paint output, where each pane's frame goes, and the
/// platform output (cursor, clipboard) for the window.
pub struct HudFrame {
    pub ui: UiFrame,
    pub views: Vec<PixelRect>,
    pub platform: egui::PlatformOutput,
}

/// Run egui for one frame: the side panel, then the panes (one per label) in the rest.
pub fn run(
    ctx: &egui::Context,
    raw: egui::RawInput,
    model: &HudModel,
    labels: &[String],
) -> HudFrame {
    let mut views = Vec::new();
    let full = ctx.run_ui(raw, |ui| {
        egui::Panel::right("hud")
            .resizable(false)
            .exact_size(PANEL_WIDTH)
            .show(ui, |ui| panel(ui, model));
        let ppp = ui.ctx().pixels_per_point();
        let area = ui.available_rect_before_wrap().shrink(PANE_MARGIN);
        let px = |v: f32| (v * ppp).round();
        let area_px = PixelRect::new(
            px(area.min.x) as i32,
            px(area.min.y) as i32,
            (px(area.max.x) - px(area.min.x)).max(0.0) as u32,
            (px(area.max.y) - px(area.min.y)).max(0.0) as u32,
        );
        let slots = pane_slots(
            area_px,
            labels.len(),
            px(LABEL_HEIGHT) as u32,
            px(PANE_MARGIN) as u32,
        );
        for (slot, label) in slots.iter().zip(labels) {
            let l = slot.label;
            let pos = Pos2::new(l.x as f32 / ppp, (l.y as f32 + l.h as f32 / 2.0) / ppp);
            ui.painter().text(
                pos,
                Align2::LEFT_CENTER,
                label,
                FontId::proportional(14.0),
                Color32::from_gray(220),
            );
        }
        views = slots.iter().map(|s| s.view).collect();
    });
    let primitives = ctx.tessellate(full.shapes, full.pixels_per_point);
    HudFrame {
        ui: UiFrame {
            primitives,
            textures_delta: full.textures_delta,
            pixels_per_point: full.pixels_per_point,
        },
        views,
        platform: full.platform_output,
    }
}

fn panel(ui: &mut egui::Ui, m: &HudModel) {
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| panel_contents(ui, m));
}

fn panel_contents(ui: &mut egui::Ui, m: &HudModel) {
    ui.add_space(6.0);
    let title = match m.maze_size {
        Some(n) => format!("{} {n}×{n}", m.scene.name()),
        None => m.scene.name().to_string(),
    };
    ui.heading(RichText::new(title).strong());
    ui.horizontal(|ui| {
        if m.paused {
            ui.label(
                RichText::new("PAUSED")
                    .color(Color32::from_rgb(250, 200, 80))
                    .strong(),
            );
        } else {
            ui.label(RichText::new("▶ running").color(Color32::from_rgb(120, 220, 120)));
        }
        if let Some(frames) = m.recording {
            let red = Color32::from_rgb(240, 70, 70);
            let (dot, _) = ui.allocate_exact_size(Vec2::splat(12.0), Sense::hover());
            ui.painter().circle_filled(dot.center(), 5.0, red);
            ui.label(RichText::new(format!("REC {frames}")).color(red).strong());
        }
    });
    ui.separator();
    egui::Grid::new("hud stats")
        .num_columns(2)
        .spacing([12.0, 3.0])
        .striped(true)
        .show(ui, |ui| {
            row(ui, "display", format!("{:.1} FPS", m.display_fps));
            row(
                ui,
                "control",
                format!("{:.2} / {:.2} Hz", m.control_rate, m.control_hz),
            );
            if let Some(ms) = m.model_latency_ms {
                row(
                    ui,
                    "model",
                    format!("{ms:.0} ms/frame ({:.1} FPS)", 1000.0 / ms.max(1e-3)),
                );
            }
            row(ui, "step", m.steps.to_string());
            row(ui, "action", m.action.clone());
            if let Some(p) = m.pose {
                let [x, y, z] = p.position;
                let pos = match m.scene {
                    SceneKind::Maze => format!("x {x:.2}  y {y:.2}"),
                    SceneKind::Voxel => format!("{x:.1}, {y:.1}, {z:.1}"),
                };
                row(ui, "position", pos);
                row(
                    ui,
                    "heading",
                    format!("{:.1}°", p.yaw.to_degrees().rem_euclid(360.0)),
                );
            }
            row(
                ui,
                "reward",
                format!("{:+.1}  (score {:.1})", m.reward, m.score),
            );
            if let Some(c) = m.target_color {
                ui.label("target");
                ui.horizontal(|ui| {
                    let (rect, _) = ui.allocate_exact_size(Vec2::new(28.0, 14.0), Sense::hover());
                    ui.painter().rect_filled(rect, 2.0, color(c));
                    ui.painter().rect_stroke(
                        rect,
                        2.0,
                        Stroke::new(1.0, Color32::from_gray(200)),
                        StrokeKind::Outside,
                    );
                    ui.monospace(format!("{:.2} {:.2} {:.2}", c[0], c[1], c[2]));
                });
                ui.end_row();
            }
            row(ui, "seed", m.seed.to_string());
            row(ui, "frame", format!("{0}×{0} px", m.resolution));
        });
    if let Some(maze) = &m.maze {
        ui.separator();
        minimap(ui, maze, m.pose);
    }
    if let Some(path) = &m.last_saved {
        ui.separator();
        ui.label(RichText::new("saved").strong());
        ui.add(egui::Label::new(RichText::new(path).monospace().size(11.0)).wrap());
    }
    if let Some(msg) = &m.message {
        ui.add(egui::Label::new(RichText::new(msg).color(Color32::from_rgb(250, 200, 80))).wrap());
    }
    ui.separator();
    egui::Grid::new("hud keys")
        .num_columns(2)
        .spacing([10.0, 1.0])
        .show(ui, |ui| {
            for (keys, what) in KEY_LEGEND {
                ui.label(
                    RichText::new(*keys)
                        .monospace()
                        .size(11.0)
                        .color(Color32::from_gray(230)),
                );
                ui.label(RichText::new(*what).size(11.0));
                ui.end_row();
            }
        });
    if !m.adapter.is_empty() {
        ui.add(egui::Label::new(RichText::new(&m.adapter).size(10.0).weak()).wrap());
    }
}

fn row(ui: &mut egui::Ui, name: &str, value: String) {
    ui.label(name);
    ui.monospace(value);
    ui.end_row();
}

fn color(c: [f64; 3]) -> Color32 {
    let b = |v: f64| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    Color32::from_rgb(b(c[0]), b(c[1]), b(c[2]))
}

/// Top-down maze: walls, floor, every object (the current target filled in its colour and
/// ringed) and the agent as an arrow along its heading. Layout row 0 is the bottom row.
fn minimap(ui: &mut egui::Ui, maze: &MazeInfo, pose: Option<Pose>) {
    let n = maze.size;
    if n == 0 || maze.layout.len() != n * n {
        return;
    }
    let side = (ui.available_width() - 4.0).clamp(60.0, 200.0);
    let (resp, painter) = ui.allocate_painter(Vec2::splat(side), Sense::hover());
    let origin = resp.rect.min;
    let cell = side / n as f32;
    // World (x, y) in cells, y up → screen point.
    let to_screen = |x: f64, y: f64| {
        Pos2::new(
            origin.x + x as f32 * cell,
            origin.y + (n as f64 - y) as f32 * cell,
        )
    };
    for y in 0..n {
        for x in 0..n {
            let free = maze.layout[y * n + x] == 1;
            let r = Rect::from_two_pos(
                to_screen(x as f64, y as f64),
                to_screen(x as f64 + 1.0, y as f64 + 1.0),
            );
            let c = if free {
                Color32::from_gray(52)
            } else {
                Color32::from_rgb(120, 110, 100)
            };
            painter.rect_filled(r, 0.0, c);
        }
    }
    // Memory Maze colours object i with palette[i]; use that only when the current target
    // agrees with it (other scenes or dreamed levels may colour objects differently).
    let palette = &scenes::maze::TARGET_COLORS;
    let palette_fits = maze.targets_pos.len() <= palette.len()
        && palette
            .get(maze.target)
            .is_some_and(|c| (0..3).all(|k| (c[k] - maze.target_color[k]).abs() < 1e-6));
    for (i, p) in maze.targets_pos.iter().enumerate() {
        let centre = to_screen(p[0], p[1]);
        let r = (cell * 0.3).max(2.5);
        if i == maze.target {
            painter.circle_filled(centre, r, color(maze.target_color));
            painter.circle_stroke(centre, r + 1.5, Stroke::new(1.5, Color32::WHITE));
        } else if palette_fits {
            painter.circle_filled(centre, r * 0.8, color(palette[i]));
        } else {
            painter.circle_filled(centre, r * 0.8, Color32::from_gray(170));
        }
    }
    if let Some(p) = pose {
        // An arrow along the heading: tip 0.6 cells ahead, base 0.35 behind, 0.44 wide.
        let [x, y, _] = p.position;
        let [hx, hy] = p.heading();
        let at =
            |fwd: f64, left: f64| to_screen(x + fwd * hx - left * hy, y + fwd * hy + left * hx);
        let arrow = vec![at(0.6, 0.0), at(-0.35, 0.22), at(-0.35, -0.22)];
        painter.add(egui::Shape::convex_polygon(
            arrow,
            Color32::from_rgb(255, 230, 60),
            Stroke::new(1.0, Color32::BLACK),
        ));
    }
    painter.rect_stroke(
        resp.rect,
        0.0,
        Stroke::new(1.0, Color32::from_gray(90)),
        StrokeKind::Outside,
    );
}
