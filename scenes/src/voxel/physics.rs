//! Player physics in the style of Minecraft: an axis-aligned box (0.6 wide, 1.8 tall) under
//! gravity with air drag, moved one axis at a time (y, then x, then z) and stopped a hair short
//! of the first solid cell on each axis, so it slides along walls and never ends inside a block.
//! Jumping needs ground underfoot (walking up a step means jumping onto it); water slows walking,
//! weakens gravity, floats the player with its head out, and lets it climb out at a bank. The
//! world border is an invisible wall.

use super::world::World;

/// Half the width of the player's box in x and z.
pub const HALF_WIDTH: f64 = 0.3;
/// Height of the player's box above the feet.
pub const HEIGHT: f64 = 1.8;
/// Eye height above the feet (the camera).
pub const EYE_HEIGHT: f64 = 1.62;
/// Physics ticks per environment step.
pub const SUBSTEPS: usize = 3;
/// Per tick: gravity, vertical drag factor, take-off speed of a jump, fastest fall.
pub const GRAVITY: f64 = 0.08;
pub const DRAG: f64 = 0.98;
pub const JUMP_SPEED: f64 = 0.42;
pub const MAX_FALL: f64 = 1.0;
/// In water: weaker gravity, stronger drag, an upward stroke for `jump`, slower walking.
pub const WATER_GRAVITY: f64 = 0.02;
/// Upward push while the chest is under water: a swimmer floats with its head out.
pub const BUOYANCY: f64 = 0.04;
/// Height of the chest above the feet (where buoyancy is felt).
pub const CHEST_HEIGHT: f64 = 1.2;
pub const WATER_DRAG: f64 = 0.8;
pub const SWIM_SPEED: f64 = 0.12;
pub const WATER_WALK: f64 = 0.5;
/// Upward speed given when walking into a solid block while in water.
pub const CLIMB_SPEED: f64 = JUMP_SPEED;
/// Distance kept from a solid face after a collision, so contact is never overlap.
const GAP: f64 = 1e-6;

/// The player's physical state: feet position (centre of the box's bottom face), vertical
/// velocity in blocks per tick, and whether the last vertical move was stopped by ground.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Body {
    pub feet: [f64; 3],
    pub vy: f64,
    pub on_ground: bool,
}

/// Lower and upper corners of the player's box with its feet at `feet`.
pub fn bounds(feet: [f64; 3]) -> ([f64; 3], [f64; 3]) {
    let [x, y, z] = feet;
    (
        [x - HALF_WIDTH, y, z - HALF_WIDTH],
        [x + HALF_WIDTH, y + HEIGHT, z + HALF_WIDTH],
    )
}

/// Integer cells whose interior overlaps `[lo, hi)` along one axis (touching is not overlap).
fn cells(lo: f64, hi: f64) -> std::ops::RangeInclusive<i32> {
    lo.floor() as i32..=hi.ceil() as i32 - 1
}

/// Solid for the player: solid blocks, and every column outside the world (invisible wall).
pub fn blocks_body(world: &World, x: i32, y: i32, z: i32) -> bool {
    !World::contains_column(x, z) || world.block(x, y, z).is_solid()
}

/// Whether a box at `feet` overlaps any solid cell or leaves the world.
pub fn overlaps_solid(world: &World, feet: [f64; 3]) -> bool {
    let (lo, hi) = bounds(feet);
    cells(lo[0], hi[0]).any(|x| {
        cells(lo[1], hi[1]).any(|y| cells(lo[2], hi[2]).any(|z| blocks_body(world, x, y, z)))
    })
}

/// Whether a box at `feet` touches water.
pub fn in_water(world: &World, feet: [f64; 3]) -> bool {
    let (lo, hi) = bounds(feet);
    cells(lo[0], hi[0]).any(|x| {
        cells(lo[1], hi[1])
            .any(|y| cells(lo[2], hi[2]).any(|z| world.block(x, y, z) == super::Block::Water))
    })
}

/// Whether the cell at the player's chest (centre of the box, `CHEST_HEIGHT` above the feet)
/// holds water.
fn chest_in_water(world: &World, feet: [f64; 3]) -> bool {
    let [x, y, z] = feet;
    let cell = |v: f64| v.floor() as i32;
    world.block(cell(x), cell(y + CHEST_HEIGHT), cell(z)) == super::Block::Water
}

/// Moves the box along `axis` by `delta`, stopping `GAP` before the first solid cell in the
/// way. Returns whether it was stopped.
fn move_axis(world: &World, feet: &mut [f64; 3], axis: usize, delta: f64) -> bool {
    if delta == 0.0 {
        return false;
    }
    let (lo, hi) = bounds(*feet);
    let (a, b) = match axis {
        0 => (1, 2),
        1 => (0, 2),
        _ => (0, 1),
    };
    let blocked_at = |c: i32| {
        cells(lo[a], hi[a]).any(|i| {
            cells(lo[b], hi[b]).any(|j| {
                let mut cell = [0; 3];
                cell[axis] = c;
                cell[a] = i;
                cell[b] = j;
                blocks_body(world, cell[0], cell[1], cell[2])
            })
        })
    };
    // Offsets of the box's low and high faces from the feet along this axis.
    let (low_off, high_off) = if axis == 1 {
        (0.0, HEIGHT)
    } else {
        (-HALF_WIDTH, HALF_WIDTH)
    };
    if delta > 0.0 {
        let first = hi[axis].ceil() as i32;
        let last = (hi[axis] + delta).ceil() as i32 - 1;
        if let Some(c) = (first..=last).find(|&c| blocked_at(c)) {
            feet[axis] = c as f64 - GAP - high_off;
            return true;
        }
    } else {
        let first = lo[axis].floor() as i32 - 1;
        let last = (lo[axis] + delta).floor() as i32;
        if let Some(c) = (last..=first).rev().find(|&c| blocked_at(c)) {
            feet[axis] = (c + 1) as f64 + GAP - low_off;
            return true;
        }
    }
    feet[axis] += delta;
    false
}

/// Advances the body by one environment step: `walk` is the horizontal displacement `(x, z)`
/// wanted over the step (on dry land), `jump` asks for a jump (or a swim stroke) at its start.
pub fn step(world: &World, body: &mut Body, walk: [f64; 2], jump: bool) {
    for tick in 0..SUBSTEPS {
        let wet = in_water(world, body.feet);
        if jump && tick == 0 {
            if body.on_ground {
                body.vy = JUMP_SPEED;
            } else if wet {
                body.vy = body.vy.max(SWIM_SPEED);
            }
        }
        let dy = body.vy.clamp(-MAX_FALL, MAX_FALL);
        let stopped = move_axis(world, &mut body.feet, 1, dy);
        body.on_ground = stopped && dy < 0.0;
        if stopped {
            body.vy = 0.0;
        }
        body.vy = if wet {
            let lift = if chest_in_water(world, body.feet) {
                BUOYANCY
            } else {
                0.0
            };
            (body.vy - WATER_GRAVITY + lift) * WATER_DRAG
        } else {
            (body.vy - GRAVITY) * DRAG
        };
        let k = if wet { WATER_WALK } else { 1.0 } / SUBSTEPS as f64;
        let blocked_x = move_axis(world, &mut body.feet, 0, walk[0] * k);
        let blocked_z = move_axis(world, &mut body.feet, 2, walk[1] * k);
        // Swimming into a bank lifts the player along it, so it can climb out of water onto a
        // ledge up to one block above the surface (as in Minecraft).
        if wet && (blocked_x || blocked_z) {
            body.vy = body.vy.max(CLIMB_SPEED);
        }
    }
}

/// Moves a box that overlaps solid cells straight up to the first free place (at most to the
/// top of the world), and clamps it inside the world's border. Used when a pose is set by hand.
pub fn resolve_overlap(world: &World, feet: [f64; 3]) -> [f64; 3] {
    let size = world.size();
    let clamp = |v: f64, n: usize| v.clamp(HALF_WIDTH + GAP, n as f64 - HALF_WIDTH - GAP);
    let mut f = [
        clamp(feet[0], size[0]),
        feet[1].max(0.0),
        clamp(feet[2], size[2]),
    ];
    while overlaps_solid(world, f) && f[1] < size[1] as f64 {
        f[1] = f[1].floor() + 1.0 + GAP;
    }
    f
}
