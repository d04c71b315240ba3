// The mulaw head (twin of cpu::mulaw and of src/mulaw.rs's companding):
// rows of 256 logits, row r = one channel of one timestep of one lane,
// logits[R, 256] and targets[R] (model units) in `acts`.
// `rows`: per row, softmax cross-entropy lse(z) - z_k into `per_row[r]` and
//   its gradient (softmax(z) - onehot(k)) / R into `dlogits`, with k the
//   μ-law class of target·scale. One workgroup per row, one thread per logit.
//   Under a loss burn-in (`burn_in` > 0; rows of `channels` distributions,
//   `b` lanes) the rows it leaves out get a zero loss and gradient, and R
//   counts the others.
// `mean`: the mean of `per_row` over the counted rows into this step's slot
//   of the loss ring.
// `expected`: the expected audio value Σ softmax(z)_k·decode(k), divided by
//   scale, into `per_row[r]`: the point prediction in model units.

// One thread per class: the reductions' REDUCE_WG threads.
const CLASSES: u32 = REDUCE_WG;
const MU: f32 = 255.0;

// ITU-T G.711's continuous μ-law, quantized into 256 levels (src/mulaw.rs).
fn mulaw_class(x: f32) -> u32 {
    let v = clamp(x, -1.0, 1.0);
    let y = sign(v) * log(1.0 + MU * abs(v)) / log(1.0 + MU);
    return u32(clamp(floor((y + 1.0) / 2.0 * MU + 0.5), 0.0, MU));
}

fn mulaw_value(k: u32) -> f32 {
    let y = 2.0 * f32(k) / MU - 1.0;
    return sign(y) * (pow(1.0 + MU, abs(y)) - 1.0) / MU;
}

// Distributions the loss counts (all `rows` without a burn-in).
fn counted_rows() -> u32 {
    return targets_counted(p.rows, p.channels, p.b, p.burn_in);
}

@compute @workgroup_size(256)
fn rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * nwg.x + wid.x;
    if row >= p.rows {
        return;
    }
    if !burn_in_counts(row / max(p.channels, 1u), p.b, p.burn_in) {
        acts[p.dlogits + row * CLASSES + lid] = 0.0;
        if lid == 0u {
            acts[p.per_row + row] = 0.0;
        }
        return;
    }
    let z = acts[p.logits + row * CLASSES + lid];
    // Around the largest logit, so no exp overflows.
    let m = reduce_max(lid, z);
    let e = exp(z - m);
    let s = reduce_sum(lid, e);
    let k = mulaw_class(acts[p.targets + row] * p.scale);
    let onehot = select(0.0, 1.0, lid == k);
    acts[p.dlogits + row * CLASSES + lid] = (e / s - onehot) / f32(counted_rows());
    if lid == k {
        acts[p.per_row + row] = m + log(s) - z;
    }
}

@compute @workgroup_size(256)
fn mean(@builtin(local_invocation_index) lid: u32) {
    mean_into_ring(lid, p.per_row, p.rows, counted_rows(), p.loss);
}

@compute @workgroup_size(256)
fn expected(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * nwg.x + wid.x;
    if row >= p.rows {
        return;
    }
    let z = acts[p.logits + row * CLASSES + lid];
    let m = reduce_max(lid, z);
    let e = exp(z - m);
    let s = reduce_sum(lid, e);
    let weighted = reduce_sum(lid, e * mulaw_value(lid));
    if lid == 0u {
        acts[p.per_row + row] = weighted / s / p.scale;
    }
}
