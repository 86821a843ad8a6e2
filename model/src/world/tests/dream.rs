//! The dreamed `Env`: a fake maze-like scene drives poses; the dream returns frames of the
//! model's resolution from the session, keeps the real frame beside it, and is reproducible.

use std::sync::Arc;

use scenes::{Env, Frame, MazeInfo, Pose, SceneKind, StepInfo, StepOutput};

use super::common::*;
use crate::tolerance::assert_close;
use crate::world::dream::DreamEnv;
use crate::world::frames::{frames_to_tensor, maze_pose_features, tensor_to_frame};
use crate::world::session::{single_frame_conditions, WorldSession};

/// A 4×4-cell corridor that renders its pose as colours at 32×32 (twice the test model's 16).
struct FakeMaze {
    pose: Pose,
    steps: usize,
}

impl FakeMaze {
    fn out(&self) -> StepOutput {
        let mut frame = Frame::new(32, 32);
        for y in 0..32 {
            for x in 0..32 {
                let r = (self.pose.position[0] * 60.0) as u8;
                let g = ((self.pose.yaw.sin() + 1.0) * 100.0) as u8;
                frame.set_pixel(x, y, [r, g, (x * 8 + y) as u8]);
            }
        }
        StepOutput {
            frame,
            reward: 0.0,
            done: false,
            truncated: false,
            pose: self.pose,
            info: StepInfo::Maze(MazeInfo {
                size: 4,
                layout: Arc::new(vec![1; 16]),
                targets_pos: vec![[3.5, 3.5]],
                target: 0,
                target_color: [1.0, 0.0, 0.0],
            }),
        }
    }
}

impl Env for FakeMaze {
    fn scene(&self) -> SceneKind {
        SceneKind::Maze
    }
    fn action_names(&self) -> &[&'static str] {
        &[
            "noop",
            "forward",
            "turn_left",
            "turn_right",
            "forward_left",
            "forward_right",
        ]
    }
    fn resolution(&self) -> usize {
        32
    }
    fn reset(&mut self, seed: u64) -> StepOutput {
        self.pose = Pose {
            position: [0.5 + (seed % 2) as f64, 0.5, 0.0],
            yaw: 0.0,
        };
        self.steps = 0;
        self.out()
    }
    fn step(&mut self, action: usize) -> StepOutput {
        match action {
            1 => self.pose.position[0] = (self.pose.position[0] + 0.25).min(3.5),
            2 => self.pose.yaw += 0.3,
            3 => self.pose.yaw -= 0.3,
            _ => {}
        }
        self.steps += 1;
        self.out()
    }
    fn steps(&self) -> usize {
        self.steps
    }
}

fn fake() -> Box<dyn Env> {
    Box::new(FakeMaze {
        pose: Pose {
            position: [0.5, 0.5, 0.0],
            yaw: 0.0,
        },
        steps: 0,
    })
}

#[test]
fn dream_env_equals_a_session_driven_by_hand_and_is_reproducible() {
    let cfg = test_config("tiny");
    let model = randomized_model(&cfg, 700);
    let mut dream = DreamEnv::new(fake(), model.clone(), Default::default()).unwrap();
    dream.session_mut().set_sampling_steps(2);
    let first = dream.reset(1);
    assert_eq!((first.frame.width, dream.resolution()), (16, 16));

    // The same conditions through a session by hand.
    let mut real = fake();
    let out0 = real.reset(1);
    let mut session = WorldSession::new(model.clone(), Default::default());
    session.set_sampling_steps(2);
    let pose_of = |o: &StepOutput| {
        let StepInfo::Maze(info) = &o.info else {
            unreachable!()
        };
        maze_pose_features(
            [o.pose.position[0], o.pose.position[1]],
            o.pose.heading(),
            info.size,
        )
    };
    let p0 = pose_of(&out0);
    session.prefill(
        frames_to_tensor(&[out0.frame.clone()], 16, &Default::default()).unwrap(),
        &single_frame_conditions(Some(0), Some(&p0), &Default::default()),
    );

    let mut dreamed = Vec::new();
    for (i, a) in [1usize, 2, 1].into_iter().enumerate() {
        let out = dream.step(a);
        let real_out = real.step(a);
        assert_eq!(
            dream.last_real_frame(),
            Some(&real_out.frame),
            "real frame kept beside the dream"
        );
        assert_eq!(out.pose, real_out.pose, "pose comes from the real scene");
        assert_eq!(dream.steps(), i + 1);
        assert!(dream.last_latency_ms() > 0.0);
        let p = pose_of(&real_out);
        // DreamEnv derives the noise seed from the episode seed and the step index.
        let seed = scenes::Rng::new(1 ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64();
        let by_hand = session.generate(Some(a), Some(p), seed);
        let [_, h, w, c] = by_hand.dims();
        assert_eq!(
            out.frame,
            tensor_to_frame(by_hand.reshape([h, w, c])),
            "step {i}"
        );
        dreamed.push(out.frame);
    }

    // Same seed, same actions: the same dream.
    let mut again = DreamEnv::new(fake(), model, Default::default()).unwrap();
    again.session_mut().set_sampling_steps(2);
    again.reset(1);
    for (a, want) in [1usize, 2, 1].into_iter().zip(&dreamed) {
        assert_eq!(&again.step(a).frame, want);
    }
}

#[test]
fn dream_env_rejects_a_model_for_another_action_set() {
    let cfg = test_config("voxel-small"); // 5 actions, the fake maze has 6
    let err = DreamEnv::new(
        fake(),
        cfg.init::<B>(&Default::default()),
        Default::default(),
    )
    .err();
    assert!(matches!(
        err,
        Some(crate::world::WorldError::InvalidConfig { .. })
    ));
}

#[test]
fn fresh_model_predicts_zero_velocity() {
    // adaLN-Zero: gates and head start at zero, so an untrained model predicts v = 0.
    let cfg = test_config("tiny");
    let model = cfg.init::<B>(&Default::default());
    let mut rng = scenes::Rng::new(1);
    let x = random_frames(&cfg, 1, 3, &mut rng);
    let v = model.forward(
        x.clone(),
        random_taus(1, 3, &mut rng),
        &random_conditions(&cfg, 1, 3, &mut rng),
    );
    assert_close("fresh model output", v, x.zeros_like(), 0.0, 0.0);
}
