//! Conversions between the scenes' frames (u8 RGB, SPEC §4) and the model's values in
//! [-1, 1] (SPEC §5.1), with box-filter downsampling when a scene renders at a multiple of the
//! model's resolution, and the maze pose features the model is conditioned on (SPEC §5.2).

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use scenes::Frame;

use super::error::WorldError;

/// A frame's pixels as f32 in [-1, 1] (v/127.5 − 1), `[resolution, resolution, 3]` row-major,
/// box-averaged down when the frame is an integer multiple of `resolution`.
pub fn frame_to_unit(frame: &Frame, resolution: usize) -> Result<Vec<f32>, WorldError> {
    let (w, h) = (frame.width, frame.height);
    if w != h || resolution == 0 || w % resolution != 0 || frame.rgb.len() != w * h * 3 {
        return Err(WorldError::Shape(format!(
            "a {w}×{h} frame ({} bytes) cannot be converted to {resolution}×{resolution} \
             (square frames of an integer multiple of the model's resolution only)",
            frame.rgb.len()
        )));
    }
    let k = w / resolution;
    let norm = 1.0 / (127.5 * (k * k) as f32);
    let mut out = Vec::with_capacity(resolution * resolution * 3);
    for y in 0..resolution {
        for x in 0..resolution {
            for c in 0..3 {
                let mut sum = 0u32;
                for dy in 0..k {
                    let row = (y * k + dy) * w;
                    for dx in 0..k {
                        sum += frame.rgb[(row + x * k + dx) * 3 + c] as u32;
                    }
                }
                out.push(sum as f32 * norm - 1.0);
            }
        }
    }
    Ok(out)
}

/// Frames as a tensor `[1, n, resolution, resolution, 3]` in [-1, 1].
pub fn frames_to_tensor<B: Backend>(
    frames: &[Frame],
    resolution: usize,
    device: &B::Device,
) -> Result<Tensor<B, 5>, WorldError> {
    let mut v = Vec::with_capacity(frames.len() * resolution * resolution * 3);
    for f in frames {
        v.extend(frame_to_unit(f, resolution)?);
    }
    Ok(Tensor::from_data(
        TensorData::new(v, [1, frames.len(), resolution, resolution, 3]),
        device,
    ))
}

/// `frame` as the model sees it at `resolution`: box-averaged down by an integer factor (the
/// same pixels the model is given, rounded back to bytes).
pub fn resize_frame(frame: &Frame, resolution: usize) -> Result<Frame, WorldError> {
    Ok(Frame {
        width: resolution,
        height: resolution,
        rgb: frame_to_unit(frame, resolution)?
            .into_iter()
            .map(unit_to_u8)
            .collect(),
    })
}

/// A value in [-1, 1] (clamped) as a byte: round((v + 1)·127.5).
pub fn unit_to_u8(v: f32) -> u8 {
    ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8
}

/// A frame tensor `[H, W, 3]` in [-1, 1] as a scenes frame (values outside are clamped).
pub fn tensor_to_frame<B: Backend>(t: Tensor<B, 3>) -> Frame {
    let [h, w, c] = t.dims();
    assert_eq!(c, 3, "frames are RGB");
    let v = t
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("f32 frame data");
    Frame {
        width: w,
        height: h,
        rgb: v.into_iter().map(unit_to_u8).collect(),
    }
}

/// The maze pose features (SPEC §5.2): [x/N, y/N, cos yaw, sin yaw] for position (x, y) in cell
/// units, unit heading (cos yaw, sin yaw) = `agent_dir` of the episode files, and N cells per
/// side.
pub fn maze_pose_features(position: [f64; 2], heading: [f64; 2], size: usize) -> [f32; 4] {
    let n = size as f64;
    [
        (position[0] / n) as f32,
        (position[1] / n) as f32,
        heading[0] as f32,
        heading[1] as f32,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    #[test]
    fn round_trip_and_box_downsampling() {
        let mut f = Frame::new(4, 4);
        for (i, b) in f.rgb.iter_mut().enumerate() {
            *b = (i * 5 % 256) as u8;
        }
        let same = frame_to_unit(&f, 4).unwrap();
        let t = Tensor::<NdArray, 1>::from_data(TensorData::new(same, [48]), &Default::default());
        assert_eq!(tensor_to_frame(t.reshape([4, 4, 3])), f);

        // 2× down: each output pixel averages a 2×2 block.
        let half = frame_to_unit(&f, 2).unwrap();
        for (y, x, c) in [(0, 0, 0), (1, 1, 2), (0, 1, 1)] {
            let mean: f32 = (0..2)
                .flat_map(|dy| (0..2).map(move |dx| (dy, dx)))
                .map(|(dy, dx)| f.pixel(2 * x + dx, 2 * y + dy)[c] as f32)
                .sum::<f32>()
                / 4.0;
            assert!((half[(y * 2 + x) * 3 + c] - (mean / 127.5 - 1.0)).abs() < 1e-6);
        }
        assert!(frame_to_unit(&f, 3).is_err());
    }
}
