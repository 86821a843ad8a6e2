//! Procedural terrain from a seed: a heightmap of gradient-noise octaves (rolling hills, a
//! masked mountain layer and lake basins), pulled down to a shallow sea near a ragged coast so
//! the world is an island; soil layers by height, slope and a dryness field (sand beaches and
//! deserts, grass over dirt, bare stone on cliffs and peaks); water up to the sea level; oak-like
//! trees placed from the seed, denser in forests given by another noise field; a dry spawn spot.
//! Every noise field draws its permutation from its own fork of the seed's `Rng`.

use super::block::Block;
use super::noise::GradientNoise;
use super::world::{World, SEA_LEVEL, WORLD_SIZE};
use crate::Rng;

const SX: i32 = WORLD_SIZE[0] as i32;
const SY: i32 = WORLD_SIZE[1] as i32;
const SZ: i32 = WORLD_SIZE[2] as i32;

/// Highest ground surface; trees (up to 8 blocks) must still fit below `WORLD_SIZE[1]`.
const MAX_GROUND: i32 = 36;
/// Ground at or above this is bare stone.
const ROCK_LINE: i32 = 28;

fn smoothstep(e0: f64, e1: f64, x: f64) -> f64 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Noise fields of one world, each drawn from its own stream of the seed.
struct Fields {
    hills: GradientNoise,
    mountains: GradientNoise,
    detail: GradientNoise,
    coast: GradientNoise,
    /// Basins that sink below the sea level and fill as lakes.
    lakes: GradientNoise,
    /// Dry regions become sandy desert without trees.
    dryness: GradientNoise,
}

impl Fields {
    fn new(rng: &mut Rng) -> Self {
        let mut field = |k| GradientNoise::new(&mut rng.fork(k));
        Self {
            hills: field(1),
            mountains: field(2),
            detail: field(3),
            coast: field(4),
            lakes: field(7),
            dryness: field(6),
        }
    }

    fn desert(&self, x: i32, z: i32) -> bool {
        self.dryness.fbm(x as f64 / 50.0, z as f64 / 50.0, 2) > 0.27
    }
}

/// Ground height (one more than the top solid cell) of every column, `[x * SZ + z]`.
fn heightmap(f: &Fields) -> Vec<i32> {
    let (cx, cz) = (SX as f64 / 2.0, SZ as f64 / 2.0);
    let mut h = vec![0; (SX * SZ) as usize];
    for x in 0..SX {
        for z in 0..SZ {
            let (fx, fz) = (x as f64, z as f64);
            let base = 16.5 + 7.5 * f.hills.fbm(fx / 40.0, fz / 40.0, 3);
            let mask = smoothstep(-0.05, 0.35, f.mountains.fbm(fx / 60.0, fz / 60.0, 2));
            let peaks = mask * (11.0 + 10.0 * f.detail.fbm(fx / 16.0, fz / 16.0, 2));
            let basin = 8.0 * smoothstep(0.15, 0.4, f.lakes.fbm(fx / 32.0, fz / 32.0, 2));
            // Island: a rounded square with a ragged coast, sinking to a shallow sea floor.
            let (dx, dz) = ((fx - cx) / cx, (fz - cz) / cz);
            let r = (dx * dx * dx * dx + dz * dz * dz * dz).sqrt().sqrt();
            let r = r + 0.12 * f.coast.fbm(fx / 24.0, fz / 24.0, 2);
            let shore = smoothstep(0.78, 0.98, r);
            let height = (base + peaks - basin) * (1.0 - shore) + (SEA_LEVEL - 3) as f64 * shore;
            h[(x * SZ + z) as usize] = (height.round() as i32).clamp(2, MAX_GROUND);
        }
    }
    h
}

/// Largest height difference to the four neighbours (steep columns show stone).
fn slope(h: &[i32], x: i32, z: i32) -> i32 {
    let at = |x: i32, z: i32| h[(x.clamp(0, SX - 1) * SZ + z.clamp(0, SZ - 1)) as usize];
    let c = at(x, z);
    [(1, 0), (-1, 0), (0, 1), (0, -1)]
        .iter()
        .map(|&(dx, dz)| (c - at(x + dx, z + dz)).abs())
        .max()
        .unwrap_or(0)
}

fn fill_columns(world: &mut World, h: &[i32], f: &Fields) {
    for x in 0..SX {
        for z in 0..SZ {
            let g = h[(x * SZ + z) as usize];
            let steep = slope(h, x, z) >= 3;
            let sandy = g <= SEA_LEVEL + 1 || (f.desert(x, z) && g < ROCK_LINE);
            for y in 0..g.max(SEA_LEVEL) {
                let depth = g - 1 - y; // 0 for the top solid cell
                let b = if y >= g {
                    Block::Water
                } else if depth >= 4 {
                    Block::Stone
                } else if sandy {
                    if depth < 3 {
                        Block::Sand
                    } else {
                        Block::Stone
                    }
                } else if g >= ROCK_LINE || steep {
                    Block::Stone
                } else if depth == 0 {
                    Block::Grass
                } else {
                    Block::Dirt
                };
                world.set_raw(x, y, z, b);
            }
        }
    }
}

/// Trunk of 4–6 wood blocks and a canopy: two 5×5 layers (corners sometimes bare) below a
/// 3×3 layer and a plus-shaped crown. Leaves only replace air.
fn place_tree(world: &mut World, rng: &mut Rng, x: i32, ground: i32, z: i32) {
    let trunk = 4 + rng.below(3) as i32;
    let crown = ground + trunk; // first cell above the trunk
    for dy in -2..=1 {
        let r: i32 = if dy < 0 { 2 } else { 1 };
        for dx in -r..=r {
            for dz in -r..=r {
                let corner = dx.abs() == r && dz.abs() == r;
                if corner && (dy == 1 || (r == 2 && rng.chance(0.5))) {
                    continue;
                }
                let (lx, ly, lz) = (x + dx, crown + dy, z + dz);
                if World::contains_column(lx, lz)
                    && ly < SY
                    && world.block(lx, ly, lz) == Block::Air
                {
                    world.set_raw(lx, ly, lz, Block::Leaves);
                }
            }
        }
    }
    for y in ground..crown {
        world.set_raw(x, y, z, Block::Wood);
    }
}

fn plant_trees(world: &mut World, h: &[i32], rng: &mut Rng) {
    let forest = GradientNoise::new(&mut rng.fork(1));
    let mut trunks: Vec<(i32, i32)> = Vec::new();
    for x in 2..SX - 2 {
        for z in 2..SZ - 2 {
            let g = h[(x * SZ + z) as usize];
            let density = smoothstep(0.0, 0.35, forest.fbm(x as f64 / 36.0, z as f64 / 36.0, 2));
            let p = 0.004 + 0.05 * density;
            // Draw for every column so the stream does not depend on which columns qualify.
            let roll = rng.chance(p);
            let grassy = world.block(x, g - 1, z) == Block::Grass && g + 8 < SY;
            if roll
                && grassy
                && trunks
                    .iter()
                    .all(|&(tx, tz)| (tx - x).abs().max((tz - z).abs()) > 2)
            {
                trunks.push((x, z));
                place_tree(world, rng, x, g, z);
            }
        }
    }
}

/// Generates the world of `seed`.
pub fn generate(seed: u64) -> World {
    let mut rng = Rng::new(seed);
    let fields = Fields::new(&mut rng);
    let h = heightmap(&fields);
    let mut world = World::empty(seed);
    fill_columns(&mut world, &h, &fields);
    plant_trees(&mut world, &h, &mut rng.fork(5));
    world.recompute_tops();
    world
}

/// Whether a player standing with feet at `(x + 0.5, y, z + 0.5)` stands on dry ground in open
/// air: a grass, dirt, sand or stone top block above the sea, nothing above it in the column.
fn dry_spot(world: &World, x: i32, z: i32) -> Option<i32> {
    let (y, top) = world.surface(x, z)?;
    let dry =
        matches!(top, Block::Grass | Block::Dirt | Block::Sand | Block::Stone) && y >= SEA_LEVEL;
    dry.then_some(y + 1)
}

/// A dry spawn point (feet position) near the middle of the world, drawn from `rng`; falls back
/// to a deterministic scan of the whole world, then to the top of the centre column.
pub fn spawn_point(world: &World, rng: &mut Rng) -> [f64; 3] {
    let at = |x: i32, y: i32, z: i32| [x as f64 + 0.5, y as f64, z as f64 + 0.5];
    for _ in 0..2000 {
        let x = SX / 4 + rng.below((SX / 2) as usize) as i32;
        let z = SZ / 4 + rng.below((SZ / 2) as usize) as i32;
        if let Some(y) = dry_spot(world, x, z) {
            return at(x, y, z);
        }
    }
    for x in 1..SX - 1 {
        for z in 1..SZ - 1 {
            if let Some(y) = dry_spot(world, x, z) {
                return at(x, y, z);
            }
        }
    }
    let (x, z) = (SX / 2, SZ / 2);
    at(x, world.column_top(x, z), z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terrain_has_every_block_type_sea_trees_and_relief() {
        let w = generate(7);
        let mut counts = [0usize; 8];
        for x in 0..SX {
            for z in 0..SZ {
                for y in 0..SY {
                    counts[w.block(x, y, z) as usize] += 1;
                }
            }
        }
        for b in Block::ALL {
            assert!(
                counts[b as usize] > 0,
                "no {} in the world: {counts:?}",
                b.name()
            );
        }
        let heights: Vec<i32> = (0..SX)
            .flat_map(|x| (0..SZ).map(move |z| (x, z)))
            .map(|(x, z)| w.ground_height(x, z))
            .collect();
        let land = heights.iter().filter(|&&g| g > SEA_LEVEL).count();
        assert!(land > heights.len() / 3, "too little land: {land}");
        let (lo, hi) = (heights.iter().min().unwrap(), heights.iter().max().unwrap());
        assert!(hi - lo >= 10, "flat terrain {lo}..{hi}");
    }

    #[test]
    fn spawn_is_on_dry_solid_ground_with_headroom() {
        for seed in 0..20 {
            let w = generate(seed);
            let p = spawn_point(&w, &mut Rng::new(seed));
            let (x, y, z) = (p[0].floor() as i32, p[1] as i32, p[2].floor() as i32);
            assert!(
                w.block(x, y - 1, z).is_solid(),
                "seed {seed}: nothing under the feet"
            );
            assert!(
                (0..2).all(|dy| w.block(x, y + dy, z) == Block::Air),
                "seed {seed}: no headroom"
            );
            assert!(
                y > SEA_LEVEL,
                "seed {seed}: spawn at {y} is not above the sea"
            );
        }
    }
}
