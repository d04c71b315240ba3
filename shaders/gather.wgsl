// The batch's input windows and targets, gathered from the signal on the
// device (twin of dataset::gather). Position p of lane b at timestep t is
// min(start_b + t, frames - 2); its input is the `frame` frames ending at p,
// its target the frame p + 1 of the target signal, which starts at element
// `targets_at` of `signal` (0: the signal is its own target). The input
// signal has `in_width` values a frame (C, or more for a model that reads
// features), the target signal C. A laplace head's per-target bin widths,
// when given (`deltas_at` > 0, laid out like the targets), travel beside them.
//   x[T, B, frame·W], target[T, B, C], delta[T, B, C] in `acts`.

@compute @workgroup_size(64)
fn main(gid: Grid) {
    let id = thread_index(gid);
    let width = p.frame * p.in_width;
    // Each thread writes one row's inputs and targets: rows = T·B.
    let row = id;
    if row >= p.t * p.b {
        return;
    }
    let step = row / p.b;
    let lane = row % p.b;
    let pos = min(lanes[lane] + step, p.frames - 2u);
    let w0 = (pos + 1u - p.frame) * p.in_width;
    for (var k = 0u; k < width; k++) {
        acts[p.x + row * width + k] = signal[w0 + k];
    }
    for (var c = 0u; c < p.channels; c++) {
        acts[p.targets + row * p.channels + c] = signal[p.targets_at + (pos + 1u) * p.channels + c];
    }
    if p.deltas_at > 0u {
        for (var c = 0u; c < p.channels; c++) {
            acts[p.deltas + row * p.channels + c] = signal[p.deltas_at + (pos + 1u) * p.channels + c];
        }
    }
}
