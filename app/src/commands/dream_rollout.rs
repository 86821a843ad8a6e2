//! `memworld rollout --dream|--checkpoint`: a scripted policy walks the real scene while a world
//! model dreams what it sees; writes real | dreamed side by side as a GIF (and a sheet), and
//! reports the dream's PSNR against the real frames and the model's per-frame latency.

use anyhow::Result;
use burn::tensor::backend::Backend;
use indicatif::{ProgressBar, ProgressStyle};
use model::world::frames::resize_frame;
use model::world::metrics::psnr_frames;
use scenes::record::policy_seed;
use scenes::{Env, Frame};

use super::backend::{run_on, OnBackend};
use super::rollout::{write_sheet, RolloutArgs};
use super::{make_policy, resolve_size};
use crate::media;
use crate::models::{checkpoint_for, dream_env, load_model, Sampling};

pub fn run(args: RolloutArgs) -> Result<()> {
    run_on(args.model_backend, Job(args))
}

struct Job(RolloutArgs);

impl OnBackend for Job {
    type Output = ();
    fn run<B: Backend>(self, device: B::Device) -> Result<()> {
        dream::<B>(&self.0, &device)
    }
}

fn dream<B: Backend>(args: &RolloutArgs, device: &B::Device) -> Result<()> {
    let size = resolve_size(args.scene, args.size)?;
    let path = checkpoint_for(args.scene, args.checkpoint.as_deref())?;
    let loaded = load_model::<B>(&path, device)?;
    // The scene renders at --res; the model sees (and dreams) its own resolution, so real
    // frames are shown and scored as the model sees them.
    let r = loaded.config.resolution;
    let model_view = |f: &Frame| resize_frame(f, r);
    let mut env = dream_env(
        &loaded,
        args.scene,
        size,
        args.resolution,
        Sampling {
            euler_steps: args.euler_steps,
            history_noise: args.history_noise,
        },
        device,
    )?;
    let mut policy = make_policy(&args.policy, &env, policy_seed(args.seed))?;

    let total = args.context + args.steps;
    let bar = ProgressBar::new(2 * (total as u64 + 1)).with_style(
        ProgressStyle::with_template("{spinner} {msg} {wide_bar} {pos}/{len} ({eta})")
            .expect("valid template"),
    );
    bar.set_message("dreaming");
    // (real, shown, dreamed?) for every frame: context frames are real on both sides.
    let mut pairs: Vec<(Frame, Frame, bool)> = Vec::with_capacity(total + 1);
    let mut last = env.reset(args.seed);
    let first = model_view(env.last_real_frame().expect("a reset keeps the real frame"))?;
    pairs.push((first.clone(), first, false));
    bar.inc(1);
    for _ in 0..args.context {
        let a = policy.act(&last);
        last = env.observe_real(&[a])?.expect("one action was observed");
        let real = model_view(&last.frame)?;
        pairs.push((real.clone(), real, false));
        bar.inc(1);
    }
    let (mut latencies, mut psnrs) = (Vec::new(), Vec::new());
    for _ in 0..args.steps {
        let a = policy.act(&last);
        last = env.step(a);
        let real = model_view(env.last_real_frame().expect("a step keeps the real frame"))?;
        latencies.push(env.frame_latency_ms().unwrap_or(0.0));
        psnrs.push(psnr_frames(&real, &last.frame));
        pairs.push((real, last.frame.clone(), true));
        bar.inc(1);
    }
    bar.set_message("encoding GIF");
    let frames: Vec<Frame> = pairs
        .iter()
        .map(|(real, shown, dreamed)| media::side_by_side(real, shown, *dreamed))
        .collect();
    media::write_gif(&args.out, &frames, args.fps, args.scale, &mut || bar.inc(1))?;
    bar.finish_and_clear();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    println!(
        "wrote {} (real | dreamed, {} frames: {} real context + {} dreamed; {} at step {} from {})",
        args.out.display(),
        frames.len(),
        args.context + 1,
        args.steps,
        loaded.config.name,
        loaded.step,
        path.display()
    );
    if !latencies.is_empty() {
        println!(
            "dreamed vs real: mean PSNR {:.2} dB; model latency {:.1} ms/frame (mean over {} frames)",
            mean(&psnrs),
            mean(&latencies),
            latencies.len()
        );
    }
    write_sheet(args, &frames)
}
