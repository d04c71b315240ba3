// Carried recurrent state in and out of a run of layer passes.
//   carry_h, carry_c: [L, B, H] in `carry`; each layer's h and c: [T+1, B, H] with
//   block 0 the initial state (src/cpu/lstm.rs).
// `load`: h_k[0] = carry ? carry_h[k] : 0 per lane (likewise c).
// `save`: carry_h[k] = h_k[T] (likewise c), every lane.
// One thread per element of the carried state: element `id` of [L, B, H] is
// unit e = id mod B·H of layer k = id / B·H.

// Where element `id` of the carried state sits in its layer's block 0 of h
// (or, likewise, of c): k·stride + e.
fn layer_offset(id: u32) -> u32 {
    let bh = p.b * p.h;
    return (id / bh) * p.stride + id % bh;
}

@compute @workgroup_size(64)
fn load(gid: Grid) {
    let id = thread_index(gid);
    if id >= p.layers * p.b * p.h {
        return;
    }
    let lane = (id % (p.b * p.h)) / p.h;
    let keep = lanes[p.b + lane] != 0u;
    acts[p.h0 + layer_offset(id)] = select(0.0, carry[p.carry_h + id], keep);
    acts[p.c0 + layer_offset(id)] = select(0.0, carry[p.carry_c + id], keep);
}

@compute @workgroup_size(64)
fn save(gid: Grid) {
    let id = thread_index(gid);
    if id >= p.layers * p.b * p.h {
        return;
    }
    let last = p.t * p.b * p.h;
    carry[p.carry_h + id] = acts[p.h0 + layer_offset(id) + last];
    carry[p.carry_c + id] = acts[p.c0 + layer_offset(id) + last];
}
