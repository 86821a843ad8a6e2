//! The player's frame pass: every pane's latest frame blitted by `shaders/blit.wgsl`
//! (nearest-neighbour upscaling, aspect preserved, letterboxed) and the egui HUD drawn on top,
//! into any colour target — the window's surface texture or an offscreen texture for tests.

use crate::player::layout::{fit_frame, PixelRect};
use scenes::Frame;

/// The blit shader, kept in `shaders/` at the workspace root.
pub const BLIT_WGSL: &str = include_str!("../../../shaders/blit.wgsl");

/// Rust twin of `BlitUniforms` in `shaders/blit.wgsl` (same field order, sizes and offsets;
/// checked against the shader by naga reflection in the tests).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlitUniforms {
    /// Top-left corner of the upscaled image, target pixels.
    pub image_origin: [i32; 2],
    /// Size of the upscaled image, target pixels.
    pub image_size: [u32; 2],
    /// Frame texture size, texels.
    pub frame_size: [u32; 2],
    pub _pad: [u32; 2],
    /// Letterbox colour in the target's colour space.
    pub letterbox: [f32; 4],
}

const _: () = assert!(std::mem::size_of::<BlitUniforms>() == 48);

/// Background of the window and letterbox of the panes, sRGB-encoded RGBA.
pub const BACKGROUND_SRGB: [u8; 4] = [14, 15, 18, 255];

/// What egui produced for one frame, ready to paint.
pub struct UiFrame {
    pub primitives: Vec<egui::ClippedPrimitive>,
    pub textures_delta: egui::TexturesDelta,
    pub pixels_per_point: f32,
}

/// GPU state of one pane: its frame texture and the uniforms placing it.
struct PaneGpu {
    texture: wgpu::Texture,
    uniforms: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    frame_size: [u32; 2],
}

/// The blit pipeline, the panes' textures and the egui renderer for one target format.
pub struct FramePass {
    format: wgpu::TextureFormat,
    pipeline: wgpu::RenderPipeline,
    bind_layout: wgpu::BindGroupLayout,
    panes: Vec<Option<PaneGpu>>,
    egui: egui_wgpu::Renderer,
}

impl FramePass {
    /// A pass drawing into targets of `format`. A non-sRGB format keeps frame bytes exact.
    pub fn new(device: &wgpu::Device, format: wgpu::TextureFormat) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("blit.wgsl"),
            source: wgpu::ShaderSource::Wgsl(BLIT_WGSL.into()),
        });
        let bind_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("blit bind group layout"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: wgpu::BufferSize::new(
                            std::mem::size_of::<BlitUniforms>() as u64,
                        ),
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: false },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                    count: None,
                },
            ],
        });
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("blit pipeline layout"),
            bind_group_layouts: &[Some(&bind_layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("blit pipeline"),
            layout: Some(&layout),
            vertex: wgpu::VertexState {
                module: &module,
                entry_point: Some("vs_main"),
                buffers: &[],
                compilation_options: wgpu::PipelineCompilationOptions::default(),
            },
            primitive: wgpu::PrimitiveState::default(),
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            fragment: Some(wgpu::FragmentState {
                module: &module,
                entry_point: Some("fs_main"),
                targets: &[Some(wgpu::ColorTargetState {
                    format,
                    blend: None,
                    write_mask: wgpu::ColorWrites::ALL,
                })],
                compilation_options: wgpu::PipelineCompilationOptions::default(),
            }),
            multiview_mask: None,
            cache: None,
        });
        let options = egui_wgpu::RendererOptions {
            dithering: false,
            ..Default::default()
        };
        let egui = egui_wgpu::Renderer::new(device, format, options);
        Self {
            format,
            pipeline,
            bind_layout,
            panes: Vec::new(),
            egui,
        }
    }

    pub fn format(&self) -> wgpu::TextureFormat {
        self.format
    }

    /// Upload `frame` as pane `pane`'s image (the texture is recreated when its size changes).
    pub fn set_frame(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        pane: usize,
        frame: &Frame,
    ) {
        let (w, h) = (frame.width as u32, frame.height as u32);
        assert_eq!(
            frame.rgb.len(),
            frame.width * frame.height * 3,
            "frame buffer does not match its size"
        );
        if self.panes.len() <= pane {
            self.panes.resize_with(pane + 1, || None);
        }
        if self.panes[pane]
            .as_ref()
            .is_none_or(|p| p.frame_size != [w, h])
        {
            self.panes[pane] = Some(self.create_pane(device, w, h));
        }
        let gpu = self.panes[pane].as_ref().expect("pane created above");
        let rgba: Vec<u8> = frame
            .rgb
            .chunks_exact(3)
            .flat_map(|c| [c[0], c[1], c[2], 255])
            .collect();
        queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &gpu.texture,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            &rgba,
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(4 * w),
                rows_per_image: Some(h),
            },
            wgpu::Extent3d {
                width: w,
                height: h,
                depth_or_array_layers: 1,
            },
        );
    }

    /// Forget panes from index `n` on (a dreamed pane that went away).
    pub fn truncate_panes(&mut self, n: usize) {
        self.panes.truncate(n);
    }

    fn create_pane(&self, device: &wgpu::Device, w: u32, h: u32) -> PaneGpu {
        // With an sRGB target the texture decodes to linear and the target re-encodes: the
        // bytes on screen equal the frame's bytes either way.
        let tex_format = if self.format.is_srgb() {
            wgpu::TextureFormat::Rgba8UnormSrgb
        } else {
            wgpu::TextureFormat::Rgba8Unorm
        };
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("pane frame"),
            size: wgpu::Extent3d {
                width: w,
                height: h,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: tex_format,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        let uniforms = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("blit uniforms"),
            size: std::mem::size_of::<BlitUniforms>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("blit bind group"),
            layout: &self.bind_layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: uniforms.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::TextureView(&view),
                },
            ],
        });
        PaneGpu {
            texture,
            uniforms,
            bind_group,
            frame_size: [w, h],
        }
    }

    /// The uniforms that draw a `frame_size` frame into `view`.
    pub fn uniforms_for(&self, view: PixelRect, frame_size: [u32; 2]) -> BlitUniforms {
        let image = fit_frame(view, frame_size[0], frame_size[1]);
        BlitUniforms {
            image_origin: [image.x, image.y],
            image_size: [image.w, image.h],
            frame_size,
            _pad: [0; 2],
            letterbox: self.target_color(BACKGROUND_SRGB),
        }
    }

    /// An sRGB-encoded colour as the target expects it in a shader output.
    fn target_color(&self, c: [u8; 4]) -> [f32; 4] {
        let f = |v: u8| {
            let v = v as f32 / 255.0;
            if self.format.is_srgb() {
                if v <= 0.04045 {
                    v / 12.92
                } else {
                    ((v + 0.055) / 1.055).powf(2.4)
                }
            } else {
                v
            }
        };
        [f(c[0]), f(c[1]), f(c[2]), c[3] as f32 / 255.0]
    }

    /// Draw one frame into `target` (`size` = its width and height): clear, blit pane `i` into
    /// `views[i]` (panes without a frame stay background), then the HUD if given. Submits.
    pub fn render(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        target: &wgpu::TextureView,
        size: [u32; 2],
        views: &[PixelRect],
        ui: Option<UiFrame>,
    ) {
        let [width, height] = size;
        for (i, view) in views.iter().enumerate() {
            if let Some(Some(pane)) = self.panes.get(i) {
                let u = self.uniforms_for(*view, pane.frame_size);
                queue.write_buffer(&pane.uniforms, 0, bytemuck::bytes_of(&u));
            }
        }
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("frame pass"),
        });
        let screen = egui_wgpu::ScreenDescriptor {
            size_in_pixels: size,
            pixels_per_point: ui.as_ref().map_or(1.0, |u| u.pixels_per_point),
        };
        let mut extra = Vec::new();
        if let Some(ui) = &ui {
            for (id, delta) in &ui.textures_delta.set {
                self.egui.update_texture(device, queue, *id, delta);
            }
            extra = self
                .egui
                .update_buffers(device, queue, &mut encoder, &ui.primitives, &screen);
        }
        let bg = self.target_color(BACKGROUND_SRGB);
        {
            let mut pass = encoder
                .begin_render_pass(&wgpu::RenderPassDescriptor {
                    label: Some("frame pass"),
                    color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                        view: target,
                        resolve_target: None,
                        ops: wgpu::Operations {
                            load: wgpu::LoadOp::Clear(wgpu::Color {
                                r: bg[0] as f64,
                                g: bg[1] as f64,
                                b: bg[2] as f64,
                                a: 1.0,
                            }),
                            store: wgpu::StoreOp::Store,
                        },
                        depth_slice: None,
                    })],
                    depth_stencil_attachment: None,
                    timestamp_writes: None,
                    occlusion_query_set: None,
                    multiview_mask: None,
                })
                .forget_lifetime();
            pass.set_pipeline(&self.pipeline);
            for (i, view) in views.iter().enumerate() {
                let Some(Some(pane)) = self.panes.get(i) else {
                    continue;
                };
                let clip = view.clamp_to(width, height);
                if clip.is_empty() {
                    continue;
                }
                pass.set_scissor_rect(clip.x as u32, clip.y as u32, clip.w, clip.h);
                pass.set_bind_group(0, &pane.bind_group, &[]);
                pass.draw(0..3, 0..1);
            }
            pass.set_scissor_rect(0, 0, width, height);
            if let Some(ui) = &ui {
                self.egui.render(&mut pass, &ui.primitives, &screen);
            }
        }
        queue.submit(extra.into_iter().chain(std::iter::once(encoder.finish())));
        if let Some(ui) = &ui {
            for id in &ui.textures_delta.free {
                self.egui.free_texture(id);
            }
        }
    }
}
