//! Keyboard → player orders, independent of any window: which keys are held, which action they
//! mean for the current scene, and the fixed control clock that turns them into one action per
//! tick (Memory Maze acts at 4 Hz; the display may run at any rate).
//!
//! Everything here is plain data driven by `(key, pressed)` events and timestamps, so tests can
//! script a session without a window or a real clock.

use std::time::Duration;

/// Keys the player understands, independent of the windowing library.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    Forward,
    TurnLeft,
    TurnRight,
    ForwardLeft,
    ForwardRight,
    Jump,
    Pause,
    Step,
    Reset,
    NewSeed,
    SwitchScene,
    Record,
    Quit,
}

impl Key {
    /// The physical key bindings: arrows/WASD move, Q/E move while turning, Space jumps.
    pub fn from_keycode(code: winit::keyboard::KeyCode) -> Option<Key> {
        use winit::keyboard::KeyCode as K;
        Some(match code {
            K::KeyW | K::ArrowUp => Key::Forward,
            K::KeyA | K::ArrowLeft => Key::TurnLeft,
            K::KeyD | K::ArrowRight => Key::TurnRight,
            K::KeyQ => Key::ForwardLeft,
            K::KeyE => Key::ForwardRight,
            K::Space => Key::Jump,
            K::KeyP => Key::Pause,
            K::Period | K::NumpadDecimal => Key::Step,
            K::KeyR => Key::Reset,
            K::KeyN => Key::NewSeed,
            K::Tab => Key::SwitchScene,
            K::F5 => Key::Record,
            K::Escape => Key::Quit,
            _ => return None,
        })
    }

    /// Movement keys are sampled at every control tick; the others act once per press.
    pub fn is_movement(self) -> bool {
        matches!(
            self,
            Key::Forward
                | Key::TurnLeft
                | Key::TurnRight
                | Key::ForwardLeft
                | Key::ForwardRight
                | Key::Jump
        )
    }
}

/// The on-screen and `--help` key legend: (keys, what they do).
pub const KEY_LEGEND: &[(&str, &str)] = &[
    ("W / Up", "forward"),
    ("A / Left", "turn left"),
    ("D / Right", "turn right"),
    ("Q / E", "forward + turn left / right"),
    ("Space", "jump (voxel)"),
    ("P", "pause / resume"),
    (".", "single step while paused"),
    ("R", "reset (same seed)"),
    ("N", "new seed"),
    ("Tab", "switch scene"),
    ("F5", "start / stop recording"),
    ("Esc", "quit"),
];

/// Orders the controller gives the simulation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Order {
    /// Apply this action (an index into the scene's action names).
    Step(usize),
    /// Restart the episode with the same seed.
    Reset,
    /// Restart with the next seed.
    NewSeed,
    /// Switch to the other scene.
    SwitchScene,
    /// Start recording, or stop and save.
    ToggleRecording,
    /// Pause state changed (true = paused).
    Paused(bool),
    /// Close the player.
    Quit,
}

/// Movement keys in press order. A key pressed and released between two control ticks stays
/// until the next tick, so a quick tap still moves once; a key that has already acted in a
/// tick is gone as soon as it is released.
#[derive(Clone, Debug, Default)]
pub struct InputState {
    active: Vec<Active>,
}

#[derive(Clone, Copy, Debug)]
struct Active {
    key: Key,
    held: bool,
    /// Has acted in at least one tick.
    counted: bool,
}

impl InputState {
    pub fn key(&mut self, key: Key, pressed: bool) {
        debug_assert!(key.is_movement(), "only movement keys are sampled per tick");
        let slot = self.active.iter().position(|a| a.key == key);
        match (slot, pressed) {
            (Some(i), true) if !self.active[i].held => {
                // Tapped again before the tick: it is the newest press now.
                self.active.remove(i);
                self.active.push(Active {
                    key,
                    held: true,
                    counted: false,
                });
            }
            (Some(_), true) => {}
            (None, true) => self.active.push(Active {
                key,
                held: true,
                counted: false,
            }),
            (Some(i), false) if self.active[i].counted => {
                self.active.remove(i);
            }
            (Some(i), false) => self.active[i].held = false,
            (None, false) => {}
        }
    }

    /// Forget every key (window lost focus: releases may never arrive).
    pub fn release_all(&mut self) {
        self.active.clear();
    }

    /// The action for this tick (without consuming taps), by name lookup in `action_names`.
    pub fn peek_action(&self, action_names: &[&str]) -> usize {
        let keys: Vec<Key> = self.active.iter().map(|a| a.key).collect();
        resolve_action(&keys, action_names)
    }

    /// The action for this tick; forgets the taps it consumed.
    pub fn take_action(&mut self, action_names: &[&str]) -> usize {
        let action = self.peek_action(action_names);
        self.active.retain(|a| a.held);
        for a in &mut self.active {
            a.counted = true;
        }
        action
    }

    pub fn any_held(&self) -> bool {
        self.active.iter().any(|a| a.held)
    }
}

/// Maps active movement keys (oldest first) to an action index. Combinations pick the combined
/// action when the scene has it (W + A → `forward_left`); otherwise the newest key wins. Keys
/// whose action the scene lacks (Space in the maze) are ignored; nothing usable → noop (0).
pub fn resolve_action(keys: &[Key], action_names: &[&str]) -> usize {
    let find = |name: &str| action_names.iter().position(|n| *n == name);
    let usable: Vec<Key> = keys
        .iter()
        .copied()
        .filter(|k| single_name(*k).and_then(find).is_some())
        .collect();
    if usable.is_empty() {
        return 0;
    }
    let (mut fwd, mut turn, mut jump) = (false, 0i8, false);
    for k in &usable {
        match k {
            Key::Forward => fwd = true,
            Key::TurnLeft => turn = -1,
            Key::TurnRight => turn = 1,
            Key::ForwardLeft => (fwd, turn) = (true, -1),
            Key::ForwardRight => (fwd, turn) = (true, 1),
            Key::Jump => jump = true,
            _ => {}
        }
    }
    let combined: &[&str] = match (jump, fwd, turn) {
        (true, true, _) => &["forward_jump", "jump"],
        (true, false, _) => &["jump"],
        (false, true, -1) => &["forward_left"],
        (false, true, 1) => &["forward_right"],
        (false, true, _) => &["forward"],
        (false, false, -1) => &["turn_left"],
        (false, false, 1) => &["turn_right"],
        _ => &[],
    };
    combined
        .iter()
        .find_map(|n| find(n))
        .or_else(|| usable.last().and_then(|k| single_name(*k)).and_then(find))
        .unwrap_or(0)
}

fn single_name(key: Key) -> Option<&'static str> {
    Some(match key {
        Key::Forward => "forward",
        Key::TurnLeft => "turn_left",
        Key::TurnRight => "turn_right",
        Key::ForwardLeft => "forward_left",
        Key::ForwardRight => "forward_right",
        Key::Jump => "jump",
        _ => return None,
    })
}

/// A fixed-rate clock: `due(now)` says how many control ticks fell due since the last call.
/// After a stall it catches up at most `max_catch_up` ticks and drops the rest (re-anchoring),
/// so the world never fast-forwards through seconds of held keys.
#[derive(Clone, Debug)]
pub struct ControlClock {
    period: Duration,
    next: Option<Duration>,
    max_catch_up: u32,
    dropped: u64,
}

impl ControlClock {
    /// # Panics
    /// If `hz` is not a positive finite number (the CLI validates it first).
    pub fn new(hz: f64) -> Self {
        assert!(
            hz.is_finite() && hz > 0.0,
            "control rate must be positive, got {hz}"
        );
        Self {
            period: Duration::from_secs_f64(1.0 / hz),
            next: None,
            max_catch_up: 2,
            dropped: 0,
        }
    }

    pub fn period(&self) -> Duration {
        self.period
    }

    /// Ticks due at time `now` (time since any fixed origin). The first call starts the clock;
    /// its first tick falls one period later.
    pub fn due(&mut self, now: Duration) -> u32 {
        let next = *self.next.get_or_insert(now + self.period);
        if now < next {
            return 0;
        }
        let behind = ((now - next).as_nanos() / self.period.as_nanos()) as u64 + 1;
        if behind > self.max_catch_up as u64 {
            self.dropped += behind - self.max_catch_up as u64;
            self.next = Some(now + self.period);
            self.max_catch_up
        } else {
            self.next = Some(next + self.period * behind as u32);
            behind as u32
        }
    }

    /// When the next tick falls due (None before the first `due` call).
    pub fn next_deadline(&self) -> Option<Duration> {
        self.next
    }

    /// Ticks skipped because the caller fell too far behind.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Restart the phase: the next tick falls one period after `now`.
    pub fn restart(&mut self, now: Duration) {
        self.next = Some(now + self.period);
    }
}

/// Key events and clock ticks in, orders out: the player's whole input logic.
#[derive(Clone, Debug)]
pub struct Controller {
    input: InputState,
    clock: ControlClock,
    paused: bool,
}

impl Controller {
    pub fn new(hz: f64) -> Self {
        Self {
            input: InputState::default(),
            clock: ControlClock::new(hz),
            paused: false,
        }
    }

    pub fn paused(&self) -> bool {
        self.paused
    }

    pub fn clock(&self) -> &ControlClock {
        &self.clock
    }

    pub fn input(&self) -> &InputState {
        &self.input
    }

    /// A key went down or up. Movement keys update the held set; the others act on press
    /// (auto-repeat presses of an already held command key are the caller's to filter).
    pub fn key(&mut self, key: Key, pressed: bool, action_names: &[&str]) -> Vec<Order> {
        if key.is_movement() {
            self.input.key(key, pressed);
            return Vec::new();
        }
        if !pressed {
            return Vec::new();
        }
        match key {
            Key::Pause => {
                self.paused = !self.paused;
                vec![Order::Paused(self.paused)]
            }
            Key::Step if self.paused => vec![Order::Step(self.input.take_action(action_names))],
            Key::Step => Vec::new(),
            Key::Reset => vec![Order::Reset],
            Key::NewSeed => vec![Order::NewSeed],
            Key::SwitchScene => vec![Order::SwitchScene],
            Key::Record => vec![Order::ToggleRecording],
            Key::Quit => vec![Order::Quit],
            _ => Vec::new(),
        }
    }

    pub fn release_all(&mut self) {
        self.input.release_all();
    }

    /// Advance the control clock to `now`: one `Step` per due tick while running (noop when no
    /// key is held), nothing while paused.
    pub fn advance(&mut self, now: Duration, action_names: &[&str]) -> Vec<Order> {
        let ticks = self.clock.due(now);
        if self.paused {
            return Vec::new();
        }
        (0..ticks)
            .map(|_| Order::Step(self.input.take_action(action_names)))
            .collect()
    }

    /// Time until the next tick is due, for a thread that sleeps between ticks.
    pub fn until_next_tick(&self, now: Duration) -> Duration {
        match self.clock.next_deadline() {
            Some(next) => next.saturating_sub(now),
            None => Duration::ZERO,
        }
    }
}
