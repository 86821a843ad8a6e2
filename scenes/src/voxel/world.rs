//! The finite voxel world: a 128×48×128 array of blocks (x, y, z with y up), a per-column top
//! height for fast ray skipping, and a virtual ocean around it so that views over the border
//! look endless (the player is held inside by invisible walls, see `physics`).

use super::block::Block;

/// World extent in blocks: x, y (up), z.
pub const WORLD_SIZE: [usize; 3] = [128, 48, 128];
/// Water fills every non-solid cell with `y < SEA_LEVEL`; its surface is the plane `y = SEA_LEVEL`.
pub const SEA_LEVEL: i32 = 14;
/// Height of the sand floor of the virtual ocean outside the world.
pub const OCEAN_FLOOR: i32 = SEA_LEVEL - 3;

const SX: usize = WORLD_SIZE[0];
const SY: usize = WORLD_SIZE[1];
const SZ: usize = WORLD_SIZE[2];

/// Blocks of one world, generated from a seed (see `generate`) or built by hand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct World {
    seed: u64,
    /// Column-major: `blocks[(x * SZ + z) * SY + y]`, so a vertical walk is contiguous.
    blocks: Vec<Block>,
    /// Per column `x * SZ + z`: one more than the highest non-air cell (0 for an empty column).
    top: Vec<u8>,
    /// The largest `top` over the world (and the ocean): every cell at or above it is air.
    max_top: i32,
    /// For the ray caster, per column of a square reaching `PAD` columns beyond every side:
    /// `[top, escape]`, where a ray that does not descend and is at or above `escape` can meet
    /// nothing more (`max_top` inside; `SEA_LEVEL` outside, which a ray that left never re-enters).
    columns: Vec<[u8; 2]>,
}

/// Margin of the ray caster's column table around the world (rays are shorter than this).
const PAD: i32 = 64;
const PADDED: usize = SX + 2 * PAD as usize;

impl World {
    /// A world of air with the given seed (generation fills it).
    pub(super) fn empty(seed: u64) -> Self {
        Self {
            seed,
            blocks: vec![Block::Air; SX * SY * SZ],
            top: vec![0; SX * SZ],
            max_top: SEA_LEVEL,
            columns: vec![[SEA_LEVEL as u8; 2]; PADDED * PADDED],
        }
    }

    /// A grass plain whose ground surface is at `y = ground` (cells below are dirt and stone),
    /// with no water and no trees: a clean stage for tests and demonstrations.
    pub fn flat(ground: i32) -> Self {
        let ground = ground.clamp(1, SY as i32 - 4);
        let mut w = Self::empty(0);
        for x in 0..SX as i32 {
            for z in 0..SZ as i32 {
                for y in 0..ground {
                    let b = match ground - 1 - y {
                        0 => Block::Grass,
                        1..=3 => Block::Dirt,
                        _ => Block::Stone,
                    };
                    w.set_raw(x, y, z, b);
                }
            }
        }
        w.recompute_tops();
        w
    }

    /// The seed this world was generated from (0 for hand-built worlds).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn size(&self) -> [usize; 3] {
        WORLD_SIZE
    }

    /// Whether the column `(x, z)` lies inside the world.
    pub fn contains_column(x: i32, z: i32) -> bool {
        (0..SX as i32).contains(&x) && (0..SZ as i32).contains(&z)
    }

    fn index(x: i32, y: i32, z: i32) -> usize {
        (x as usize * SZ + z as usize) * SY + y as usize
    }

    /// The block at integer cell `(x, y, z)`. Outside the array: stone below `y = 0`, air above
    /// the top, and around the world the virtual ocean (sand floor, water up to the sea level).
    pub fn block(&self, x: i32, y: i32, z: i32) -> Block {
        if y < 0 {
            Block::Stone
        } else if y >= SY as i32 {
            Block::Air
        } else if Self::contains_column(x, z) {
            self.blocks[Self::index(x, y, z)]
        } else {
            ocean_block(y)
        }
    }

    /// Replaces one block (ignored outside the array) and keeps the column tops up to date.
    /// Returns whether the cell was inside the world.
    pub fn set_block(&mut self, x: i32, y: i32, z: i32, block: Block) -> bool {
        if !Self::contains_column(x, z) || !(0..SY as i32).contains(&y) {
            return false;
        }
        self.set_raw(x, y, z, block);
        let col = x as usize * SZ + z as usize;
        let base = col * SY;
        let top = (0..SY)
            .rev()
            .find(|&y| self.blocks[base + y] != Block::Air)
            .map_or(0, |y| y + 1);
        self.top[col] = top as u8;
        self.refresh_columns();
        true
    }

    pub(super) fn set_raw(&mut self, x: i32, y: i32, z: i32, block: Block) {
        self.blocks[Self::index(x, y, z)] = block;
    }

    /// Recomputes every column top after bulk writes with `set_raw`.
    pub(super) fn recompute_tops(&mut self) {
        for col in 0..SX * SZ {
            let cells = &self.blocks[col * SY..(col + 1) * SY];
            self.top[col] = cells
                .iter()
                .rposition(|&b| b != Block::Air)
                .map_or(0, |y| y + 1) as u8;
        }
        self.refresh_columns();
    }

    /// Recomputes `max_top` and the ray caster's column table from `top`.
    fn refresh_columns(&mut self) {
        let highest = self.top.iter().copied().max().unwrap_or(0);
        self.max_top = highest.max(SEA_LEVEL as u8) as i32;
        let p = PAD as usize;
        for x in 0..SX {
            for z in 0..SZ {
                self.columns[(x + p) * PADDED + z + p] = [self.top[x * SZ + z], self.max_top as u8];
            }
        }
    }

    /// `(top, escape)` of column `(x, z)` for the ray caster (see the `columns` field); columns
    /// beyond the table are ocean.
    #[inline]
    pub(super) fn column_bounds(&self, x: i32, z: i32) -> (i32, i32) {
        let (ix, iz) = (
            x.wrapping_add(PAD) as u32 as usize,
            z.wrapping_add(PAD) as u32 as usize,
        );
        if ix < PADDED && iz < PADDED {
            let [top, escape] = self.columns[ix * PADDED + iz];
            (top as i32, escape as i32)
        } else {
            (SEA_LEVEL, SEA_LEVEL)
        }
    }

    /// One more than the highest non-air cell of column `(x, z)`: every cell with `y >=` this is
    /// air. The virtual ocean's columns give `SEA_LEVEL`.
    #[inline]
    pub fn column_top(&self, x: i32, z: i32) -> i32 {
        if Self::contains_column(x, z) {
            self.top[x as usize * SZ + z as usize] as i32
        } else {
            SEA_LEVEL
        }
    }

    /// Every cell at or above this height is air, inside the world and over the ocean.
    pub fn max_top(&self) -> i32 {
        self.max_top
    }

    /// The highest non-air block of a column and its `y` (for a top-down map); `None` for an
    /// empty column.
    pub fn surface(&self, x: i32, z: i32) -> Option<(i32, Block)> {
        let top = self.column_top(x, z);
        (top > 0).then(|| (top - 1, self.block(x, top - 1, z)))
    }

    /// One more than the highest solid block of a column: where feet rest on it (0 if none).
    pub fn ground_height(&self, x: i32, z: i32) -> i32 {
        let top = self.column_top(x, z);
        (0..top)
            .rev()
            .find(|&y| self.block(x, y, z).is_solid())
            .map_or(0, |y| y + 1)
    }
}

/// The virtual ocean around the world.
fn ocean_block(y: i32) -> Block {
    if y < OCEAN_FLOOR - 2 {
        Block::Stone
    } else if y < OCEAN_FLOOR {
        Block::Sand
    } else if y < SEA_LEVEL {
        Block::Water
    } else {
        Block::Air
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_block_keeps_column_tops_consistent_with_a_scan() {
        let mut w = World::flat(10);
        assert_eq!(w.column_top(5, 5), 10);
        assert!(w.set_block(5, 30, 5, Block::Wood));
        assert_eq!(w.column_top(5, 5), 31);
        assert_eq!(w.max_top(), 31);
        assert!(w.set_block(5, 30, 5, Block::Air));
        assert_eq!((w.column_top(5, 5), w.max_top()), (10, SEA_LEVEL));
        assert!(!w.set_block(-1, 3, 0, Block::Stone));
        assert_eq!(w.ground_height(5, 5), 10);
        assert_eq!(w.surface(5, 5), Some((9, Block::Grass)));
        assert_eq!(w.block(-3, SEA_LEVEL - 1, 4), Block::Water);
        assert_eq!(w.block(3, -1, 4), Block::Stone);
    }
}
