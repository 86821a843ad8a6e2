//! The evaluation episodes (SPEC §5.6) against independent constructions: retrieval's ground
//! truth is the context reversed, reasoning's is what the scene renders when the recorded
//! actions are replayed in a fresh environment, episodes cut from files equal the file's
//! frames, and evaluation levels never come from the training data's seed schemes.

use std::path::{Path, PathBuf};

use model::world::eval::{
    is_held_out_seed, level_seed, EpisodeSource, EvalError, EvalSettings, Protocol,
};
use model::world::frames::maze_pose_features;
use model::world::WorldModelConfig;
use scenes::episode::{write_episode, EpisodeMeta, FORMAT_VERSION};
use scenes::maze::{MazeConfig, MazeEnv};
use scenes::policy::{ExplorePolicy, Policy};
use scenes::record::{episode_seed, record_episode};
use scenes::voxel::{VoxelConfig, VoxelEnv};
use scenes::{Env, SceneKind};

fn settings(protocol: Protocol, context: usize, generate: usize, episodes: usize) -> EvalSettings {
    EvalSettings {
        protocol,
        context,
        generate,
        episodes,
        seed: 7,
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("memworld-eval-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn retrieval_ground_truth_is_the_context_walked_back() {
    let s = settings(Protocol::Retrieval, 6, 6, 2);
    let src = EpisodeSource::scene(SceneKind::Maze, 9, 64, Protocol::Retrieval).unwrap();
    let e = src.episode(&s, 1).unwrap();
    assert_eq!(e.frames.len(), 12);
    assert_eq!(
        e.origin,
        format!("maze 9x9 level {}", level_seed(7, 1).unwrap())
    );
    let poses = e.poses.as_ref().unwrap();
    for k in 0..6 {
        assert_eq!(e.truth()[k], e.frames[5 - k], "frame {k}");
        assert_eq!(poses[6 + k], poses[5 - k]);
    }
    assert_eq!(e.actions[6], 0, "the turn-around has no action");
    // The context is an exploration that moved: not every context frame is the same.
    assert!(e.frames[..6].windows(2).any(|w| w[0] != w[1]));
}

#[test]
fn reasoning_ground_truth_is_what_the_scene_renders() {
    let s = settings(Protocol::Reasoning, 5, 7, 1);
    let src = EpisodeSource::scene(SceneKind::Maze, 9, 64, Protocol::Reasoning).unwrap();
    let e = src.episode(&s, 0).unwrap();
    assert_eq!(e.frames.len(), 12);
    // Replay the recorded actions in a fresh environment of the same level.
    let mut env = MazeEnv::new(MazeConfig::new(9).unwrap().with_episode_steps(100).unwrap());
    let mut out = env.reset(level_seed(7, 0).unwrap());
    for t in 0..12 {
        if t > 0 {
            out = env.step(e.actions[t]);
        }
        assert_eq!(out.frame, e.frames[t], "frame {t}");
        let p = out.pose;
        let want = maze_pose_features([p.position[0], p.position[1]], p.heading(), 9);
        assert_eq!(e.poses.as_ref().unwrap()[t], want, "pose {t}");
    }
    // The same seed gives the retrieval run the same context.
    let r = EpisodeSource::scene(SceneKind::Maze, 9, 64, Protocol::Retrieval)
        .unwrap()
        .episode(&settings(Protocol::Retrieval, 5, 5, 1), 0)
        .unwrap();
    assert_eq!(r.frames[..5], e.frames[..5]);
}

#[test]
fn voxel_reasoning_replays_and_voxel_retrieval_is_refused() {
    let s = settings(Protocol::Reasoning, 3, 3, 1);
    let src = EpisodeSource::scene(SceneKind::Voxel, 0, 64, Protocol::Reasoning).unwrap();
    let e = src.episode(&s, 0).unwrap();
    assert!(e.poses.is_none());
    let mut env = VoxelEnv::new(VoxelConfig::default()).unwrap();
    let mut out = env.reset(level_seed(7, 0).unwrap());
    for t in 0..6 {
        if t > 0 {
            out = env.step(e.actions[t]);
        }
        assert_eq!(out.frame, e.frames[t], "frame {t}");
    }
    assert!(matches!(
        EpisodeSource::scene(SceneKind::Voxel, 0, 64, Protocol::Retrieval),
        Err(EvalError::Settings(_))
    ));
}

/// Records `n` maze episodes of `steps` steps into `dir`.
fn record(dir: &Path, n: usize, steps: usize) {
    for i in 0..n {
        let mut env = MazeEnv::new(MazeConfig::new(9).unwrap());
        let mut policy = ExplorePolicy::new(i as u64);
        let meta = EpisodeMeta {
            format_version: FORMAT_VERSION,
            scene: SceneKind::Maze,
            seed: Some(i as u64),
            size: 9,
            resolution: 64,
            action_names: env.action_names().iter().map(|s| s.to_string()).collect(),
            policy: Some("explore".into()),
            steps,
        };
        let ep = record_episode(
            &mut env,
            &mut |o| policy.act(o),
            meta,
            i as u64,
            steps,
            &mut || {},
        );
        write_episode(&dir.join(format!("ep{i:05}.npz")), &ep).unwrap();
    }
}

#[test]
fn episodes_cut_from_files_equal_the_files() {
    let dir = scratch("files");
    record(&dir, 2, 12);
    let file = scenes::episode::read_episode(&dir.join("ep00001.npz")).unwrap();
    let scenes::episode::Track::Maze(track) = &file.track else {
        panic!("a maze episode")
    };
    let pose = |t: usize| {
        maze_pose_features(
            [track.agent_pos[2 * t], track.agent_pos[2 * t + 1]],
            [track.agent_dir[2 * t], track.agent_dir[2 * t + 1]],
            9,
        )
    };

    // Reasoning: 5 + 4 consecutive frames of the file, from some start.
    let s = settings(Protocol::Reasoning, 5, 4, 2);
    let e = EpisodeSource::files(&dir, &s)
        .unwrap()
        .episode(&s, 1)
        .unwrap();
    let start = (0..=13 - 9)
        .find(|&t| e.frames[0].rgb == file.frame(t) && e.poses.as_ref().unwrap()[0] == pose(t))
        .expect("the episode starts at a frame of the file");
    assert!(e.origin.starts_with("ep00001.npz"), "{}", e.origin);
    for k in 0..9 {
        assert_eq!(e.frames[k].rgb, file.frame(start + k), "frame {k}");
        assert_eq!(e.actions[k], file.action_index(start + k).unwrap_or(0));
        assert_eq!(e.poses.as_ref().unwrap()[k], pose(start + k));
    }

    // Retrieval: the context, then the context reversed.
    let s = settings(Protocol::Retrieval, 6, 6, 2);
    let e = EpisodeSource::files(&dir, &s)
        .unwrap()
        .episode(&s, 0)
        .unwrap();
    for k in 0..6 {
        assert_eq!(e.truth()[k], e.frames[5 - k]);
        assert_eq!(
            e.poses.as_ref().unwrap()[6 + k],
            e.poses.as_ref().unwrap()[5 - k]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn short_or_missing_episode_files_are_clear_errors() {
    let dir = scratch("short");
    record(&dir, 2, 12);
    let err = EpisodeSource::files(&dir, &settings(Protocol::Reasoning, 10, 10, 2)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, EvalError::EpisodeFile { .. }), "{msg}");
    assert!(
        msg.contains("ep00000.npz") && msg.contains("has 13 frames"),
        "{msg}"
    );
    let err = EpisodeSource::files(&dir, &settings(Protocol::Reasoning, 2, 2, 3)).unwrap_err();
    assert!(matches!(err, EvalError::EpisodeDir { .. }), "{err}");
    assert!(err.to_string().contains("2 episode file"), "{err}");
    assert!(EpisodeSource::files(
        &dir.join("nothing"),
        &settings(Protocol::Reasoning, 2, 2, 1)
    )
    .is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn models_that_do_not_fit_the_episodes_are_refused() {
    let maze = EpisodeSource::scene(SceneKind::Maze, 9, 64, Protocol::Retrieval).unwrap();
    maze.check_model(&WorldModelConfig::tiny()).unwrap();
    // voxel-small's layout embeds 5 actions; the maze has 6.
    let voxel_model = WorldModelConfig::tiny_variant("voxel-small").unwrap();
    let err = maze.check_model(&voxel_model).unwrap_err();
    assert!(err.to_string().contains("embeds only 5"), "{err}");
    // A pose-conditioned model cannot be evaluated in the voxel world.
    let voxel = EpisodeSource::scene(SceneKind::Voxel, 0, 64, Protocol::Reasoning).unwrap();
    let err = voxel.check_model(&WorldModelConfig::tiny()).unwrap_err();
    assert!(err.to_string().contains("pose-conditioned"), "{err}");
    // 48 does not divide 64.
    let mut odd = WorldModelConfig::tiny();
    odd.resolution = 48;
    assert!(maze.check_model(&odd).is_err());
}

#[test]
fn evaluation_levels_are_held_out_from_the_training_seed_schemes() {
    for e in 0..1000 {
        assert!(is_held_out_seed(level_seed(0, e).unwrap()));
    }
    // `memworld record` draws episode seeds from its master seed; none lands in the range.
    for master in 0..16 {
        for i in 0..4096 {
            let s = episode_seed(master, i);
            assert!(
                !is_held_out_seed(s),
                "record --seed {master} episode {i}: {s}"
            );
        }
    }
}
