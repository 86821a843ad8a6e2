//! Episode files: write → read is exact for every key, the builder's alignment and agent-centric
//! vectors match hand computations, and Memory-Maze-style files (no metadata, float32) load.

mod episode_support;

use std::io::Write;
use std::sync::Arc;

use episode_support::{cycling_policy, meta_for, scratch_dir, FakeEnv};
use scenes::episode::npy::{self, DType};
use scenes::episode::{read_episode, write_episode, Episode, EpisodeBuilder, Source, Track};
use scenes::record::record_episode;
use scenes::{Env, Frame, MazeInfo, Pose, SceneKind, StepInfo, StepOutput};

fn fake_episode(scene: SceneKind, seed: u64, steps: usize) -> Episode {
    let mut env = FakeEnv::new(scene, 16);
    let meta = meta_for(&env, seed, 5);
    let mut act = cycling_policy(seed, env.action_names().len());
    record_episode(&mut env, &mut act, meta, seed, steps, &mut || {})
}

#[test]
fn episode_round_trip_is_exact_for_maze_and_voxel() {
    let dir = scratch_dir("episode_round_trip");
    for (scene, seed) in [(SceneKind::Maze, 3), (SceneKind::Voxel, 4)] {
        let ep = fake_episode(scene, seed, 20);
        assert_eq!(ep.len(), 21);
        let path = dir.join(format!("{}.npz", scene.name()));
        write_episode(&path, &ep).unwrap();
        let back = read_episode(&path).unwrap();
        assert_eq!(back.source, Source::Memworld);
        assert_eq!(back, ep, "{scene:?} episode changed on the round trip");
        // The writer is deterministic: the same episode gives the same bytes.
        let again = dir.join(format!("{}-again.npz", scene.name()));
        write_episode(&again, &back).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            std::fs::read(&again).unwrap()
        );
        assert!(!dir.join(format!("{}.npz.tmp", scene.name())).exists());
    }
}

#[test]
fn builder_aligns_actions_and_computes_agent_centric_vectors() {
    let ep = fake_episode(SceneKind::Maze, 9, 12);
    let a = ep.n_actions();
    assert!(
        ep.action[..a].iter().all(|&v| v == 0.0),
        "action[0] must be the reset no-op"
    );
    assert_eq!(ep.reset.iter().filter(|&&r| r).count(), 1);
    assert!(ep.reset[0]);
    assert_eq!(ep.reward[0], 0.0);
    // Re-simulating the recorded actions reproduces every frame: image[t] came from action[t].
    let mut env = FakeEnv::new(SceneKind::Maze, 16);
    assert_eq!(env.reset(9).frame.rgb, ep.frame(0));
    for t in 1..ep.len() {
        let action = ep.action_index(t).expect("one-hot after t = 0");
        assert_eq!(env.step(action).frame.rgb, ep.frame(t), "frame {t}");
    }

    // Heading +x: a target one cell ahead is (right 0, forward 1); one cell toward -y is to the
    // right (1, 0); heading +y turns (1, 0) in the world into (right 1, forward 0).
    let out = |yaw: f64, targets: Vec<[f64; 2]>| StepOutput {
        frame: Frame::new(4, 4),
        reward: 0.0,
        done: false,
        truncated: false,
        pose: Pose {
            position: [2.0, 2.0, 0.0],
            yaw,
        },
        info: StepInfo::Maze(MazeInfo {
            size: 3,
            layout: Arc::new(vec![1; 9]),
            targets_pos: targets,
            target: 1,
            target_color: [1.0, 0.0, 0.0],
        }),
    };
    let mut meta = meta_for(&FakeEnv::new(SceneKind::Maze, 4), 0, 3);
    meta.resolution = 4;
    let mut b = EpisodeBuilder::new(meta);
    b.push_reset(&out(0.0, vec![[3.0, 2.0], [2.0, 1.0]]));
    b.push_step(
        2,
        &out(std::f64::consts::FRAC_PI_2, vec![[3.0, 2.0], [2.0, 1.0]]),
    );
    let ep = b.finish();
    let Track::Maze(m) = &ep.track else {
        panic!("maze track")
    };
    let close =
        |got: &[f64], want: &[f64]| got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-12);
    assert!(
        close(&m.targets_vec[..4], &[0.0, 1.0, 1.0, 0.0]),
        "{:?}",
        m.targets_vec
    );
    assert!(
        close(&m.targets_vec[4..], &[1.0, 0.0, 0.0, -1.0]),
        "{:?}",
        m.targets_vec
    );
    assert!(close(&m.target_vec, &[1.0, 0.0, 0.0, -1.0]));
    assert!(close(&m.agent_dir, &[1.0, 0.0, 0.0, 1.0]));
    assert_eq!(ep.action_index(1), Some(2));
    assert_eq!(ep.meta.steps, 1);
}

/// Writes an `.npz` the way `numpy.savez_compressed` would, from (key, dtype, shape, raw data).
fn write_npz(path: &std::path::Path, entries: &[(&str, DType, Vec<usize>, Vec<u8>)]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (key, dtype, shape, data) in entries {
        zip.start_file(format!("{key}.npy"), options).unwrap();
        npy::write_header(&mut zip, *dtype, shape).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap();
}

fn f32_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|&x| (x as f32).to_le_bytes()).collect()
}

#[test]
fn memory_maze_file_without_metadata_and_float32_loads() {
    let ep = fake_episode(SceneKind::Maze, 5, 7);
    let Track::Maze(m) = &ep.track else {
        panic!("maze track")
    };
    let (t, k, n) = (ep.len(), m.targets, ep.meta.size);
    let bools = |v: &[bool]| v.iter().map(|&b| b as u8).collect::<Vec<u8>>();
    let path = scratch_dir("memory_maze_style").join("mm.npz");
    write_npz(
        &path,
        &[
            ("image", DType::U8, vec![t, 16, 16, 3], ep.image.clone()),
            ("action", DType::F32, vec![t, 6], f32_bytes(&ep.action)),
            ("reward", DType::F32, vec![t], f32_bytes(&ep.reward)),
            ("terminal", DType::Bool, vec![t], bools(&ep.terminal)),
            ("reset", DType::Bool, vec![t], bools(&ep.reset)),
            (
                "maze_layout",
                DType::U8,
                vec![t, n, n],
                m.maze_layout.clone(),
            ),
            ("agent_pos", DType::F32, vec![t, 2], f32_bytes(&m.agent_pos)),
            ("agent_dir", DType::F32, vec![t, 2], f32_bytes(&m.agent_dir)),
            (
                "targets_pos",
                DType::F32,
                vec![t, k, 2],
                f32_bytes(&m.targets_pos),
            ),
            (
                "targets_vec",
                DType::F32,
                vec![t, k, 2],
                f32_bytes(&m.targets_vec),
            ),
            (
                "target_pos",
                DType::F32,
                vec![t, 2],
                f32_bytes(&m.target_pos),
            ),
            (
                "target_vec",
                DType::F32,
                vec![t, 2],
                f32_bytes(&m.target_vec),
            ),
            (
                "target_color",
                DType::F32,
                vec![t, 3],
                f32_bytes(&m.target_color),
            ),
        ],
    );
    let back = read_episode(&path).unwrap();
    assert_eq!(back.source, Source::MemoryMaze);
    assert_eq!(
        (
            back.meta.scene,
            back.meta.size,
            back.meta.resolution,
            back.meta.steps
        ),
        (SceneKind::Maze, n, 16, t - 1)
    );
    assert_eq!(back.meta.seed, None);
    assert_eq!(back.image, ep.image);
    assert_eq!(
        back.action, ep.action,
        "one-hot values are exact in float32"
    );
    let Track::Maze(bm) = &back.track else {
        panic!("maze track")
    };
    for (got, want) in bm.agent_pos.iter().zip(&m.agent_pos) {
        assert_eq!(*got, *want as f32 as f64);
    }
    assert_eq!(bm.maze_layout, m.maze_layout);
    assert_eq!(back.action_counts(), ep.action_counts());
}
