//! The fast voxel traversal. With a level camera (no pitch, no roll) every ray of one screen
//! column has the same horizontal direction, so they cross the same sequence of block columns:
//! that 2-D path (Amanatides–Woo in the horizontal plane) is computed once per screen column,
//! with each column's top height from the world's table. A ray then runs along the path by its
//! horizontal distance `s` (its height is `y(s) = o_y + m s`, its distance `t = s / h`): where it
//! passes above a column's top the whole column is air and costs one comparison; only in the
//! columns it dips into does it step through cells vertically and look blocks up. It visits the
//! same cells as the 3-D DDA of `reference`, up to rounding at exact cell corners.

// `!(t < limit)` is written on purpose: it also ends a ray whose distance is NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use super::shade::{RayAccum, Sun, RAY_MAX};
use super::world::World;

/// One block column along a screen column's path: the horizontal distances where the path
/// enters and leaves it, the column, the face it is entered through, and its top and escape
/// heights (see `World::column_bounds` and `column_path`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Span {
    s_enter: f32,
    s_exit: f32,
    /// `top` as a float, and the height from which a ray that does not descend meets nothing
    /// more along this path: the skip tests compare heights without rounding to cells.
    top_f: f32,
    escape_f: f32,
    cx: i32,
    cz: i32,
    top: i32,
    face: usize,
}

/// Most spans a path can need: a 2-D ray of length `RAY_MAX` crosses at most
/// `RAY_MAX·√2 + 2` column boundaries.
pub const MAX_SPANS: usize = 96;

/// `floor` by truncation and correction (`f32::floor` is a library call on baseline x86-64).
#[inline]
fn floor_i32(v: f32) -> i32 {
    let i = v as i32;
    i - ((i as f32) > v) as i32
}

/// Fills `path` with the block columns crossed from `(ox, oz)` along the horizontal unit
/// direction `(ex, ez)` up to distance `RAY_MAX`; returns how many there are.
pub fn column_path(
    world: &World,
    ox: f32,
    oz: f32,
    ex: f32,
    ez: f32,
    path: &mut [Span; MAX_SPANS],
) -> usize {
    let (mut cx, mut cz) = (floor_i32(ox), floor_i32(oz));
    let (sx, sz) = (
        (ex > 0.0) as i32 - (ex < 0.0) as i32,
        (ez > 0.0) as i32 - (ez < 0.0) as i32,
    );
    let boundary = |c: i32, step: i32, o: f32, e: f32| match step {
        0 => (f32::INFINITY, f32::INFINITY),
        _ => (((c + (step > 0) as i32) as f32 - o) / e, (1.0 / e).abs()),
    };
    let (mut next_x, dx) = boundary(cx, sx, ox, ex);
    let (mut next_z, dz) = boundary(cz, sz, oz, ez);
    let (face_x, face_z) = ((sx < 0) as usize, 4 + (sz < 0) as usize);
    let (mut s, mut face) = (0.0, 3);
    let mut n = 0;
    loop {
        let use_z = next_z <= next_x;
        let s_exit = if use_z { next_z } else { next_x };
        let (top, escape) = world.column_bounds(cx, cz);
        path[n] = Span {
            s_enter: s,
            s_exit,
            top_f: top as f32,
            escape_f: escape as f32,
            cx,
            cz,
            top,
            face,
        };
        n += 1;
        if !(s_exit < RAY_MAX) || n == MAX_SPANS {
            break;
        }
        s = s_exit;
        if use_z {
            cz += sz;
            next_z += dz;
            face = face_z;
        } else {
            cx += sx;
            next_x += dx;
            face = face_x;
        }
    }
    // A ray that does not descend and is at or above the highest top of the columns still
    // ahead on its path can meet nothing more: `escape_f` becomes that suffix maximum (and stays
    // no lower than the column's own escape height bound).
    let mut highest = f32::MIN;
    for span in path[..n].iter_mut().rev() {
        highest = highest.max(span.top_f);
        span.escape_f = span.escape_f.min(highest);
    }
    n
}

/// Colour seen from `o` along unit direction `d`, whose horizontal part follows `path`; `m` is
/// the ray's rise per horizontal distance and `inv_h` converts horizontal distance to `t`.
pub fn trace_columns(
    world: &World,
    path: &[Span],
    o: [f32; 3],
    m: f32,
    inv_h: f32,
    acc: &mut RayAccum,
    sun: &Sun,
) -> [f32; 3] {
    let oy = o[1];
    let mut cy = floor_i32(oy);
    let start = [floor_i32(o[0]), cy, floor_i32(o[2])];
    if acc.start(world.block(start[0], start[1], start[2]), start) {
        return acc.result();
    }
    let inv_m = 1.0 / m;
    let s_max = RAY_MAX / inv_h;
    let max_top = world.max_top();
    for (k, sp) in path.iter().enumerate() {
        let (cx, cz, top) = (sp.cx, sp.cz, sp.top);
        if k > 0 {
            if !(sp.s_enter < s_max) {
                return acc.escape(sun);
            }
            // Height where the ray enters the column; its cell is air when it is at or above
            // the top (an integer), which is tested without rounding to a cell.
            let y = oy + m * sp.s_enter;
            if y >= sp.top_f {
                if acc.in_water() {
                    acc.air(sp.s_enter * inv_h);
                }
                // Not descending: the whole column is air, and above `escape` so is the rest.
                if m >= 0.0 {
                    if y >= sp.escape_f {
                        return acc.escape(sun);
                    }
                    continue;
                }
                if oy + m * sp.s_exit >= sp.top_f {
                    continue;
                }
                cy = floor_i32(y);
            } else {
                cy = floor_i32(y);
                let t = sp.s_enter * inv_h;
                if acc.cell(world.block(cx, cy, cz), t, [cx, cy, cz], sp.face) {
                    return acc.result();
                }
            }
        }
        // Vertical steps inside this column, entering cells through their bottom or top face.
        if m > 0.0 {
            loop {
                let s = ((cy + 1) as f32 - oy) * inv_m;
                if !(s < sp.s_exit) {
                    break;
                }
                cy += 1;
                let t = s * inv_h;
                if !(t < RAY_MAX) {
                    return acc.escape(sun);
                }
                if cy >= top {
                    acc.air(t);
                    if cy >= max_top {
                        return acc.escape(sun);
                    }
                    break;
                }
                if acc.cell(world.block(cx, cy, cz), t, [cx, cy, cz], 2) {
                    return acc.result();
                }
            }
        } else if m < 0.0 {
            loop {
                let s = (cy as f32 - oy) * inv_m;
                if !(s < sp.s_exit) {
                    break;
                }
                cy -= 1;
                let t = s * inv_h;
                if !(t < RAY_MAX) {
                    return acc.escape(sun);
                }
                if cy >= top {
                    acc.air(t);
                } else if acc.cell(world.block(cx, cy, cz), t, [cx, cy, cz], 3) {
                    return acc.result();
                }
            }
        }
    }
    acc.escape(sun)
}
