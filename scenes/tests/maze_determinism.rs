//! Maze scene determinism and level structure: the same seed gives byte-identical frames and
//! poses; different seeds give different levels; every level is a closed, connected N×N maze
//! with rooms, regions and the right number of targets; invalid configs are rejected.

use scenes::maze::{MazeConfig, MazeEnv, ACTIONS};
use scenes::policy::{ExplorePolicy, Policy, RandomPolicy};
use scenes::{Env, Frame, Pose, SceneError};

fn run(seed: u64, steps: usize, random: bool) -> (Vec<Frame>, Vec<Pose>, Vec<f64>) {
    let mut env = MazeEnv::new(MazeConfig::default());
    let mut policy: Box<dyn Policy> = if random {
        Box::new(RandomPolicy::new(ACTIONS.len(), seed))
    } else {
        Box::new(ExplorePolicy::new(seed))
    };
    let mut out = env.reset(seed);
    let (mut frames, mut poses, mut rewards) = (vec![out.frame.clone()], vec![out.pose], vec![0.0]);
    for _ in 0..steps {
        out = env.step(policy.act(&out));
        frames.push(out.frame.clone());
        poses.push(out.pose);
        rewards.push(out.reward);
    }
    (frames, poses, rewards)
}

#[test]
fn same_seed_gives_identical_frames_and_poses() {
    for random in [false, true] {
        let a = run(42, 300, random);
        let b = run(42, 300, random);
        assert_eq!(a.0.len(), 301);
        for t in 0..a.0.len() {
            assert!(
                a.0[t] == b.0[t],
                "frame {t} differs between two runs of one seed"
            );
            assert_eq!(
                a.1[t].position.map(f64::to_bits),
                b.1[t].position.map(f64::to_bits),
                "pose {t}"
            );
            assert_eq!(a.1[t].yaw.to_bits(), b.1[t].yaw.to_bits(), "yaw {t}");
        }
        assert_eq!(a.2, b.2);
        // The run must actually move, or the comparison above proves little.
        let moved =
            a.1.iter()
                .any(|p| (p.position[0] - a.1[0].position[0]).abs() > 1.0);
        assert!(moved, "the agent never left its start area");
    }
}

#[test]
fn different_seeds_give_different_levels() {
    let mut env = MazeEnv::new(MazeConfig::default());
    let mut layouts = Vec::new();
    for seed in 0..8u64 {
        let out = env.reset(seed);
        layouts.push((
            env.level().layout.as_ref().clone(),
            out.frame,
            env.level().objects.clone(),
        ));
    }
    for i in 0..layouts.len() {
        for j in i + 1..layouts.len() {
            assert_ne!(
                layouts[i].0, layouts[j].0,
                "seeds {i} and {j} share a layout"
            );
            assert!(
                layouts[i].1 != layouts[j].1,
                "seeds {i} and {j} share a first frame"
            );
        }
    }
}

/// Free cells reachable from the first free cell by 4-neighbour flood fill (independent of the
/// crate's BFS).
fn flood(n: usize, layout: &[u8]) -> usize {
    let start = layout.iter().position(|&c| c == 1).expect("a free cell");
    let mut seen = vec![false; n * n];
    let mut stack = vec![start];
    seen[start] = true;
    let mut count = 0;
    while let Some(i) = stack.pop() {
        count += 1;
        let (x, y) = (i % n, i / n);
        let mut visit = |j: usize| {
            if layout[j] == 1 && !seen[j] {
                seen[j] = true;
                stack.push(j);
            }
        };
        if x > 0 {
            visit(i - 1)
        }
        if x + 1 < n {
            visit(i + 1)
        }
        if y > 0 {
            visit(i - n)
        }
        if y + 1 < n {
            visit(i + n)
        }
    }
    count
}

#[test]
fn levels_are_closed_connected_mazes_with_rooms_and_targets() {
    for (size, k) in [(9usize, 3usize), (11, 4), (13, 5), (15, 6)] {
        let config = MazeConfig::new(size).unwrap();
        assert_eq!(config.n_targets(), k);
        assert_eq!(config.steps(), 1000 * (k - 2));
        let mut env = MazeEnv::new(config);
        for seed in 0..6u64 {
            env.reset(seed);
            let level = env.level();
            let n = level.size;
            assert_eq!(n, size);
            assert_eq!(level.layout.len(), n * n);
            for i in 0..n {
                for cell in [i, (n - 1) * n + i, i * n, i * n + n - 1] {
                    assert_eq!(
                        level.layout[cell], 0,
                        "border cell {cell} is free (size {size}, seed {seed})"
                    );
                }
            }
            let free = level.layout.iter().filter(|&&c| c == 1).count();
            assert_eq!(
                flood(n, &level.layout),
                free,
                "maze {size} seed {seed} is not connected"
            );
            assert!(
                !level.rooms.is_empty(),
                "no room in maze {size} seed {seed}"
            );
            for room in &level.rooms {
                for y in room.y0..room.y0 + room.h {
                    for x in room.x0..room.x0 + room.w {
                        assert_eq!(level.layout[y * n + x], 1, "room cell ({x},{y}) is wall");
                    }
                }
            }
            assert!(level.n_regions() >= 3, "only {} regions", level.n_regions());
            assert_eq!(level.objects.len(), k);
            let mut cells: Vec<(i64, i64)> = level
                .objects
                .iter()
                .map(|o| (o.pos[0].floor() as i64, o.pos[1].floor() as i64))
                .collect();
            cells.push((
                level.spawn.position[0].floor() as i64,
                level.spawn.position[1].floor() as i64,
            ));
            for &(x, y) in &cells {
                assert!(
                    level.is_free_cell(x, y),
                    "object or spawn in a wall at ({x},{y})"
                );
            }
            cells.sort();
            cells.dedup();
            assert_eq!(
                cells.len(),
                k + 1,
                "objects and spawn must use distinct cells"
            );
            assert!(level.target < k);
        }
    }
}

#[test]
fn invalid_configs_are_rejected_with_typed_errors() {
    assert_eq!(MazeConfig::new(10), Err(SceneError::InvalidMazeSize(10)));
    assert_eq!(
        MazeConfig::new(9).unwrap().with_resolution(100),
        Err(SceneError::InvalidResolution(100))
    );
    assert_eq!(
        MazeConfig::new(9).unwrap().with_episode_steps(0),
        Err(SceneError::InvalidEpisodeSteps)
    );
    assert!(MazeEnv::try_new(MazeConfig {
        size: 7,
        resolution: 64,
        episode_steps: None
    })
    .is_err());
    assert!(MazeConfig::new(9).unwrap().to_owned() == MazeConfig::default());
}
