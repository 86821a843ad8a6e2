//! Seeded level generation for the maze scene (SPEC §4.1): rooms placed on the odd grid, a
//! Kruskal spanning maze through the remaining corridor nodes (so every free cell is reachable),
//! a few extra openings for loops, Voronoi-like regions around rooms and corridor seeds (each
//! with its own wall and floor look), and target objects in distinct free cells.
//!
//! Generation visits cells and edges only in fixed orders and draws everything from
//! [`Rng`](crate::Rng), so a seed always gives the same level.

use std::collections::VecDeque;
use std::sync::Arc;

use super::textures::{FLOOR_LOOKS, WALL_LOOKS};
use super::{physics, MazeConfig, TARGET_COLORS};
use crate::{Pose, Rng};

/// A rectangular room, in cells: `x0..x0 + w`, `y0..y0 + h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Room {
    pub x0: usize,
    pub y0: usize,
    pub w: usize,
    pub h: usize,
}

impl Room {
    fn overlaps(&self, other: &Room) -> bool {
        self.x0 < other.x0 + other.w
            && other.x0 < self.x0 + self.w
            && self.y0 < other.y0 + other.h
            && other.y0 < self.y0 + self.h
    }

    fn contains(&self, x: usize, y: usize) -> bool {
        (self.x0..self.x0 + self.w).contains(&x) && (self.y0..self.y0 + self.h).contains(&y)
    }
}

/// A ball-shaped target object at a cell centre.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Object {
    /// Global (x, y) in cells.
    pub pos: [f64; 2],
    /// RGB in [0, 1] (one of [`TARGET_COLORS`]).
    pub color: [f64; 3],
}

/// One generated maze: layout, regions and their looks, objects, the current target and the
/// spawn pose.
#[derive(Clone, Debug)]
pub struct Level {
    /// Cells per side N.
    pub size: usize,
    /// N×N, `[y * N + x]`, row 0 at the bottom; 1 free, 0 wall. The outer border is wall.
    pub layout: Arc<Vec<u8>>,
    /// Region id of every cell (walls take the region of the nearest free cell).
    pub region: Vec<u8>,
    /// Rooms; room `i` is region `i`, corridor regions follow.
    pub rooms: Vec<Room>,
    /// Base wall colour of every region (for minimaps).
    pub region_colors: Vec<[u8; 3]>,
    /// Index into the wall looks of every region.
    pub region_wall_look: Vec<u8>,
    /// Index into the floor looks of every region.
    pub region_floor_look: Vec<u8>,
    /// Target objects; object `k` has colour `TARGET_COLORS[k]`.
    pub objects: Vec<Object>,
    /// Index into `objects` of the current target.
    pub target: usize,
    /// Start pose of the episode.
    pub spawn: Pose,
    /// The seed the level was generated from.
    pub seed: u64,
}

const NEIGHBOURS: [(i64, i64); 4] = [(1, 0), (-1, 0), (0, 1), (0, -1)];
/// Probability of opening a wall between two corridor nodes that the spanning maze left
/// closed, which adds loops.
const LOOP_PROBABILITY: f64 = 0.15;
/// Room side lengths (odd, so rooms sit on the odd grid).
const ROOM_SIDES: [usize; 2] = [3, 5];

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

impl Level {
    /// Generates the level of `config.size` from `seed`.
    pub fn generate(config: &MazeConfig, seed: u64) -> Level {
        let n = config.size;
        let mut rng = Rng::new(seed);
        let mut layout_rng = rng.fork(1);
        let mut look_rng = rng.fork(2);
        let mut object_rng = rng.fork(3);

        let mut layout = vec![0u8; n * n];
        let rooms = place_rooms(config, &mut layout_rng);
        for room in &rooms {
            for y in room.y0..room.y0 + room.h {
                for x in room.x0..room.x0 + room.w {
                    layout[y * n + x] = 1;
                }
            }
        }
        carve_maze(n, &rooms, &mut layout, &mut layout_rng);

        let (region, n_regions) = assign_regions(n, &rooms, &layout, &mut layout_rng);
        let mut wall_looks: Vec<u8> = (0..WALL_LOOKS.len() as u8).collect();
        look_rng.shuffle(&mut wall_looks);
        let mut floor_looks: Vec<u8> = (0..FLOOR_LOOKS.len() as u8).collect();
        look_rng.shuffle(&mut floor_looks);
        let region_wall_look: Vec<u8> = (0..n_regions)
            .map(|r| wall_looks[r % wall_looks.len()])
            .collect();
        let region_floor_look: Vec<u8> = (0..n_regions)
            .map(|r| floor_looks[r % floor_looks.len()])
            .collect();
        let region_colors = region_wall_look
            .iter()
            .map(|&l| WALL_LOOKS[l as usize].color)
            .collect();

        let mut free: Vec<usize> = (0..n * n).filter(|&i| layout[i] == 1).collect();
        object_rng.shuffle(&mut free);
        let k = config.n_targets();
        let centre = |i: usize| [(i % n) as f64 + 0.5, (i / n) as f64 + 0.5];
        let objects = (0..k)
            .map(|j| Object {
                pos: centre(free[j]),
                color: TARGET_COLORS[j],
            })
            .collect();
        let spawn_xy = centre(free[k]);
        let spawn = Pose {
            position: [spawn_xy[0], spawn_xy[1], 0.0],
            yaw: object_rng.range_f64(0.0, std::f64::consts::TAU),
        };
        let target = object_rng.below(k);

        Level {
            size: n,
            layout: Arc::new(layout),
            region,
            rooms,
            region_colors,
            region_wall_look,
            region_floor_look,
            objects,
            target,
            spawn,
            seed,
        }
    }

    /// True when cell (x, y) is inside the grid and free.
    pub fn is_free_cell(&self, x: i64, y: i64) -> bool {
        let n = self.size as i64;
        (0..n).contains(&x) && (0..n).contains(&y) && self.layout[(y * n + x) as usize] == 1
    }

    /// True when the point (x, y) lies in a free cell.
    pub fn is_free(&self, x: f64, y: f64) -> bool {
        self.is_free_cell(x.floor() as i64, y.floor() as i64)
    }

    /// True when a disc of `radius` centred at (x, y) overlaps a wall cell or leaves the grid.
    pub fn collides(&self, x: f64, y: f64, radius: f64) -> bool {
        physics::collides(&self.layout, self.size, x, y, radius)
    }

    /// Number of regions.
    pub fn n_regions(&self) -> usize {
        self.region_colors.len()
    }

    /// The current target object.
    pub fn target_object(&self) -> &Object {
        &self.objects[self.target]
    }

    /// Breadth-first distances (in cells) from `start` over free cells; `usize::MAX` marks
    /// unreachable cells and walls.
    pub fn bfs_distances(&self, start: (usize, usize)) -> Vec<usize> {
        grid_distances(self.size, &self.layout, start)
    }

    /// A shortest 4-connected path of cells from `start` to `goal`, both included, or `None`
    /// when the goal is not reachable.
    pub fn shortest_path(
        &self,
        start: (usize, usize),
        goal: (usize, usize),
    ) -> Option<Vec<(usize, usize)>> {
        grid_path(self.size, &self.layout, start, goal)
    }
}

/// Breadth-first distances (in cells) over the free cells of an N×N `layout` (`[y*N+x]`,
/// 1 free) from `start`; `usize::MAX` marks unreachable cells and walls.
pub fn grid_distances(n: usize, layout: &[u8], start: (usize, usize)) -> Vec<usize> {
    bfs(n, layout, start).0
}

/// A shortest 4-connected path of free cells from `start` to `goal`, both included, or `None`
/// when the goal cannot be reached.
pub fn grid_path(
    n: usize,
    layout: &[u8],
    start: (usize, usize),
    goal: (usize, usize),
) -> Option<Vec<(usize, usize)>> {
    let (dist, parent) = bfs(n, layout, start);
    if goal.0 >= n || goal.1 >= n {
        return None;
    }
    let g = goal.1 * n + goal.0;
    if dist[g] == usize::MAX {
        return None;
    }
    let mut path = vec![goal];
    let mut i = g;
    while i != start.1 * n + start.0 {
        i = parent[i];
        path.push((i % n, i / n));
    }
    path.reverse();
    Some(path)
}

/// BFS over free cells from `start`, neighbours in a fixed order; returns distances and parents.
fn bfs(n: usize, layout: &[u8], start: (usize, usize)) -> (Vec<usize>, Vec<usize>) {
    let mut dist = vec![usize::MAX; n * n];
    let mut parent = vec![usize::MAX; n * n];
    let s = start.1 * n + start.0;
    if start.0 >= n || start.1 >= n || layout[s] == 0 {
        return (dist, parent);
    }
    dist[s] = 0;
    let mut queue = VecDeque::from([s]);
    while let Some(i) = queue.pop_front() {
        let (x, y) = ((i % n) as i64, (i / n) as i64);
        for (dx, dy) in NEIGHBOURS {
            let (nx, ny) = (x + dx, y + dy);
            if nx < 0 || ny < 0 || nx >= n as i64 || ny >= n as i64 {
                continue;
            }
            let j = ny as usize * n + nx as usize;
            if layout[j] == 1 && dist[j] == usize::MAX {
                dist[j] = dist[i] + 1;
                parent[j] = i;
                queue.push_back(j);
            }
        }
    }
    (dist, parent)
}

/// Places up to `config.max_rooms()` non-overlapping rooms with odd corners and sides, each
/// covering at most a quarter of the interior.
fn place_rooms(config: &MazeConfig, rng: &mut Rng) -> Vec<Room> {
    let n = config.size;
    let interior = (n - 2) * (n - 2);
    let mut rooms: Vec<Room> = Vec::new();
    for _ in 0..config.max_rooms() * 20 {
        if rooms.len() == config.max_rooms() {
            break;
        }
        let w = ROOM_SIDES[rng.below(ROOM_SIDES.len())];
        let h = ROOM_SIDES[rng.below(ROOM_SIDES.len())];
        if w * h * 4 > interior || w + 1 > n - 2 || h + 1 > n - 2 {
            continue;
        }
        let x0 = 1 + 2 * rng.below((n - 2 - w) / 2 + 1);
        let y0 = 1 + 2 * rng.below((n - 2 - h) / 2 + 1);
        let room = Room { x0, y0, w, h };
        if !rooms.iter().any(|r| r.overlaps(&room)) {
            rooms.push(room);
        }
    }
    rooms
}

/// Connects the odd-grid nodes (and the rooms, whose nodes start joined) with a randomized
/// Kruskal spanning tree, then opens a few more walls between nodes to make loops.
fn carve_maze(n: usize, rooms: &[Room], layout: &mut [u8], rng: &mut Rng) {
    let m = (n - 1) / 2;
    let node_cell = |i: usize, j: usize| (2 * i + 1, 2 * j + 1);
    let mut parent: Vec<usize> = (0..m * m).collect();
    for j in 0..m {
        for i in 0..m {
            let (x, y) = node_cell(i, j);
            layout[y * n + x] = 1;
            // Nodes of one room are already connected through its floor.
            if let Some(room) = rooms.iter().find(|r| r.contains(x, y)) {
                let (rx, ry) = ((room.x0 - 1) / 2, (room.y0 - 1) / 2);
                let (a, b) = (find(&mut parent, j * m + i), find(&mut parent, ry * m + rx));
                parent[a] = b;
            }
        }
    }
    // Edge (a, b, wall cell) between horizontally or vertically adjacent nodes.
    let mut edges = Vec::new();
    for j in 0..m {
        for i in 0..m {
            let (x, y) = node_cell(i, j);
            if i + 1 < m {
                edges.push((j * m + i, j * m + i + 1, y * n + x + 1));
            }
            if j + 1 < m {
                edges.push((j * m + i, (j + 1) * m + i, (y + 1) * n + x));
            }
        }
    }
    rng.shuffle(&mut edges);
    let mut closed = Vec::new();
    for &(a, b, wall) in &edges {
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        if ra != rb {
            parent[ra] = rb;
            layout[wall] = 1;
        } else if layout[wall] == 0 {
            closed.push(wall);
        }
    }
    for wall in closed {
        if rng.chance(LOOP_PROBABILITY) {
            layout[wall] = 1;
        }
    }
}

/// Splits the maze into regions: one per room plus corridor regions grown from random corridor
/// seeds, by a multi-source BFS over free cells (then over walls, so every wall cell gets the
/// region of its nearest free cell). Returns per-cell region ids and the region count.
fn assign_regions(n: usize, rooms: &[Room], layout: &[u8], rng: &mut Rng) -> (Vec<u8>, usize) {
    const UNSET: u8 = u8::MAX;
    let mut region = vec![UNSET; n * n];
    let mut queue = VecDeque::new();
    for (r, room) in rooms.iter().enumerate() {
        for y in room.y0..room.y0 + room.h {
            for x in room.x0..room.x0 + room.w {
                region[y * n + x] = r as u8;
                queue.push_back(y * n + x);
            }
        }
    }
    let mut corridor: Vec<usize> = (0..n * n)
        .filter(|&i| layout[i] == 1 && region[i] == UNSET)
        .collect();
    let max_regions = WALL_LOOKS.len();
    let extra = (corridor.len() / 7)
        .max(2)
        .min(max_regions.saturating_sub(rooms.len()));
    rng.shuffle(&mut corridor);
    let mut n_regions = rooms.len();
    for &i in corridor.iter().take(extra) {
        region[i] = n_regions as u8;
        queue.push_back(i);
        n_regions += 1;
    }
    if n_regions == 0 {
        // No room and no corridor seed is impossible for valid sizes; keep one region anyway.
        n_regions = 1;
    }
    for pass_walls in [false, true] {
        if pass_walls {
            queue = (0..n * n).filter(|&i| region[i] != UNSET).collect();
        }
        while let Some(i) = queue.pop_front() {
            let (x, y) = ((i % n) as i64, (i / n) as i64);
            for (dx, dy) in NEIGHBOURS {
                let (nx, ny) = (x + dx, y + dy);
                if nx < 0 || ny < 0 || nx >= n as i64 || ny >= n as i64 {
                    continue;
                }
                let j = ny as usize * n + nx as usize;
                let passable = pass_walls || layout[j] == 1;
                if passable && region[j] == UNSET {
                    region[j] = region[i];
                    queue.push_back(j);
                }
            }
        }
    }
    for r in region.iter_mut().filter(|r| **r == UNSET) {
        *r = 0;
    }
    (region, n_regions)
}
