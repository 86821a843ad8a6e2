//! Procedural wall and floor textures of the maze scene: a fixed library of looks (a base
//! colour and a pattern), each turned into a `TEX`×`TEX` RGB texture once, so that regions are
//! recognisable (SPEC §4.1: rooms of distinct colour and texture, dark floor).

use crate::Rng;

/// Texture side in texels (a power of two, so coordinates wrap with a mask).
pub const TEX: usize = 64;

/// How a texture is patterned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// Thin labyrinth lines on an 8×8 grid (like the official env's blue walls).
    Labyrinth,
    /// Large irregular blocks with dark seams.
    Blocks,
    /// Staggered bricks.
    Bricks,
    /// Square tiles with a bevel.
    Tiles,
    /// Smooth mottled noise.
    Mottled,
}

/// A base colour and a pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Look {
    pub name: &'static str,
    pub color: [u8; 3],
    pub pattern: Pattern,
}

/// Wall looks; regions draw distinct ones.
pub const WALL_LOOKS: [Look; 10] = [
    Look {
        name: "sage",
        color: [172, 188, 150],
        pattern: Pattern::Blocks,
    },
    Look {
        name: "azure",
        color: [40, 126, 206],
        pattern: Pattern::Labyrinth,
    },
    Look {
        name: "crimson",
        color: [196, 62, 92],
        pattern: Pattern::Bricks,
    },
    Look {
        name: "indigo",
        color: [64, 64, 178],
        pattern: Pattern::Labyrinth,
    },
    Look {
        name: "terracotta",
        color: [204, 98, 70],
        pattern: Pattern::Mottled,
    },
    Look {
        name: "olive",
        color: [128, 136, 62],
        pattern: Pattern::Tiles,
    },
    Look {
        name: "teal",
        color: [46, 150, 142],
        pattern: Pattern::Bricks,
    },
    Look {
        name: "sand",
        color: [206, 184, 132],
        pattern: Pattern::Tiles,
    },
    Look {
        name: "lavender",
        color: [152, 118, 192],
        pattern: Pattern::Blocks,
    },
    Look {
        name: "slate",
        color: [136, 140, 148],
        pattern: Pattern::Mottled,
    },
];

/// Floor looks: all dark, differing in tint and pattern.
pub const FLOOR_LOOKS: [Look; 4] = [
    Look {
        name: "slate",
        color: [46, 56, 66],
        pattern: Pattern::Tiles,
    },
    Look {
        name: "ink",
        color: [40, 48, 70],
        pattern: Pattern::Mottled,
    },
    Look {
        name: "moss",
        color: [44, 60, 56],
        pattern: Pattern::Tiles,
    },
    Look {
        name: "umber",
        color: [62, 54, 52],
        pattern: Pattern::Mottled,
    },
];

/// One texture: `TEX * TEX` RGB texels, row 0 at the top of a wall (or +y side of a floor cell).
pub type Texture = Vec<[u8; 3]>;

fn scale(c: [u8; 3], s: f64) -> [u8; 3] {
    c.map(|v| (v as f64 * s).round().clamp(0.0, 255.0) as u8)
}

/// Brightness field of a pattern in roughly [0.5, 1.15], `TEX * TEX`.
fn pattern_field(pattern: Pattern, rng: &mut Rng) -> Vec<f64> {
    let mut f = vec![1.0; TEX * TEX];
    match pattern {
        Pattern::Labyrinth => labyrinth(&mut f, rng),
        Pattern::Blocks => blocks(&mut f, rng, 0, 0, TEX, TEX, 0),
        Pattern::Bricks => {
            for y in 0..TEX {
                let row = y / 16;
                let offset = if row % 2 == 0 { 0 } else { 16 };
                for x in 0..TEX {
                    let seam = y % 16 == 0 || (x + offset) % 32 == 0;
                    f[y * TEX + x] = if seam {
                        0.62
                    } else {
                        1.0 - 0.04 * ((x + offset) / 32 % 2) as f64
                    };
                }
            }
        }
        Pattern::Tiles => {
            for y in 0..TEX {
                for x in 0..TEX {
                    let (u, v) = (x % 32, y % 32);
                    f[y * TEX + x] = match (u, v) {
                        (0, _) | (_, 0) => 0.7,
                        (1, _) | (_, 1) => 1.12,
                        (31, _) | (_, 31) => 0.85,
                        _ => 1.0,
                    };
                }
            }
        }
        Pattern::Mottled => {
            // Sum of two octaves of bilinear value noise on periodic lattices.
            for (cells, amp) in [(4usize, 0.14), (8usize, 0.07)] {
                let lattice: Vec<f64> = (0..cells * cells)
                    .map(|_| rng.range_f64(-1.0, 1.0))
                    .collect();
                let step = TEX / cells;
                for y in 0..TEX {
                    for x in 0..TEX {
                        let (gx, gy) = (x / step, y / step);
                        let (tx, ty) = (
                            (x % step) as f64 / step as f64,
                            (y % step) as f64 / step as f64,
                        );
                        let at = |i: usize, j: usize| lattice[(j % cells) * cells + (i % cells)];
                        let top = at(gx, gy) * (1.0 - tx) + at(gx + 1, gy) * tx;
                        let bottom = at(gx, gy + 1) * (1.0 - tx) + at(gx + 1, gy + 1) * tx;
                        f[y * TEX + x] += amp * (top * (1.0 - ty) + bottom * ty);
                    }
                }
            }
        }
    }
    f
}

/// Draws the walls of a random spanning-tree labyrinth on an 8×8 grid as light lines.
fn labyrinth(f: &mut [f64], rng: &mut Rng) {
    const G: usize = 8;
    let step = TEX / G;
    // Open passages between grid cells found by a randomized depth-first search.
    let mut visited = [false; G * G];
    let mut open_east = [false; G * G];
    let mut open_north = [false; G * G];
    let mut stack = vec![0usize];
    visited[0] = true;
    while let Some(&c) = stack.last() {
        let (x, y) = (c % G, c / G);
        let mut options = Vec::with_capacity(4);
        if x + 1 < G && !visited[c + 1] {
            options.push(c + 1);
        }
        if x > 0 && !visited[c - 1] {
            options.push(c - 1);
        }
        if y + 1 < G && !visited[c + G] {
            options.push(c + G);
        }
        if y > 0 && !visited[c - G] {
            options.push(c - G);
        }
        if options.is_empty() {
            stack.pop();
            continue;
        }
        let d = options[rng.below(options.len())];
        match d {
            _ if d == c + 1 => open_east[c] = true,
            _ if d + 1 == c => open_east[d] = true,
            _ if d == c + G => open_north[c] = true,
            _ => open_north[d] = true,
        }
        visited[d] = true;
        stack.push(d);
    }
    for y in 0..TEX {
        for x in 0..TEX {
            let (cx, cy) = (x / step, y / step);
            let c = cy * G + cx;
            let east_wall = x % step == step - 1 && !open_east[c];
            let north_wall = y % step == step - 1 && !open_north[c];
            if east_wall || north_wall {
                f[y * TEX + x] = 1.22;
            } else if (x % step == step - 1 || y % step == step - 1) && rng.chance(0.1) {
                f[y * TEX + x] = 1.08;
            }
        }
    }
}

/// Recursively splits a rectangle into blocks, each with its own shade and dark seams.
fn blocks(f: &mut [f64], rng: &mut Rng, x0: usize, y0: usize, w: usize, h: usize, depth: usize) {
    if depth >= 4 || (w <= 16 && h <= 16) || (depth >= 2 && rng.chance(0.3)) {
        let shade = rng.range_f64(0.9, 1.08);
        for y in y0..y0 + h {
            for x in x0..x0 + w {
                let seam = x == x0 || y == y0;
                f[y * TEX + x] = if seam { 0.66 } else { shade };
            }
        }
        return;
    }
    if w >= h {
        let cut = 8 * (1 + rng.below(w / 8 - 1));
        blocks(f, rng, x0, y0, cut, h, depth + 1);
        blocks(f, rng, x0 + cut, y0, w - cut, h, depth + 1);
    } else {
        let cut = 8 * (1 + rng.below(h / 8 - 1));
        blocks(f, rng, x0, y0, w, cut, depth + 1);
        blocks(f, rng, x0, y0 + cut, w, h - cut, depth + 1);
    }
}

/// Builds the texture of `look`; `stream` makes different uses of one look differ in detail.
pub fn make_texture(look: &Look, stream: u64) -> Texture {
    let mut rng = Rng::new(0x6d61_7a65 ^ stream);
    let field = pattern_field(look.pattern, &mut rng);
    field
        .iter()
        .map(|&s| scale(look.color, s * rng.range_f64(0.97, 1.03)))
        .collect()
}

/// All wall and floor textures, built once per renderer.
#[derive(Clone, Debug)]
pub struct TextureSet {
    pub walls: Vec<Texture>,
    pub floors: Vec<Texture>,
}

impl TextureSet {
    pub fn new() -> Self {
        let walls = WALL_LOOKS
            .iter()
            .enumerate()
            .map(|(i, l)| make_texture(l, i as u64))
            .collect();
        let floors = FLOOR_LOOKS
            .iter()
            .enumerate()
            .map(|(i, l)| make_texture(l, 100 + i as u64))
            .collect();
        Self { walls, floors }
    }
}

impl Default for TextureSet {
    fn default() -> Self {
        Self::new()
    }
}
