// Prepended to every kernel (src/gpu/kernels.rs): the engine's buffers, one
// bind group shared by all kernels, and the activation functions.
//
// Every tensor lives at an element offset inside one of these buffers; the
// offsets and shapes of each dispatch come in its `Params` uniform `p`
// (group 1, a dynamic offset into one buffer of all dispatches' parameters).
// Each file's `struct Params` is generated from its Rust struct in
// src/gpu/ops/<file>.rs, where its fields are documented, and put between
// this prelude and the file.
// Memory layouts are those of the CPU engine (src/cpu/lstm.rs, src/gpu/mod.rs).

@group(0) @binding(0) var<storage, read_write> params: array<f32>;
@group(0) @binding(1) var<storage, read_write> grads: array<f32>;
// Adam's first moments in [0, P), second moments in [P, 2P).
@group(0) @binding(2) var<storage, read_write> moments: array<f32>;
// Activations, their gradients, carried states and scratch (the arena).
@group(0) @binding(3) var<storage, read_write> acts: array<f32>;
// The training or inference audio, [frames, channels] interleaved, normalized.
@group(0) @binding(4) var<storage, read> signal: array<f32>;
// Per lane: its first position in `signal` ([0, B)), then its carry flag ([B, 2B)).
@group(0) @binding(5) var<storage, read> lanes: array<u32>;
// Step scalars and the ring of read-back losses and norms (src/gpu/mod.rs).
@group(0) @binding(6) var<storage, read_write> stats: array<f32>;
// Recurrent state carried between calls: training lanes' h and c, then
// inference lanes' h and c, each [L, B, H] (src/gpu/arena.rs).
@group(0) @binding(7) var<storage, read_write> carry: array<f32>;

// The step scalars at the head of `stats`, written by the host before each
// step (layout in src/gpu/mod.rs): Adam's lr / (1 − β1ᵗ), √(1 − β2ᵗ) and
// 1 − lr·wd, computed in f64 on the host (cpu::adam::StepConstants).
const STEP_SIZE: u32 = 0u;
const BIAS_CORRECTION2_SQRT: u32 = 1u;
const DECAY: u32 = 2u;
const SLOT: u32 = 3u;
// ... and written by the norm kernel for Adam.
const CLIP_SCALE: u32 = 4u;
const FINITE: u32 = 5u;

// Threads per workgroup of the one-dimensional kernels.
const WG: u32 = 64u;
// An offset meaning "no such tensor".
const NONE: u32 = 0xffffffffu;

// The inputs of a 1-D kernel dispatched as a 2-D grid of WG-thread
// workgroups (one grid dimension holds at most 65,535 workgroups).
struct Grid {
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
}

// Linear thread index of a 1-D kernel.
fn thread_index(gid: Grid) -> u32 {
    return (gid.wid.y * gid.nwg.x + gid.wid.x) * WG + gid.lid;
}

// Gate activation: 0 = logistic sigmoid, 1 = Keras 2.2's hard sigmoid clip(0.2x + 0.5, 0, 1).
fn gate_act(kind: u32, x: f32) -> f32 {
    if kind == 0u {
        return 1.0 / (1.0 + exp(-x));
    }
    return clamp(0.2 * x + 0.5, 0.0, 1.0);
}

// Derivative of the gate activation where its output is y.
fn gate_grad(kind: u32, y: f32) -> f32 {
    if kind == 0u {
        return y * (1.0 - y);
    }
    return select(0.0, 0.2, y > 0.0 && y < 1.0);
}

// Cell activation: 0 = tanh, 1 = linear. Some drivers evaluate tanh through
// exp and return NaN for large |x|, where tanh is ±1 to f32 precision.
fn cell_act(kind: u32, x: f32) -> f32 {
    if kind == 0u {
        return select(tanh(x), sign(x), abs(x) > 10.0);
    }
    return x;
}

fn cell_grad(kind: u32, y: f32) -> f32 {
    if kind == 0u {
        return 1.0 - y * y;
    }
    return 1.0;
}

// True for a finite f32, read from its bits: on some drivers `x != x` is
// false for NaN and min/max swallow it.
fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) < 0x7f800000u;
}

// Loss burn-in (twin of cpu::network::BurnIn): row r = t·B + lane of a
// [T, B] batch counts unless t < burn_in and the lane starts from a zero
// state (its carry flag, lanes[B + lane], is 0).
fn burn_in_counts(row: u32, b: u32, burn_in: u32) -> bool {
    if burn_in == 0u {
        return true;
    }
    return row / b >= burn_in || lanes[b + row % b] != 0u;
}

// How many of the `rows` = T·B rows count.
fn burn_in_counted(rows: u32, b: u32, burn_in: u32) -> u32 {
    if burn_in == 0u {
        return rows;
    }
    var fresh = 0u;
    for (var lane = 0u; lane < b; lane++) {
        if lanes[b + lane] == 0u {
            fresh++;
        }
    }
    return rows - fresh * min(burn_in, rows / b);
}

// How many of `n` targets (rows of `channels`) a loss counts, at least 1.
fn targets_counted(n: u32, channels: u32, b: u32, burn_in: u32) -> u32 {
    let c = max(channels, 1u);
    return max(burn_in_counted(n / c, b, burn_in) * c, 1u);
}
