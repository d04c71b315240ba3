//! The step of windows without memory (`cpu::window_step`, seq-len 1 from a
//! zero state) and its lanes-last products (`cpu::lanes`) against their
//! references: naive f64 sums for the products, the general network
//! (`cpu::network`, run in f64) for the step, and the general training
//! step with Adam over the whole buffer for the engine.
//!
//! Tolerances: an f32 dot product of length k differs from the exact one by
//! at most about k·ε·Σ|aᵢbᵢ| (Higham, *Accuracy and Stability of Numerical
//! Algorithms*, 2nd ed., §3.1); with k ≤ 400 we allow 1e-5·Σ|aᵢbᵢ| per
//! element. Whole tensors of the step are compared in norm,
//! ‖got − want‖ ≤ 1e-5·‖want‖ (+1e-9 for tensors that are nearly zero):
//! what is observed is around 1e-7; a wrong index or a missing term is off
//! by far more.

use wavelstm::cpu::adam::{adam_step, clip_global_norm};
use wavelstm::cpu::engine::CpuEngine;
use wavelstm::cpu::isa::Isa;
use wavelstm::cpu::lanes::{
    dot_lanes, from_lanes, mul_lanes, padded, sum_lanes, to_lanes, Strided,
};
use wavelstm::cpu::law_nll::{law_nll_loss, Delta};
use wavelstm::cpu::mulaw::softmax_xent_loss;
use wavelstm::cpu::network::{backward, forward, mse_loss, BurnIn, Workspace};
use wavelstm::cpu::window_step::{TwoPartStep, WindowStep};
use wavelstm::dataset::{gather, Batch};
use wavelstm::engine::Engine;
use wavelstm::model::{
    init_params, Activation, CellActivation, GateActivation, ModelConfig, Output,
};
use wavelstm::optim::AdamConfig;
use wavelstm::rng::SplitMix64;

mod common;
use common::models::lstm;
use common::sums::dot_f64;

fn random(rng: &mut SplitMix64, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.uniform(-1.0, 1.0) as f32).collect()
}

fn to_f64(xs: &[f32]) -> Vec<f64> {
    xs.iter().map(|&x| f64::from(x)).collect()
}

fn norm(xs: impl Iterator<Item = f64>) -> f64 {
    xs.map(|x| x * x).sum::<f64>().sqrt()
}

/// `‖got − want‖ ≤ 1e-5·‖want‖ + 1e-9`, with a message naming `what`.
fn assert_close(got: &[f32], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let err = norm(got.iter().zip(want).map(|(&g, &w)| f64::from(g) - w));
    let size = norm(want.iter().copied());
    assert!(
        err <= 1e-5 * size + 1e-9,
        "{what}: ‖error‖ {err:e} against ‖reference‖ {size:e}"
    );
}

// ------------------------------------------------------------ products

/// `(a, x)` of one product: `a(r, p)` as a function, `x[p, l]` lanes-last.
fn check_mul(
    isa: Isa,
    rng: &mut SplitMix64,
    rows: usize,
    depth: usize,
    b: usize,
    transposed: bool,
) {
    let bp = padded(b);
    // W is [n, k]: n = rows and k = depth as is, the other way round transposed.
    let (n, k) = if transposed {
        (depth, rows)
    } else {
        (rows, depth)
    };
    let w = random(rng, n * k);
    let mut x = random(rng, depth * bp);
    for p in 0..depth {
        x[p * bp + b..(p + 1) * bp].fill(0.0);
    }
    let a = |r: usize, p: usize| {
        if transposed {
            w[p * k + r]
        } else {
            w[r * k + p]
        }
    };
    let strided = if transposed {
        Strided::transposed(&w, k)
    } else {
        Strided::rows(&w, k)
    };
    // Rows from 1 on, and an accumulated start, as the step uses them.
    let first = usize::from(rows > 1);
    let start = random(rng, rows * bp);
    for accumulate in [false, true] {
        let mut out = start.clone();
        mul_lanes(
            isa,
            strided,
            first..rows,
            depth,
            &x,
            bp,
            &mut out,
            accumulate,
        );
        for r in 0..rows {
            for l in 0..bp {
                let got = out[r * bp + l];
                if r < first {
                    assert_eq!(got, start[r * bp + l], "row outside the range was written");
                    continue;
                }
                let base = if accumulate {
                    f64::from(start[r * bp + l])
                } else {
                    0.0
                };
                let (want, scale) = dot_f64(base, depth, |p| (a(r, p), x[p * bp + l]));
                assert!(
                    (f64::from(got) - want).abs() <= 1e-5 * scale + 1e-30,
                    "mul_lanes {isa:?} rows {rows} depth {depth} b {b} transposed {transposed} \
                     accumulate {accumulate}: ({r}, {l}) {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn mul_lanes_matches_naive_sums() {
    let mut rng = SplitMix64::new(11);
    for &(rows, depth) in &[
        (1, 1),
        (7, 3),
        (13, 5),
        (50, 100),
        (25, 50),
        (1, 12),
        (400, 3),
    ] {
        for &b in &[1, 3, 16, 17, 100] {
            for transposed in [false, true] {
                for isa in Isa::all_supported() {
                    check_mul(isa, &mut rng, rows, depth, b, transposed);
                }
            }
        }
    }
}

#[test]
fn dot_and_sum_lanes_match_naive_sums() {
    let mut rng = SplitMix64::new(12);
    for &(rows, cols) in &[
        (1, 1),
        (4, 4),
        (7, 3),
        (9, 13),
        (50, 100),
        (300, 3),
        (12, 25),
    ] {
        for &b in &[1, 5, 16, 33, 100] {
            let bp = padded(b);
            let y = random(&mut rng, rows * bp);
            let x = random(&mut rng, cols * bp);
            let ld = cols + 2;
            let first = rows / 3;
            let start = random(&mut rng, rows * ld);
            // The fused sets (AVX-512, AVX2) run the same chains: their
            // outputs, by `accumulate`, must agree to the bit.
            let mut fused: [Option<Vec<f32>>; 2] = [None, None];
            for (isa, accumulate) in Isa::all_supported()
                .into_iter()
                .flat_map(|i| [(i, false), (i, true)])
            {
                let mut out = start.clone();
                dot_lanes(isa, &y, first..rows, &x, cols, bp, &mut out, ld, accumulate);
                if isa != Isa::Portable {
                    let bits: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
                    match &fused[usize::from(accumulate)] {
                        Some(other) => assert!(
                            other.iter().map(|v| v.to_bits()).eq(bits.iter().copied()),
                            "dot_lanes {rows}x{cols} b {b}: {isa:?} differs from the other fused set"
                        ),
                        None => fused[usize::from(accumulate)] = Some(out.clone()),
                    }
                }
                for n in 0..rows {
                    for k in 0..ld {
                        let got = out[n * ld + k];
                        if n < first || k >= cols {
                            assert_eq!(got, start[n * ld + k], "outside the block was written");
                            continue;
                        }
                        let base = if accumulate {
                            f64::from(start[n * ld + k])
                        } else {
                            0.0
                        };
                        let (want, scale) = dot_f64(base, bp, |l| (y[n * bp + l], x[k * bp + l]));
                        assert!(
                            (f64::from(got) - want).abs() <= 1e-5 * scale,
                            "dot_lanes {isa:?} {rows}x{cols} b {b} accumulate {accumulate}: \
                             ({n}, {k}) {got} vs {want}"
                        );
                    }
                }
            }
            let mut sums = vec![f32::NAN; rows];
            sum_lanes(&y, first..rows, bp, &mut sums);
            for n in first..rows {
                let row = &y[n * bp..(n + 1) * bp];
                let want: f64 = row.iter().map(|&v| f64::from(v)).sum();
                let scale: f64 = row.iter().map(|&v| f64::from(v).abs()).sum();
                assert!((f64::from(sums[n]) - want).abs() <= 1e-5 * scale);
            }
        }
    }
}

/// A batch padded to half a vector gives what it gives padded to a whole
/// one with zeros, to the bit, on every set: the grain changes no result.
#[test]
fn a_half_vector_is_a_zero_padded_whole_one_to_the_bit() {
    let mut rng = SplitMix64::new(17);
    let whole = |b: usize| b.div_ceil(16) * 16;
    for &(rows, depth) in &[(1, 1), (7, 3), (13, 50), (25, 100)] {
        for &b in &[5, 20, 52, 100] {
            let (bh, bw) = (padded(b), whole(b));
            assert!(bh < bw, "b {b}: no half vector");
            // `x`'s padded lanes as the step has them (not zero: what the
            // network makes of a zero input), `y`'s zero (a zero gradient).
            let x = random(&mut rng, depth.max(rows) * bw);
            let mut y = random(&mut rng, rows * bw);
            for r in 0..rows {
                y[r * bw + b..(r + 1) * bw].fill(0.0);
            }
            let narrow = |m: &[f32], n: usize| -> Vec<f32> {
                (0..n)
                    .flat_map(|r| m[r * bw..r * bw + bh].to_vec())
                    .collect()
            };
            let (xh, yh) = (narrow(&x, depth.max(rows)), narrow(&y, rows));
            let w = random(&mut rng, rows * depth);
            let start = random(&mut rng, rows * bw);
            let starth = narrow(&start, rows);
            for isa in Isa::all_supported() {
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                for accumulate in [false, true] {
                    // x's lanes past `b` zero for the product's input.
                    let mut xz = x.clone();
                    for p in 0..depth {
                        xz[p * bw + b..(p + 1) * bw].fill(0.0);
                    }
                    let xzh = narrow(&xz, depth);
                    let a = Strided::rows(&w, depth);
                    let (mut ow, mut oh) = (start.clone(), starth.clone());
                    mul_lanes(isa, a, 0..rows, depth, &xz, bw, &mut ow, accumulate);
                    mul_lanes(isa, a, 0..rows, depth, &xzh, bh, &mut oh, accumulate);
                    assert_eq!(
                        bits(&narrow(&ow, rows)),
                        bits(&oh),
                        "mul_lanes {isa:?} {rows}x{depth} b {b}"
                    );
                    let ld = depth + 1;
                    let (mut dw, mut dh) = (vec![0.5f32; rows * ld], vec![0.5f32; rows * ld]);
                    dot_lanes(isa, &y, 0..rows, &x, depth, bw, &mut dw, ld, accumulate);
                    dot_lanes(isa, &yh, 0..rows, &xh, depth, bh, &mut dh, ld, accumulate);
                    assert_eq!(
                        bits(&dw),
                        bits(&dh),
                        "dot_lanes {isa:?} {rows}x{depth} b {b}"
                    );
                }
            }
            let (mut sw, mut sh) = (vec![0.0f32; rows], vec![0.0f32; rows]);
            sum_lanes(&y, 0..rows, bw, &mut sw);
            sum_lanes(&yh, 0..rows, bh, &mut sh);
            assert_eq!(sw, sh, "sum_lanes {rows} b {b}");
        }
    }
}

#[test]
fn lanes_layout_round_trips() {
    let mut rng = SplitMix64::new(13);
    for &(b, f) in &[(1, 1), (3, 7), (17, 2), (100, 3)] {
        let bp = padded(b);
        let src = random(&mut rng, b * f);
        let mut lanes = vec![f32::NAN; f * bp];
        to_lanes(&src, b, f, bp, &mut lanes);
        for k in 0..f {
            for l in 0..bp {
                let want = if l < b { src[l * f + k] } else { 0.0 };
                assert_eq!(lanes[k * bp + l], want);
            }
        }
        let mut back = vec![f32::NAN; b * f];
        from_lanes(&lanes, b, f, bp, &mut back);
        assert_eq!(back, src);
    }
}

// ---------------------------------------------------------------- step

/// The models the step is checked on: every activation pair, one and two
/// layers, no head and the seed preset's head, every output head, two
/// channels, odd widths.
fn models() -> Vec<ModelConfig> {
    use CellActivation::{Linear, Tanh};
    use GateActivation::{HardSigmoid, Sigmoid};
    let mut v = Vec::new();
    for (cell, gate) in [
        (Tanh, Sigmoid),
        (Linear, HardSigmoid),
        (Tanh, HardSigmoid),
        (Linear, Sigmoid),
    ] {
        v.push(lstm(1, 1, 7, &[], cell, gate, Output::Mse));
    }
    let mut seed = lstm(1, 1, 100, &[50, 25, 12], Linear, HardSigmoid, Output::Mse);
    seed.output_activation = Activation::LeakyRelu;
    v.push(seed);
    v.push(lstm(1, 2, 33, &[5], Tanh, Sigmoid, Output::Mse));
    v.push(lstm(1, 3, 1, &[], Tanh, Sigmoid, Output::Mse));
    v.push(lstm(
        1,
        1,
        9,
        &[4],
        Tanh,
        Sigmoid,
        Output::Mulaw { scale: 0.5 },
    ));
    v.push(lstm(
        1,
        2,
        5,
        &[],
        Tanh,
        Sigmoid,
        Output::Laplace { scale: 0.3 },
    ));
    v.push(lstm(
        1,
        3,
        4,
        &[],
        Tanh,
        Sigmoid,
        Output::Logistic { scale: 0.2 },
    ));
    let mut stereo = lstm(1, 2, 13, &[6], Tanh, HardSigmoid, Output::Mse);
    stereo.channels = 2;
    stereo.frame = 1;
    v.push(stereo);
    v
}

#[test]
fn window_step_matches_the_network() {
    let mut rng = SplitMix64::new(14);
    for cfg in models() {
        let layout = cfg.layout();
        let params = init_params(&cfg, &mut rng);
        let params64 = to_f64(&params);
        // Every variant this CPU runs, each on its own step.
        let mut steps: Vec<(Isa, WindowStep)> = Isa::all_supported()
            .into_iter()
            .map(|isa| (isa, WindowStep::on(isa)))
            .collect();
        for &b in &[1, 3, 17, 100] {
            let x = random(&mut rng, b * cfg.input_size());
            let target = random(&mut rng, b * cfg.channels);
            let what = format!("{cfg:?} batch {b}");

            // Reference: the general network in f64 at T = 1 from zero state.
            let zero = vec![0.0f64; cfg.layers * b * cfg.hidden];
            let mut ws = Workspace::<f64>::default();
            let x64 = to_f64(&x);
            forward(&cfg, &params64, 1, b, &x64, &zero, &zero, &mut ws);
            let pred_ref = ws.prediction().to_vec();
            let mut dpred64 = Vec::new();
            let target64 = to_f64(&target);
            match cfg.output {
                Output::Mse => mse_loss(&pred_ref, &target64, &mut dpred64),
                Output::Mulaw { scale } => softmax_xent_loss(
                    &pred_ref,
                    &target64,
                    f64::from(scale),
                    &mut dpred64,
                    &mut Vec::new(),
                ),
                Output::Laplace { scale } | Output::Logistic { scale } => law_nll_loss(
                    cfg.output.law().expect("a location–scale head").0,
                    &pred_ref,
                    &target64,
                    Delta::Uniform(wavelstm::laplace::delta_for_scale(f64::from(scale))),
                    cfg.channels,
                    BurnIn::NONE,
                    &mut dpred64,
                    &mut Vec::new(),
                ),
            };
            let mut grads_ref = vec![0.0f64; layout.total];
            let (mut dh0, mut dc0) = (zero.clone(), zero.clone());
            backward(
                &cfg,
                &params64,
                &x64,
                &dpred64,
                &mut ws,
                &mut grads_ref,
                &mut dh0,
                &mut dc0,
            );
            let (mut h_ref, mut c_ref) = (zero.clone(), zero.clone());
            ws.final_state(&cfg, &mut h_ref, &mut c_ref);

            // The step, fed the same loss gradient (in f32).
            let dpred: Vec<f32> = dpred64.iter().map(|&d| d as f32).collect();
            for (isa, step) in &mut steps {
                let what = format!("{what} on {isa:?}");
                let pred = step.forward(&cfg, &layout, &params, &x).to_vec();
                assert_close(&pred, &pred_ref, &format!("{what}: predictions"));
                let mut grads = vec![f32::NAN; layout.total];
                step.backward(&cfg, &layout, &params, &dpred, &mut grads);
                for e in &layout.entries {
                    let r = e.offset..e.offset + e.len;
                    if e.name.starts_with("weight_hh") {
                        // The claim the step rests on: no gradient reaches W_hh,
                        // and the step leaves the buffer there alone.
                        assert!(
                            grads_ref[r.clone()].iter().all(|&g| g == 0.0),
                            "{what}: {}",
                            e.name
                        );
                        assert!(
                            grads[r].iter().all(|g| g.is_nan()),
                            "{what}: {} written",
                            e.name
                        );
                    } else {
                        assert_close(
                            &grads[r.clone()],
                            &grads_ref[r],
                            &format!("{what}: {}", e.name),
                        );
                    }
                }
                let (mut h, mut c) = (vec![0.0f32; zero.len()], vec![0.0f32; zero.len()]);
                step.final_state(&cfg, &mut h, &mut c);
                assert_close(&h, &h_ref, &format!("{what}: final h"));
                assert_close(&c, &c_ref, &format!("{what}: final c"));
            }
        }
    }
}

// --------------------------------------------------------------- engine

/// `steps` training steps of the general path by hand: the network in f32,
/// clipping and Adam over the whole buffer. Returns the parameters after
/// each step and the final carried state.
#[allow(clippy::type_complexity)]
fn reference_run(
    cfg: &ModelConfig,
    adam: &AdamConfig,
    params: &[f32],
    signal: &[f32],
    batches: &[(Batch, usize)],
) -> (Vec<Vec<f32>>, Vec<f64>, Vec<f32>) {
    let n = params.len();
    let (mut p, mut m, mut v) = (params.to_vec(), vec![0.0; n], vec![0.0; n]);
    let mut ws = Workspace::<f32>::default();
    let (mut x, mut target, mut dpred) = (Vec::new(), Vec::new(), Vec::new());
    let mut carry_h: Vec<f32> = Vec::new();
    let mut carry_c: Vec<f32> = Vec::new();
    let (mut after, mut losses) = (Vec::new(), Vec::new());
    for (t, (batch, seq)) in batches.iter().enumerate() {
        let b = batch.starts.len();
        let len = cfg.layers * b * cfg.hidden;
        carry_h.resize(len, 0.0);
        carry_c.resize(len, 0.0);
        for k in 0..cfg.layers {
            for (lane, &keep) in batch.carry.iter().enumerate() {
                if !keep {
                    let r = (k * b + lane) * cfg.hidden..(k * b + lane + 1) * cfg.hidden;
                    carry_h[r.clone()].fill(0.0);
                    carry_c[r].fill(0.0);
                }
            }
        }
        gather(
            signal,
            signal,
            cfg.channels,
            cfg.channels,
            cfg.frame,
            &batch.starts,
            *seq,
            &mut x,
            &mut target,
        );
        forward(cfg, &p, *seq, b, &x, &carry_h, &carry_c, &mut ws);
        losses.push(mse_loss(ws.prediction(), &target, &mut dpred));
        let mut g = vec![0.0f32; n];
        let (mut dh0, mut dc0) = (vec![0.0; len], vec![0.0; len]);
        backward(cfg, &p, &x, &dpred, &mut ws, &mut g, &mut dh0, &mut dc0);
        clip_global_norm(&mut g, adam.clip);
        adam_step(adam, t as u64 + 1, &mut p, &g, &mut m, &mut v);
        ws.final_state(cfg, &mut carry_h, &mut carry_c);
        after.push(p.clone());
    }
    (after, losses, carry_h)
}

fn windows(rng: &mut SplitMix64, b: usize, frames: usize, frame: usize) -> Batch {
    Batch {
        starts: (0..b)
            .map(|_| frame - 1 + rng.below((frames - frame - 1) as u64) as usize)
            .collect(),
        carry: vec![false; b],
    }
}

#[test]
fn engine_window_steps_match_the_general_step() {
    let cfg = {
        let mut c = lstm(
            1,
            2,
            24,
            &[10, 5],
            CellActivation::Linear,
            GateActivation::HardSigmoid,
            Output::Mse,
        );
        c.output_activation = Activation::LeakyRelu;
        c
    };
    let mut rng = SplitMix64::new(15);
    let signal: Vec<f32> = (0..2000).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
    let params = init_params(&cfg, &mut rng);
    let hh = 4 * cfg.hidden * cfg.hidden;
    // (weight decay, clip, a general step first, batch): batches of 64 and
    // more are cut in two parts (`TwoPartStep`).
    for (decay, clip, general_first, b) in [
        (0.0, 0.0, false, 9),
        (0.01, 0.0, false, 70),
        (0.0, 0.05, true, 100),
    ] {
        let adam = AdamConfig {
            weight_decay: decay,
            clip,
            lr: 3e-3,
            ..AdamConfig::default()
        };
        let mut batches = Vec::new();
        if general_first {
            let mut first = windows(&mut rng, b, signal.len(), cfg.frame);
            first
                .starts
                .iter_mut()
                .for_each(|s| *s = (*s).min(signal.len() - 8));
            batches.push((first, 4));
        }
        for _ in 0..6 {
            batches.push((windows(&mut rng, b, signal.len(), cfg.frame), 1));
        }
        let (want, losses, carry_h) = reference_run(&cfg, &adam, &params, &signal, &batches);

        let mut engine = CpuEngine::new(cfg.clone(), adam, params.clone()).unwrap();
        engine.set_signal(&signal).unwrap();
        let what = format!("decay {decay} clip {clip} general first {general_first} batch {b}");
        for (k, (batch, seq)) in batches.iter().enumerate() {
            engine.train_step(batch, *seq, adam.lr).unwrap();
            let stats = engine.take_stats(true).unwrap();
            let rel = (stats[0].loss - losses[k]).abs() / losses[k];
            assert!(
                rel < 1e-5,
                "{what}: loss of step {k}: {} vs {}",
                stats[0].loss,
                losses[k]
            );
            let got = engine.state().unwrap().params;
            assert_close(
                &got,
                &to_f64(&want[k]),
                &format!("{what}: parameters after step {k}"),
            );
        }
        let state = engine.state().unwrap();
        assert_close(
            &state.carry_h,
            &to_f64(&carry_h),
            &format!("{what}: carried h"),
        );
        for l in &cfg.layout().lstm {
            let r = l.w_hh..l.w_hh + hh;
            let moved = state.params[r.clone()] != params[r.clone()];
            // Only decay or earlier recurrent gradients move W_hh.
            assert_eq!(
                moved,
                decay > 0.0 || general_first,
                "{what}: W_hh moved: {moved}"
            );
        }
    }
}

#[test]
fn two_part_step_is_the_same_bits_on_one_or_two_threads() {
    let mut rng = SplitMix64::new(16);
    let cfg = models().swap_remove(4); // the seed preset's model
    let layout = cfg.layout();
    let params = init_params(&cfg, &mut rng);
    let whole_buffer = 0..layout.total;
    let written = std::slice::from_ref(&whole_buffer);
    for &b in &[5, 64, 100, 131] {
        let x = random(&mut rng, b * cfg.input_size());
        let dpred = random(&mut rng, b * cfg.outputs());
        let mut results = Vec::new();
        for threads in [1, 2] {
            let mut step = TwoPartStep::new(threads);
            let pred = step.forward(&cfg, &layout, &params, &x).to_vec();
            let mut grads = vec![0.0f32; layout.total];
            step.backward(&cfg, &layout, &params, &dpred, &mut grads, written);
            let n = cfg.layers * b * cfg.hidden;
            let (mut h, mut c) = (vec![0.0f32; n], vec![0.0f32; n]);
            step.final_state(&cfg, &mut h, &mut c);
            results.push((pred, grads, h, c));
        }
        assert!(
            results[0] == results[1],
            "batch {b}: 1 and 2 threads differ"
        );
        // And the parts together are the whole batch.
        let mut whole = WindowStep::default();
        let pred = whole.forward(&cfg, &layout, &params, &x).to_vec();
        assert_close(
            &results[0].0,
            &to_f64(&pred),
            &format!("batch {b}: predictions"),
        );
        let mut grads = vec![0.0f32; layout.total];
        whole.backward(&cfg, &layout, &params, &dpred, &mut grads);
        assert_close(
            &results[0].1,
            &to_f64(&grads),
            &format!("batch {b}: gradients"),
        );
    }
}

/// A backward with no forward before it, or with another batch's `dpred`,
/// is a caller's mistake; it must say so, not fail on an index inside the
/// head (as it did when a bench filter ran the backward alone).
#[test]
#[should_panic(expected = "WindowStep::backward: dpred holds 7 values")]
fn a_backward_without_its_forward_says_so() {
    let cfg = &models()[0];
    let layout = cfg.layout();
    let params = init_params(cfg, &mut SplitMix64::new(3));
    let mut grads = vec![0.0f32; layout.total];
    let dpred = vec![0.5f32; 7 * cfg.outputs()];
    WindowStep::default().backward(cfg, &layout, &params, &dpred, &mut grads);
}

#[test]
#[should_panic(expected = "the last forward's batch 5")]
fn a_backward_of_another_batch_says_so() {
    let cfg = &models()[0];
    let layout = cfg.layout();
    let mut rng = SplitMix64::new(4);
    let params = init_params(cfg, &mut rng);
    let mut grads = vec![0.0f32; layout.total];
    let mut step = WindowStep::default();
    step.forward(
        cfg,
        &layout,
        &params,
        &random(&mut rng, 5 * cfg.input_size()),
    );
    let dpred = vec![0.5f32; 6 * cfg.outputs()];
    step.backward(cfg, &layout, &params, &dpred, &mut grads);
}
