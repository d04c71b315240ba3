// The LSTM layer's gate math after the products (twin of cpu::lstm's forward).
// Layout (src/cpu/lstm.rs): pre-activations / activated gates a[T, B, 4H]
// (blocks i, f, g, o), c and h [T+1, B, H] with block 0 the initial state.
// Unlike the CPU engine, act(c_t) is not kept: backward recomputes it from
// c_t, which keeps the largest shapes inside a 128 MiB storage binding.
//
// `step`: timestep t for every lane; a[t] already holds x·W_ihᵀ + biases +
//   h_{t-1}·W_hhᵀ (the matmul kernel), one thread per (lane, unit).
// `sequence`: the small-model path, one workgroup per lane walks all T
//   timesteps itself, doing the recurrent product with h_{t-1} in workgroup
//   memory; a[t] holds only x·W_ihᵀ + biases. No dispatch per timestep.

// Gate math of unit j of one lane at timestep t, given its four
// pre-activations; writes the activated gates, c_t and h_t. Returns h_t.
fn cell_forward(t: u32, lane: u32, j: u32, pre: vec4<f32>) -> f32 {
    let ck = p.kinds & 1u;
    let gk = (p.kinds >> 1u) & 1u;
    let h = p.h;
    let bh = p.b * h;
    let row = p.a + (t * p.b + lane) * 4u * h;
    let i = gate_act(gk, pre.x);
    let f = gate_act(gk, pre.y);
    let g = cell_act(ck, pre.z);
    let o = gate_act(gk, pre.w);
    let e = lane * h + j;
    let c = f * acts[p.c + t * bh + e] + i * g;
    let ac = cell_act(ck, c);
    acts[row + j] = i;
    acts[row + h + j] = f;
    acts[row + 2u * h + j] = g;
    acts[row + 3u * h + j] = o;
    acts[p.c + (t + 1u) * bh + e] = c;
    let hv = o * ac;
    acts[p.hs + (t + 1u) * bh + e] = hv;
    return hv;
}

@compute @workgroup_size(64)
fn step(gid: Grid) {
    let id = thread_index(gid);
    if id >= p.b * p.h {
        return;
    }
    let lane = id / p.h;
    let j = id % p.h;
    let h = p.h;
    let row = p.a + (p.t * p.b + lane) * 4u * h;
    let pre = vec4<f32>(acts[row + j], acts[row + h + j], acts[row + 2u * h + j], acts[row + 3u * h + j]);
    cell_forward(p.t, lane, j, pre);
}

// Largest H of the sequence path: h_{t-1} lives in workgroup memory.
const SEQ_MAX_H: u32 = 1024u;
const SEQ_WG: u32 = 256u;
var<workgroup> h_prev: array<f32, 1024>;

@compute @workgroup_size(256)
fn sequence(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let lane = wid.x;
    let h = p.h;
    let bh = p.b * h;
    for (var j = lid; j < h; j += SEQ_WG) {
        h_prev[j] = acts[p.hs + lane * h + j];
    }
    workgroupBarrier();
    // Units per thread: at most SEQ_MAX_H / SEQ_WG = 4.
    var h_new: array<f32, 4>;
    for (var t = 0u; t < p.steps; t++) {
        let row = p.a + (t * p.b + lane) * 4u * h;
        var u = 0u;
        for (var j = lid; j < h; j += SEQ_WG) {
            var pre = vec4<f32>(acts[row + j], acts[row + h + j], acts[row + 2u * h + j], acts[row + 3u * h + j]);
            let wi = p.w_hh + j * h;
            let wf = p.w_hh + (h + j) * h;
            let wg = p.w_hh + (2u * h + j) * h;
            let wo = p.w_hh + (3u * h + j) * h;
            for (var q = 0u; q < h; q++) {
                let hq = h_prev[q];
                pre += hq * vec4<f32>(params[wi + q], params[wf + q], params[wg + q], params[wo + q]);
            }
            h_new[u] = cell_forward(t, lane, j, pre);
            u++;
        }
        workgroupBarrier();
        u = 0u;
        for (var j = lid; j < h; j += SEQ_WG) {
            h_prev[j] = h_new[u];
            u++;
        }
        workgroupBarrier();
    }
}
