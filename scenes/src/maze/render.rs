//! First-person CPU renderer of the maze scene (SPEC §4.1): per-column grid ray casting (DDA)
//! against wall cells with textured, face-shaded walls; floor casting through per-region floor
//! textures; a sky gradient above; ball-shaped objects ray-traced as spheres and depth-tested
//! against the wall column depths; and the current target colour as a border.
//!
//! The camera sits at `EYE_HEIGHT` with walls `WALL_HEIGHT` tall and a 90° field of view. All
//! tables depending only on the resolution are built once; a frame allocates nothing.

use super::textures::{TextureSet, TEX};
use super::{color_to_u8, Level};
use crate::{Frame, Pose};

/// Camera height above the floor, in cells.
pub const EYE_HEIGHT: f64 = 0.5;
/// Wall height, in cells.
pub const WALL_HEIGHT: f64 = 1.0;
/// Horizontal (and vertical, frames are square) field of view, degrees.
pub const FOV_DEGREES: f64 = 90.0;
/// Radius of a target ball, in cells.
pub const BALL_RADIUS: f64 = 0.25;
/// Height of a ball's centre above the floor (slightly sunk, as in the official env).
pub const BALL_CENTRE_Z: f64 = 0.05;
/// Largest supported resolution (sizes the per-column depth buffer on the stack).
const MAX_RES: usize = 256;
/// Largest number of cells per level the renderer supports (16×16).
const MAX_CELLS: usize = 256;
/// Brightness of wall faces by the direction they face: +x, -x, +y, -y (a fixed sun).
const FACE_SHADE: [f64; 4] = [0.86, 0.62, 1.0, 0.74];
/// Distance darkening: brightness = 1 / (1 + FOG * distance).
const FOG: f64 = 0.035;
const SKY_TOP: [f64; 3] = [36.0, 66.0, 122.0];
const SKY_HORIZON: [f64; 3] = [128.0, 156.0, 196.0];
/// Unit vector toward the light, for ball shading (x, y, z).
const LIGHT: [f64; 3] = [0.40, 0.25, 0.88];

/// Renders maze frames at one resolution. Cheap to share: rendering takes `&self`.
#[derive(Clone, Debug)]
pub struct Renderer {
    res: usize,
    /// Focal length in pixels.
    focal: f64,
    /// Camera-plane coordinate of every column, in [-1, 1].
    cam_x: Vec<f64>,
    /// Forward distance of the floor seen at every row below the horizon (0 above).
    row_dist: Vec<f64>,
    /// Fog brightness of the floor at every row, 0..=256.
    row_shade: Vec<u32>,
    sky: Vec<[u8; 3]>,
    textures: TextureSet,
}

#[inline]
fn shade(c: [u8; 3], s: u32) -> [u8; 3] {
    [
        ((c[0] as u32 * s) >> 8) as u8,
        ((c[1] as u32 * s) >> 8) as u8,
        ((c[2] as u32 * s) >> 8) as u8,
    ]
}

fn fog(distance: f64) -> f64 {
    1.0 / (1.0 + FOG * distance)
}

impl Renderer {
    /// A renderer for `res`×`res` frames. `res` must be at most 256.
    pub fn new(res: usize) -> Self {
        assert!(
            res > 0 && res <= MAX_RES,
            "maze renderer supports resolutions up to {MAX_RES}, got {res}"
        );
        let half = res as f64 / 2.0;
        let focal = half / (FOV_DEGREES.to_radians() / 2.0).tan();
        let cam_x = (0..res).map(|x| (x as f64 + 0.5 - half) / focal).collect();
        let mut row_dist = vec![0.0; res];
        let mut row_shade = vec![0; res];
        let mut sky = vec![[0u8; 3]; res];
        for y in 0..res {
            let v = y as f64 + 0.5 - half;
            if v > 0.0 {
                row_dist[y] = EYE_HEIGHT * focal / v;
                row_shade[y] = (256.0 * fog(row_dist[y])) as u32;
            }
            let t = (y as f64 + 0.5) / half;
            let t = t.min(1.0);
            sky[y] = [0, 1, 2]
                .map(|c| (SKY_TOP[c] + (SKY_HORIZON[c] - SKY_TOP[c]) * t * t).round() as u8);
        }
        Self {
            res,
            focal,
            cam_x,
            row_dist,
            row_shade,
            sky,
            textures: TextureSet::new(),
        }
    }

    pub fn resolution(&self) -> usize {
        self.res
    }

    /// Renders `level` from `pose` into a new frame.
    pub fn render(&self, level: &Level, pose: Pose) -> Frame {
        let mut frame = Frame::new(self.res, self.res);
        self.render_into(level, pose, &mut frame);
        frame
    }

    /// Renders `level` from `pose` into `frame` (resized if needed), border included.
    pub fn render_into(&self, level: &Level, pose: Pose, frame: &mut Frame) {
        let res = self.res;
        if frame.width != res || frame.height != res || frame.rgb.len() != res * res * 3 {
            *frame = Frame::new(res, res);
        }
        assert!(
            level.size * level.size <= MAX_CELLS,
            "maze renderer supports up to {MAX_CELLS} cells, level has {}",
            level.size * level.size
        );
        let mut depth = [0.0f64; MAX_RES];
        self.draw_world(level, pose, frame, &mut depth);
        self.draw_objects(level, pose, frame, &depth);
        draw_border(frame, color_to_u8(level.target_object().color));
    }

    /// Walls, floor and sky, column by column; fills `depth` with each column's wall distance.
    fn draw_world(&self, level: &Level, pose: Pose, frame: &mut Frame, depth: &mut [f64; MAX_RES]) {
        let res = self.res;
        let n = level.size as i64;
        let layout = &level.layout[..];
        let [px, py, _] = pose.position;
        let (dir_x, dir_y) = (pose.yaw.cos(), pose.yaw.sin());
        // Camera plane points to the right of the heading.
        let (plane_x, plane_y) = (dir_y, -dir_x);
        let half = res as f64 / 2.0;
        let rgb = &mut frame.rgb;
        // Per-cell wall and floor look indices for this level (N ≤ 16 fits on the stack).
        let mut wall_of = [0u8; MAX_CELLS];
        let mut floor_of = [0u8; MAX_CELLS];
        for (i, &r) in level.region.iter().enumerate().take(MAX_CELLS) {
            wall_of[i] = level.region_wall_look[r as usize];
            floor_of[i] = level.region_floor_look[r as usize];
        }
        for x in 0..res {
            let cam = self.cam_x[x];
            let (rx, ry) = (dir_x + plane_x * cam, dir_y + plane_y * cam);
            // DDA through the grid until a wall cell (or the outside) is entered.
            let (mut mx, mut my) = (px.floor() as i64, py.floor() as i64);
            let ddx = if rx == 0.0 {
                f64::INFINITY
            } else {
                (1.0 / rx).abs()
            };
            let ddy = if ry == 0.0 {
                f64::INFINITY
            } else {
                (1.0 / ry).abs()
            };
            let (sx, mut side_x) = if rx < 0.0 {
                (-1, (px - mx as f64) * ddx)
            } else {
                (1, (mx as f64 + 1.0 - px) * ddx)
            };
            let (sy, mut side_y) = if ry < 0.0 {
                (-1, (py - my as f64) * ddy)
            } else {
                (1, (my as f64 + 1.0 - py) * ddy)
            };
            let (mut last_x, mut last_y);
            let mut vertical_face;
            let mut guard = 0;
            loop {
                last_x = mx;
                last_y = my;
                if side_x < side_y {
                    side_x += ddx;
                    mx += sx;
                    vertical_face = true;
                } else {
                    side_y += ddy;
                    my += sy;
                    vertical_face = false;
                }
                guard += 1;
                if mx < 0
                    || my < 0
                    || mx >= n
                    || my >= n
                    || layout[(my * n + mx) as usize] == 0
                    || guard > 4 * n
                {
                    break;
                }
            }
            let perp = if vertical_face {
                side_x - ddx
            } else {
                side_y - ddy
            }
            .max(1e-6);
            depth[x] = perp;
            // Where along the face the ray hit, in [0, 1), oriented so textures are not mirrored.
            let (hit, face) = if vertical_face {
                let h = py + perp * ry;
                if sx > 0 {
                    (h - h.floor(), 1)
                } else {
                    (1.0 - (h - h.floor()), 0)
                }
            } else {
                let h = px + perp * rx;
                if sy > 0 {
                    (1.0 - (h - h.floor()), 3)
                } else {
                    (h - h.floor(), 2)
                }
            };
            // The face belongs to the free cell the ray came from (its region sets the look).
            let from = if (0..n).contains(&last_x) && (0..n).contains(&last_y) {
                (last_y * n + last_x) as usize
            } else {
                0
            };
            let look = wall_of[from] as usize;
            let texture = &self.textures.walls[look];
            let tu = ((hit * TEX as f64) as usize).min(TEX - 1);
            let wall_shade = (256.0 * FACE_SHADE[face] * fog(perp)) as u32;
            let top = half - (WALL_HEIGHT - EYE_HEIGHT) * self.focal / perp;
            let bottom = half + EYE_HEIGHT * self.focal / perp;
            let tex_per_row = perp / self.focal / WALL_HEIGHT * TEX as f64;
            // Rows [0, y_top) are sky, [y_top, y_bottom) wall, the rest floor.
            let y_top = ((top - 0.5).ceil().max(0.0) as usize).min(res);
            let y_bottom = ((bottom - 0.5).ceil().max(0.0) as usize).clamp(y_top, res);
            let mut i = x * 3;
            let stride = res * 3;
            for y in 0..y_top {
                rgb[i..i + 3].copy_from_slice(&self.sky[y]);
                i += stride;
            }
            let mut tv_f = (y_top as f64 + 0.5 - top) * tex_per_row;
            for _ in y_top..y_bottom {
                let tv = (tv_f as usize).min(TEX - 1);
                rgb[i..i + 3].copy_from_slice(&shade(texture[tv * TEX + tu], wall_shade));
                tv_f += tex_per_row;
                i += stride;
            }
            for y in y_bottom..res {
                let d = self.row_dist[y];
                let (wx, wy) = (px + d * rx, py + d * ry);
                // Truncation equals floor inside the grid; outside, the clamp picks a border cell.
                let (cx, cy) = (wx as i64, wy as i64);
                let cell = (cy.clamp(0, n - 1) * n + cx.clamp(0, n - 1)) as usize;
                let floor = &self.textures.floors[floor_of[cell] as usize];
                let tu = (((wx - cx as f64) * TEX as f64) as usize).min(TEX - 1);
                let tv = (((1.0 - (wy - cy as f64)) * TEX as f64) as usize).min(TEX - 1);
                rgb[i..i + 3].copy_from_slice(&shade(floor[tv * TEX + tu], self.row_shade[y]));
                i += stride;
            }
        }
    }

    /// Ray-traces every object as a sphere, far to near, inside its screen bounding box;
    /// pixels behind the wall of their column or below the floor are left alone.
    fn draw_objects(&self, level: &Level, pose: Pose, frame: &mut Frame, depth: &[f64; MAX_RES]) {
        let res = self.res;
        let half = res as f64 / 2.0;
        let [px, py, _] = pose.position;
        let (dir_x, dir_y) = (pose.yaw.cos(), pose.yaw.sin());
        let (right_x, right_y) = (dir_y, -dir_x);
        // Camera-space centres (right, forward, up) and draw order, without allocating.
        let mut order = [(0.0f64, 0usize); 8];
        let mut count = 0;
        for (k, obj) in level.objects.iter().enumerate().take(order.len()) {
            let (dx, dy) = (obj.pos[0] - px, obj.pos[1] - py);
            let fwd = dx * dir_x + dy * dir_y;
            if fwd + BALL_RADIUS > 1e-3 {
                order[count] = (fwd, k);
                count += 1;
            }
        }
        let order = &mut order[..count];
        order.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let r2 = BALL_RADIUS * BALL_RADIUS;
        for &(fwd, k) in order.iter() {
            let obj = &level.objects[k];
            let (dx, dy) = (obj.pos[0] - px, obj.pos[1] - py);
            let side = dx * right_x + dy * right_y;
            let up = BALL_CENTRE_Z - EYE_HEIGHT;
            // Conservative screen box: project the sphere's extent at its nearest depth.
            let near = (fwd - BALL_RADIUS).max(1e-3);
            let (x0, x1, y0, y1) = if fwd - BALL_RADIUS > 1e-3 {
                let ext = BALL_RADIUS / near * self.focal * 1.05;
                let sx = half + side / fwd * self.focal;
                let sy = half - up / fwd * self.focal;
                (sx - ext, sx + ext, sy - ext, sy + ext)
            } else {
                (0.0, res as f64, 0.0, res as f64)
            };
            let clamp = |v: f64| v.floor().clamp(0.0, res as f64) as usize;
            let (x0, x1, y0, y1) = (clamp(x0), clamp(x1 + 1.0), clamp(y0), clamp(y1 + 1.0));
            let base = obj.color;
            for y in y0..y1 {
                let cu = -(y as f64 + 0.5 - half) / self.focal;
                for x in x0..x1 {
                    let cr = self.cam_x[x];
                    // Ray e + t (forward + cr right + cu up), t = forward distance; centre c.
                    // Solve |d t - c|² = r² in camera space (right, forward, up).
                    let (ox, oy, oz) = (side, fwd, up);
                    let a = cr * cr + 1.0 + cu * cu;
                    let b = cr * ox + oy + cu * oz;
                    let c = ox * ox + oy * oy + oz * oz - r2;
                    let disc = b * b - a * c;
                    if disc < 0.0 {
                        continue;
                    }
                    let t = (b - disc.sqrt()) / a;
                    if t <= 0.0 || t >= depth[x] {
                        continue;
                    }
                    let hz = EYE_HEIGHT + t * cu;
                    if hz < 0.0 {
                        continue;
                    }
                    // World-space normal for shading.
                    let (nr, nf, nu) = (
                        (t * cr - ox) / BALL_RADIUS,
                        (t - oy) / BALL_RADIUS,
                        (t * cu - oz) / BALL_RADIUS,
                    );
                    let (nx, ny) = (nr * right_x + nf * dir_x, nr * right_y + nf * dir_y);
                    let lambert = (nx * LIGHT[0] + ny * LIGHT[1] + nu * LIGHT[2]).max(0.0);
                    let rim = nu.max(0.0).powi(8) * 0.25;
                    let s = (0.42 + 0.62 * lambert) * fog(t);
                    let c = [0, 1, 2]
                        .map(|i| ((base[i] * s + rim) * 255.0).round().clamp(0.0, 255.0) as u8);
                    frame.set_pixel(x, y, c);
                }
            }
        }
    }
}

/// Overwrites the outer `res / 32` pixels (2 at 64×64) with `color`.
pub fn draw_border(frame: &mut Frame, color: [u8; 3]) {
    let (w, h) = (frame.width, frame.height);
    let b = (w.min(h) / 32).max(1);
    for y in 0..h {
        if y < b || y >= h - b {
            for x in 0..w {
                frame.set_pixel(x, y, color);
            }
        } else {
            for x in (0..b).chain(w - b..w) {
                frame.set_pixel(x, y, color);
            }
        }
    }
}

/// Width in pixels of the target border at a resolution.
pub fn border_width(res: usize) -> usize {
    (res / 32).max(1)
}
