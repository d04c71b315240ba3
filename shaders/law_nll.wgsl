// The location–scale heads (twin of cpu::law_nll; the laws and their
// derivations in src/laplace.rs and src/logistic.rs, `p.law` picks one as
// Law::code does): per distribution r (one channel of one timestep of one
// lane) its location head[2r] and raw log-scale head[2r + 1], its target
// targets[r] and the width δ of one 16-bit step: `delta`, or
// acts[delta_at + r] per target when delta_at is not NONE. All in `acts`.
// `rows`: the discretized negative log-likelihood into `per_row[r]` and its
//   gradient / N into `dhead` (zero for the distributions a loss burn-in
//   leaves out, N the number it counts). One thread per distribution.
// `mean`: the mean of `per_row` over the counted ones into this step's slot
//   of the loss ring.
// `location`: the point prediction head[2r] into `per_row[r]`.

const LOG_SCALE_MIN: f32 = -16.0;
const LOG_SCALE_MAX: f32 = 8.0;
const LN_2: f32 = 0.6931471805599453;
const LAW_LAPLACE: u32 = 0u;
const LAW_LOGISTIC: u32 = 1u;

// e^x − 1 without the cancellation near 0 (WGSL has no expm1): Taylor to
// x⁷ below |x| = 1/4 (relative error under 1e-8), else exp − 1 (loses at
// most two bits there).
fn expm1(x: f32) -> f32 {
    if abs(x) < 0.25 {
        return x * (1.0 + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0
            + x * (1.0 / 720.0 + x * (1.0 / 5040.0)))))));
    }
    return exp(x) - 1.0;
}

// d / (e^d − 1) for d > 0: 1 at 0, 0 past the overflow of exp.
fn d_over_expm1(d: f32) -> f32 {
    if d > 80.0 {
        return 0.0;
    }
    return d / expm1(d);
}

// ln(1 + e^z) without overflow for large z (log(1 + y) for y ≤ 1 loses at
// most an absolute 6e-8, below what the loss is summed to).
fn softplus(z: f32) -> f32 {
    return max(z, 0.0) + log(1.0 + exp(-abs(z)));
}

fn sigmoid(z: f32) -> f32 {
    return 1.0 / (1.0 + exp(-z));
}

struct Bin {
    nll: f32,
    dmu: f32,
    ds: f32,
}

// The Laplace law's three regimes (see src/laplace.rs).
fn laplace_bin(u: f32, l: f32, d: f32, inv_b: f32) -> Bin {
    if l >= 0.0 {
        return Bin(LN_2 + l - log(-expm1(-d)), -inv_b, -l + d_over_expm1(d));
    }
    if u <= 0.0 {
        return Bin(LN_2 - u - log(-expm1(-d)), inv_b, u + d_over_expm1(d));
    }
    let a = -expm1(-u);
    let c = -expm1(l);
    let q = a + c;
    return Bin(LN_2 - log(q), (c - a) * inv_b / q, (u * (1.0 - a) - l * (1.0 - c)) / q);
}

// The logistic law's one closed form (see src/logistic.rs).
fn logistic_bin(u: f32, l: f32, d: f32, inv_b: f32) -> Bin {
    let su = sigmoid(u);
    let snl = sigmoid(-l);
    let nll = softplus(u) + softplus(-l) - d - log(-expm1(-d));
    return Bin(nll, (snl - su) * inv_b, -u * su + l * snl + d + d_over_expm1(d));
}

fn counted() -> u32 {
    return targets_counted(p.rows, p.channels, p.b, p.burn_in);
}

@compute @workgroup_size(64)
fn rows(gid: Grid) {
    let r = thread_index(gid);
    if r >= p.rows {
        return;
    }
    if !burn_in_counts(r / max(p.channels, 1u), p.b, p.burn_in) {
        acts[p.dhead + 2u * r] = 0.0;
        acts[p.dhead + 2u * r + 1u] = 0.0;
        acts[p.per_row + r] = 0.0;
        return;
    }
    let mu = acts[p.head + 2u * r];
    let s_raw = acts[p.head + 2u * r + 1u];
    let x = acts[p.targets + r];
    var delta = p.delta;
    if p.delta_at != NONE {
        delta = acts[p.delta_at + r];
    }
    let s = clamp(s_raw, LOG_SCALE_MIN, LOG_SCALE_MAX);
    let inv_b = exp(-s);
    let d = delta * inv_b;
    // x − μ first: exact when they are close, where a bin narrow against
    // them would lose its width in x ± δ/2.
    let e = x - mu;
    let u = (e + 0.5 * delta) * inv_b;
    let l = (e - 0.5 * delta) * inv_b;
    var bin: Bin;
    if p.law == LAW_LOGISTIC {
        bin = logistic_bin(u, l, d, inv_b);
    } else {
        bin = laplace_bin(u, l, d, inv_b);
    }
    if !(s_raw >= LOG_SCALE_MIN && s_raw <= LOG_SCALE_MAX) {
        bin.ds = 0.0;
    }
    let inv_n = 1.0 / f32(counted());
    acts[p.dhead + 2u * r] = bin.dmu * inv_n;
    acts[p.dhead + 2u * r + 1u] = bin.ds * inv_n;
    acts[p.per_row + r] = bin.nll;
}

@compute @workgroup_size(256)
fn mean(@builtin(local_invocation_index) lid: u32) {
    mean_into_ring(lid, p.per_row, p.rows, counted(), p.loss);
}

@compute @workgroup_size(64)
fn location(gid: Grid) {
    let r = thread_index(gid);
    if r >= p.rows {
        return;
    }
    acts[p.per_row + r] = acts[p.head + 2u * r];
}
