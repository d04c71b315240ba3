//! Every fast CPU twin against the f64 reference of the same name
//! (`cpu::reference`), on fresh random inputs of several shapes, odd sizes
//! among them; and the reference BPTT against central finite differences of
//! the reference forward pass, so the reference itself is held to the math.
//!
//! Tolerance: the twins run in f32, so each value may differ from the f64
//! reference by `TOL · (1 + |reference|)` (sums of at most a few hundred
//! terms of magnitude about one; f32's epsilon is 1.2e-7).

use wavelstm::cpu::adam::{adam_step, global_norm};
use wavelstm::cpu::dense::{dense_backward, dense_forward};
use wavelstm::cpu::lstm::{
    column_sums, lstm_backward, lstm_forward, LstmCache, LstmGrads, LstmShape, Pass,
};
use wavelstm::cpu::network::mse_loss;
use wavelstm::cpu::reference::{self, AdamHyper, LstmWeights};
use wavelstm::dataset::gather;
use wavelstm::model::{CellActivation, DenseOffsets, GateActivation, LstmOffsets};
use wavelstm::optim::AdamConfig;
use wavelstm::rng::SplitMix64;

const TOL: f64 = 1e-4;

fn random(rng: &mut SplitMix64, n: usize, scale: f64) -> Vec<f64> {
    (0..n).map(|_| rng.uniform(-scale, scale)).collect()
}

fn f32s(xs: &[f64]) -> Vec<f32> {
    xs.iter().map(|&x| x as f32).collect()
}

/// The f32 values rounded back, so both sides start from the same inputs.
fn rounded(xs: &[f64]) -> Vec<f64> {
    xs.iter().map(|&x| f64::from(x as f32)).collect()
}

fn assert_close(what: &str, got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (f64::from(g) - w).abs() <= TOL * (1.0 + w.abs()),
            "{what}[{k}]: {g} vs reference {w}"
        );
    }
}

fn shapes() -> Vec<LstmShape> {
    let (t, s) = (CellActivation::Tanh, GateActivation::Sigmoid);
    let mut v = Vec::new();
    // Inputs 1 and 3 take the folded path (at most 4 inputs), 7 the product.
    // The last two have more than one group of row blocks (batch > 64) and
    // cut the recurrent products into blocks of 128 values of `p`, one of
    // them short, forward (H > 128) and backward (4H).
    for (steps, b, i, h) in [
        (1, 1, 1, 1),
        (3, 2, 3, 5),
        (5, 3, 7, 9),
        (2, 9, 1, 33),
        (3, 67, 1, 130),
        (2, 65, 7, 129),
    ] {
        v.push(LstmShape {
            t: steps,
            b,
            i,
            h,
            cell: t,
            gate: s,
        });
    }
    v.push(LstmShape {
        t: 4,
        b: 3,
        i: 2,
        h: 7,
        cell: CellActivation::Linear,
        gate: GateActivation::HardSigmoid,
    });
    v
}

/// One layer's parameters, flat as the model lays them out, and its offsets.
fn layer(rng: &mut SplitMix64, s: &LstmShape) -> (Vec<f64>, LstmOffsets) {
    let (h4, i, h) = (4 * s.h, s.i, s.h);
    let off = LstmOffsets {
        input: i,
        w_ih: 0,
        w_hh: h4 * i,
        b_ih: h4 * (i + h),
        b_hh: h4 * (i + h + 1),
    };
    (rounded(&random(rng, h4 * (i + h + 2), 0.5)), off)
}

fn weights<'a>(p: &'a [f64], s: &LstmShape, off: &LstmOffsets) -> LstmWeights<'a> {
    let h4 = 4 * s.h;
    LstmWeights {
        w_ih: &p[off.w_ih..off.w_ih + h4 * s.i],
        w_hh: &p[off.w_hh..off.w_hh + h4 * s.h],
        b_ih: &p[off.b_ih..off.b_ih + h4],
        b_hh: &p[off.b_hh..off.b_hh + h4],
    }
}

#[test]
fn lstm_forward_and_backward_match_the_reference() {
    let mut rng = SplitMix64::new(131);
    for s in shapes() {
        let what = format!("{s:?}");
        let (p, off) = layer(&mut rng, &s);
        let (bh, tb) = (s.b * s.h, s.t * s.b);
        let x = rounded(&random(&mut rng, tb * s.i, 1.0));
        let h0 = rounded(&random(&mut rng, bh, 0.9));
        let c0 = rounded(&random(&mut rng, bh, 1.0));
        let dh = rounded(&random(&mut rng, tb * s.h, 1.0));
        let w = weights(&p, &s, &off);
        let tr = reference::lstm_forward(&s, w, &x, &h0, &c0);
        let want = reference::lstm_backward(&s, w, &x, &tr, &dh);

        let (pf, xf) = (f32s(&p), f32s(&x));
        let mut cache = LstmCache::default();
        lstm_forward(
            &s,
            &pf,
            &off,
            &xf,
            &f32s(&h0),
            &f32s(&c0),
            &mut cache,
            Pass::Training,
        );
        assert_close(&format!("{what} h"), &cache.h, &tr.h);
        assert_close(&format!("{what} c"), &cache.c, &tr.c);
        assert_close(&format!("{what} gates"), &cache.gates, &tr.gates);

        let mut grads = vec![0.0f32; p.len()];
        let (mut dx, mut dh0, mut dc0) = (vec![0.0; xf.len()], vec![0.0; bh], vec![0.0; bh]);
        let mut da = Vec::new();
        lstm_backward(
            &s,
            &pf,
            &off,
            &xf,
            &cache,
            &f32s(&dh),
            &mut da,
            LstmGrads {
                params: &mut grads,
                x: Some(&mut dx),
                h0: &mut dh0,
                c0: &mut dc0,
            },
        );
        let h4 = 4 * s.h;
        for (name, at, len, want) in [
            ("dW_ih", off.w_ih, h4 * s.i, &want.w_ih),
            ("dW_hh", off.w_hh, h4 * s.h, &want.w_hh),
            ("db_ih", off.b_ih, h4, &want.b_ih),
            ("db_hh", off.b_hh, h4, &want.b_hh),
        ] {
            assert_close(&format!("{what} {name}"), &grads[at..at + len], want);
        }
        assert_close(&format!("{what} dx"), &dx, &want.x);
        assert_close(&format!("{what} dh0"), &dh0, &want.h0);
        assert_close(&format!("{what} dc0"), &dc0, &want.c0);
    }
}

/// The reference BPTT is the derivative of the reference forward pass:
/// `L = Σ dh_out · h`, differenced centrally in f64 at every input.
#[test]
fn reference_bptt_matches_finite_differences() {
    let mut rng = SplitMix64::new(132);
    for s in shapes().into_iter().filter(|s| s.h <= 9) {
        // The hard sigmoid's kinks make differences across them meaningless.
        if s.gate == GateActivation::HardSigmoid {
            continue;
        }
        let (p, off) = layer(&mut rng, &s);
        let (bh, tb) = (s.b * s.h, s.t * s.b);
        let x = random(&mut rng, tb * s.i, 1.0);
        let h0 = random(&mut rng, bh, 0.9);
        let c0 = random(&mut rng, bh, 1.0);
        let dh = random(&mut rng, tb * s.h, 1.0);
        let loss = |p: &[f64], x: &[f64], h0: &[f64], c0: &[f64]| {
            let tr = reference::lstm_forward(&s, weights(p, &s, &off), x, h0, c0);
            tr.h[bh..].iter().zip(&dh).map(|(h, d)| h * d).sum::<f64>()
        };
        let tr = reference::lstm_forward(&s, weights(&p, &s, &off), &x, &h0, &c0);
        let g = reference::lstm_backward(&s, weights(&p, &s, &off), &x, &tr, &dh);
        let mut analytic = [g.w_ih, g.w_hh, g.b_ih].concat();
        analytic.extend(&g.b_hh);
        let eps = 1e-6;
        let check = |name: &str, k: usize, plus: f64, minus: f64, want: f64| {
            let fd = (plus - minus) / (2.0 * eps);
            assert!(
                (fd - want).abs() <= 1e-6 * (1.0 + fd.abs()),
                "{s:?} {name}[{k}]: finite difference {fd} vs BPTT {want}"
            );
        };
        // Every element of each input, in the order `loss` takes them.
        let inputs = [&p, &x, &h0, &c0];
        let wanted = [
            ("params", &analytic),
            ("x", &g.x),
            ("h0", &g.h0),
            ("c0", &g.c0),
        ];
        for (which, (name, want)) in wanted.into_iter().enumerate() {
            for k in 0..inputs[which].len() {
                let nudged = |d: f64| {
                    let mut v = inputs.map(|v| v.clone());
                    v[which][k] += d;
                    loss(&v[0], &v[1], &v[2], &v[3])
                };
                check(name, k, nudged(eps), nudged(-eps), want[k]);
            }
        }
    }
}

#[test]
fn dense_forward_and_backward_match_the_reference() {
    let mut rng = SplitMix64::new(133);
    for (rows, ni, no) in [(1, 1, 1), (3, 5, 7), (17, 33, 1), (64, 9, 65)] {
        let off = DenseOffsets {
            input: ni,
            output: no,
            weight: 0,
            bias: no * ni,
        };
        let p = rounded(&random(&mut rng, no * ni + no, 0.5));
        let x = rounded(&random(&mut rng, rows * ni, 1.0));
        let dy = rounded(&random(&mut rng, rows * no, 1.0));
        let (w, b) = p.split_at(no * ni);
        let what = format!("dense {rows}x{ni}->{no}");
        let mut y = vec![0.0f32; rows * no];
        dense_forward(rows, &off, &f32s(&p), &f32s(&x), &mut y);
        assert_close(
            &format!("{what} y"),
            &y,
            &reference::dense_forward(rows, w, b, &x),
        );
        let mut grads = vec![0.0f32; p.len()];
        let mut dx = vec![0.0f32; rows * ni];
        dense_backward(
            rows,
            &off,
            &f32s(&p),
            &f32s(&x),
            &f32s(&dy),
            &mut grads,
            Some(&mut dx),
        );
        let (dw, db, dxr) = reference::dense_backward(rows, w, &x, &dy, no);
        assert_close(&format!("{what} dW"), &grads[..no * ni], &dw);
        assert_close(&format!("{what} db"), &grads[no * ni..], &db);
        assert_close(&format!("{what} dx"), &dx, &dxr);
    }
}

#[test]
fn mse_column_sums_and_grad_norm_match_the_reference() {
    let mut rng = SplitMix64::new(134);
    for n in [1, 7, 100, 1001] {
        let pred = rounded(&random(&mut rng, n, 1.0));
        let target = rounded(&random(&mut rng, n, 1.0));
        let mut dpred = Vec::new();
        let loss = mse_loss(&f32s(&pred), &f32s(&target), &mut dpred);
        let (want, grad) = reference::mse_loss(&pred, &target);
        assert!(
            (loss - want).abs() <= TOL * (1.0 + want),
            "mse {n}: {loss} vs {want}"
        );
        assert_close(&format!("mse grad {n}"), &dpred, &grad);

        let g = rounded(&random(&mut rng, n * 3, 1.0));
        let norm = global_norm(&f32s(&g));
        let want = reference::grad_norm(&g);
        assert!(
            (norm - want).abs() <= 1e-9 * want,
            "grad_norm {n}: {norm} vs {want}"
        );
    }
    for (rows, cols) in [(1, 1), (3, 65), (257, 7), (300, 300)] {
        let m = rounded(&random(&mut rng, rows * cols, 1.0));
        let mut out = vec![0.0f32; cols];
        column_sums(&f32s(&m), cols, &mut out);
        assert_close(
            &format!("column_sum {rows}x{cols}"),
            &out,
            &reference::column_sum(&m, cols),
        );
    }
}

#[test]
fn gather_matches_the_reference() {
    let mut rng = SplitMix64::new(135);
    // Width above channels: a hybrid model's feature frames.
    for (n, channels, width, frame, t) in [
        (10, 1, 1, 1, 3),
        (50, 2, 2, 3, 7),
        (33, 1, 1, 5, 40),
        (29, 2, 86, 1, 6),
    ] {
        let signal = rounded(&random(&mut rng, n * width, 1.0));
        let targets = rounded(&random(&mut rng, n * channels, 1.0));
        // Starts near the end too, where positions clamp to the last target.
        let starts: Vec<usize> = (0..5).map(|k| frame - 1 + k * (n - frame) / 5).collect();
        let (mut x, mut y) = (Vec::new(), Vec::new());
        gather(
            &f32s(&signal),
            &f32s(&targets),
            channels,
            width,
            frame,
            &starts,
            t,
            &mut x,
            &mut y,
        );
        let (wx, wy) = reference::gather(&signal, &targets, channels, width, frame, &starts, t);
        let what = format!("gather n {n} c {channels} w {width} frame {frame} t {t}");
        assert_close(&format!("{what} x"), &x, &wx);
        assert_close(&format!("{what} target"), &y, &wy);
    }
}

#[test]
fn adam_matches_the_reference() {
    let mut rng = SplitMix64::new(136);
    let cfg = AdamConfig {
        lr: 1e-2,
        weight_decay: 0.1,
        ..AdamConfig::default()
    };
    let h = AdamHyper {
        lr: cfg.lr,
        beta1: cfg.beta1,
        beta2: cfg.beta2,
        eps: cfg.eps,
        weight_decay: cfg.weight_decay,
    };
    for n in [1, 7, 1000, 70_001] {
        let mut p = rounded(&random(&mut rng, n, 1.0));
        let (mut m, mut v) = (vec![0.0; n], vec![0.0; n]);
        let mut pf = f32s(&p);
        let (mut mf, mut vf) = (vec![0.0f32; n], vec![0.0f32; n]);
        for t in 1..=5 {
            let g = rounded(&random(&mut rng, n, 1.0));
            adam_step(&cfg, t, &mut pf, &f32s(&g), &mut mf, &mut vf);
            reference::adam(&h, t, &mut p, &g, &mut m, &mut v);
        }
        assert_close(&format!("adam {n} p"), &pf, &p);
        assert_close(&format!("adam {n} m"), &mf, &m);
        assert_close(&format!("adam {n} v"), &vf, &v);
    }
}
