//! `memworld play --dream`: the environments of the dreamed player — the real scene in the left
//! pane and the world model's dream of it in the right one, both driven by the same keys (the
//! dream's poses come from its own copy of the real scene's physics, SPEC §5.2). The model is
//! loaded once per scene (from --checkpoint, else the shipped model for that scene).

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::backend::Backend;
use scenes::SceneKind;

use crate::commands::backend::{run_on, BackendKind, OnBackend};
use crate::commands::make_scene;
use crate::models::{checkpoint_for, dream_env, load_model, LoadedModel, Sampling};
use crate::player::sim::{EnvFactory, PaneEnv};

/// The pane factory of dreamed play. Loads the first scene's model now, so a missing or
/// damaged checkpoint is reported before the window opens.
pub fn dream_factory(
    scene: SceneKind,
    checkpoint: Option<PathBuf>,
    size: usize,
    res: usize,
    sampling: Sampling,
    backend: BackendKind,
) -> Result<EnvFactory> {
    run_on(
        backend,
        Job {
            scene,
            checkpoint,
            size,
            res,
            sampling,
        },
    )
}

struct Job {
    scene: SceneKind,
    checkpoint: Option<PathBuf>,
    size: usize,
    res: usize,
    sampling: Sampling,
}

impl OnBackend for Job {
    type Output = EnvFactory;
    fn run<B: Backend>(self, device: B::Device) -> Result<EnvFactory> {
        let mut models: HashMap<SceneKind, LoadedModel<B>> = HashMap::new();
        let first = load_model::<B>(
            &checkpoint_for(self.scene, self.checkpoint.as_deref())?,
            &device,
        )?;
        models.insert(self.scene, first);
        let Job {
            checkpoint,
            size,
            res,
            sampling,
            ..
        } = self;
        Ok(Box::new(move |kind| {
            if !models.contains_key(&kind) {
                let loaded = checkpoint_for(kind, checkpoint.as_deref())
                    .and_then(|p| load_model::<B>(&p, &device))
                    .map_err(|e| format!("{e:#}"))?;
                models.insert(kind, loaded);
            }
            let loaded = &models[&kind];
            let dream = dream_env(loaded, kind, size, res, sampling, &device)
                .map_err(|e| format!("{e:#}"))?;
            let real = make_scene(kind, size, res).map_err(|e| format!("{e:#}"))?;
            Ok(vec![
                PaneEnv {
                    label: format!("real · {}", kind.name()),
                    env: real,
                },
                PaneEnv {
                    label: format!("dreamed · {} (step {})", loaded.config.name, loaded.step),
                    env: Box::new(dream),
                },
            ])
        }))
    }
}
