//! The parallel recorder: deterministic whatever the worker count, resumable after an
//! interruption, and refusing to mix settings in one directory.

mod episode_support;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use episode_support::{cycling_policy, scratch_dir, FakeEnv};
use scenes::episode::read_episode;
use scenes::record::{
    episode_path, episode_seed, record_episodes_with, ActFn, RecordConfig, RecordError,
    RecordSummary,
};
use scenes::{Env, SceneKind};

fn config(out_dir: &Path, episodes: usize, steps: usize, workers: usize) -> RecordConfig {
    RecordConfig {
        scene: SceneKind::Maze,
        size: 5,
        resolution: 16,
        episodes,
        steps,
        seed: 42,
        policy: "cycle".into(),
        out_dir: out_dir.to_path_buf(),
        workers,
    }
}

fn run(cfg: &RecordConfig, terminal_after: Option<usize>) -> Result<RecordSummary, RecordError> {
    let last = AtomicU64::new(0);
    let make_env = || -> Result<Box<dyn Env>, RecordError> {
        let mut env = FakeEnv::new(SceneKind::Maze, 16);
        env.terminal_after = terminal_after;
        Ok(Box::new(env))
    };
    let make_policy =
        |seed| -> Result<ActFn, RecordError> { Ok(Box::new(cycling_policy(seed, 6))) };
    let result = record_episodes_with(cfg, make_env, make_policy, |done, total| {
        assert!(done <= total);
        assert!(
            done >= last.swap(done, Ordering::Relaxed),
            "progress goes forward"
        );
    });
    if result.is_ok() {
        let total = (cfg.episodes * (cfg.steps + 1)) as u64;
        assert_eq!(
            last.load(Ordering::Relaxed),
            total,
            "progress ends at the total"
        );
    }
    result
}

fn files(cfg: &RecordConfig) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    (0..cfg.episodes)
        .map(|i| {
            let p = episode_path(&cfg.out_dir, i, episode_seed(cfg.seed, i));
            let bytes = std::fs::read(&p).unwrap_or_default();
            (p, bytes)
        })
        .collect()
}

#[test]
fn worker_count_does_not_change_the_files() {
    let one = config(&scratch_dir("record_workers_1"), 5, 15, 1);
    let three = config(&scratch_dir("record_workers_3"), 5, 15, 3);
    assert_eq!(run(&one, None).unwrap().recorded, 5);
    assert_eq!(run(&three, None).unwrap().recorded, 5);
    let (a, b) = (files(&one), files(&three));
    for ((pa, ba), (_, bb)) in a.iter().zip(&b) {
        assert!(!ba.is_empty(), "{} missing", pa.display());
        assert_eq!(ba, bb, "{} differs between 1 and 3 workers", pa.display());
    }
    // Episodes get distinct seeds, and the files name them.
    let seeds: std::collections::HashSet<u64> = (0..5).map(|i| episode_seed(42, i)).collect();
    assert_eq!(seeds.len(), 5);
    let ep = read_episode(&a[2].0).unwrap();
    assert_eq!(ep.meta.seed, Some(episode_seed(42, 2)));
    assert_eq!(ep.meta.steps, 15);
    assert!(a[2]
        .0
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("ep00002_"));
}

#[test]
fn interrupted_run_resumes_keeping_finished_episodes() {
    let cfg = config(&scratch_dir("record_resume"), 4, 12, 2);
    run(&cfg, None).unwrap();
    let before = files(&cfg);
    // Simulate a crash: episode 2 never finished, and a half-written temp file was left behind.
    std::fs::remove_file(&before[2].0).unwrap();
    let tmp = cfg.out_dir.join(format!(
        "{}.tmp",
        before[2].0.file_name().unwrap().to_str().unwrap()
    ));
    std::fs::write(&tmp, &before[2].1[..100]).unwrap();
    let modified: Vec<_> = [0, 1, 3]
        .iter()
        .map(|&i| std::fs::metadata(&before[i].0).unwrap().modified().unwrap())
        .collect();

    let summary = run(&cfg, None).unwrap();
    assert_eq!(
        summary,
        RecordSummary {
            recorded: 1,
            skipped: 3,
            replaced: 0,
            removed_tmp: 1,
            frames_recorded: 13
        }
    );
    assert!(!tmp.exists());
    let after = files(&cfg);
    assert_eq!(
        after, before,
        "kept files unchanged and the missing one recreated byte for byte"
    );
    for (k, &i) in [0, 1, 3].iter().enumerate() {
        assert_eq!(
            std::fs::metadata(&after[i].0).unwrap().modified().unwrap(),
            modified[k],
            "episode {i} was rewritten"
        );
    }

    // A damaged finished file is recorded again.
    std::fs::write(&before[1].0, &before[1].1[..before[1].1.len() / 2]).unwrap();
    let summary = run(&cfg, None).unwrap();
    assert_eq!(
        (summary.recorded, summary.replaced, summary.skipped),
        (1, 1, 3)
    );
    assert_eq!(files(&cfg), before);
}

#[test]
fn rerun_with_other_settings_is_refused() {
    let dir = scratch_dir("record_mismatch");
    run(&config(&dir, 2, 10, 1), None).unwrap();
    let err = run(&config(&dir, 2, 20, 1), None).unwrap_err();
    assert!(matches!(err, RecordError::Mismatch { .. }), "{err}");
    assert!(err.to_string().contains("steps 10 instead of 20"), "{err}");
}

#[test]
fn episodes_the_task_ends_are_shorter_and_still_resume() {
    let cfg = config(&scratch_dir("record_terminal"), 2, 30, 2);
    let summary = run(&cfg, Some(7)).unwrap();
    assert_eq!(summary.frames_recorded, 2 * 8);
    let ep = read_episode(&files(&cfg)[0].0).unwrap();
    assert_eq!(ep.len(), 8);
    assert_eq!(ep.terminal.iter().filter(|&&t| t).count(), 1);
    assert!(ep.terminal[7]);
    assert_eq!(run(&cfg, Some(7)).unwrap().skipped, 2);
}

/// Records with the real scenes and scripted policies (by name, as the CLI does), then replays
/// the stored actions from the stored seed: every frame and pose must come back exactly.
#[test]
fn recorded_maze_and_voxel_actions_reproduce_their_frames() {
    use scenes::episode::Track;
    use scenes::factory::{default_size, make_env};
    use scenes::record::record_episodes;

    for (scene, size, policy) in [
        (SceneKind::Maze, 9, "explore"),
        (SceneKind::Voxel, default_size(SceneKind::Voxel), "random"),
    ] {
        let dir = scratch_dir(&format!("record_replay_{}", scene.name()));
        let cfg = RecordConfig {
            scene,
            size,
            resolution: 64,
            episodes: 2,
            steps: 40,
            seed: 11,
            policy: policy.into(),
            out_dir: dir.clone(),
            workers: 2,
        };
        let summary = record_episodes(&cfg, |_, _| {}).unwrap();
        assert_eq!(summary.recorded, 2);
        let ep = read_episode(&episode_path(&dir, 1, episode_seed(11, 1))).unwrap();
        assert_eq!(ep.len(), 41);
        assert!(
            ep.action[..ep.n_actions()].iter().all(|&v| v == 0.0),
            "action[0] is the reset no-op"
        );
        let mut env = make_env(scene, size, 64).unwrap();
        let first = env.reset(ep.meta.seed.unwrap());
        assert_eq!(first.frame.rgb, ep.frame(0));
        let mut moved = 0;
        for t in 1..ep.len() {
            let out = env.step(ep.action_index(t).expect("one-hot"));
            assert_eq!(
                out.frame.rgb,
                ep.frame(t),
                "{scene:?}: image[{t}] is not what action[{t}] produced"
            );
            assert_eq!(out.reward, ep.reward[t]);
            match &ep.track {
                Track::Maze(m) => {
                    assert_eq!(&m.agent_pos[2 * t..2 * t + 2], &out.pose.position[..2])
                }
                Track::Voxel(v) => {
                    assert_eq!(&v.agent_pos[3 * t..3 * t + 3], &out.pose.position[..])
                }
            }
            moved += (ep.frame(t) != ep.frame(t - 1)) as usize;
        }
        assert!(
            moved > 10,
            "{scene:?}: the policy should change the view ({moved} changes)"
        );
    }
}
