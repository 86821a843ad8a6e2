//! The winit 0.30 `ApplicationHandler` of `memworld play`: opens the window and its wgpu surface,
//! forwards keys to the simulation thread (only those egui does not consume), drains the
//! simulation's events into the panes and the HUD, and draws every frame with the frame pass.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use scenes::{Frame, StepInfo};
use winit::application::ApplicationHandler;
use winit::event::{ElementState, WindowEvent};
use winit::event_loop::{ActiveEventLoop, ControlFlow, EventLoop};
use winit::keyboard::{KeyCode, PhysicalKey};
use winit::window::{Window, WindowId};

use crate::player::gpu::{instance_descriptor, request_device, BackendChoice, GpuError};
use crate::player::hud::{self, HudModel, RateMeter};
use crate::player::input::Key;
use crate::player::record::RecordMeta;
use crate::player::render::FramePass;
use crate::player::sim::{EnvFactory, SimEvent, SimInput, SimThread};
use crate::player::PlayArgs;

/// Initial window size, logical pixels: room for the HUD panel and an 11× upscaled 64² frame.
const WINDOW_SIZE: (f64, f64) = (1290.0, 780.0);

/// A pane as the window sees it: label and the latest frame not yet uploaded.
struct Pane {
    label: String,
    pending: Option<Frame>,
}

/// Window, surface and GPU state, created on `resumed`.
struct Gfx {
    window: Arc<Window>,
    instance: wgpu::Instance,
    surface: wgpu::Surface<'static>,
    config: wgpu::SurfaceConfiguration,
    device: wgpu::Device,
    queue: wgpu::Queue,
    pass: FramePass,
    egui: egui_winit::State,
}

struct Player {
    args: PlayArgs,
    backend: BackendChoice,
    sim: SimThread,
    gfx: Option<Gfx>,
    error: Option<anyhow::Error>,
    ctx: egui::Context,
    hud: HudModel,
    panes: Vec<Pane>,
    start: Instant,
    fps: RateMeter,
    control: RateMeter,
}

/// Open the window and play until it is closed. Errors (no display, no adapter) come back as
/// one-line messages with a hint.
pub fn run_window(args: PlayArgs, factory: EnvFactory) -> anyhow::Result<()> {
    // The scene first: a bad setting is reported even where no window could open.
    let record = RecordMeta {
        dir: args.record_dir.clone(),
    };
    let sim = SimThread::spawn(factory, args.scene, args.seed, record, args.hz)
        .map_err(|e| anyhow!(e))?;
    let event_loop = EventLoop::new().map_err(GpuError::no_display)?;
    event_loop.set_control_flow(ControlFlow::Poll);
    let maze_size = (args.scene == scenes::SceneKind::Maze).then_some(args.size);
    let mut player = Player {
        backend: args.backend,
        hud: HudModel::new(args.scene, maze_size, args.res, args.seed, args.hz),
        args,
        sim,
        gfx: None,
        error: None,
        ctx: egui::Context::default(),
        panes: Vec::new(),
        start: Instant::now(),
        fps: RateMeter::new(Duration::from_secs(2)),
        control: RateMeter::new(Duration::from_secs(3)),
    };
    event_loop
        .run_app(&mut player)
        .map_err(GpuError::no_display)?;
    player.sim.shutdown();
    // Saves finished during shutdown are reported on stderr (the window is gone).
    for e in player.sim.events() {
        if let SimEvent::Saved { episode, preview } = e {
            eprintln!("saved {} and {}", episode.display(), preview.display());
        }
    }
    match player.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

impl Player {
    fn init_gfx(&mut self, event_loop: &ActiveEventLoop) -> anyhow::Result<Gfx> {
        let attrs = Window::default_attributes()
            .with_title(format!("memworld — {}", self.args.scene.name()))
            .with_inner_size(winit::dpi::LogicalSize::new(WINDOW_SIZE.0, WINDOW_SIZE.1));
        let window = Arc::new(
            event_loop
                .create_window(attrs)
                .map_err(GpuError::no_display)?,
        );
        let display = Box::new(event_loop.owned_display_handle());
        let instance = wgpu::Instance::new(instance_descriptor(self.backend, Some(display)));
        let surface = instance
            .create_surface(window.clone())
            .map_err(|e| GpuError::Surface(e.to_string()))?;
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: Some(&surface),
        }))
        .map_err(|e| GpuError::NoAdapter {
            backend: self.backend.to_string(),
            reason: e.to_string(),
        })?;
        let (device, queue) = request_device(&adapter)?;
        let caps = surface.get_capabilities(&adapter);
        // Non-sRGB first: frame bytes reach the screen unchanged and egui prefers it.
        let format = caps
            .formats
            .iter()
            .copied()
            .find(|f| !f.is_srgb())
            .or(caps.formats.first().copied())
            .ok_or_else(|| GpuError::Surface("the surface supports no format".into()))?;
        let size = window.inner_size();
        let config = wgpu::SurfaceConfiguration {
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT,
            format,
            width: size.width.max(1),
            height: size.height.max(1),
            present_mode: wgpu::PresentMode::AutoVsync,
            desired_maximum_frame_latency: 2,
            alpha_mode: caps
                .alpha_modes
                .first()
                .copied()
                .unwrap_or(wgpu::CompositeAlphaMode::Auto),
            view_formats: vec![],
        };
        surface.configure(&device, &config);
        let pass = FramePass::new(&device, format);
        let egui = egui_winit::State::new(
            self.ctx.clone(),
            egui::ViewportId::ROOT,
            &window,
            Some(window.scale_factor() as f32),
            None,
            Some(device.limits().max_texture_dimension_2d as usize),
        );
        let info = adapter.get_info();
        self.hud.adapter = format!("{} · {:?} · {:?}", info.name, info.backend, format);
        Ok(Gfx {
            window,
            instance,
            surface,
            config,
            device,
            queue,
            pass,
            egui,
        })
    }

    fn fail(&mut self, event_loop: &ActiveEventLoop, e: anyhow::Error) {
        self.error.get_or_insert(e);
        event_loop.exit();
    }

    /// Apply the simulation's events to the panes and the HUD.
    fn drain_events(&mut self, event_loop: &ActiveEventLoop) {
        let now = self.start.elapsed();
        let events: Vec<SimEvent> = self.sim.events().collect();
        for e in events {
            match e {
                SimEvent::Frame(set) => {
                    if set.action.is_some() {
                        self.control.tick(now);
                    }
                    self.panes.truncate(set.panes.len());
                    for (i, p) in set.panes.iter().enumerate() {
                        if i == self.panes.len() {
                            self.panes.push(Pane {
                                label: p.label.clone(),
                                pending: None,
                            });
                        }
                        self.panes[i].label = p.label.clone();
                        self.panes[i].pending = Some(p.output.frame.clone());
                    }
                    let h = &mut self.hud;
                    if let Some(ms) = set.panes.iter().find_map(|p| p.latency_ms) {
                        h.model_latency_ms = Some(ms);
                    }
                    h.scene = set.scene;
                    h.seed = set.seed;
                    h.steps = set.steps;
                    h.score = set.score;
                    h.action = match set.action {
                        Some(a) => set.action_names.get(a).copied().unwrap_or("?").to_string(),
                        None => "reset".into(),
                    };
                    if let Some(first) = set.panes.first() {
                        h.resolution = first.output.frame.width;
                        h.pose = Some(first.output.pose);
                        h.reward = first.output.reward;
                        match &first.output.info {
                            StepInfo::Maze(m) => {
                                h.maze_size = Some(m.size);
                                h.target_color = Some(m.target_color);
                                h.maze = Some(m.clone());
                            }
                            StepInfo::Voxel => {
                                h.maze_size = None;
                                h.target_color = None;
                                h.maze = None;
                            }
                        }
                    }
                }
                SimEvent::Paused(p) => self.hud.paused = p,
                SimEvent::Recording(n) => self.hud.recording = n,
                SimEvent::Saved { episode, preview } => {
                    self.hud.last_saved =
                        Some(format!("{}\n{}", episode.display(), preview.display()));
                }
                SimEvent::Notice(msg) => self.hud.message = Some(msg),
                SimEvent::Fatal(msg) => self.fail(event_loop, anyhow!(msg)),
            }
        }
    }

    fn redraw(&mut self, event_loop: &ActiveEventLoop) {
        self.drain_events(event_loop);
        let now = self.start.elapsed();
        self.fps.tick(now);
        self.hud.display_fps = self.fps.rate();
        self.hud.control_rate = self.control.rate();
        let labels: Vec<String> = self.panes.iter().map(|p| p.label.clone()).collect();
        let Some(gfx) = self.gfx.as_mut() else { return };
        let raw = gfx.egui.take_egui_input(&gfx.window);
        let frame = hud::run(&self.ctx, raw, &self.hud, &labels);
        gfx.egui.handle_platform_output(&gfx.window, frame.platform);
        gfx.pass.truncate_panes(self.panes.len());
        for (i, pane) in self.panes.iter_mut().enumerate() {
            if let Some(f) = pane.pending.take() {
                gfx.pass.set_frame(&gfx.device, &gfx.queue, i, &f);
            }
        }
        let texture = match gfx.surface.get_current_texture() {
            wgpu::CurrentSurfaceTexture::Success(t)
            | wgpu::CurrentSurfaceTexture::Suboptimal(t) => t,
            wgpu::CurrentSurfaceTexture::Outdated => {
                gfx.surface.configure(&gfx.device, &gfx.config);
                return;
            }
            wgpu::CurrentSurfaceTexture::Lost => {
                match gfx.instance.create_surface(gfx.window.clone()) {
                    Ok(s) => {
                        s.configure(&gfx.device, &gfx.config);
                        gfx.surface = s;
                    }
                    Err(e) => self.fail(event_loop, GpuError::Surface(e.to_string()).into()),
                }
                return;
            }
            _ => return,
        };
        let view = texture
            .texture
            .create_view(&wgpu::TextureViewDescriptor::default());
        let size = [gfx.config.width, gfx.config.height];
        gfx.pass.render(
            &gfx.device,
            &gfx.queue,
            &view,
            size,
            &frame.views,
            Some(frame.ui),
        );
        gfx.window.pre_present_notify();
        texture.present();
    }

    /// A key event from the window: egui sees it first; the game gets presses egui did not
    /// consume, and every release (so no key stays held). Tab belongs to the game unless a
    /// text field has focus (egui would otherwise always take it for focus navigation).
    fn key_event(&mut self, event_loop: &ActiveEventLoop, event: &WindowEvent) -> bool {
        let WindowEvent::KeyboardInput {
            event: key_event, ..
        } = event
        else {
            return false;
        };
        let PhysicalKey::Code(code) = key_event.physical_key else {
            return false;
        };
        let pressed = key_event.state == ElementState::Pressed;
        let egui_focus = self.ctx.egui_wants_keyboard_input();
        let consumed = match self.gfx.as_mut() {
            Some(gfx) if !(code == KeyCode::Tab && !egui_focus) => {
                gfx.egui.on_window_event(&gfx.window, event).consumed
            }
            _ => false,
        };
        let Some(key) = Key::from_keycode(code) else {
            return true;
        };
        if pressed && (consumed || key_event.repeat) {
            return true;
        }
        if key == Key::Quit && pressed {
            event_loop.exit();
            return true;
        }
        self.sim.send(SimInput::Key { key, pressed });
        true
    }
}

impl ApplicationHandler for Player {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.gfx.is_some() {
            return;
        }
        match self.init_gfx(event_loop) {
            Ok(gfx) => {
                gfx.window.request_redraw();
                self.gfx = Some(gfx);
            }
            Err(e) => self.fail(event_loop, e),
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _id: WindowId, event: WindowEvent) {
        if self.key_event(event_loop, &event) {
            return;
        }
        if let Some(gfx) = self.gfx.as_mut() {
            let _ = gfx.egui.on_window_event(&gfx.window, &event);
        }
        match event {
            WindowEvent::CloseRequested => event_loop.exit(),
            WindowEvent::Focused(false) => self.sim.send(SimInput::ReleaseAll),
            WindowEvent::Resized(size) => {
                if let Some(gfx) = self.gfx.as_mut() {
                    gfx.config.width = size.width.max(1);
                    gfx.config.height = size.height.max(1);
                    gfx.surface.configure(&gfx.device, &gfx.config);
                }
            }
            WindowEvent::RedrawRequested => self.redraw(event_loop),
            _ => {}
        }
    }

    fn about_to_wait(&mut self, _event_loop: &ActiveEventLoop) {
        if let Some(gfx) = &self.gfx {
            gfx.window.request_redraw();
        }
    }
}
