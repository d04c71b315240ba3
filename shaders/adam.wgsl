// One Adam (AdamW) update of every parameter, twin of cpu::adam::adam_step,
// with the gradients scaled by the clipping factor first, and zeroed after
// use so the next step accumulates into a clean buffer. Skipped (gradients
// only zeroed) when the norm kernel found the loss or the norm not finite.
// The operations are PyTorch's (see src/cpu/adam.rs). Step size, bias
// correction and decay change per step: they come from stats. Every scalar
// was computed in f64 on the host and rounded to f32 once.

@compute @workgroup_size(64)
fn main(gid: Grid) {
    let i = thread_index(gid);
    if i >= p.n {
        return;
    }
    let g = grads[i] * stats[CLIP_SCALE];
    grads[i] = 0.0;
    if stats[FINITE] == 0.0 {
        return;
    }
    // lerp(m, g, 1 − β1), from the end nearer the weight as PyTorch's lerp.
    let m0 = moments[i];
    var m = m0 + p.one_minus_beta1 * (g - m0);
    if p.one_minus_beta1 >= 0.5 {
        m = g - (g - m0) * p.beta1_complement;
    }
    let v = p.beta2 * moments[p.n + i] + p.one_minus_beta2 * g * g;
    moments[i] = m;
    moments[p.n + i] = v;
    let denom = sqrt(v) / stats[BIAS_CORRECTION2_SQRT] + p.eps;
    var w = params[i] * stats[DECAY];
    w -= stats[STEP_SIZE] * m / denom;
    params[i] = w;
}
