//! The reference voxel traversal: the 3-D DDA of Amanatides & Woo ("A Fast Voxel Traversal
//! Algorithm for Ray Tracing", Eurographics 1987), looking up every cell the ray passes through
//! until a solid block or `RAY_MAX`. It is the plain statement of what the fast column tracer
//! (`columns`) computes, and the tests compare their images.

// `!(t < limit)` is written on purpose: it also ends a ray whose distance is NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use super::shade::{RayAccum, Sun, RAY_MAX};
use super::world::World;

/// Traversal state of one ray: the cell it is in, the distance to the next boundary per axis
/// (`t_max`) and the distance between boundaries (`t_delta`).
struct Dda {
    step: [i32; 3],
    cell: [i32; 3],
    next: [f32; 3],
    delta: [f32; 3],
}

impl Dda {
    fn new(o: [f32; 3], d: [f32; 3]) -> Self {
        let cell = o.map(|v| v.floor() as i32);
        let step = d.map(|v| (v > 0.0) as i32 - (v < 0.0) as i32);
        let mut next = [f32::INFINITY; 3];
        let mut delta = [f32::INFINITY; 3];
        for a in 0..3 {
            if step[a] != 0 {
                let inv = 1.0 / d[a];
                next[a] = ((cell[a] + (step[a] > 0) as i32) as f32 - o[a]) * inv;
                delta[a] = inv.abs();
            }
        }
        Self {
            step,
            cell,
            next,
            delta,
        }
    }

    /// Steps into the next cell along the axis whose boundary comes first; returns the axis
    /// and the distance at which the new cell was entered.
    fn advance(&mut self) -> (usize, f32) {
        let n = self.next;
        let a = if n[1] < n[0] && n[1] < n[2] {
            1
        } else if n[0] < n[2] {
            0
        } else {
            2
        };
        let t = n[a];
        self.cell[a] += self.step[a];
        self.next[a] = t + self.delta[a];
        (a, t)
    }
}

/// Colour seen along the unit direction `d` from `o`.
pub fn trace_reference(
    world: &World,
    o: [f32; 3],
    d: [f32; 3],
    acc: &mut RayAccum,
    sun: &Sun,
) -> [f32; 3] {
    let mut dda = Dda::new(o, d);
    let c = dda.cell;
    if acc.start(world.block(c[0], c[1], c[2]), c) {
        return acc.result();
    }
    loop {
        let (a, t) = dda.advance();
        if !(t < RAY_MAX) {
            return acc.escape(sun);
        }
        let c = dda.cell;
        // Entering by a positive step crosses the cell's face whose normal points back (-axis).
        let face = 2 * a + (dda.step[a] < 0) as usize;
        if acc.cell(world.block(c[0], c[1], c[2]), t, c, face) {
            return acc.result();
        }
    }
}
