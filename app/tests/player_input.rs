//! Scripted-input checks of the player without a window: key events and a synthetic clock go
//! into the controller, orders go into a session around a test-pattern environment, and the
//! action stream, pause / single step / reset / new seed / scene switch, and the recorded
//! episode file (read back with the episode reader) are checked against the script.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;
use memworld::player::input::{resolve_action, Controller, Key, Order};
use memworld::player::record::RecordMeta;
use memworld::player::sim::{
    EnvFactory, FrameSet, PaneEnv, Session, SimEvent, SimInput, SimThread,
};
use scenes::episode::read_episode;
use scenes::{Env, Frame, MazeInfo, Pose, SceneKind, StepInfo, StepOutput};

const MAZE: [&str; 6] = [
    "noop",
    "forward",
    "turn_left",
    "turn_right",
    "forward_left",
    "forward_right",
];
const VOXEL: [&str; 5] = ["noop", "forward", "turn_left", "turn_right", "jump"];

/// A deterministic stand-in scene: frames encode (seed, step, last action) so the test can
/// tell every frame apart; reward 1 every third step.
struct PatternEnv {
    kind: SceneKind,
    seed: u64,
    steps: usize,
    pose: Pose,
    layout: Arc<Vec<u8>>,
}

impl PatternEnv {
    fn new(kind: SceneKind) -> Self {
        let n = 9;
        let layout = (0..n * n)
            .map(|i| u8::from(i % n != 0 && i / n != 0 && i % n != n - 1 && i / n != n - 1))
            .collect();
        Self {
            kind,
            seed: 0,
            steps: 0,
            pose: Pose {
                position: [1.5, 1.5, 0.0],
                yaw: 0.0,
            },
            layout: Arc::new(layout),
        }
    }

    fn output(&self, action: usize, reward: f64) -> StepOutput {
        let mut frame = Frame::new(64, 64);
        for y in 0..64 {
            for x in 0..64 {
                frame.set_pixel(
                    x,
                    y,
                    [self.seed as u8, self.steps as u8, (action * 40 + x) as u8],
                );
            }
        }
        let info = match self.kind {
            SceneKind::Maze => StepInfo::Maze(MazeInfo {
                size: 9,
                layout: self.layout.clone(),
                targets_pos: vec![[2.5, 2.5], [6.5, 6.5]],
                target: 1,
                target_color: [1.0, 0.0, 0.0],
            }),
            SceneKind::Voxel => StepInfo::Voxel,
        };
        StepOutput {
            frame,
            reward,
            done: false,
            truncated: false,
            pose: self.pose,
            info,
        }
    }
}

impl Env for PatternEnv {
    fn scene(&self) -> SceneKind {
        self.kind
    }
    fn action_names(&self) -> &[&'static str] {
        match self.kind {
            SceneKind::Maze => &MAZE,
            SceneKind::Voxel => &VOXEL,
        }
    }
    fn resolution(&self) -> usize {
        64
    }
    fn reset(&mut self, seed: u64) -> StepOutput {
        self.seed = seed;
        self.steps = 0;
        self.pose = Pose {
            position: [1.5, 1.5, 0.0],
            yaw: 0.0,
        };
        self.output(0, 0.0)
    }
    fn step(&mut self, action: usize) -> StepOutput {
        self.steps += 1;
        match action {
            1 => self.pose.position[0] += 0.25,
            2 => self.pose.yaw += 0.3,
            3 => self.pose.yaw -= 0.3,
            _ => {}
        }
        let reward = if self.steps % 3 == 0 { 1.0 } else { 0.0 };
        self.output(action, reward)
    }
    fn steps(&self) -> usize {
        self.steps
    }
}

fn factory() -> EnvFactory {
    Box::new(|kind| {
        Ok(vec![PaneEnv {
            label: "real".into(),
            env: Box::new(PatternEnv::new(kind)),
        }])
    })
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("player_input_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Drives a controller and a session along a script of (time ms, key, pressed), advancing
/// the clock every `display_ms` like a display loop would.
struct Harness {
    controller: Controller,
    session: Session,
    events: Receiver<SimEvent>,
    now: u64,
}

impl Harness {
    fn new(hz: f64, dir: PathBuf) -> Self {
        let (tx, events) = crossbeam_channel::unbounded();
        let session = Session::new(factory(), SceneKind::Maze, 7, RecordMeta { dir }, tx).unwrap();
        let mut controller = Controller::new(hz);
        assert!(
            controller.advance(ms(0), session.action_names()).is_empty(),
            "the first tick is one period away"
        );
        Harness {
            controller,
            session,
            events,
            now: 0,
        }
    }

    fn run_until(&mut self, t: u64, display_ms: u64) {
        while self.now < t {
            self.now = (self.now + display_ms).min(t);
            let orders = self
                .controller
                .advance(ms(self.now), self.session.action_names());
            self.apply(orders);
        }
    }

    fn key(&mut self, key: Key, pressed: bool) {
        let orders = self
            .controller
            .key(key, pressed, self.session.action_names());
        self.apply(orders);
    }

    fn apply(&mut self, orders: Vec<Order>) {
        for o in &orders {
            self.session.apply(o);
        }
    }

    fn frames(&self) -> Vec<FrameSet> {
        self.events
            .try_iter()
            .filter_map(|e| match e {
                SimEvent::Frame(f) => Some(*f),
                _ => None,
            })
            .collect()
    }
}

/// The script: W held 100–1100 ms, A tapped 1150–1200 ms (between ticks), nothing after.
fn script(h: &mut Harness, display_ms: u64) -> Vec<Option<usize>> {
    h.frames(); // the reset frame
    h.run_until(100, display_ms);
    h.key(Key::Forward, true);
    h.run_until(1100, display_ms);
    h.key(Key::Forward, false);
    h.run_until(1150, display_ms);
    h.key(Key::TurnLeft, true);
    h.run_until(1200, display_ms);
    h.key(Key::TurnLeft, false);
    h.run_until(2000, display_ms);
    h.frames().iter().map(|f| f.action).collect()
}

#[test]
fn action_stream_at_control_rate_with_held_keys_and_taps() {
    let mut h = Harness::new(4.0, temp_dir("stream"));
    let got = script(&mut h, 16);
    // Ticks at 250, 500, …, 2000 ms: W held through 1000, the tap at 1150 lands on 1250.
    let want = vec![
        Some(1),
        Some(1),
        Some(1),
        Some(1),
        Some(2),
        Some(0),
        Some(0),
        Some(0),
    ];
    assert_eq!(got, want);
    // The same script displayed at 7 FPS instead of 60 gives the same actions.
    let mut slow = Harness::new(4.0, temp_dir("stream_slow"));
    assert_eq!(script(&mut slow, 143), want);
    // And at 10 Hz control, 20 ticks in 2 s.
    let mut fast = Harness::new(10.0, temp_dir("stream_fast"));
    assert_eq!(script(&mut fast, 16).len(), 20);
}

#[test]
fn combined_keys_and_scene_specific_actions() {
    use Key::*;
    assert_eq!(resolve_action(&[Forward, TurnLeft], &MAZE), 4);
    assert_eq!(resolve_action(&[TurnRight, Forward], &MAZE), 5);
    assert_eq!(resolve_action(&[ForwardLeft], &MAZE), 4);
    assert_eq!(resolve_action(&[Jump], &MAZE), 0, "no jump in the maze");
    assert_eq!(resolve_action(&[Forward, Jump], &MAZE), 1);
    assert_eq!(resolve_action(&[Jump], &VOXEL), 4);
    // No forward_left in voxel: the newest key wins.
    assert_eq!(resolve_action(&[Forward, TurnLeft], &VOXEL), 2);
    assert_eq!(resolve_action(&[TurnLeft, Forward], &VOXEL), 1);
    assert_eq!(
        resolve_action(&[ForwardRight], &VOXEL),
        0,
        "Q/E need the combined action"
    );
    assert_eq!(resolve_action(&[], &VOXEL), 0);
}

#[test]
fn pause_single_step_reset_new_seed_and_switch() {
    let mut h = Harness::new(4.0, temp_dir("pause"));
    h.frames();
    h.run_until(600, 16);
    assert_eq!(h.frames().len(), 2, "two noop ticks before the pause");
    h.key(Key::Pause, true);
    assert!(h.controller.paused());
    h.run_until(2000, 16);
    assert!(h.frames().is_empty(), "no steps while paused");
    // Single step with W held: exactly one forward step.
    h.key(Key::Forward, true);
    h.key(Key::Step, true);
    let f = h.frames();
    assert_eq!(f.len(), 1);
    assert_eq!((f[0].action, f[0].steps), (Some(1), 3));
    assert_eq!(f[0].panes[0].output.frame.pixel(0, 0), [7, 3, 40]);
    h.key(Key::Forward, false);
    h.run_until(3000, 16);
    assert!(h.frames().is_empty());
    // `.` does nothing while running.
    h.key(Key::Pause, true);
    h.key(Key::Step, true);
    h.run_until(3100, 16);
    assert!(h.frames().is_empty());
    h.run_until(3250, 16);
    assert_eq!(h.frames().len(), 1, "running again on the next tick");
    // Reset keeps the seed, N moves to the next one, Tab switches scene.
    h.key(Key::Reset, true);
    let f = h.frames();
    assert_eq!(
        (f.len(), f[0].action, f[0].steps, f[0].seed, f[0].score),
        (1, None, 0, 7, 0.0)
    );
    h.key(Key::NewSeed, true);
    assert_eq!(h.frames()[0].seed, 8);
    h.key(Key::SwitchScene, true);
    let f = h.frames();
    assert_eq!(
        (f[0].scene, f[0].seed, f[0].action_names.len()),
        (SceneKind::Voxel, 8, 5)
    );
    h.key(Key::Jump, true);
    h.run_until(3600, 16);
    assert_eq!(
        h.frames().last().unwrap().action,
        Some(4),
        "Space jumps in voxel"
    );
}

#[test]
fn recording_writes_a_valid_episode_file() {
    let dir = temp_dir("record");
    let mut h = Harness::new(4.0, dir.clone());
    h.frames();
    h.run_until(300, 16); // one noop step before recording
    h.key(Key::Record, true);
    h.frames();
    let got = script(&mut h, 16);
    h.key(Key::Record, true);
    let events: Vec<SimEvent> = (0..200)
        .map_while(|_| h.events.recv_timeout(Duration::from_secs(10)).ok())
        .take_while(|e| !matches!(e, SimEvent::Saved { .. }))
        .collect();
    assert!(
        events.iter().all(|e| !matches!(e, SimEvent::Notice(_))),
        "{events:?}"
    );
    let (episode_path, preview) = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .fold((None, None), |(n, g), p| {
            match p.extension().and_then(|e| e.to_str()) {
                Some("npz") => (Some(p), g),
                Some("gif") => (n, Some(p)),
                _ => (n, g),
            }
        });
    let episode_path = episode_path.expect("an .npz in the record folder");
    let ep = read_episode(&episode_path).expect("the recording reads back");
    assert_eq!(ep.len(), got.len() + 1, "reset frame + one frame per step");
    assert_eq!(ep.meta.scene, SceneKind::Maze);
    assert_eq!(ep.meta.seed, Some(7));
    assert_eq!(ep.meta.action_names, MAZE.to_vec());
    assert_eq!(ep.action_index(0), None, "row 0 is the reset no-op");
    let recorded: Vec<Option<usize>> = (1..ep.len()).map(|t| ep.action_index(t)).collect();
    assert_eq!(
        recorded, got,
        "action[t] is the action that produced image[t]"
    );
    // Frame t shows step 1 + t of the session (one step happened before recording began).
    for t in 0..ep.len() {
        let px = &ep.frame(t)[..3];
        assert_eq!(
            px[1] as usize,
            1 + t,
            "image[{t}] is the frame after step {}",
            1 + t
        );
        let a = ep.action_index(t).unwrap_or(0);
        assert_eq!(px, [7, (1 + t) as u8, (a * 40) as u8]);
    }
    assert_eq!(ep.reset.iter().filter(|r| **r).count(), 1);
    let rewards: f64 = ep.reward[1..].iter().sum();
    assert_eq!(
        rewards,
        (2..=ep.len()).filter(|s| s % 3 == 0).count() as f64
    );
    let preview = preview.expect("a .gif preview beside the episode");
    let bytes = std::fs::read(&preview).unwrap();
    assert!(bytes.starts_with(b"GIF8"), "preview is a GIF");
    assert!(!std::fs::read_dir(&dir).unwrap().any(|e| e
        .unwrap()
        .path()
        .to_string_lossy()
        .ends_with(".tmp")));
}

#[test]
fn sim_thread_steps_on_its_own_and_saves_on_shutdown() {
    let dir = temp_dir("thread");
    let mut sim = SimThread::spawn(
        factory(),
        SceneKind::Maze,
        3,
        RecordMeta { dir: dir.clone() },
        40.0,
    )
    .unwrap();
    let next_frame = |sim: &SimThread| loop {
        match sim
            .next_event(Duration::from_secs(10))
            .expect("the sim thread keeps stepping")
        {
            SimEvent::Frame(f) => return f,
            _ => continue,
        }
    };
    assert_eq!(next_frame(&sim).action, None, "first the reset frame");
    assert_eq!(next_frame(&sim).action, Some(0), "no key held: noop");
    sim.send(SimInput::Key {
        key: Key::Record,
        pressed: true,
    });
    sim.send(SimInput::Key {
        key: Key::Forward,
        pressed: true,
    });
    while next_frame(&sim).action != Some(1) {}
    sim.send(SimInput::ReleaseAll);
    while next_frame(&sim).action != Some(0) {}
    sim.shutdown();
    let saved: Vec<SimEvent> = sim
        .events()
        .filter(|e| matches!(e, SimEvent::Saved { .. }))
        .collect();
    assert_eq!(
        saved.len(),
        1,
        "the recording under way is saved on shutdown"
    );
    if let SimEvent::Saved { episode, .. } = &saved[0] {
        let ep = read_episode(episode).unwrap();
        assert!(ep.action_counts()[1] >= 1);
    }
}
