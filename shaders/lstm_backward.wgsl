// The LSTM layer's backward gate math (twin of cpu::lstm's backward sweep).
// Layouts as in lstm_forward.wgsl, plus dh_out[T, B, H] = ∂L/∂h_t from above,
// and, for `step`, dh_rec[B, H] (the recurrent ∂L/∂h_t = da_{t+1}·W_hh, from
// the matmul kernel) and dc[B, H], ∂L/∂c carried from timestep t+1 to t.
// da = ∂L/∂(pre-activations) overwrites the activated gates a[T, B, 4H] in
// place: each unit reads its four gates once, then writes their gradients
// (cuDNN keeps a similar "reserve space"); act(c_t) is recomputed from c_t.
//
// `step`: timestep t (called for t = T-1 down to 0), one thread per (lane, unit).
// `sequence`: the small-model path, one workgroup per lane walks t = T-1..0,
//   with da_{t+1} in workgroup memory for the recurrent product.
// The weight gradients are large products after the sweep (matmul kernel).

// What one unit's backward step hands on: its four gates' da_t, and ∂L/∂c_{t-1}.
struct Back {
    da: vec4<f32>,
    dc_prev: f32,
}

// Unit j of one lane at timestep t, given dh = ∂L/∂h_t and dc = ∂L/∂c_t from
// the future; writes da_t for the unit's four gates.
fn cell_backward(t: u32, lane: u32, j: u32, dh: f32, dc: f32) -> Back {
    let ck = p.kinds & 1u;
    let gk = (p.kinds >> 1u) & 1u;
    let h = p.h;
    let bh = p.b * h;
    let row = (t * p.b + lane) * 4u * h;
    let i = acts[p.a + row + j];
    let f = acts[p.a + row + h + j];
    let g = acts[p.a + row + 2u * h + j];
    let o = acts[p.a + row + 3u * h + j];
    let e = lane * h + j;
    let ac = cell_act(ck, acts[p.c + (t + 1u) * bh + e]);
    let c_prev = acts[p.c + t * bh + e];
    let dcj = dc + dh * o * cell_grad(ck, ac);
    var r: Back;
    r.da = vec4<f32>(
        dcj * g * gate_grad(gk, i),
        dcj * c_prev * gate_grad(gk, f),
        dcj * i * cell_grad(ck, g),
        dh * ac * gate_grad(gk, o),
    );
    acts[p.a + row + j] = r.da.x;
    acts[p.a + row + h + j] = r.da.y;
    acts[p.a + row + 2u * h + j] = r.da.z;
    acts[p.a + row + 3u * h + j] = r.da.w;
    r.dc_prev = dcj * f;
    return r;
}

@compute @workgroup_size(64)
fn step(gid: Grid) {
    let id = thread_index(gid);
    if id >= p.b * p.h {
        return;
    }
    let lane = id / p.h;
    let j = id % p.h;
    var dh = acts[p.dh_out + p.t * p.b * p.h + id];
    var dc = 0.0;
    if p.first_or_steps == 0u {
        dh += acts[p.dh_rec + id];
        dc = acts[p.dc + id];
    }
    let r = cell_backward(p.t, lane, j, dh, dc);
    acts[p.dc + id] = r.dc_prev;
}

// Largest H of the sequence path: da_{t+1} (4H) lives in workgroup memory.
const SEQ_MAX_H: u32 = 512u;
const SEQ_WG: u32 = 256u;
var<workgroup> da_next: array<f32, 2048>;

@compute @workgroup_size(256)
fn sequence(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let lane = wid.x;
    let h = p.h;
    let h4 = 4u * h;
    let steps = p.first_or_steps;
    // Units per thread: at most SEQ_MAX_H / SEQ_WG = 2.
    var dc: array<f32, 2>;
    var mine: array<vec4<f32>, 2>;
    dc[0] = 0.0;
    dc[1] = 0.0;
    for (var s = 0u; s < steps; s++) {
        let t = steps - 1u - s;
        var u = 0u;
        for (var j = lid; j < h; j += SEQ_WG) {
            var dh = acts[p.dh_out + (t * p.b + lane) * h + j];
            if s > 0u {
                for (var m = 0u; m < h4; m++) {
                    dh = fma(da_next[m], params[p.w_hh + m * h + j], dh);
                }
            }
            let r = cell_backward(t, lane, j, dh, dc[u]);
            dc[u] = r.dc_prev;
            mine[u] = r.da;
            u++;
        }
        workgroupBarrier();
        u = 0u;
        for (var j = lid; j < h; j += SEQ_WG) {
            da_next[j] = mine[u].x;
            da_next[h + j] = mine[u].y;
            da_next[2u * h + j] = mine[u].z;
            da_next[3u * h + j] = mine[u].w;
            u++;
        }
        workgroupBarrier();
    }
}
