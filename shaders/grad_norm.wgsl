// Global gradient norm and the clipping factor (twin of
// cpu::adam::clip_global_norm): `partial` has each of its workgroups sum the
// squares of a fixed strided share of the gradients into `partials` (in
// acts); `finish` sums those in order, stores the norm in this step's slot
// of the norm ring, the clipping factor, and whether loss and norm are
// finite (Adam skips the update when they are not).

const NORM_WG: u32 = REDUCE_WG;

@compute @workgroup_size(256)
fn partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    let stride = p.groups * NORM_WG;
    for (var i = wid.x * NORM_WG + lid; i < p.n; i += stride) {
        let g = grads[i];
        s = fma(g, g, s);
    }
    let total = reduce_sum(lid, s);
    if lid == 0u {
        acts[p.partials + wid.x] = total;
    }
}

@compute @workgroup_size(256)
fn finish(@builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    for (var i = lid; i < p.groups; i += NORM_WG) {
        s += acts[p.partials + i];
    }
    let total = reduce_sum(lid, s);
    if lid == 0u {
        let slot = u32(stats[SLOT]);
        let norm = sqrt(total);
        stats[p.norm + slot] = norm;
        let ok = is_finite(norm) && is_finite(stats[p.loss + slot]);
        stats[FINITE] = select(0.0, 1.0, ok);
        var scale = 1.0;
        if p.clip > 0.0 && norm > p.clip {
            scale = p.clip / norm;
        }
        stats[CLIP_SCALE] = scale;
    }
}
