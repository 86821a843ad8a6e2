//! Dreamed rollouts and inference exports through the binary, as a user runs them: `memworld
//! export` writes an f16 inference checkpoint, `rollout --checkpoint` writes a real | dreamed
//! GIF whose left half is the real scene's rollout and whose dreamed frames match the model
//! driven directly through `DreamEnv`, and a missing model gives one error line.

mod common;

use std::path::Path;

use burn::backend::NdArray;
use common::{memworld_env as memworld, scratch, text, tiny_checkpoint};
use image::AnimationDecoder;
use model::world::frames::resize_frame;
use model::world::{load_for_inference, DreamEnv};
use scenes::policy::by_name;
use scenes::record::policy_seed;
use scenes::{Env, Frame, SceneKind};

/// The frames of an animated GIF, as RGB.
fn gif_frames(path: &Path) -> Vec<image::RgbImage> {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    image::codecs::gif::GifDecoder::new(file)
        .unwrap()
        .into_frames()
        .map(|f| image::DynamicImage::ImageRgba8(f.unwrap().into_buffer()).into_rgb8())
        .collect()
}

/// Mean absolute difference between a GIF half (`x0`, `r`×`r`) and a frame, per channel value.
fn mean_abs_diff(img: &image::RgbImage, x0: u32, frame: &Frame) -> f64 {
    let r = frame.width as u32;
    let mut sum = 0.0;
    for y in 0..r {
        for x in 0..r {
            let a = img.get_pixel(x0 + x, y).0;
            let b = frame.pixel(x as usize, y as usize);
            sum += (0..3)
                .map(|k| (a[k] as f64 - b[k] as f64).abs())
                .sum::<f64>();
        }
    }
    sum / (3 * r * r) as f64
}

#[test]
fn exported_model_dreams_a_rollout_beside_the_real_scene() {
    let dir = scratch("dream_rollout");
    let run = tiny_checkpoint(&dir.join("run"), 3, 4);
    let exported = dir.join("models").join("maze");
    let out = memworld(
        &[
            "export",
            "--checkpoint",
            run.to_str().unwrap(),
            "--out",
            exported.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "export: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("tiny at step 3"),
        "{}",
        text(&out.stdout)
    );

    // The shipped-model lookup finds it through MEMWORLD_ASSETS; --dream uses it.
    let (gif, sheet) = (dir.join("dream.gif"), dir.join("dream.png"));
    let (steps, context, seed) = (4usize, 2usize, 3u64);
    let out = memworld(
        &[
            "rollout",
            "maze",
            "--dream",
            "--steps",
            "4",
            "--context",
            "2",
            "--seed",
            "3",
            "--scale",
            "1",
            "--out",
            gif.to_str().unwrap(),
            "--sheet",
            sheet.to_str().unwrap(),
            "--sheet-frames",
            "7",
            "--sheet-columns",
            "7",
        ],
        &[("MEMWORLD_ASSETS", dir.to_str().unwrap())],
    );
    assert!(out.status.success(), "rollout: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("mean PSNR") && stdout.contains("ms/frame"),
        "{stdout}"
    );

    // Independently: the same model, scene, policy and seed through DreamEnv.
    let (model, _) = load_for_inference::<NdArray>(&exported, &Default::default()).unwrap();
    // The scene renders 64×64; the tiny model sees and dreams 32×32.
    let real = scenes::factory::make_env(SceneKind::Maze, 9, 64).unwrap();
    let mut env = DreamEnv::new(real, model, Default::default()).unwrap();
    let mut policy = by_name("explore", SceneKind::Maze, 6, policy_seed(seed)).unwrap();
    let view = |f: &Frame| resize_frame(f, 32).unwrap();
    let mut last = env.reset(seed);
    let first = view(env.last_real_frame().unwrap());
    let mut expected: Vec<(Frame, Frame)> = vec![(first.clone(), first)];
    for _ in 0..context {
        let a = policy.act(&last);
        last = env.observe_real(&[a]).unwrap().unwrap();
        expected.push((view(&last.frame), view(&last.frame)));
    }
    for _ in 0..steps {
        let a = policy.act(&last);
        last = env.step(a);
        expected.push((view(env.last_real_frame().unwrap()), last.frame.clone()));
    }

    // The GIF holds every frame; its palette is lossy, so pixels are checked on the PNG sheet.
    let frames = gif_frames(&gif);
    assert_eq!(frames.len(), 1 + context + steps);
    assert!(frames
        .iter()
        .all(|f| f.dimensions() == (2 * 32 + 2, 32 + 3)));
    let sheet = image::open(&sheet).unwrap().into_rgb8();
    for (i, (real, dream)) in expected.iter().enumerate() {
        let x0 = 2 + i as u32 * (2 * 32 + 2 + 2);
        let sub = image::imageops::crop_imm(&sheet, x0, 2, 2 * 32 + 2, 32).to_image();
        assert_eq!(
            mean_abs_diff(&sub, 0, real),
            0.0,
            "frame {i}: left half is not the real frame"
        );
        assert_eq!(
            mean_abs_diff(&sub, 34, dream),
            0.0,
            "frame {i}: right half is not the dream"
        );
        if i > context {
            assert!(
                mean_abs_diff(&sub, 34, real) > 1.0,
                "frame {i}: a dreamed frame should differ from the real one"
            );
        }
    }
}

#[test]
fn dreaming_without_a_model_says_how_to_get_one() {
    let dir = scratch("dream_missing");
    let gif = dir.join("x.gif");
    let out = memworld(
        &[
            "rollout",
            "maze",
            "--dream",
            "--steps",
            "2",
            "--out",
            gif.to_str().unwrap(),
        ],
        &[("MEMWORLD_ASSETS", dir.to_str().unwrap())],
    );
    let err = text(&out.stderr);
    assert!(!out.status.success() && !err.contains("panicked"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
    assert!(err.contains("--checkpoint"), "{err}");
    // The player loads the model before it opens a window, so it fails the same way.
    let out = memworld(
        &["play", "maze", "--dream"],
        &[("MEMWORLD_ASSETS", dir.to_str().unwrap())],
    );
    let err = text(&out.stderr);
    assert!(!out.status.success() && !err.contains("panicked"), "{err}");
    assert!(
        err.starts_with("error:") && err.contains("--checkpoint"),
        "{err}"
    );
    let out = memworld(
        &[
            "rollout",
            "maze",
            "--checkpoint",
            dir.join("nope").to_str().unwrap(),
            "--steps",
            "2",
            "--out",
            gif.to_str().unwrap(),
        ],
        &[],
    );
    let err = text(&out.stderr);
    assert!(!out.status.success() && !err.contains("panicked"), "{err}");
    assert!(err.starts_with("error:") && err.contains("nope"), "{err}");
}
