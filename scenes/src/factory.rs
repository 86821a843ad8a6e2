//! Builds a scene by kind, for callers that choose the scene at run time (the CLI, the recorder,
//! the player).

use crate::maze::{MazeConfig, MazeEnv};
use crate::voxel::{VoxelConfig, VoxelEnv, WORLD_SIZE};
use crate::{Env, SceneError, SceneKind};

/// The default `size` of a scene: 9 maze cells per side; the voxel world's fixed side in blocks.
pub fn default_size(kind: SceneKind) -> usize {
    match kind {
        SceneKind::Maze => 9,
        SceneKind::Voxel => WORLD_SIZE[0],
    }
}

/// A validated environment of `kind`: a `size`×`size` maze, or the voxel world (whose size is
/// fixed, so `size` is ignored), rendering `resolution`×`resolution` frames. Episode lengths are
/// the scene defaults; callers that record longer episodes simply keep stepping.
pub fn make_env(
    kind: SceneKind,
    size: usize,
    resolution: usize,
) -> Result<Box<dyn Env>, SceneError> {
    Ok(match kind {
        SceneKind::Maze => Box::new(MazeEnv::try_new(
            MazeConfig::new(size)?.with_resolution(resolution)?,
        )?),
        SceneKind::Voxel => Box::new(VoxelEnv::new(VoxelConfig {
            resolution,
            ..VoxelConfig::default()
        })?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_each_scene_and_rejects_bad_settings() {
        let maze = make_env(SceneKind::Maze, 11, 128).unwrap();
        assert_eq!(
            (maze.scene(), maze.resolution(), maze.action_names().len()),
            (SceneKind::Maze, 128, 6)
        );
        let voxel = make_env(SceneKind::Voxel, default_size(SceneKind::Voxel), 64).unwrap();
        assert_eq!(
            (
                voxel.scene(),
                voxel.resolution(),
                voxel.action_names().len()
            ),
            (SceneKind::Voxel, 64, 5)
        );
        assert_eq!(
            make_env(SceneKind::Maze, 10, 64).err(),
            Some(SceneError::InvalidMazeSize(10))
        );
        assert_eq!(
            make_env(SceneKind::Maze, 9, 100).err(),
            Some(SceneError::InvalidResolution(100))
        );
        assert_eq!(
            make_env(SceneKind::Voxel, 128, 256).err(),
            Some(SceneError::InvalidVoxelResolution(256))
        );
    }
}
