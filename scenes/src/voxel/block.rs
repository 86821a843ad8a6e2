//! Block types of the voxel world and their looks: a base colour per block and face, and a small
//! procedural texture (8×8 texels per face) hashed from the block's coordinates, so that every
//! block looks slightly different but always the same.

/// One cell of the world. `repr(u8)` keeps the world at one byte per cell.
#[repr(u8)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Block {
    #[default]
    Air = 0,
    Grass,
    Dirt,
    Stone,
    Sand,
    /// Visible but not solid: the player wades and swims through it.
    Water,
    Wood,
    Leaves,
}

impl Block {
    pub const ALL: [Block; 8] = [
        Block::Air,
        Block::Grass,
        Block::Dirt,
        Block::Stone,
        Block::Sand,
        Block::Water,
        Block::Wood,
        Block::Leaves,
    ];

    /// Whether the player collides with it.
    pub fn is_solid(self) -> bool {
        !matches!(self, Block::Air | Block::Water)
    }

    pub fn name(self) -> &'static str {
        match self {
            Block::Air => "air",
            Block::Grass => "grass",
            Block::Dirt => "dirt",
            Block::Stone => "stone",
            Block::Sand => "sand",
            Block::Water => "water",
            Block::Wood => "wood",
            Block::Leaves => "leaves",
        }
    }

    /// Flat colour for a top-down map.
    pub fn map_color(self) -> [u8; 3] {
        let c = self.base_color(true);
        [
            (c[0] * 255.0) as u8,
            (c[1] * 255.0) as u8,
            (c[2] * 255.0) as u8,
        ]
    }

    /// Untextured colour of a top (`top = true`) or side face, RGB in [0, 1].
    pub fn base_color(self, top: bool) -> [f32; 3] {
        match (self, top) {
            (Block::Air, _) => [0.0, 0.0, 0.0],
            (Block::Grass, true) => [0.37, 0.62, 0.22],
            (Block::Grass, false) | (Block::Dirt, _) => [0.53, 0.38, 0.25],
            (Block::Stone, _) => [0.50, 0.50, 0.51],
            (Block::Sand, _) => [0.86, 0.81, 0.58],
            (Block::Water, _) => [0.16, 0.36, 0.78],
            (Block::Wood, true) => [0.66, 0.53, 0.33],
            (Block::Wood, false) => [0.40, 0.30, 0.18],
            (Block::Leaves, _) => [0.22, 0.47, 0.15],
        }
    }
}

/// Integer hash of a texel (a 32-bit avalanche mix); the same inputs give the same value everywhere.
pub fn texel_hash(x: i32, y: i32, z: i32, texel: u32) -> u32 {
    let mut h = (x as u32).wrapping_mul(0x8DA6_B343)
        ^ (y as u32).wrapping_mul(0xD816_3841)
        ^ (z as u32).wrapping_mul(0xCB1A_B31F)
        ^ texel.wrapping_mul(0x1656_67B1);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^= h >> 12;
    h = h.wrapping_mul(0x297A_2D39);
    h ^ (h >> 15)
}

/// Textured colour of a face of the block at `cell`, at texel `(tu, tv)` (0..8 each; `tv` grows
/// upward on side faces). `top` is true for the upper and lower faces.
pub fn texel_color(block: Block, cell: [i32; 3], top: bool, tu: u32, tv: u32) -> [f32; 3] {
    let h = texel_hash(
        cell[0],
        cell[1],
        cell[2],
        (tv << 4) | tu | ((top as u32) << 8),
    );
    let r = (h & 0xFF) as f32 * (1.0 / 255.0); // uniform texel noise in [0, 1]
    let (base, gain) = match block {
        // The side of a grass block is dirt with a ragged green fringe on its top rows.
        Block::Grass if !top && (tv >= 7 || (tv == 6 && h & 0x100 != 0)) => {
            (Block::Grass.base_color(true), 0.8 + 0.2 * r)
        }
        Block::Grass if top => (block.base_color(true), 0.86 + 0.22 * r),
        Block::Grass | Block::Dirt => (Block::Dirt.base_color(false), 0.82 + 0.25 * r),
        // Grey with sparse dark specks.
        Block::Stone => (
            block.base_color(top),
            if h & 0x700 == 0 { 0.65 } else { 0.9 + 0.15 * r },
        ),
        Block::Sand => (block.base_color(top), 0.93 + 0.1 * r),
        Block::Water => (block.base_color(top), 0.94 + 0.1 * r),
        // Bark in vertical stripes; the cut top shows rings around the centre.
        Block::Wood if top => {
            let (du, dv) = (tu as i32 * 2 - 7, tv as i32 * 2 - 7);
            let ring = ((du * du + dv * dv) / 12) & 1;
            (
                block.base_color(true),
                if ring == 0 { 1.0 } else { 0.82 } + 0.06 * r,
            )
        }
        Block::Wood => (
            block.base_color(false),
            if tu.is_multiple_of(3) { 0.72 } else { 0.95 } + 0.12 * r,
        ),
        // Leaves: mottled, with dark gaps.
        Block::Leaves => (
            block.base_color(top),
            if h & 0x300 == 0 { 0.55 } else { 0.85 + 0.3 * r },
        ),
        Block::Air => (block.base_color(top), 1.0),
    };
    [base[0] * gain, base[1] * gain, base[2] * gain]
}
