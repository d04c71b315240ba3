// Mean squared error of the predictions and its gradient (twin of
// cpu::network::mse_loss): dpred = 2(pred - target)/n, and the loss into
// this step's slot of the loss ring in `stats`. One workgroup: each thread sums a
// strided share, then a tree reduction in workgroup memory.

struct Params {
    n: u32,
    pred: u32,
    targets: u32,
    dpred: u32,
    // Index in `stats` of the loss ring (this step's slot is stats[SLOT]).
    loss: u32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}
@group(1) @binding(0) var<uniform> p: Params;

const LOSS_WG: u32 = 256u;
var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
    let scale = 2.0 / f32(max(p.n, 1u));
    var s = 0.0;
    for (var i = lid; i < p.n; i += LOSS_WG) {
        let e = acts[p.pred + i] - acts[p.targets + i];
        acts[p.dpred + i] = scale * e;
        s = fma(e, e, s);
    }
    partial[lid] = s;
    workgroupBarrier();
    for (var w = LOSS_WG / 2u; w > 0u; w /= 2u) {
        if lid < w {
            partial[lid] += partial[lid + w];
        }
        workgroupBarrier();
    }
    if lid == 0u {
        stats[p.loss + u32(stats[SLOT])] = partial[0] / f32(max(p.n, 1u));
    }
}
