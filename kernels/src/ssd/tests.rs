//! SSD kernels against the host f64 recurrence on wgpu (lavapipe in CI) and CUDA: outputs and
//! final states on awkward lengths and head layouts, outputs pre-filled with NaN so an element
//! the kernel never writes fails the comparison.

use burn::tensor::{Tensor, TensorData};

use super::forward::{launch_chunk_scan, launch_chunked_ssd, launch_ssd_step};
use super::reference::{chunk_scan_host, recurrent_ssd, SsdDims};
use crate::dispatch::{from_cube, to_cube};
use crate::testing::{cube_input, host, nan_output, uniform, Device, GpuTarget};
use crate::tolerance::{assert_close_slices, to_vec};

fn tensor<T: GpuTarget, const D: usize>(
    values: &[f32],
    shape: [usize; D],
    device: &Device<T>,
) -> Tensor<T::B, D> {
    Tensor::from_data(TensorData::new(values.to_vec(), shape), device)
}

/// Host inputs of one problem: x, dt (positive), A (negative), B, C, initial state.
struct Inputs {
    x: Vec<f32>,
    dt: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
    s0: Vec<f32>,
}

fn inputs(d: SsdDims, seed: u64) -> Inputs {
    let SsdDims {
        batch,
        seq,
        heads,
        head_dim,
        groups,
        d_state,
    } = d;
    let bc = batch * seq * groups * d_state;
    Inputs {
        x: uniform(batch * seq * heads * head_dim, -1.0, 1.0, seed),
        dt: uniform(batch * seq * heads, 0.01, 0.3, seed + 1),
        a: uniform(heads, -2.0, -0.2, seed + 2),
        b: uniform(bc, -1.0, 1.0, seed + 3),
        c: uniform(bc, -1.0, 1.0, seed + 4),
        s0: uniform(batch * heads * head_dim * d_state, -1.0, 1.0, seed + 5),
    }
}

fn check_chunked<T: GpuTarget>(d: SsdDims, seed: u64, device: &Device<T>) {
    let SsdDims {
        batch,
        seq,
        heads,
        head_dim,
        groups,
        d_state,
    } = d;
    let i = inputs(d, seed);
    let y = nan_output::<T, _>([batch, seq, heads, head_dim], device);
    let s = nan_output::<T, _>([batch, heads, head_dim, d_state], device);
    launch_chunked_ssd::<T::R>(
        cube_input::<T, 4>(&i.x, [batch, seq, heads, head_dim], device),
        cube_input::<T, 3>(&i.dt, [batch, seq, heads], device),
        cube_input::<T, 1>(&i.a, [heads], device),
        cube_input::<T, 4>(&i.b, [batch, seq, groups, d_state], device),
        cube_input::<T, 4>(&i.c, [batch, seq, groups, d_state], device),
        cube_input::<T, 4>(&i.s0, [batch, heads, head_dim, d_state], device),
        y.clone(),
        s.clone(),
    );
    let (y_ref, s_ref) = recurrent_ssd(d, &i.x, &i.dt, &i.a, &i.b, &i.c, &i.s0);
    let what = format!("{d:?}");
    assert_close_slices(&format!("y {what}"), &host::<T, 4>(y), &y_ref, 1e-4, 1e-5);
    assert_close_slices(
        &format!("final state {what}"),
        &host::<T, 4>(s),
        &s_ref,
        1e-4,
        1e-5,
    );
}

fn chunked_kernel_equals_recurrence_on_awkward_shapes<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    let dims = |batch, seq, heads, head_dim, groups, d_state| SsdDims {
        batch,
        seq,
        heads,
        head_dim,
        groups,
        d_state,
    };
    // Lengths 1, 63, 65, 500 (not multiples of the kernel's chunk), grouped B/C, odd sizes,
    // and the world model's head (head_dim 64, d_state 64), short and long.
    for (k, d) in [
        dims(1, 1, 2, 3, 1, 5),
        dims(2, 63, 4, 5, 2, 7),
        dims(1, 65, 3, 8, 3, 16),
        dims(1, 500, 2, 4, 1, 3),
        dims(3, 17, 2, 64, 1, 64),
        // Long: a bug that corrupts state shows up only after many chunks.
        dims(1, 1024, 2, 64, 1, 64),
    ]
    .into_iter()
    .enumerate()
    {
        check_chunked::<T>(d, 10 + k as u64, &device);
    }
}

fn public_entry_point_defaults_to_a_zero_initial_state<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    let d = SsdDims {
        batch: 1,
        seq: 20,
        heads: 2,
        head_dim: 3,
        groups: 1,
        d_state: 4,
    };
    let i = inputs(d, 3);
    let (y, s) = super::chunked_ssd(
        tensor::<T, _>(&i.x, [1, 20, 2, 3], &device),
        tensor::<T, _>(&i.dt, [1, 20, 2], &device),
        tensor::<T, _>(&i.a, [2], &device),
        tensor::<T, _>(&i.b, [1, 20, 1, 4], &device),
        tensor::<T, _>(&i.c, [1, 20, 1, 4], &device),
        None,
    );
    let zeros = vec![0.0; 2 * 3 * 4];
    let (y_ref, s_ref) = recurrent_ssd(d, &i.x, &i.dt, &i.a, &i.b, &i.c, &zeros);
    assert_close_slices("y", &to_vec(y), &y_ref, 1e-4, 1e-5);
    assert_close_slices("final state", &to_vec(s), &s_ref, 1e-4, 1e-5);
}

fn segmented_forward_equals_the_recurrence<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    // Segments that divide the length, that do not (padding), of one kernel chunk, and the
    // world model's heads; with and without an initial state.
    for (k, (d, segment)) in [
        ((2, 100, 3, 4, 1, 5), 16),
        ((1, 257, 2, 8, 2, 16), 48),
        ((2, 64, 4, 3, 2, 7), 32),
        ((1, 600, 2, 64, 1, 64), 256),
    ]
    .into_iter()
    .enumerate()
    {
        let (batch, seq, heads, head_dim, groups, d_state) = d;
        let d = SsdDims {
            batch,
            seq,
            heads,
            head_dim,
            groups,
            d_state,
        };
        let i = inputs(d, 50 + k as u64);
        for with_state in [false, true] {
            let zeros = vec![0.0; i.s0.len()];
            let s0 = if with_state { &i.s0 } else { &zeros };
            let (y, s) = super::segmented_ssd(
                tensor::<T, _>(&i.x, [batch, seq, heads, head_dim], &device),
                tensor::<T, _>(&i.dt, [batch, seq, heads], &device),
                tensor::<T, _>(&i.a, [heads], &device),
                tensor::<T, _>(&i.b, [batch, seq, groups, d_state], &device),
                tensor::<T, _>(&i.c, [batch, seq, groups, d_state], &device),
                with_state.then(|| tensor::<T, _>(s0, [batch, heads, head_dim, d_state], &device)),
                segment,
            );
            let (y_ref, s_ref) = recurrent_ssd(d, &i.x, &i.dt, &i.a, &i.b, &i.c, s0);
            let what = format!("{d:?} segment {segment} state {with_state}");
            assert_close_slices(&format!("y {what}"), &to_vec(y), &y_ref, 1e-4, 1e-5);
            assert_close_slices(
                &format!("final state {what}"),
                &to_vec(s),
                &s_ref,
                1e-4,
                1e-5,
            );
        }
    }
}

#[test]
fn segments_only_where_cubes_are_few_and_sequences_long() {
    assert_eq!(super::segment_length(4096, 100_000), None);
    assert_eq!(super::segment_length(256, 4096), None);
    assert_eq!(super::segment_length(64, 200), None);
    // 8 sequences × 8 heads of 16,384 steps: 32 segments of 512.
    assert_eq!(super::segment_length(64, 16_384), Some(512));
    let segment = super::segment_length(10, 5_000).unwrap();
    assert!(segment % 16 == 0 && segment >= 256 && segment < 5_000);
}

fn step_kernel_equals_one_step_of_the_recurrence<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    for (k, (batch, heads, head_dim, groups, d_state)) in
        // Heads of more rows than a cube takes a pass (256 units, 8 a row: 32 rows), rows of
        // several elements a unit (128 / 8) and of fewer than 8, and more cubes than one grid
        // dimension holds.
        [
            (1, 1, 1, 1, 1),
            (3, 4, 5, 2, 7),
            (2, 8, 64, 1, 64),
            (1, 3, 40, 3, 128),
            (2, 2, 33, 1, 3),
            (65_537, 1, 1, 1, 2),
        ]
        .into_iter()
        .enumerate()
    {
        let d = SsdDims {
            batch,
            seq: 1,
            heads,
            head_dim,
            groups,
            d_state,
        };
        let i = inputs(d, 40 + k as u64);
        let y = nan_output::<T, _>([batch, heads, head_dim], &device);
        let s = nan_output::<T, _>([batch, heads, head_dim, d_state], &device);
        launch_ssd_step::<T::R>(
            cube_input::<T, 3>(&i.x, [batch, heads, head_dim], &device),
            cube_input::<T, 2>(&i.dt, [batch, heads], &device),
            cube_input::<T, 1>(&i.a, [heads], &device),
            cube_input::<T, 3>(&i.b, [batch, groups, d_state], &device),
            cube_input::<T, 3>(&i.c, [batch, groups, d_state], &device),
            cube_input::<T, 4>(&i.s0, [batch, heads, head_dim, d_state], &device),
            y.clone(),
            s.clone(),
        );
        let (y_ref, s_ref) = recurrent_ssd(d, &i.x, &i.dt, &i.a, &i.b, &i.c, &i.s0);
        assert_close_slices(
            &format!("step y {d:?}"),
            &host::<T, 3>(y),
            &y_ref,
            1e-4,
            1e-5,
        );
        assert_close_slices(
            &format!("step state {d:?}"),
            &host::<T, 4>(s),
            &s_ref,
            1e-4,
            1e-5,
        );
    }
}

fn round_trip_through_the_cube_tensor_keeps_values<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    let values = uniform(24, -1.0, 1.0, 7);
    // A transposed (non-contiguous) view comes back contiguous with the same logical values.
    let t = tensor::<T, 3>(&values, [2, 3, 4], &device).swap_dims(0, 2);
    let expected = to_vec(t.clone());
    let back: Tensor<T::B, 3> = from_cube::<T::B, T::R, 3>(to_cube::<T::B, T::R, 3>(t));
    assert_eq!(to_vec(back), expected);
}

fn chunk_scan_equals_the_host_scan_both_ways<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    // One element; widths below, at and past a cube of 256; one chunk; many chunks.
    for (k, [rows, chunks, width]) in [
        [1, 1, 1],
        [3, 5, 7],
        [2, 9, 256],
        [4, 40, 300],
        [1, 513, 33],
    ]
    .into_iter()
    .enumerate()
    {
        let seed = 60 + 3 * k as u64;
        let log_decay = uniform(rows * chunks, -3.0, 0.0, seed);
        let local = uniform(rows * chunks * width, -1.0, 1.0, seed + 1);
        let initial = uniform(rows * width, -1.0, 1.0, seed + 2);
        for reverse in [false, true] {
            let states = nan_output::<T, _>([rows, chunks, width], &device);
            let last = nan_output::<T, _>([rows, width], &device);
            launch_chunk_scan::<T::R>(
                cube_input::<T, 2>(&log_decay, [rows, chunks], &device),
                cube_input::<T, 3>(&local, [rows, chunks, width], &device),
                cube_input::<T, 2>(&initial, [rows, width], &device),
                states.clone(),
                last.clone(),
                reverse,
            );
            let (states_ref, last_ref) =
                chunk_scan_host(&log_decay, &local, &initial, [rows, chunks, width], reverse);
            let what = format!("[{rows}, {chunks}, {width}] reverse {reverse}");
            assert_close_slices(
                &format!("states {what}"),
                &host::<T, 3>(states),
                &states_ref,
                1e-5,
                1e-6,
            );
            assert_close_slices(
                &format!("last {what}"),
                &host::<T, 2>(last),
                &last_ref,
                1e-5,
                1e-6,
            );
        }
    }
}

crate::gpu_tests!(
    chunk_scan_equals_the_host_scan_both_ways,
    segmented_forward_equals_the_recurrence,
    chunked_kernel_equals_recurrence_on_awkward_shapes,
    public_entry_point_defaults_to_a_zero_initial_state,
    step_kernel_equals_one_step_of_the_recurrence,
    round_trip_through_the_cube_tensor_keeps_values,
);
