//! Every fast CPU op against its textbook twin, on fresh random inputs of
//! several shapes (odd ones that split unevenly into blocks among them).
//!
//! Tolerances: the two twins sum the same products in different orders, so
//! they may differ by rounding only. For a dot product of length k the
//! reordering error is bounded by about k·ε·Σ|aᵢbᵢ| (Higham, *Accuracy and
//! Stability of Numerical Algorithms*, 2nd ed., §3.1); we allow
//! `TOL·Σ|aᵢbᵢ|` with TOL = 1e-5 for f32 (k ≤ 400 here, so well inside that
//! bound) and 1e-13 for f64. The gate math on top is 1-Lipschitz-ish
//! (σ, tanh, hard-sigmoid), so the LSTM comparisons keep the same scale.
//! The backward passes are held against central finite differences in
//! tests/gradcheck.rs, which is their reference.

use wavelstm::cpu::activation::exp_f32;
use wavelstm::cpu::dense::{dense_forward, dense_forward_reference};
use wavelstm::cpu::lstm::{
    bias_and_input_grads, column_sums, lstm_forward, lstm_forward_reference, LstmCache, LstmShape,
    Pass,
};
use wavelstm::cpu::matmul::{gemm, gemm_bias, gemm_reference, Op};
use wavelstm::cpu::network::{backward, forward, mse_loss, Workspace};
use wavelstm::cpu::scalar::CpuReal;
use wavelstm::model::{Activation, CellActivation, GateActivation, LstmOffsets, ModelConfig};
use wavelstm::preset::Defaults;
use wavelstm::rng::SplitMix64;

mod common;
use common::sums::{dot_f64, EVERY_OP_PAIR};

fn random<T: CpuReal>(rng: &mut SplitMix64, n: usize, scale: f64) -> Vec<T> {
    (0..n)
        .map(|_| T::from_f64_lossy(rng.uniform(-scale, scale)))
        .collect()
}

fn to_f64<T: CpuReal>(xs: &[T]) -> Vec<f64> {
    xs.iter().map(|x| x.to_f64().unwrap()).collect()
}

/// Largest `|got - want| / (scale + 1e-30)` over all elements.
fn worst(got: &[f64], want: &[f64], scale: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "length mismatch");
    got.iter()
        .zip(want)
        .zip(scale)
        .map(|((g, w), s)| {
            let e = (g - w).abs() / (s + 1e-30);
            if e.is_nan() {
                f64::INFINITY
            } else {
                e
            }
        })
        .fold(0.0, f64::max)
}

fn tol<T: CpuReal>() -> f64 {
    if std::mem::size_of::<T>() == 4 {
        1e-5
    } else {
        1e-13
    }
}

// ---------------------------------------------------------------- gemm

struct GemmCase {
    op_a: Op,
    op_b: Op,
    m: usize,
    n: usize,
    k: usize,
    /// Extra columns of padding in every stored row (leading dimension > width).
    pad: usize,
    alpha: f64,
    beta: f64,
}

/// Runs both twins on one case; returns the worst scaled error.
fn gemm_case<T: CpuReal>(c: &GemmCase, seed: u64) -> f64 {
    let mut rng = SplitMix64::new(seed);
    let (ra, ca) = match c.op_a {
        Op::N => (c.m, c.k),
        Op::T => (c.k, c.m),
    };
    let (rb, cb) = match c.op_b {
        Op::N => (c.k, c.n),
        Op::T => (c.n, c.k),
    };
    let (lda, ldb, ldc) = (ca + c.pad, cb + c.pad, c.n + c.pad);
    let a: Vec<T> = random(&mut rng, ra * lda, 1.0);
    let b: Vec<T> = random(&mut rng, rb * ldb, 1.0);
    let mut c_fast: Vec<T> = if c.beta == 0.0 {
        // BLAS semantics: beta = 0 overwrites C, NaNs in it must not leak through.
        vec![T::nan(); c.m * ldc]
    } else {
        random(&mut rng, c.m * ldc, 1.0)
    };
    let mut c_ref = c_fast.clone();
    let (alpha, beta) = (T::from_f64_lossy(c.alpha), T::from_f64_lossy(c.beta));
    gemm(
        c.op_a,
        c.op_b,
        c.m,
        c.n,
        c.k,
        alpha,
        &a,
        lda,
        &b,
        ldb,
        beta,
        &mut c_fast,
        ldc,
    );
    gemm_reference(
        c.op_a, c.op_b, c.m, c.n, c.k, alpha, &a, lda, &b, ldb, beta, &mut c_ref, ldc,
    );
    // Scale of each element: Σ|a||b|·|alpha| + |beta·c| + 1 (absolute floor for tiny sums).
    let (a64, b64) = (to_f64(&a), to_f64(&b));
    let at = |i: usize, p: usize| match c.op_a {
        Op::N => a64[i * lda + p],
        Op::T => a64[p * lda + i],
    };
    let bt = |p: usize, j: usize| match c.op_b {
        Op::N => b64[p * ldb + j],
        Op::T => b64[j * ldb + p],
    };
    let (mut got, mut want, mut scale) = (vec![], vec![], vec![]);
    for i in 0..c.m {
        for j in 0..c.n {
            let s: f64 = (0..c.k).map(|p| (at(i, p) * bt(p, j)).abs()).sum();
            scale.push(s * c.alpha.abs() + c.beta.abs() + 1.0);
            got.push(c_fast[i * ldc + j].to_f64().unwrap());
            want.push(c_ref[i * ldc + j].to_f64().unwrap());
        }
        // The padding beyond column n must be left alone.
        for j in c.n..ldc {
            assert_eq!(
                c_fast[i * ldc + j].to_f64().unwrap().to_bits(),
                c_ref[i * ldc + j].to_f64().unwrap().to_bits(),
                "gemm wrote into the padding of C"
            );
        }
    }
    worst(&got, &want, &scale)
}

fn gemm_cases() -> Vec<GemmCase> {
    let ops = EVERY_OP_PAIR;
    // (m, n, k): tiny, odd, tall (row-split in parallel), short and wide
    // (column-split: a batch-1 recurrent step), and the model's big shapes.
    let shapes = [
        (1, 1, 1),
        (7, 5, 3),
        (33, 100, 17),
        (3, 1024, 256),
        (517, 131, 65),
        (1, 400, 100),
        (256, 400, 101),
    ];
    let scalars = [(1.0, 0.0), (1.0, 1.0), (-0.5, 2.0)];
    let mut cases = Vec::new();
    for (si, &(m, n, k)) in shapes.iter().enumerate() {
        for (oi, &(op_a, op_b)) in ops.iter().enumerate() {
            let (alpha, beta) = scalars[(si + oi) % scalars.len()];
            cases.push(GemmCase {
                op_a,
                op_b,
                m,
                n,
                k,
                pad: (si + oi) % 3,
                alpha,
                beta,
            });
        }
    }
    cases
}

/// Every case of [`gemm_cases`] in precision `T` (named `name` in the
/// messages), case `n` on inputs from seed `seed + n`.
fn gemm_matches_reference<T: CpuReal>(name: &str, seed: u64) {
    for (n, c) in gemm_cases().iter().enumerate() {
        let e = gemm_case::<T>(c, seed + n as u64);
        assert!(
            e < tol::<T>(),
            "{name} {:?}{:?} m={} n={} k={}: scaled error {e:e}",
            c.op_a,
            c.op_b,
            c.m,
            c.n,
            c.k
        );
    }
}

#[test]
fn gemm_matches_reference_f32() {
    gemm_matches_reference::<f32>("f32", 100);
}

#[test]
fn gemm_matches_reference_f64() {
    gemm_matches_reference::<f64>("f64", 200);
}

#[test]
fn gemm_with_empty_inner_dimension_scales_c() {
    for beta in [0.0, 1.0, 3.0] {
        let e = gemm_case::<f32>(
            &GemmCase {
                op_a: Op::N,
                op_b: Op::T,
                m: 9,
                n: 13,
                k: 0,
                pad: 1,
                alpha: 1.0,
                beta,
            },
            7,
        );
        assert!(e < tol::<f32>(), "k = 0, beta = {beta}: error {e:e}");
    }
}

#[test]
fn gemm_comparison_detects_a_wrong_element() {
    // The comparison above must be able to fail: one element off by a tiny
    // relative amount is caught.
    let mut rng = SplitMix64::new(3);
    let (m, n, k) = (40, 30, 20);
    let a: Vec<f32> = random(&mut rng, m * k, 1.0);
    let b: Vec<f32> = random(&mut rng, k * n, 1.0);
    let mut c1 = vec![0.0f32; m * n];
    let mut c2 = vec![0.0f32; m * n];
    gemm(Op::N, Op::N, m, n, k, 1.0, &a, k, &b, n, 0.0, &mut c1, n);
    gemm_reference(Op::N, Op::N, m, n, k, 1.0, &a, k, &b, n, 0.0, &mut c2, n);
    c1[17 * n + 5] *= 1.0 + 1e-3;
    let scale = vec![k as f64; m * n];
    assert!(worst(&to_f64(&c1), &to_f64(&c2), &scale) > tol::<f32>());
}

/// `gemm_bias` against what it stands for, C filled with the bias and then
/// `gemm` with `alpha = beta = 1`: bit for bit, on every pair of operations,
/// odd shapes, padded rows and inner lengths past one block of `p` (256),
/// with NaN in C beforehand (its old value must never be read).
fn gemm_bias_is_fill_then_gemm<T: CpuReal>(seed: u64) {
    let shapes = [
        (1, 1, 1),
        (7, 5, 3),
        (33, 100, 17),
        (517, 131, 65),
        (64, 1024, 300),
        (19, 77, 513),
    ];
    let mut rng = SplitMix64::new(seed);
    for (si, &(m, n, k)) in shapes.iter().enumerate() {
        for &(op_a, op_b) in EVERY_OP_PAIR.iter() {
            let pad = si % 3;
            let (lda, ldb, ldc) = (
                if op_a == Op::N { k } else { m } + pad,
                if op_b == Op::N { n } else { k } + pad,
                n + pad,
            );
            let a: Vec<T> = random(&mut rng, (m.max(k)) * lda, 1.0);
            let b: Vec<T> = random(&mut rng, (n.max(k)) * ldb, 1.0);
            let bias: Vec<T> = random(&mut rng, n, 1.0);
            let mut want = vec![T::nan(); m * ldc];
            for row in want.chunks_mut(ldc) {
                row[..n].copy_from_slice(&bias);
            }
            let mut got = vec![T::nan(); m * ldc];
            gemm(
                op_a,
                op_b,
                m,
                n,
                k,
                T::one(),
                &a,
                lda,
                &b,
                ldb,
                T::one(),
                &mut want,
                ldc,
            );
            gemm_bias(op_a, op_b, m, n, k, &a, lda, &b, ldb, &bias, &mut got, ldc);
            for i in 0..m {
                for j in 0..n {
                    let (g, w) = (got[i * ldc + j], want[i * ldc + j]);
                    assert!(
                        g.to_f64().unwrap().to_bits() == w.to_f64().unwrap().to_bits(),
                        "gemm_bias {op_a:?}{op_b:?} {m}x{n}x{k}: C[{i}][{j}] = {g:?}, fill + gemm {w:?}"
                    );
                }
                for j in n..ldc {
                    assert!(
                        got[i * ldc + j].is_nan(),
                        "gemm_bias wrote into the padding of C"
                    );
                }
            }
        }
    }
}

/// Only `f32` has a path of its own to check: in `f64` (and on the portable
/// set) `gemm_bias` is the fill and `gemm` this test compares against.
#[test]
fn gemm_bias_is_fill_then_gemm_f32() {
    gemm_bias_is_fill_then_gemm::<f32>(300);
}

fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn gemm_is_bit_identical_across_thread_counts() {
    let mut rng = SplitMix64::new(11);
    for &(m, n, k) in &[(517, 131, 65), (3, 1024, 256), (1000, 400, 100)] {
        let a: Vec<f32> = random(&mut rng, m * k, 1.0);
        let b: Vec<f32> = random(&mut rng, n * k, 1.0);
        let run = || {
            let mut c = vec![0.0f32; m * n];
            gemm(Op::N, Op::T, m, n, k, 1.0, &a, k, &b, k, 0.0, &mut c, n);
            c.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        };
        let one = in_pool(1, run);
        for threads in [2, 3, 5] {
            assert!(
                in_pool(threads, run) == one,
                "gemm {m}x{n}x{k} differs between 1 and {threads} threads"
            );
        }
    }
}

// ---------------------------------------------------------------- LSTM layer

struct LayerInputs<T> {
    params: Vec<T>,
    off: LstmOffsets,
    x: Vec<T>,
    h0: Vec<T>,
    c0: Vec<T>,
}

fn layer_inputs<T: CpuReal>(s: &LstmShape, nonzero_state: bool, seed: u64) -> LayerInputs<T> {
    let mut rng = SplitMix64::new(seed);
    let h4 = 4 * s.h;
    // Pack the four tensors with a gap in front, so offsets are exercised.
    let off = LstmOffsets {
        input: s.i,
        w_ih: 5,
        w_hh: 5 + h4 * s.i,
        b_ih: 5 + h4 * (s.i + s.h),
        b_hh: 5 + h4 * (s.i + s.h + 1),
    };
    let bound = 1.0 / (s.h as f64).sqrt();
    let params = random(&mut rng, off.b_hh + h4, bound);
    let x = random(&mut rng, s.t * s.b * s.i, 1.0);
    let bh = s.b * s.h;
    let (h0, c0) = if nonzero_state {
        (random(&mut rng, bh, 0.9), random(&mut rng, bh, 2.0))
    } else {
        (vec![T::zero(); bh], vec![T::zero(); bh])
    };
    LayerInputs {
        params,
        off,
        x,
        h0,
        c0,
    }
}

/// Worst scaled difference between the fast layer and its reference, over
/// all hidden and cell states. The scale of a state is the sum of absolute
/// terms feeding its pre-activations, bounded here by `1 + |state|·(I + H)`.
fn lstm_case<T: CpuReal>(s: &LstmShape, nonzero_state: bool, seed: u64) -> f64 {
    let p = layer_inputs::<T>(s, nonzero_state, seed);
    let run = |pass: Pass| {
        let mut cache = LstmCache::default();
        lstm_forward(s, &p.params, &p.off, &p.x, &p.h0, &p.c0, &mut cache, pass);
        cache
    };
    let cache = run(Pass::Training);
    // An inference pass stores less, and the states it does store are the
    // same bits.
    let inference = run(Pass::Inference);
    assert!(
        inference.h == cache.h && inference.c == cache.c,
        "{s:?}: an inference pass's states differ from a training pass's"
    );
    let (h_ref, c_ref) = lstm_forward_reference(s, &p.params, &p.off, &p.x, &p.h0, &p.c0);
    let fan = (s.i + s.h + 2) as f64;
    let mut err: f64 = 0.0;
    for (got, want) in [(&cache.h, &h_ref), (&cache.c, &c_ref)] {
        let (g, w) = (to_f64(got), to_f64(want));
        // The linear cell activation lets c grow over time; scale by |c| too.
        let scale: Vec<f64> = w.iter().map(|v| fan * (1.0 + v.abs())).collect();
        err = err.max(worst(&g, &w, &scale));
    }
    err
}

fn lstm_shapes() -> Vec<(LstmShape, bool)> {
    let mut out = Vec::new();
    let acts = [
        (CellActivation::Tanh, GateActivation::Sigmoid),
        (CellActivation::Linear, GateActivation::HardSigmoid),
        (CellActivation::Tanh, GateActivation::HardSigmoid),
        (CellActivation::Linear, GateActivation::Sigmoid),
    ];
    let mut n = 0;
    for &h in &[1, 7, 33, 100] {
        for &b in &[1, 3, 32] {
            for &t in &[1, 17] {
                for nonzero in [false, true] {
                    let (cell, gate) = acts[n % acts.len()];
                    let i = [1, 3, 2][n % 3];
                    n += 1;
                    out.push((
                        LstmShape {
                            t,
                            b,
                            i,
                            h,
                            cell,
                            gate,
                        },
                        nonzero,
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn lstm_forward_matches_reference_f32() {
    for (n, (s, nonzero)) in lstm_shapes().iter().enumerate() {
        let e = lstm_case::<f32>(s, *nonzero, 300 + n as u64);
        assert!(e < tol::<f32>(), "f32 {s:?} state={nonzero}: error {e:e}");
    }
}

#[test]
fn lstm_forward_matches_reference_f64() {
    for (n, (s, nonzero)) in lstm_shapes().iter().enumerate() {
        let e = lstm_case::<f64>(s, *nonzero, 400 + n as u64);
        assert!(e < tol::<f64>(), "f64 {s:?} state={nonzero}: error {e:e}");
    }
}

#[test]
fn lstm_forward_with_layer_input_wider_than_one() {
    // A stacked layer's input is the layer below's h (I = H); the last
    // case has two groups of row blocks and two blocks of `p`, one short.
    for &(h, b, t) in &[(7, 3, 17), (33, 2, 5), (131, 67, 3)] {
        let s = LstmShape {
            t,
            b,
            i: h,
            h,
            cell: CellActivation::Tanh,
            gate: GateActivation::Sigmoid,
        };
        let e = lstm_case::<f64>(&s, true, 500 + h as u64);
        assert!(e < tol::<f64>(), "{s:?}: error {e:e}");
    }
}

// ---------------------------------------------------------------- dense, sums, loss

#[test]
fn dense_forward_matches_reference() {
    let mut rng = SplitMix64::new(21);
    for &(rows, ni, no) in &[(1, 1, 1), (17, 7, 3), (544, 100, 50), (33, 12, 1)] {
        let off = wavelstm::model::DenseOffsets {
            input: ni,
            output: no,
            weight: 3,
            bias: 3 + no * ni,
        };
        let params: Vec<f32> = random(&mut rng, 3 + no * ni + no, 0.5);
        let x: Vec<f32> = random(&mut rng, rows * ni, 1.0);
        let mut y = vec![f32::NAN; rows * no];
        dense_forward(rows, &off, &params, &x, &mut y);
        let want = dense_forward_reference(rows, &off, &params, &x);
        let scale = vec![(ni + 1) as f64; rows * no];
        let e = worst(&to_f64(&y), &to_f64(&want), &scale);
        assert!(e < tol::<f32>(), "dense {rows}x{ni}->{no}: error {e:e}");
    }
}

#[test]
fn column_sums_match_a_plain_loop() {
    let mut rng = SplitMix64::new(31);
    for &(rows, cols) in &[
        (1, 1),
        (5, 63),
        (17, 64),
        (300, 65),
        (9, 400),
        (70, 1030),
        (200, 1100),
    ] {
        let m: Vec<f64> = random(&mut rng, rows * cols, 1.0);
        let mut got = vec![f64::NAN; cols];
        column_sums(&m, cols, &mut got);
        for c in 0..cols {
            // Same order (row by row), so exactly equal.
            let want = (0..rows).fold(0.0, |acc, r| acc + m[r * cols + c]);
            assert_eq!(got[c].to_bits(), want.to_bits(), "{rows}x{cols} column {c}");
        }
    }
}

#[test]
fn bias_and_input_grads_match_plain_loops() {
    // Large enough (rows·cols ≥ 2^16) for the parallel path too.
    let mut rng = SplitMix64::new(37);
    for &(rows, cols, i) in &[
        (1, 1, 1),
        (5, 63, 3),
        (17, 64, 1),
        (300, 400, 4),
        (9, 130, 2),
        // More than one block of columns, serial and parallel.
        (40, 1100, 2),
        (70, 1030, 1),
    ] {
        let da: Vec<f64> = random(&mut rng, rows * cols, 1.0);
        let x: Vec<f64> = random(&mut rng, rows * i, 1.0);
        let (mut db, mut dw) = (vec![f64::NAN; cols], vec![f64::NAN; i * cols]);
        bias_and_input_grads(&da, cols, &x, i, &mut db, &mut dw);
        for c in 0..cols {
            // Same order (row by row), so exactly equal.
            let want = (0..rows).fold(0.0, |acc, r| acc + da[r * cols + c]);
            assert_eq!(db[c].to_bits(), want.to_bits(), "{rows}x{cols} db {c}");
            for k in 0..i {
                let want = (0..rows).fold(0.0, |acc, r| acc + x[r * i + k] * da[r * cols + c]);
                let got = dw[k * cols + c];
                assert_eq!(got.to_bits(), want.to_bits(), "{rows}x{cols} dw {k},{c}");
            }
        }
    }
}

#[test]
fn exp_f32_is_within_a_few_ulp() {
    // Every 4099th bit pattern of the finite f32 values where e^x is a
    // normal number, against f64's exp rounded to f32.
    let mut worst = 0u32;
    for bits in (0..=u32::MAX).step_by(4099) {
        let x = f32::from_bits(bits);
        if !x.is_finite() || !(-87.0..=88.0).contains(&x) {
            continue;
        }
        let want = (x as f64).exp() as f32;
        let got = exp_f32(x);
        worst = worst.max(got.to_bits().abs_diff(want.to_bits()));
    }
    assert!(worst <= 3, "exp_f32 off by {worst} ulp");
}

#[test]
fn mse_loss_and_its_gradient() {
    let pred = [0.5f32, -1.0, 2.0, 0.0];
    let target = [0.0f32, -1.0, 1.0, 0.25];
    let mut d = Vec::new();
    let loss = mse_loss(&pred, &target, &mut d);
    // (0.25 + 0 + 1 + 0.0625) / 4
    assert!((loss - 0.328125).abs() < 1e-12, "loss {loss}");
    let want = [0.25f32, 0.0, 0.5, -0.125];
    for (g, w) in d.iter().zip(want) {
        assert!((g - w).abs() < 1e-7, "gradient {d:?}");
    }
}

// ---------------------------------------------------------------- whole network

fn model(layers: usize, hidden: usize, head: &[usize], channels: usize) -> ModelConfig {
    ModelConfig {
        frame: 3,
        hidden,
        layers,
        head: head.to_vec(),
        lstm_output_activation: Activation::LeakyRelu,
        output_activation: Activation::LeakyRelu,
        ..Defaults::of(None).model(channels)
    }
}

fn leaky(xs: &mut [f64], slope: f64) {
    for x in xs {
        if *x < 0.0 {
            *x *= slope;
        }
    }
}

/// The network composed by hand from the reference layers.
fn network_reference(
    cfg: &ModelConfig,
    params: &[f64],
    t: usize,
    b: usize,
    x: &[f64],
    h0: &[f64],
    c0: &[f64],
) -> Vec<f64> {
    let layout = cfg.layout();
    let bh = b * cfg.hidden;
    let mut input = x.to_vec();
    for k in 0..cfg.layers {
        let s = wavelstm::cpu::network::shape(cfg, k, t, b);
        let (h, _) = lstm_forward_reference(
            &s,
            params,
            &layout.lstm[k],
            &input,
            &h0[k * bh..(k + 1) * bh],
            &c0[k * bh..(k + 1) * bh],
        );
        input = h[bh..].to_vec();
    }
    leaky(&mut input, cfg.leaky_slope);
    for off in &layout.dense {
        input = dense_forward_reference(t * b, off, params, &input);
        leaky(&mut input, cfg.leaky_slope);
    }
    input
}

#[test]
fn network_forward_matches_composed_reference() {
    for (n, &(layers, hidden, ref head, channels, t, b)) in [
        (1, 7, vec![], 1, 17, 3),
        (2, 33, vec![5, 3], 2, 9, 4),
        (3, 10, vec![50, 25, 12], 1, 5, 32),
    ]
    .iter()
    .enumerate()
    {
        let cfg = model(layers, hidden, head, channels);
        let mut rng = SplitMix64::new(600 + n as u64);
        let params: Vec<f64> = random(&mut rng, cfg.layout().total, 0.4);
        let x: Vec<f64> = random(&mut rng, t * b * cfg.input_size(), 1.0);
        let h0: Vec<f64> = random(&mut rng, layers * b * hidden, 0.5);
        let c0: Vec<f64> = random(&mut rng, layers * b * hidden, 0.5);
        let mut ws = Workspace::default();
        forward(&cfg, &params, t, b, &x, &h0, &c0, &mut ws);
        let want = network_reference(&cfg, &params, t, b, &x, &h0, &c0);
        let scale = vec![100.0; want.len()];
        let e = worst(ws.prediction(), &want, &scale);
        assert!(e < tol::<f64>(), "network case {n}: error {e:e}");
    }
}

#[test]
fn training_step_math_is_bit_identical_across_thread_counts() {
    // Forward and backward of a model big enough for every parallel path
    // (row- and column-split products, parallel gate passes).
    let cfg = model(2, 100, &[50], 1);
    let (t, b) = (33, 32);
    let mut rng = SplitMix64::new(77);
    let params: Vec<f32> = random(&mut rng, cfg.layout().total, 0.1);
    let x: Vec<f32> = random(&mut rng, t * b * cfg.input_size(), 1.0);
    let target: Vec<f32> = random(&mut rng, t * b, 1.0);
    let zeros = vec![0.0f32; 2 * b * 100];
    let run = || {
        let mut ws = Workspace::default();
        forward(&cfg, &params, t, b, &x, &zeros, &zeros, &mut ws);
        let mut d = Vec::new();
        let loss = mse_loss(ws.prediction(), &target, &mut d);
        let mut grads = vec![0.0f32; params.len()];
        let (mut dh0, mut dc0) = (zeros.clone(), zeros.clone());
        backward(
            &cfg, &params, &x, &d, &mut ws, &mut grads, &mut dh0, &mut dc0,
        );
        let mut bits: Vec<u32> = grads.iter().map(|g| g.to_bits()).collect();
        bits.extend(dh0.iter().chain(&dc0).map(|g| g.to_bits()));
        (loss.to_bits(), bits)
    };
    let one = in_pool(1, run);
    for threads in [2, 3] {
        assert!(
            in_pool(threads, run) == one,
            "forward/backward differ between 1 and {threads} threads"
        );
    }
}

// ---------------------------------------------------------------- tile

/// Every variant of the register tile this CPU runs (AVX-512, AVX2+FMA,
/// portable) against f64 sums of the same packed panels.
#[test]
fn tile_matches_naive_sums_on_every_instruction_set() {
    use wavelstm::cpu::isa::Isa;
    use wavelstm::cpu::tile::{tile_f32_on, Start, MR, NR};
    let mut rng = SplitMix64::new(41);
    for &k in &[1, 7, 256, 1000] {
        let a: Vec<f32> = random(&mut rng, k * MR, 1.0);
        let b: Vec<f32> = random(&mut rng, k * NR, 1.0);
        for isa in Isa::all_supported() {
            let mut out = [f32::NAN; MR * NR];
            // SAFETY: the panels hold k·MR and k·NR values; the CPU runs `isa`.
            unsafe { tile_f32_on(isa, k, a.as_ptr(), b.as_ptr(), &mut out, Start::Zero) };
            for r in 0..MR {
                for c in 0..NR {
                    let (want, scale) = dot_f64(0.0, k, |p| (a[p * MR + r], b[p * NR + c]));
                    let got = f64::from(out[r * NR + c]);
                    assert!(
                        (got - want).abs() <= tol::<f32>() * scale,
                        "{isa:?} k {k}: ({r}, {c}) {got} vs {want}"
                    );
                }
            }
        }
    }
}

/// A tile that goes on from its own sums (`Start::Out`) is the same chain as
/// one call over all of `p`: cut anywhere, every variant gives the same bits
/// (the recurrence cuts its products into blocks that fit in L1 on that).
#[test]
fn a_tile_cut_into_blocks_of_p_gives_the_bits_of_one() {
    use wavelstm::cpu::isa::Isa;
    use wavelstm::cpu::tile::{tile_f32_on, Start, MR, NR};
    let mut rng = SplitMix64::new(43);
    for &(k, cuts) in &[(2, &[1][..]), (300, &[128, 256]), (517, &[1, 129, 500])] {
        let a: Vec<f32> = random(&mut rng, k * MR, 1.0);
        let b: Vec<f32> = random(&mut rng, k * NR, 1.0);
        for isa in Isa::all_supported() {
            let mut whole = [f32::NAN; MR * NR];
            // SAFETY: the panels hold k·MR and k·NR values; the CPU runs `isa`.
            unsafe { tile_f32_on(isa, k, a.as_ptr(), b.as_ptr(), &mut whole, Start::Zero) };
            let mut pieces = [f32::NAN; MR * NR];
            let bounds: Vec<usize> = std::iter::once(0)
                .chain(cuts.iter().copied())
                .chain([k])
                .collect();
            for w in bounds.windows(2) {
                let start = if w[0] == 0 { Start::Zero } else { Start::Out };
                // SAFETY: rows w[0]..w[1] of both panels lie inside them.
                unsafe {
                    tile_f32_on(
                        isa,
                        w[1] - w[0],
                        a[w[0] * MR..].as_ptr(),
                        b[w[0] * NR..].as_ptr(),
                        &mut pieces,
                        start,
                    )
                };
            }
            let differ = (0..MR * NR)
                .filter(|&i| whole[i].to_bits() != pieces[i].to_bits())
                .count();
            assert_eq!(
                differ, 0,
                "{isa:?} k {k} cut at {cuts:?}: {differ} sums differ"
            );
        }
    }
}

/// The two vector tiles split the 8 × 32 block into different passes, but
/// each element is still one chain of fused multiply-adds from zero in the
/// order of `p`, so they agree to the bit: a pass that summed part of `p`
/// apart, or read a row of A twice, would show here even inside the
/// tolerance of the naive check.
#[test]
fn the_avx2_and_avx512_tiles_give_the_same_bits() {
    use wavelstm::cpu::isa::Isa;
    use wavelstm::cpu::tile::{tile_f32_on, Start, MR, NR};
    if !Isa::Avx512.supported() {
        eprintln!("skipped: this CPU has no AVX-512 to hold the AVX2 tile against");
        return;
    }
    let mut rng = SplitMix64::new(47);
    for &k in &[1, 3, 64, 255, 1031] {
        let a: Vec<f32> = random(&mut rng, k * MR, 1.0);
        let b: Vec<f32> = random(&mut rng, k * NR, 1.0);
        let run = |isa, start, seed: &[f32; MR * NR]| {
            let mut out = *seed;
            // SAFETY: the panels hold k·MR and k·NR values; the CPU runs `isa`.
            unsafe { tile_f32_on(isa, k, a.as_ptr(), b.as_ptr(), &mut out, start) };
            out
        };
        let first: [f32; MR * NR] = std::array::from_fn(|i| i as f32 * 0.37 - 40.0);
        for start in [Start::Zero, Start::Out] {
            let (wide, narrow) = (
                run(Isa::Avx512, start, &first),
                run(Isa::Avx2Fma, start, &first),
            );
            let differ: Vec<usize> = (0..MR * NR)
                .filter(|&i| wide[i].to_bits() != narrow[i].to_bits())
                .collect();
            assert!(
                differ.is_empty(),
                "k {k} {start:?}: {} sums differ, first at ({}, {})",
                differ.len(),
                differ[0] / NR,
                differ[0] % NR
            );
        }
    }
}

/// `WAVELSTM_ISA` picks the instruction set every fast kernel runs on (CI
/// runs these tests once per variant the machine supports); when it is set,
/// it must be what the kernels use, or those runs would test the default
/// variant again without saying so.
#[test]
fn the_requested_instruction_set_is_the_one_used() {
    use wavelstm::cpu::isa::{isa, requested, Isa};
    match std::env::var("WAVELSTM_ISA") {
        Ok(name) if !name.is_empty() => {
            let want = requested().expect("a valid WAVELSTM_ISA").expect("set");
            assert_eq!(isa(), want, "WAVELSTM_ISA={name}");
        }
        _ => assert_eq!(
            isa(),
            Isa::all_supported()[0],
            "the best variant by default"
        ),
    }
}
