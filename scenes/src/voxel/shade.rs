//! Colour along one camera ray, composited front to back: a water surface is a translucent
//! tinted layer, water volume absorbs light with the length travelled in it, the first solid
//! block gives a textured, face-shaded colour (Minecraft's fixed per-face brightness), and every
//! contribution is blended into the sky's colour by distance fog. A ray that meets nothing sees
//! the sky gradient and a square sun.

use super::block::{texel_color, Block};

/// Rays end here; fog is complete at this distance (blocks).
pub const RAY_MAX: f32 = 56.0;
/// Fog starts at this distance (blocks).
pub const FOG_START: f32 = 24.0;

/// Sky colour at the horizon (also the fog colour) and straight up.
const SKY_HORIZON: [f32; 3] = [0.74, 0.84, 0.97];
const SKY_ZENITH: [f32; 3] = [0.32, 0.53, 0.92];
/// Brightness of faces whose normal is -x, +x, -y, +y, -z, +z.
const FACE_LIGHT: [f32; 6] = [0.78, 0.78, 0.5, 1.0, 0.64, 0.64];
/// Opacity of a water surface and the deep-water colour light fades to.
const WATER_SURFACE_ALPHA: f32 = 0.45;
const WATER_DEEP: [f32; 3] = [0.08, 0.22, 0.50];
/// Absorption per block of water: transmittance over a path `l` is `1 / (1 + k l)`.
const WATER_ABSORPTION: f32 = 0.45;
/// Texels per block face side.
const TEXELS: f32 = 8.0;

/// Sky gradient for a ray whose (unit) direction has vertical component `dy`.
pub fn sky_gradient(dy: f32) -> [f32; 3] {
    let s = (dy * 1.4).clamp(0.0, 1.0);
    let s = s * (2.0 - s);
    std::array::from_fn(|i| SKY_HORIZON[i] + (SKY_ZENITH[i] - SKY_HORIZON[i]) * s)
}

/// A square sun fixed in the sky, with a soft glow around it.
#[derive(Clone, Copy, Debug)]
pub struct Sun {
    pub dir: [f32; 3],
    /// Two unit vectors spanning the plane facing the sun (the square's sides).
    e1: [f32; 3],
    e2: [f32; 3],
}

/// Half the side of the sun's square, as a tangent of the angle (about 3.4°).
const SUN_HALF: f32 = 0.06;
/// The glow starts where the cosine to the sun exceeds this.
const GLOW_COS: f32 = 0.96;

impl Sun {
    /// Sun at elevation and azimuth given as (sin, cos) pairs.
    pub fn new(elevation: (f64, f64), azimuth: (f64, f64)) -> Self {
        let (se, ce) = (elevation.0 as f32, elevation.1 as f32);
        let (sa, ca) = (azimuth.0 as f32, azimuth.1 as f32);
        let dir = [ce * ca, se, ce * sa];
        let e1 = [-sa, 0.0, ca];
        let e2 = [-se * ca, ce, -se * sa];
        Self { dir, e1, e2 }
    }

    /// The sky seen along unit direction `d`, given the sky gradient there.
    pub fn sky(&self, d: [f32; 3], gradient: [f32; 3]) -> [f32; 3] {
        let c = dot(d, self.dir);
        if c <= GLOW_COS {
            return gradient;
        }
        let (a, b) = (dot(d, self.e1) / c, dot(d, self.e2) / c);
        if a.abs() < SUN_HALF && b.abs() < SUN_HALF {
            return [1.0, 0.97, 0.82];
        }
        let g = (c - GLOW_COS) / (1.0 - GLOW_COS);
        let g = 0.35 * g * g;
        std::array::from_fn(|i| gradient[i] + (1.0 - gradient[i]) * g)
    }
}

fn dot(a: [f32; 3], b: [f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn smoothstep01(x: f32) -> f32 {
    let t = x.clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Front-to-back compositing state of one ray.
pub struct RayAccum {
    o: [f32; 3],
    d: [f32; 3],
    /// Fog colour of this pixel (the sky gradient without the sun).
    fog: [f32; 3],
    rgb: [f32; 3],
    /// Fraction of light from further along that still reaches the eye.
    trans: f32,
    /// Distance at which the ray entered the water it is in; negative when not in water.
    water_from: f32,
}

impl RayAccum {
    pub fn new(o: [f32; 3], d: [f32; 3], fog: [f32; 3]) -> Self {
        Self {
            o,
            d,
            fog,
            rgb: [0.0; 3],
            trans: 1.0,
            water_from: -1.0,
        }
    }

    fn add_fogged(&mut self, c: [f32; 3], t: f32, weight: f32) {
        let f = smoothstep01((t - FOG_START) * (1.0 / (RAY_MAX - FOG_START)));
        for ((acc, c), fog) in self.rgb.iter_mut().zip(c).zip(self.fog) {
            *acc += weight * (c + (fog - c) * f);
        }
    }

    /// The block the camera is in. Returns true if the ray ends there (eye inside a solid).
    pub fn start(&mut self, b: Block, cell: [i32; 3]) -> bool {
        match b {
            Block::Air => false,
            Block::Water => {
                self.water_from = 0.0;
                false
            }
            _ => self.cell(b, 0.0, cell, 3),
        }
    }

    /// Whether the ray is inside water.
    #[inline]
    pub fn in_water(&self) -> bool {
        self.water_from >= 0.0
    }

    /// The ray is in air from distance `t` on: ends the water stretch it was in, if any.
    #[inline]
    pub fn air(&mut self, t: f32) {
        if self.water_from >= 0.0 {
            let l = t - self.water_from;
            let a = WATER_ABSORPTION * l / (1.0 + WATER_ABSORPTION * l);
            let w = self.trans * a;
            self.add_fogged(WATER_DEEP, self.water_from, w);
            self.trans -= w;
            self.water_from = -1.0;
        }
    }

    /// The ray enters `cell`, holding `b`, at distance `t` through face `face` (index into the
    /// normals -x, +x, -y, +y, -z, +z). Returns true when the ray ends there.
    #[inline]
    pub fn cell(&mut self, b: Block, t: f32, cell: [i32; 3], face: usize) -> bool {
        match b {
            Block::Air => {
                self.air(t);
                false
            }
            Block::Water => {
                if self.water_from < 0.0 {
                    let c = self.surface(b, t, cell, face);
                    let w = self.trans * WATER_SURFACE_ALPHA;
                    self.add_fogged(c, t, w);
                    self.trans -= w;
                    self.water_from = t;
                }
                false
            }
            _ => {
                self.air(t);
                let c = self.surface(b, t, cell, face);
                self.add_fogged(c, t, self.trans);
                self.trans = 0.0;
                true
            }
        }
    }

    /// Textured and face-lit colour of `b` where the ray meets it.
    fn surface(&self, b: Block, t: f32, cell: [i32; 3], face: usize) -> [f32; 3] {
        let p: [f32; 3] = std::array::from_fn(|i| self.o[i] + self.d[i] * t - cell[i] as f32);
        let (u, v) = match face / 2 {
            0 => (p[2], p[1]),
            1 => (p[0], p[2]),
            _ => (p[0], p[1]),
        };
        let texel = |w: f32| ((w * TEXELS) as i32).clamp(0, TEXELS as i32 - 1) as u32;
        let c = texel_color(b, cell, face / 2 == 1, texel(u), texel(v));
        let light = FACE_LIGHT[face];
        [c[0] * light, c[1] * light, c[2] * light]
    }

    /// Colour so far (after the ray ended on a solid block).
    pub fn result(&self) -> [f32; 3] {
        self.rgb
    }

    /// The ray leaves the scene (or reaches `RAY_MAX`): what still passes is the sky.
    pub fn escape(&mut self, sun: &Sun) -> [f32; 3] {
        self.air(RAY_MAX);
        let sky = sun.sky(self.d, self.fog);
        std::array::from_fn(|i| self.rgb[i] + self.trans * sky[i])
    }
}

/// RGB in [0, 1] to bytes.
#[inline]
pub fn to_bytes(c: [f32; 3]) -> [u8; 3] {
    c.map(|v| (v * 255.0 + 0.5).clamp(0.0, 255.0) as u8)
}
