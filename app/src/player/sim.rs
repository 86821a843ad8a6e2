//! The simulation side of the player: a [`Session`] owns the environments (one per pane: the
//! real scene now, a dreamed one later — anything implementing [`Env`]) and the recorder, and
//! applies [`Order`]s; [`SimThread`] runs a session and the [`Controller`]'s control clock on
//! their own thread behind crossbeam channels (key events in, frames out), so the window never
//! waits on a step.

use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use scenes::{Env, SceneKind, StepOutput};

use crate::player::input::{Controller, Key, Order};
use crate::player::record::{RecordMeta, Recorder};

/// One pane's environment and its label ("real", "dreamed").
pub struct PaneEnv {
    pub label: String,
    pub env: Box<dyn Env>,
}

/// Builds the panes' environments for a scene (called at start and on every scene switch).
pub type EnvFactory = Box<dyn FnMut(SceneKind) -> Result<Vec<PaneEnv>, String> + Send>;

/// One pane's output for a step or reset.
#[derive(Clone, Debug)]
pub struct PaneFrame {
    pub label: String,
    pub output: StepOutput,
    /// Time the pane's model took for this frame (dreamed panes only), milliseconds.
    pub latency_ms: Option<f64>,
}

/// The result of one step or reset, for every pane.
#[derive(Clone, Debug)]
pub struct FrameSet {
    pub scene: SceneKind,
    pub seed: u64,
    pub action_names: Vec<&'static str>,
    /// The action applied; `None` for a reset.
    pub action: Option<usize>,
    /// Steps since the reset (of the first pane).
    pub steps: usize,
    /// Rewards summed since the reset (first pane).
    pub score: f64,
    pub panes: Vec<PaneFrame>,
}

/// What the simulation reports.
#[derive(Clone, Debug)]
pub enum SimEvent {
    Frame(Box<FrameSet>),
    Paused(bool),
    /// Recording under way with this many frames; `None` = not recording.
    Recording(Option<usize>),
    /// A recording was written: the episode file and its GIF preview.
    Saved {
        episode: PathBuf,
        preview: PathBuf,
    },
    /// Something failed but the session goes on (a save, a scene switch).
    Notice(String),
    /// The session cannot go on (no environment could be built).
    Fatal(String),
}

/// Environments, seed, score and recorder of a play session; applies orders synchronously and
/// reports through `events`.
pub struct Session {
    factory: EnvFactory,
    scene: SceneKind,
    seed: u64,
    panes: Vec<PaneEnv>,
    action_names: Vec<&'static str>,
    score: f64,
    last: Option<StepOutput>,
    recorder: Recorder,
    events: Sender<SimEvent>,
}

impl Session {
    /// Build the scene's environments and reset them with `seed` (the first frame is sent).
    pub fn new(
        mut factory: EnvFactory,
        scene: SceneKind,
        seed: u64,
        record: RecordMeta,
        events: Sender<SimEvent>,
    ) -> Result<Self, String> {
        let panes = factory(scene)?;
        let recorder = Recorder::new(record, events.clone());
        let mut s = Session {
            factory,
            scene,
            seed,
            panes,
            action_names: Vec::new(),
            score: 0.0,
            last: None,
            recorder,
            events,
        };
        s.reset(seed);
        Ok(s)
    }

    pub fn action_names(&self) -> &[&'static str] {
        &self.action_names
    }

    pub fn scene(&self) -> SceneKind {
        self.scene
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    fn send(&self, e: SimEvent) {
        // The receiver is gone only while the player shuts down.
        let _ = self.events.send(e);
    }

    fn reset(&mut self, seed: u64) {
        self.seed = seed;
        self.score = 0.0;
        let Some(first) = self.panes.first() else {
            self.send(SimEvent::Fatal("no environment to play".into()));
            return;
        };
        self.action_names = first.env.action_names().to_vec();
        let panes: Vec<PaneFrame> = self
            .panes
            .iter_mut()
            .map(|p| {
                let output = p.env.reset(seed);
                PaneFrame {
                    label: p.label.clone(),
                    output,
                    latency_ms: None,
                }
            })
            .collect();
        // A reset ends the recorded episode; recording goes on with the new one.
        self.recorder
            .restart(&self.panes[0], seed, &panes[0].output);
        self.publish(None, panes);
    }

    fn step(&mut self, action: usize) {
        if self.panes.is_empty() {
            return;
        }
        let action = if action < self.action_names.len() {
            action
        } else {
            0
        };
        let panes: Vec<PaneFrame> = self
            .panes
            .iter_mut()
            .map(|p| {
                let output = p.env.step(action);
                PaneFrame {
                    label: p.label.clone(),
                    output,
                    latency_ms: p.env.frame_latency_ms(),
                }
            })
            .collect();
        self.score += panes[0].output.reward;
        self.recorder.push_step(action, &panes[0].output);
        let done = panes[0].output.done;
        let truncated = panes[0].output.truncated;
        self.publish(Some(action), panes);
        if done {
            let why = if truncated {
                "time limit"
            } else {
                "task ended"
            };
            self.send(SimEvent::Notice(format!("episode over ({why}): new seed")));
            self.reset(self.seed.wrapping_add(1));
        }
    }

    fn publish(&mut self, action: Option<usize>, panes: Vec<PaneFrame>) {
        self.last = Some(panes[0].output.clone());
        let set = FrameSet {
            scene: self.scene,
            seed: self.seed,
            action_names: self.action_names.clone(),
            action,
            steps: self.panes[0].env.steps(),
            score: self.score,
            panes,
        };
        self.send(SimEvent::Frame(Box::new(set)));
        if let Some(n) = self.recorder.frames() {
            self.send(SimEvent::Recording(Some(n)));
        }
    }

    /// Apply one order from the controller.
    pub fn apply(&mut self, order: &Order) {
        match order {
            Order::Step(a) => self.step(*a),
            Order::Reset => self.reset(self.seed),
            Order::NewSeed => self.reset(self.seed.wrapping_add(1)),
            Order::SwitchScene => {
                let next = match self.scene {
                    SceneKind::Maze => SceneKind::Voxel,
                    SceneKind::Voxel => SceneKind::Maze,
                };
                match (self.factory)(next) {
                    Ok(panes) => {
                        self.recorder.stop();
                        self.scene = next;
                        self.panes = panes;
                        self.reset(self.seed);
                    }
                    Err(e) => self.send(SimEvent::Notice(format!(
                        "cannot switch to {}: {e}",
                        next.name()
                    ))),
                }
            }
            Order::ToggleRecording => {
                if self.recorder.frames().is_some() {
                    self.recorder.stop();
                } else if let (Some(last), Some(first)) = (&self.last, self.panes.first()) {
                    self.recorder.start(first, self.seed, last);
                    self.send(SimEvent::Recording(self.recorder.frames()));
                }
            }
            Order::Paused(p) => self.send(SimEvent::Paused(*p)),
            Order::Quit => {}
        }
    }

    /// Stop recording (saving what was recorded) and wait for every pending write.
    pub fn finish(mut self) {
        self.recorder.stop();
        self.recorder.wait();
    }
}

/// What the window sends the simulation thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimInput {
    Key {
        key: Key,
        pressed: bool,
    },
    /// The window lost focus: forget held keys.
    ReleaseAll,
    Shutdown,
}

/// A [`Session`] and a [`Controller`] running on their own thread.
pub struct SimThread {
    input: Sender<SimInput>,
    events: Receiver<SimEvent>,
    handle: Option<JoinHandle<()>>,
}

impl SimThread {
    /// Start the session (building the first scene on the calling thread, so a bad scene is
    /// reported before the window opens) and its thread stepping at `hz`.
    pub fn spawn(
        factory: EnvFactory,
        scene: SceneKind,
        seed: u64,
        record: RecordMeta,
        hz: f64,
    ) -> Result<Self, String> {
        let (event_tx, events) = crossbeam_channel::unbounded();
        let (input, input_rx) = crossbeam_channel::unbounded();
        let session = Session::new(factory, scene, seed, record, event_tx)?;
        let handle = std::thread::Builder::new()
            .name("memworld-sim".into())
            .spawn(move || run(session, Controller::new(hz), input_rx))
            .map_err(|e| format!("cannot start the simulation thread: {e}"))?;
        Ok(Self {
            input,
            events,
            handle: Some(handle),
        })
    }

    pub fn send(&self, input: SimInput) {
        let _ = self.input.send(input);
    }

    /// Events reported since the last call (never blocks).
    pub fn events(&self) -> impl Iterator<Item = SimEvent> + '_ {
        self.events.try_iter()
    }

    /// Wait up to `timeout` for the next event (tests).
    pub fn next_event(&self, timeout: Duration) -> Option<SimEvent> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Stop the thread, saving a recording under way.
    pub fn shutdown(&mut self) {
        if let Some(h) = self.handle.take() {
            let _ = self.input.send(SimInput::Shutdown);
            let _ = h.join();
        }
    }
}

impl Drop for SimThread {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run(mut session: Session, mut controller: Controller, input: Receiver<SimInput>) {
    let start = Instant::now();
    // Starts the clock: the first step falls one control period from now.
    controller.advance(start.elapsed(), session.action_names());
    loop {
        let wait = controller.until_next_tick(start.elapsed());
        let mut orders = match input.recv_timeout(wait) {
            Ok(SimInput::Key { key, pressed }) => {
                controller.key(key, pressed, session.action_names())
            }
            Ok(SimInput::ReleaseAll) => {
                controller.release_all();
                Vec::new()
            }
            Ok(SimInput::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => Vec::new(),
        };
        orders.extend(controller.advance(start.elapsed(), session.action_names()));
        for order in &orders {
            session.apply(order);
        }
    }
    session.finish();
}
