// Frame blit for the desktop player: draws one observation frame into its pane of the window,
// nearest-neighbour upscaled with its aspect preserved and the rest of the pane letterboxed.
//
// The mapping is integer arithmetic on pixel indices (no sampler, no filtering), so the CPU can
// predict every output pixel exactly: target pixel p inside the image maps to frame texel
// t = (p - image_origin) * frame_size / image_size (integer division = floor).
//
// `BlitUniforms` is mirrored by `memworld::player::render::BlitUniforms` (`#[repr(C)]`); a test
// reflects this file with naga and checks the size and every member offset.

struct BlitUniforms {
    // Top-left corner of the upscaled image, in target pixels (y down).
    image_origin: vec2<i32>,
    // Size of the upscaled image, in target pixels.
    image_size: vec2<u32>,
    // Size of the frame texture, in texels.
    frame_size: vec2<u32>,
    // Keeps `letterbox` 16-byte aligned; unused.
    _pad: vec2<u32>,
    // Colour of the pane outside the image (in the target's colour space).
    letterbox: vec4<f32>,
};

@group(0) @binding(0) var<uniform> params: BlitUniforms;
@group(0) @binding(1) var frame: texture_2d<f32>;

// One triangle covering the whole viewport; the scissor rectangle limits it to the pane.
@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> @builtin(position) vec4<f32> {
    let corner = vec2<f32>(f32((index << 1u) & 2u), f32(index & 2u));
    return vec4<f32>(corner * 2.0 - 1.0, 0.0, 1.0);
}

@fragment
fn fs_main(@builtin(position) position: vec4<f32>) -> @location(0) vec4<f32> {
    // `position.xy` is the pixel centre (x + 0.5, y + 0.5) in target pixels.
    let p = vec2<i32>(floor(position.xy)) - params.image_origin;
    if (p.x < 0 || p.y < 0) {
        return params.letterbox;
    }
    let q = vec2<u32>(p);
    if (q.x >= params.image_size.x || q.y >= params.image_size.y) {
        return params.letterbox;
    }
    let texel = (q * params.frame_size) / params.image_size;
    return vec4<f32>(textureLoad(frame, vec2<i32>(texel), 0).rgb, 1.0);
}
