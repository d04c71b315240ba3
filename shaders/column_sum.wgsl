// Bias gradients: grads[out1 + j] += Σ_r m[r, j] (and the same into out2
// when given), m[rows, cols] row-major in `acts`; twin of cpu::lstm::column_sums.
// One thread per column, summing rows in order, so the result does not
// depend on how the work is scheduled.

@compute @workgroup_size(64)
fn main(gid: Grid) {
    let j = thread_index(gid);
    if j >= p.cols {
        return;
    }
    var s = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        s += acts[p.m + r * p.cols + j];
    }
    grads[p.out1 + j] += s;
    if p.out2 != NONE {
        grads[p.out2 + j] += s;
    }
}
