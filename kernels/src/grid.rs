//! The device side of [`crate::dispatch::row_grid`]: which cube of such a grid a unit runs in.

use cubecl::prelude::*;

use crate::dispatch::GRID_X;

/// The cube's index in a [`crate::dispatch::row_grid`] (`GRID_X` wide, continued along y).
#[cube]
pub(crate) fn cube_index() -> usize {
    CUBE_POS_X as usize + CUBE_POS_Y as usize * GRID_X
}
