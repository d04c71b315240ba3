// Put in front of the kernels that reduce over a workgroup (after
// common.wgsl, src/gpu/kernels.rs): tree reductions over REDUCE_WG threads in
// workgroup memory. Every thread passes its value and gets the result; the
// pairs combine in the same order on every run, so a sum does not depend on
// how the work is scheduled. Call from uniform control flow only.

const REDUCE_WG: u32 = 256u;
var<workgroup> red: array<f32, 256>;

fn reduce_max(lid: u32, v: f32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var w = REDUCE_WG / 2u; w > 0u; w /= 2u) {
        if lid < w {
            red[lid] = max(red[lid], red[lid + w]);
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

fn reduce_sum(lid: u32, v: f32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var w = REDUCE_WG / 2u; w > 0u; w /= 2u) {
        if lid < w {
            red[lid] += red[lid + w];
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

// A loss kernel's last step: `total / counted` into this step's slot of the
// loss ring at stats[ring].
fn loss_into_ring(lid: u32, total: f32, counted: u32, ring: u32) {
    if lid == 0u {
        stats[ring + u32(stats[SLOT])] = total / f32(counted);
    }
}

// The mean of acts[at + r], r < rows, over `counted` into the loss ring
// (one workgroup of REDUCE_WG threads).
fn mean_into_ring(lid: u32, at: u32, rows: u32, counted: u32, ring: u32) {
    var s = 0.0;
    for (var r = lid; r < rows; r += REDUCE_WG) {
        s += acts[at + r];
    }
    loss_into_ring(lid, reduce_sum(lid, s), counted, ring);
}
