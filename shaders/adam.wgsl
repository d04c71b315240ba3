// One Adam (AdamW) update of every parameter, twin of cpu::adam::adam_step,
// with the gradients scaled by the clipping factor first, and zeroed after
// use so the next step accumulates into a clean buffer. Skipped (gradients
// only zeroed) when the norm kernel found the loss or the norm not finite.
// Learning rate and bias corrections change per step: they come from stats.

struct Params {
    n: u32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}
@group(1) @binding(0) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if i >= p.n {
        return;
    }
    let g = grads[i] * stats[CLIP_SCALE];
    grads[i] = 0.0;
    if stats[FINITE] == 0.0 {
        return;
    }
    let lr = stats[LR];
    let m = p.beta1 * moments[i] + (1.0 - p.beta1) * g;
    let v = p.beta2 * moments[p.n + i] + (1.0 - p.beta2) * g * g;
    moments[i] = m;
    moments[p.n + i] = v;
    let m_hat = m / stats[BIAS_CORRECTION1];
    let v_hat = v / stats[BIAS_CORRECTION2];
    var w = params[i];
    w -= lr * p.weight_decay * w;
    w -= lr * m_hat / (sqrt(v_hat) + p.eps);
    params[i] = w;
}
