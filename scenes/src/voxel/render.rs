//! CPU voxel ray caster: one ray per pixel from the eye (feet + `EYE_HEIGHT`) through a level
//! pinhole camera with a square field of view of `FOV_DEGREES`. Two traversals give the same
//! image: `columns` (fast, shares one horizontal path per screen column) and `reference` (the
//! plain 3-D DDA per pixel); both composite with the same `RayAccum`.

use super::columns::{column_path, trace_columns, Span, MAX_SPANS};
use super::physics::EYE_HEIGHT;
use super::reference::trace_reference;
use super::shade::{sky_gradient, to_bytes, RayAccum, Sun};
use super::trig::sin_cos;
use super::world::World;
use crate::{Frame, Pose};

/// Vertical (and horizontal: frames are square) field of view, degrees.
pub const FOV_DEGREES: f64 = 70.0;

/// What a pixel's ray needs that does not depend on the pose.
#[derive(Clone, Copy, Debug)]
struct PixelRay {
    /// Unit direction in camera space: (right, up, forward).
    cam: [f32; 3],
    /// Rise per unit of horizontal distance.
    slope: f32,
    /// Distance along the ray per unit of horizontal distance.
    inv_h: f32,
    /// Sky gradient (and fog colour) along the ray: it depends only on the vertical component,
    /// which turning does not change.
    sky: [f32; 3],
}

/// Precomputed camera rays and sky for one resolution. Rendering allocates nothing.
#[derive(Clone, Debug)]
pub struct Renderer {
    res: usize,
    /// Lateral offset `r` of each screen column on the image plane at forward distance 1.
    lateral: Vec<f32>,
    /// Per pixel, column-major (`[i * res + j]`, column `i` from the left, row `j` from the top).
    rays: Vec<PixelRay>,
    sun: Sun,
}

impl Renderer {
    /// Tables for `res`×`res` frames.
    pub fn new(res: usize) -> Self {
        let (s, c) = sin_cos(FOV_DEGREES.to_radians() / 2.0);
        let tan_half = s / c;
        let plane = |k: usize| (2.0 * (k as f64 + 0.5) / res as f64 - 1.0) * tan_half;
        let mut rays = Vec::with_capacity(res * res);
        for i in 0..res {
            let r = plane(i);
            for j in 0..res {
                let u = -plane(j);
                let n = (r * r + u * u + 1.0).sqrt();
                let q = (r * r + 1.0).sqrt(); // horizontal length before normalising
                let cam = [(r / n) as f32, (u / n) as f32, (1.0 / n) as f32];
                rays.push(PixelRay {
                    cam,
                    slope: (u / q) as f32,
                    inv_h: (n / q) as f32,
                    sky: sky_gradient(cam[1]),
                });
            }
        }
        let lateral = (0..res).map(|i| plane(i) as f32).collect();
        let sun = Sun::new(sin_cos(24f64.to_radians()), sin_cos(35f64.to_radians()));
        Self {
            res,
            lateral,
            rays,
            sun,
        }
    }

    pub fn resolution(&self) -> usize {
        self.res
    }

    /// Eye position and (sin, cos) of the yaw; far-off poses are pulled in so that cell
    /// indices cannot overflow.
    fn camera(pose: Pose) -> ([f32; 3], f32, f32) {
        let (s, c) = sin_cos(pose.yaw);
        let [x, y, z] = pose.position;
        let o = [x, y + EYE_HEIGHT, z].map(|v| v.clamp(-1e6, 1e6) as f32);
        (o, s as f32, c as f32)
    }

    /// World direction of a camera-space ray: forward = (cos, 0, sin), right = (sin, 0, -cos),
    /// so the yaw grows to the left.
    #[inline]
    fn direction(cam: [f32; 3], sin: f32, cos: f32) -> [f32; 3] {
        let [r, u, f] = cam;
        [f * cos + r * sin, u, f * sin - r * cos]
    }

    fn prepare(&self, frame: &mut Frame) {
        if frame.width != self.res || frame.height != self.res {
            *frame = Frame::new(self.res, self.res);
        }
    }

    /// Renders the view from `pose` (feet position and yaw) into `frame` (resized if needed).
    pub fn render(&self, world: &World, pose: Pose, frame: &mut Frame) {
        self.prepare(frame);
        let (o, sin, cos) = Self::camera(pose);
        let mut path = [Span::default(); MAX_SPANS];
        for (i, &r) in self.lateral.iter().enumerate() {
            // The horizontal direction shared by every ray of this screen column.
            let q = (r * r + 1.0).sqrt();
            let [ex, _, ez] = Self::direction([r / q, 0.0, 1.0 / q], sin, cos);
            let n = column_path(world, o[0], o[2], ex, ez, &mut path);
            for (j, ray) in self.rays[i * self.res..(i + 1) * self.res]
                .iter()
                .enumerate()
            {
                let d = Self::direction(ray.cam, sin, cos);
                let mut acc = RayAccum::new(o, d, ray.sky);
                let rgb = trace_columns(
                    world,
                    &path[..n],
                    o,
                    ray.slope,
                    ray.inv_h,
                    &mut acc,
                    &self.sun,
                );
                let p = 3 * (j * self.res + i);
                frame.rgb[p..p + 3].copy_from_slice(&to_bytes(rgb));
            }
        }
    }

    /// The same view by the reference 3-D DDA, looking up every cell (what `render` is tested on).
    pub fn render_reference(&self, world: &World, pose: Pose, frame: &mut Frame) {
        self.prepare(frame);
        let (o, sin, cos) = Self::camera(pose);
        for (q, ray) in self.rays.iter().enumerate() {
            let d = Self::direction(ray.cam, sin, cos);
            let mut acc = RayAccum::new(o, d, ray.sky);
            let rgb = trace_reference(world, o, d, &mut acc, &self.sun);
            let (i, j) = (q / self.res, q % self.res);
            let p = 3 * (j * self.res + i);
            frame.rgb[p..p + 3].copy_from_slice(&to_bytes(rgb));
        }
    }
}
