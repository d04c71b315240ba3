// Carried recurrent state in and out of a run of layer passes.
//   carry_h, carry_c: [L, B, H] in `carry`; each layer's h and c: [T+1, B, H] with
//   block 0 the initial state (src/cpu/lstm.rs).
// `load`: h_k[0] = carry ? carry_h[k] : 0 per lane (likewise c).
// `save`: carry_h[k] = h_k[T] (likewise c), every lane.

@compute @workgroup_size(64)
fn load(gid: Grid) {
    let id = thread_index(gid);
    let bh = p.b * p.h;
    if id >= p.layers * bh {
        return;
    }
    let k = id / bh;
    let e = id % bh;
    let lane = e / p.h;
    let keep = lanes[p.b + lane] != 0u;
    acts[p.h0 + k * p.stride + e] = select(0.0, carry[p.carry_h + id], keep);
    acts[p.c0 + k * p.stride + e] = select(0.0, carry[p.carry_c + id], keep);
}

@compute @workgroup_size(64)
fn save(gid: Grid) {
    let id = thread_index(gid);
    let bh = p.b * p.h;
    if id >= p.layers * bh {
        return;
    }
    let k = id / bh;
    let e = id % bh;
    carry[p.carry_h + id] = acts[p.h0 + k * p.stride + p.t * bh + e];
    carry[p.carry_c + id] = acts[p.c0 + k * p.stride + p.t * bh + e];
}
