//! Each GPU kernel alone against its f64 reference (`cpu::reference`, or the
//! CPU twin where that is the reference), on fresh random inputs at several
//! shapes, odd sizes among them, so that a failure names the kernel: the
//! LSTM forward and backward gate math (both entry points each), the MSE
//! loss, the column sum and the activations. The other shaders have theirs
//! beside the whole-network tests: matmul, gather, state, grad_norm and adam
//! in `tests/gpu_ops.rs`, softmax_xent in `tests/gpu_generate.rs`,
//! law_nll in `tests/gpu_laplace.rs`.
//!
//! Tolerance: ‖gpu − reference‖ / ‖reference‖ ≤ 1e-5 for every tensor (f32
//! arithmetic against f64 on the same f32 inputs; the largest seen here is
//! about 1e-6 — see the messages), and the activations to 1e-6.
//!
//! With no GPU adapter these tests print why they are skipped and pass,
//! unless WAVELSTM_REQUIRE_GPU=1, where they fail.

mod common;

use common::gpu::{f64s, gpu, random, rel_norm};
use wavelstm::cpu::activation::{activate, activate_backward};
use wavelstm::cpu::lstm_shape::LstmShape;
use wavelstm::cpu::reference::{self, LstmWeights};
use wavelstm::gpu::kernels::Kernel;
use wavelstm::gpu::ops::{activation, lstm_backward, lstm_forward};
use wavelstm::gpu::program::{stats, LossMask, Program, NONE};
use wavelstm::gpu::workbench::{Buf, Workbench};
use wavelstm::model::{Activation, CellActivation, GateActivation};
use wavelstm::rng::SplitMix64;

const TOL: f64 = 1e-5;

fn check(what: &str, gpu: &[f32], want: &[f64]) {
    let r = rel_norm(gpu, want);
    assert!(r <= TOL, "{what}: relative error {r:.2e} > {TOL:.0e}");
}

fn f32s(xs: &[f64]) -> Vec<f32> {
    xs.iter().map(|&x| x as f32).collect()
}

/// (T, B, I, H, cell, gate): sizes that do not divide the workgroups, an H
/// over the sequence kernels' 256 threads, and both activation pairs.
fn lstm_shapes() -> Vec<LstmShape> {
    use CellActivation::{Linear, Tanh};
    use GateActivation::{HardSigmoid, Sigmoid};
    [
        (1, 1, 1, 1, Tanh, Sigmoid),
        (3, 2, 3, 5, Tanh, Sigmoid),
        (7, 3, 4, 17, Linear, HardSigmoid),
        (5, 5, 2, 33, Tanh, HardSigmoid),
        (2, 3, 3, 300, Tanh, Sigmoid),
    ]
    .into_iter()
    .map(|(t, b, i, h, cell, gate)| LstmShape {
        t,
        b,
        i,
        h,
        cell,
        gate,
    })
    .collect()
}

/// A layer's random weights, inputs and initial state, each rounded to f32
/// so that the GPU and the reference start from the same values.
struct Layer {
    w_ih: Vec<f64>,
    w_hh: Vec<f64>,
    b_ih: Vec<f64>,
    b_hh: Vec<f64>,
    x: Vec<f64>,
    h0: Vec<f64>,
    c0: Vec<f64>,
}

impl Layer {
    fn new(s: &LstmShape, seed: u64) -> Layer {
        let mut rng = SplitMix64::new(seed);
        let (h4, bh) = (4 * s.h, s.b * s.h);
        let scale = 1.0 / (s.h as f64).sqrt();
        let mut r = |n: usize, sc: f64| f64s(&random(&mut rng, n, sc));
        Layer {
            w_ih: r(h4 * s.i, scale),
            w_hh: r(h4 * s.h, scale),
            b_ih: r(h4, 0.5),
            b_hh: r(h4, 0.5),
            x: r(s.t * s.b * s.i, 1.0),
            h0: r(bh, 0.5),
            c0: r(bh, 0.5),
        }
    }

    fn weights(&self) -> LstmWeights<'_> {
        LstmWeights {
            w_ih: &self.w_ih,
            w_hh: &self.w_hh,
            b_ih: &self.b_ih,
            b_hh: &self.b_hh,
        }
    }

    /// `x·W_ihᵀ + b_ih + b_hh`, `[T·B, 4H]`.
    fn input_projection(&self, s: &LstmShape) -> Vec<f64> {
        let b: Vec<f64> = self
            .b_ih
            .iter()
            .zip(&self.b_hh)
            .map(|(a, b)| a + b)
            .collect();
        reference::dense_forward(s.t * s.b, &self.w_ih, &b, &self.x)
    }
}

/// Offsets in `acts` of one layer's tensors: `a[T, B, 4H]`, `c` and `h`
/// `[T+1, B, H]`, `dh_out[T, B, H]`, `dh_rec[T, B, H]` (a slot per
/// timestep), `dc[B, H]`.
struct At {
    a: usize,
    c: usize,
    h: usize,
    dh_out: usize,
    dh_rec: usize,
    dc: usize,
    total: usize,
}

impl At {
    fn new(s: &LstmShape) -> At {
        let (tb, bh) = (s.t * s.b, s.b * s.h);
        let a = 0;
        let c = a + tb * 4 * s.h;
        let h = c + (s.t + 1) * bh;
        let dh_out = h + (s.t + 1) * bh;
        let dh_rec = dh_out + tb * s.h;
        let dc = dh_rec + tb * s.h;
        At {
            a,
            c,
            h,
            dh_out,
            dh_rec,
            dc,
            total: dc + bh,
        }
    }
}

fn kinds(s: &LstmShape) -> u32 {
    lstm_forward::kinds(s.cell, s.gate)
}

#[test]
fn lstm_forward_kernels_match_the_reference() {
    let Some(gpu) = gpu() else { return };
    let mut wb = Workbench::new(gpu).unwrap();
    for (n, s) in lstm_shapes().iter().enumerate() {
        let layer = Layer::new(s, 100 + n as u64);
        let want = reference::lstm_forward(s, layer.weights(), &layer.x, &layer.h0, &layer.c0);
        let at = At::new(s);
        let (bh, h4) = (s.b * s.h, 4 * s.h);
        let projected = layer.input_projection(s);
        for sequence in [false, true] {
            let name = if sequence { "sequence" } else { "step" };
            // What the kernel does not write starts as NaN, so a missed
            // element fails the comparison.
            let mut acts = vec![f32::NAN; at.total];
            acts[at.c..at.c + bh].copy_from_slice(&f32s(&layer.c0));
            acts[at.h..at.h + bh].copy_from_slice(&f32s(&layer.h0));
            let mut pre = projected.clone();
            if !sequence {
                // `step` finds every product in `a`: add h_{t-1}·W_hhᵀ,
                // from the reference's h_{t-1}.
                let zero = vec![0.0; h4];
                for t in 0..s.t {
                    let h_prev = &want.h[t * bh..(t + 1) * bh];
                    let rec = reference::dense_forward(s.b, &layer.w_hh, &zero, h_prev);
                    for (p, r) in pre[t * s.b * h4..(t + 1) * s.b * h4].iter_mut().zip(rec) {
                        *p += r;
                    }
                }
            }
            acts[at.a..at.a + pre.len()].copy_from_slice(&f32s(&pre));
            wb.set(Buf::Acts, &acts);
            wb.set(Buf::Params, &f32s(&layer.w_hh));
            let params = |t: usize| lstm_forward::Params {
                t: t as u32,
                b: s.b as u32,
                h: s.h as u32,
                kinds: kinds(s),
                a: at.a as u32,
                c: at.c as u32,
                hs: at.h as u32,
                w_hh: 0,
                steps: s.t as u32,
            };
            let mut p = Program::default();
            if sequence {
                p.lstm_forward_sequence(params(0));
            } else {
                for t in 0..s.t {
                    p.lstm_forward_step(params(t));
                }
            }
            wb.run(&p).unwrap();
            let case = format!("lstm_forward::{name} {s:?}");
            let read = |o: usize, len: usize| wb.read(Buf::Acts, o, len).unwrap();
            check(
                &format!("{case}: gates"),
                &read(at.a, want.gates.len()),
                &want.gates,
            );
            check(&format!("{case}: c"), &read(at.c, want.c.len()), &want.c);
            check(&format!("{case}: h"), &read(at.h, want.h.len()), &want.h);
        }
    }
}

#[test]
fn lstm_backward_kernels_match_the_reference() {
    let Some(gpu) = gpu() else { return };
    let mut wb = Workbench::new(gpu).unwrap();
    for (n, s) in lstm_shapes().iter().enumerate() {
        let layer = Layer::new(s, 200 + n as u64);
        let (bh, h4) = (s.b * s.h, 4 * s.h);
        let mut trace = reference::lstm_forward(s, layer.weights(), &layer.x, &layer.h0, &layer.c0);
        // The kernel reads f32 gates and cells: give the reference the same.
        for v in trace.gates.iter_mut().chain(&mut trace.c) {
            *v = *v as f32 as f64;
        }
        let mut rng = SplitMix64::new(300 + n as u64);
        let dh_out = f64s(&random(&mut rng, s.t * bh, 1.0));
        let want = reference::lstm_backward(s, layer.weights(), &layer.x, &trace, &dh_out);
        let at = At::new(s);
        for sequence in [false, true] {
            let name = if sequence { "sequence" } else { "step" };
            let mut acts = vec![f32::NAN; at.total];
            acts[at.a..at.a + trace.gates.len()].copy_from_slice(&f32s(&trace.gates));
            acts[at.c..at.c + trace.c.len()].copy_from_slice(&f32s(&trace.c));
            acts[at.dh_out..at.dh_out + dh_out.len()].copy_from_slice(&f32s(&dh_out));
            // `step` finds ∂L/∂h_t through the recurrence, da_{t+1}·W_hh, in
            // its own slot: from the reference's da_{t+1}.
            for t in 0..s.t.saturating_sub(1) {
                for e in 0..bh {
                    let (lane, j) = (e / s.h, e % s.h);
                    let row = (t + 1) * s.b + lane;
                    let v: f64 = (0..h4)
                        .map(|m| want.da[row * h4 + m] * layer.w_hh[m * s.h + j])
                        .sum();
                    acts[at.dh_rec + t * bh + e] = v as f32;
                }
            }
            wb.set(Buf::Acts, &acts);
            wb.set(Buf::Params, &f32s(&layer.w_hh));
            let params = |t: usize, first_or_steps: usize| lstm_backward::Params {
                t: t as u32,
                b: s.b as u32,
                h: s.h as u32,
                kinds: kinds(s),
                a: at.a as u32,
                c: at.c as u32,
                dh_out: at.dh_out as u32,
                dh_rec: (at.dh_rec + t * bh) as u32,
                dc: at.dc as u32,
                first_or_steps: first_or_steps as u32,
                w_hh: 0,
            };
            let mut p = Program::default();
            if sequence {
                p.lstm_backward_sequence(params(0, s.t));
            } else {
                for t in (0..s.t).rev() {
                    p.lstm_backward_step(params(t, usize::from(t + 1 == s.t)));
                }
            }
            wb.run(&p).unwrap();
            let case = format!("lstm_backward::{name} {s:?}");
            let da = wb.read(Buf::Acts, at.a, want.da.len()).unwrap();
            check(&format!("{case}: da"), &da, &want.da);
            if !sequence {
                // What flows out of t = 0 is ∂L/∂c_0.
                let dc = wb.read(Buf::Acts, at.dc, bh).unwrap();
                check(&format!("{case}: dc_0"), &dc, &want.c0);
            }
        }
    }
}

#[test]
fn mse_loss_kernel_matches_the_reference() {
    let Some(gpu) = gpu() else { return };
    let mut wb = Workbench::new(gpu).unwrap();
    // Around the kernel's 256 threads, and one element.
    for (k, &n) in [1usize, 7, 255, 256, 257, 1000, 4099].iter().enumerate() {
        let mut rng = SplitMix64::new(400 + k as u64);
        let pred = random(&mut rng, n, 1.0);
        let target = random(&mut rng, n, 1.0);
        let (want_loss, want_grad) = reference::mse_loss(&f64s(&pred), &f64s(&target));
        let acts = [&pred[..], &target[..], &vec![f32::NAN; n]].concat();
        wb.set(Buf::Acts, &acts);
        // Ring slot 0, the loss ring one slot long.
        wb.set(Buf::Stats, &vec![0.0; stats::len(1)]);
        let mut p = Program::default();
        p.mse_loss(n, 0, n, 2 * n, LossMask::none(1));
        wb.run(&p).unwrap();
        let loss = wb.read(Buf::Stats, stats::LOSS, 1).unwrap();
        check(&format!("mse_loss n={n}: loss"), &loss, &[want_loss]);
        let grad = wb.read(Buf::Acts, 2 * n, n).unwrap();
        check(&format!("mse_loss n={n}: gradient"), &grad, &want_grad);
    }
}

#[test]
fn column_sum_kernel_matches_the_reference() {
    let Some(gpu) = gpu() else { return };
    let mut wb = Workbench::new(gpu).unwrap();
    // (rows, cols), the columns around the workgroup's 64 threads.
    for (k, &(rows, cols)) in [(1, 1), (7, 5), (130, 63), (3, 65), (257, 200)]
        .iter()
        .enumerate()
    {
        let mut rng = SplitMix64::new(500 + k as u64);
        let m = random(&mut rng, rows * cols, 1.0);
        let want = reference::column_sum(&f64s(&m), cols);
        // Sums are added into what the gradients already hold; out2 sits
        // after a gap that must stay untouched.
        let (out1, out2) = (0, cols + 3);
        let grads = random(&mut rng, out2 + cols, 1.0);
        wb.set(Buf::Acts, &m);
        for both in [false, true] {
            wb.set(Buf::Grads, &grads);
            let mut p = Program::default();
            p.column_sum(rows, cols, 0, out1, both.then_some(out2));
            wb.run(&p).unwrap();
            let got = wb.read(Buf::Grads, 0, grads.len()).unwrap();
            let added = |at: usize| -> Vec<f64> {
                (0..cols).map(|j| grads[at + j] as f64 + want[j]).collect()
            };
            let case = format!("column_sum {rows}×{cols}");
            check(
                &format!("{case}: out1"),
                &got[out1..out1 + cols],
                &added(out1),
            );
            assert_eq!(got[cols..out2], grads[cols..out2], "{case}: the gap");
            if both {
                check(&format!("{case}: out2"), &got[out2..], &added(out2));
            } else {
                assert_eq!(got[out2..], grads[out2..], "{case}: no out2");
            }
        }
    }
}

#[test]
fn activation_kernels_match_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let mut wb = Workbench::new(gpu).unwrap();
    let slope = 0.3f32;
    for (k, &n) in [1usize, 63, 64, 65, 1001].iter().enumerate() {
        let mut rng = SplitMix64::new(600 + k as u64);
        let x = random(&mut rng, n, 1.0);
        let dy = random(&mut rng, n, 1.0);
        let mut y = f64s(&x);
        activate(Activation::LeakyRelu, f64::from(slope), &mut y);
        let mut dx = f64s(&dy);
        activate_backward(Activation::LeakyRelu, f64::from(slope), &y, &mut dx);
        let groups = [n.div_ceil(64) as u32, 1, 1];
        let params = activation::Params {
            n: n as u32,
            kind: 1,
            x: 0,
            y: n as u32,
            dy: (2 * n) as u32,
            slope,
        };
        wb.set(Buf::Acts, &[&x[..], &vec![f32::NAN; n], &dy[..]].concat());
        let mut p = Program::default();
        p.push(Kernel::ActivationForward, params, groups);
        p.push(
            Kernel::ActivationBackward,
            activation::Params { x: NONE, ..params },
            groups,
        );
        wb.run(&p).unwrap();
        let got_y = wb.read(Buf::Acts, n, n).unwrap();
        let got_dx = wb.read(Buf::Acts, 2 * n, n).unwrap();
        let r = (rel_norm(&got_y, &y), rel_norm(&got_dx, &dx));
        assert!(
            r.0 <= 1e-6 && r.1 <= 1e-6,
            "activation n={n}: forward {:.1e}, backward {:.1e}",
            r.0,
            r.1
        );
    }
}
