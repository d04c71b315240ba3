// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] (+ C if accumulating) (+ bias rows),
// twin of cpu::matmul::gemm. Row-major storage with leading dimensions; op
// is the identity or the transpose of the stored matrix.
//
// Two tilings of the same product:
// `main`: each 16×16 workgroup computes one 16×16 block of C, one element a
//   thread, staging 16×16 tiles of op(A) and op(B) in workgroup memory so
//   every loaded element is used 16 times. For small outputs (a timestep's
//   recurrent product), where many small blocks keep more cores busy.
// `large`: each 16×16 workgroup computes a 64×64 block of C, a 4×4 register
//   block a thread (rows and columns strided by 16 so neighbouring threads
//   read neighbouring words), staging 64×16 and 16×64 tiles: 16 multiply-adds
//   per 8 workgroup-memory reads instead of 1 per 2. For the large products
//   (input projections, weight gradients).

const TILE: u32 = 16u;
var<workgroup> tile_a: array<array<f32, 16>, 16>;
var<workgroup> tile_b: array<array<f32, 16>, 16>;

// Element (r, q) of op(A), zero outside the m×k matrix.
fn a_or_zero(r: u32, q: u32) -> f32 {
    if r < p.m && q < p.k {
        return a_at(r, q);
    }
    return 0.0;
}

// Element (q, col) of op(B), zero outside the k×n matrix.
fn b_or_zero(q: u32, col: u32) -> f32 {
    if q < p.k && col < p.n {
        return b_at(q, col);
    }
    return 0.0;
}

fn load(buffer: u32, i: u32) -> f32 {
    switch buffer {
        case 0u: { return params[i]; }
        case 1u: { return acts[i]; }
        default: { return grads[i]; }
    }
}

// Element (r, q) of op(A).
fn a_at(r: u32, q: u32) -> f32 {
    let buffer = (p.flags >> 2u) & 3u;
    if (p.flags & 1u) == 0u {
        return load(buffer, p.a + r * p.lda + q);
    }
    return load(buffer, p.a + q * p.lda + r);
}

// Element (q, col) of op(B).
fn b_at(q: u32, col: u32) -> f32 {
    let buffer = (p.flags >> 4u) & 3u;
    if (p.flags & 2u) == 0u {
        return load(buffer, p.b + q * p.ldb + col);
    }
    return load(buffer, p.b + col * p.ldb + q);
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wid.y * TILE + lid.y;
    let col = wid.x * TILE + lid.x;
    var acc = 0.0;
    let tiles = (p.k + TILE - 1u) / TILE;
    for (var t = 0u; t < tiles; t++) {
        let qa = t * TILE + lid.x;
        var va = 0.0;
        if row < p.m && qa < p.k {
            va = a_at(row, qa);
        }
        tile_a[lid.y][lid.x] = va;
        let qb = t * TILE + lid.y;
        var vb = 0.0;
        if qb < p.k && col < p.n {
            vb = b_at(qb, col);
        }
        tile_b[lid.y][lid.x] = vb;
        workgroupBarrier();
        for (var q = 0u; q < TILE; q++) {
            acc = fma(tile_a[lid.y][q], tile_b[q][lid.x], acc);
        }
        workgroupBarrier();
    }
    store(row, col, acc);
}

// C[row, col] = alpha·acc (+ bias) (+ C), inside the m×n matrix only.
fn store(row: u32, col: u32, acc: f32) {
    if row >= p.m || col >= p.n {
        return;
    }
    var v = p.alpha * acc;
    if p.bias1 != NONE {
        v += params[p.bias1 + col];
    }
    if p.bias2 != NONE {
        v += params[p.bias2 + col];
    }
    let i = p.c + row * p.ldc + col;
    if (p.flags & 64u) != 0u {
        if (p.flags & 128u) != 0u {
            v += grads[i];
        }
        grads[i] = v;
    } else {
        if (p.flags & 128u) != 0u {
            v += acts[i];
        }
        acts[i] = v;
    }
}

const BIG: u32 = 64u;
var<workgroup> big_a: array<array<f32, 64>, 16>;
var<workgroup> big_b: array<array<f32, 64>, 16>;

@compute @workgroup_size(16, 16)
fn large(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
         @builtin(local_invocation_index) li: u32) {
    let row0 = wid.y * BIG;
    let col0 = wid.x * BIG;
    var acc: array<array<f32, 4>, 4>;
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            acc[i][j] = 0.0;
        }
    }
    let tiles = (p.k + TILE - 1u) / TILE;
    for (var t = 0u; t < tiles; t++) {
        let q0 = t * TILE;
        // 1024 elements of each tile, 4 a thread.
        for (var e = 0u; e < 4u; e++) {
            let idx = li + 256u * e;
            let ar = idx / TILE;
            let aq = idx % TILE;
            big_a[aq][ar] = a_or_zero(row0 + ar, q0 + aq);
            let bq = idx / BIG;
            let bc = idx % BIG;
            big_b[bq][bc] = b_or_zero(q0 + bq, col0 + bc);
        }
        workgroupBarrier();
        for (var q = 0u; q < TILE; q++) {
            var a: array<f32, 4>;
            var b: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                a[i] = big_a[q][lid.y + 16u * i];
                b[i] = big_b[q][lid.x + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i][j] = fma(a[i], b[j], acc[i][j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            store(row0 + lid.y + 16u * i, col0 + lid.x + 16u * j, acc[i][j]);
        }
    }
}
