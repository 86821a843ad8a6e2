//! Scripted policies in the maze: exploration covers at least 80% of the reachable cells of a
//! 9×9 maze within 1000 steps; random actions persist and cover the action set; the policy
//! factory rejects unknown names; retrieval and reasoning trajectories have the structure the
//! evaluation protocol needs.

use scenes::maze::{MazeConfig, MazeEnv, ACTIONS};
use scenes::policy::{
    by_name, mirror_action, reasoning_trajectory, retrieval_trajectory, ExplorePolicy, Policy,
    RandomPolicy,
};
use scenes::{Env, SceneError, SceneKind};

/// Cells reachable from the spawn, by an independent flood fill over the layout.
fn reachable_cells(n: usize, layout: &[u8], start: usize) -> Vec<bool> {
    let mut seen = vec![false; n * n];
    let mut stack = vec![start];
    seen[start] = true;
    while let Some(i) = stack.pop() {
        for j in [i + 1, i - 1, i + n, i - n] {
            if layout[j] == 1 && !seen[j] {
                seen[j] = true;
                stack.push(j);
            }
        }
    }
    seen
}

#[test]
fn exploration_covers_most_of_a_9x9_maze_in_1000_steps() {
    let mut env = MazeEnv::new(MazeConfig::default());
    for seed in 0..6u64 {
        let mut policy = ExplorePolicy::new(seed);
        let mut out = env.reset(seed);
        let n = env.level().size;
        let cell = |p: [f64; 3]| p[1].floor() as usize * n + p[0].floor() as usize;
        let reachable = reachable_cells(n, &env.level().layout, cell(out.pose.position));
        let mut visited = vec![false; n * n];
        visited[cell(out.pose.position)] = true;
        for _ in 0..1000 {
            out = env.step(policy.act(&out));
            visited[cell(out.pose.position)] = true;
        }
        let total = reachable.iter().filter(|&&r| r).count();
        let covered = (0..n * n).filter(|&i| reachable[i] && visited[i]).count();
        assert!(
            covered * 10 >= total * 8,
            "seed {seed}: exploration visited {covered} of {total} reachable cells"
        );
    }
}

#[test]
fn random_policy_persists_and_uses_every_action() {
    let mut env = MazeEnv::new(MazeConfig::default());
    let out = env.reset(0);
    let mut policy = RandomPolicy::new(ACTIONS.len(), 3);
    let actions: Vec<usize> = (0..2000).map(|_| policy.act(&out)).collect();
    let mut counts = [0usize; 6];
    actions.iter().for_each(|&a| counts[a] += 1);
    assert!(
        counts.iter().all(|&c| c > 150),
        "action counts {counts:?} are not roughly uniform"
    );
    let repeats = actions.windows(2).filter(|w| w[0] == w[1]).count();
    // Independent uniform draws repeat 1/6 of the time; holding runs of 1..=8 repeats far more.
    assert!(repeats > 1000, "only {repeats} repeats: no persistence");
    policy.reset(3);
    let again: Vec<usize> = (0..2000).map(|_| policy.act(&out)).collect();
    assert_eq!(
        actions, again,
        "reset with the same seed must replay the same actions"
    );
    let mut three = RandomPolicy::new(3, 1);
    assert!((0..500).all(|_| three.act(&out) < 3));
}

#[test]
fn policy_factory_builds_known_policies_and_rejects_others() {
    assert_eq!(
        by_name("explore", SceneKind::Maze, 6, 0).unwrap().name(),
        "explore"
    );
    assert_eq!(
        by_name("random", SceneKind::Voxel, 5, 0).unwrap().name(),
        "random"
    );
    assert_eq!(
        by_name("explore", SceneKind::Voxel, 5, 0).unwrap().name(),
        "explore"
    );
    let err = by_name("wander", SceneKind::Maze, 6, 0)
        .err()
        .expect("unknown name must fail");
    assert_eq!(err, SceneError::UnknownPolicy("wander".into()));
    assert!(err.to_string().contains("'wander'") && err.to_string().contains("explore"));
    assert!(matches!(
        by_name("explore", SceneKind::Maze, 5, 0),
        Err(SceneError::PolicyActions { .. })
    ));
    assert!(matches!(
        by_name("random", SceneKind::Maze, 0, 0),
        Err(SceneError::PolicyActions { .. })
    ));
}

#[test]
fn retrieval_trajectory_walks_the_context_back_in_reverse() {
    let mut env = MazeEnv::new(MazeConfig::default());
    let context = 60;
    let traj = retrieval_trajectory(&mut env, 11, context);
    assert_eq!(
        (traj.len(), traj.actions.len(), traj.frames.len()),
        (2 * context, 2 * context, 2 * context)
    );
    assert_eq!(traj.actions[0], 0, "the reset frame has the no-op action");
    for k in 0..context {
        let (a, b) = (context - 1 - k, context + k);
        assert_eq!(traj.poses[b], traj.poses[a], "pose {b} is not pose {a}");
        assert!(
            traj.frames[b] == traj.frames[a],
            "frame {b} is not frame {a}"
        );
        if k > 0 {
            assert_eq!(traj.actions[b], mirror_action(traj.actions[a + 1]));
        }
    }
    // The context is a real run: frames are renders at the poses, and the path moves.
    let mut replay = MazeEnv::new(MazeConfig::default());
    let first = replay.reset(11);
    assert!(first.frame == traj.frames[0]);
    let mut travelled = 0.0;
    for t in 1..context {
        let out = replay.step(traj.actions[t]);
        assert_eq!(
            out.pose, traj.poses[t],
            "context actions do not reproduce the poses"
        );
        assert!(out.frame == traj.frames[t]);
        let (p, q) = (traj.poses[t].position, traj.poses[t - 1].position);
        travelled += (p[0] - q[0]).hypot(p[1] - q[1]);
    }
    assert!(
        travelled > 3.0,
        "the context barely moves ({travelled} cells)"
    );
    assert_eq!(
        env.pose(),
        traj.poses[0],
        "env is left at the trajectory's last pose"
    );
}

#[test]
fn reasoning_trajectory_continues_from_the_last_context_pose() {
    let mut env = MazeEnv::new(MazeConfig::default());
    let (context, generate) = (50, 80);
    let traj = reasoning_trajectory(&mut env, 5, context, generate);
    assert_eq!(traj.len(), context + generate);
    let retrieval = retrieval_trajectory(&mut MazeEnv::new(MazeConfig::default()), 5, context);
    assert_eq!(
        &traj.poses[..context],
        &retrieval.poses[..context],
        "the context depends on the task"
    );
    // Replaying all actions from the reset reproduces every pose and frame.
    let mut replay = MazeEnv::new(MazeConfig::default());
    replay.reset(5);
    for t in 1..traj.len() {
        let out = replay.step(traj.actions[t]);
        assert_eq!(out.pose, traj.poses[t], "step {t}");
        assert!(out.frame == traj.frames[t], "frame {t}");
    }
    // The continuation is not the context replayed: it reaches poses the context never had.
    let new = traj.poses[context..]
        .iter()
        .filter(|p| {
            traj.poses[..context]
                .iter()
                .all(|q| (p.position[0] - q.position[0]).hypot(p.position[1] - q.position[1]) > 0.3)
        })
        .count();
    assert!(
        new > 10,
        "the continuation stays on the context path ({new} new poses)"
    );
}
