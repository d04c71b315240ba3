//! The location–scale heads on the CPU, every test body run on both laws
//! (`Law::ALL`: Laplace and logistic) where the law is what it tests: the law
//! against its CDF as defined and against central finite differences, in
//! every regime of bin width against scale; the batched loss
//! (`cpu::law_nll`) against the reference at several shapes; sampling; and
//! the loss burn-in of every head.

use std::f64::consts::LN_2;
use wavelstm::cpu::law_nll::{
    laplace_nll_reference, law_nll_loss, location, logistic_nll_reference, Delta,
};
use wavelstm::cpu::mulaw::softmax_xent_loss_masked;
use wavelstm::cpu::network::{mse_loss, mse_loss_masked, BurnIn};
use wavelstm::laplace::{delta_for_scale, LOG_SCALE_MAX, LOG_SCALE_MIN};
use wavelstm::law::{self, Law};
use wavelstm::mulaw::CLASSES;
use wavelstm::rng::SplitMix64;

/// −ln P of the bin straight from the CDF, in f64 (accurate while the bin is
/// not many orders of magnitude narrower than the scale, and P not tiny).
fn direct(law: Law, mu: f64, s: f64, x: f64, delta: f64) -> f64 {
    reference(law, &[mu, s], &[x], &[delta])
}

fn reference(law: Law, head: &[f64], targets: &[f64], deltas: &[f64]) -> f64 {
    match law {
        Law::Laplace => laplace_nll_reference(head, targets, deltas),
        Law::Logistic => logistic_nll_reference(head, targets, deltas),
    }
}

/// Random distributions over every regime: bins from 1e-6 to 30 scales wide,
/// targets inside the bin, near it, and tens of scales away.
fn cases(n: usize, seed: u64) -> Vec<(f64, f64, f64, f64)> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|i| {
            let mu = rng.uniform(-3.0, 3.0);
            let s = rng.uniform(-6.0, 2.0);
            let b = s.exp();
            let delta = b * 10f64.powf(rng.uniform(-6.0, 1.5));
            let x = match i % 3 {
                0 => mu + rng.uniform(-0.5, 0.5) * delta,
                1 => mu + rng.uniform(-2.0, 2.0) * (delta + b),
                _ => mu + rng.uniform(-30.0, 30.0) * b,
            };
            (mu, s, x, delta)
        })
        .collect()
}

#[test]
fn the_law_matches_the_cdf_difference() {
    for law in Law::ALL {
        let mut worst: f64 = 0.0;
        for (mu, s, x, delta) in cases(3000, 1) {
            let (nll, _, _) = law.bin_nll(mu, s, x, delta);
            let want = direct(law, mu, s, x, delta);
            assert!(
                nll.is_finite() && nll >= 0.0,
                "{law:?}: nll {nll} at {mu} {s} {x} {delta}"
            );
            // The direct difference loses ~1e-16/P relative: compare where it holds.
            if want < 25.0 {
                worst = worst.max((nll - want).abs() / want.abs().max(1.0));
            }
        }
        assert!(worst < 1e-8, "{law:?}: worst {worst:e}");
    }
}

#[test]
fn the_law_is_a_distribution_over_the_grid() {
    // Σ over all bins of the grid (δ steps, offset 0.3 δ) of P = 1.
    for law in Law::ALL {
        for (mu, s, delta) in [(0.2, 0.0, 0.05), (-1.0, -3.0, 0.01), (0.0, 1.0, 5.0)] {
            let b: f64 = f64::exp(s);
            let reach = ((60.0 * b + 10.0 * delta) / delta) as i64;
            let total: f64 = (-reach..=reach)
                .map(|k| (-law.bin_nll(mu, s, (k as f64 + 0.3) * delta, delta).0).exp())
                .sum();
            assert!((total - 1.0).abs() < 1e-9, "{law:?}: Σ P = {total}");
        }
    }
}

#[test]
fn the_gradients_match_central_differences() {
    // Fourth-order central differences, (8(f(+h) − f(−h)) − (f(+2h) − f(−2h)))/12h.
    let central = |f: &dyn Fn(f64) -> f64, h: f64| {
        (8.0 * (f(h) - f(-h)) - (f(2.0 * h) - f(-2.0 * h))) / (12.0 * h)
    };
    let rel = |a: f64, n: f64, floor: f64| (a - n).abs() / a.abs().max(n.abs()).max(floor);
    for law in Law::ALL {
        let bin_nll = |mu, s, x, delta| law.bin_nll(mu, s, x, delta);
        let (mut worst, mut skipped, mut n) = (0.0f64, 0, 0);
        for (mu, s, x, delta) in cases(2000, 2) {
            let (_, dmu, ds) = bin_nll(mu, s, x, delta);
            let b = s.exp();
            n += 1;
            let e_s = rel(ds, central(&|h| bin_nll(mu, s + h, x, delta).0, 1e-3), 1.0);
            // The loss bends on the scale of the bin inside it and of b outside,
            // and its second derivative jumps where an edge of the bin crosses
            // the location: steps well inside all three.
            let edge = ((x - mu).abs() - delta / 2.0).abs();
            let h = (1e-2 * b).min(edge / 8.0).min(delta / 40.0);
            let e_mu = if h > 1e-7 * b {
                // The location's gradient is up to 1/b: relative to that.
                rel(
                    dmu,
                    central(&|h| bin_nll(mu + h, s, x, delta).0, h),
                    1.0 / b,
                )
            } else {
                // Rounding would swamp the difference.
                skipped += 1;
                0.0
            };
            worst = worst.max(e_s).max(e_mu);
        }
        assert!(worst < 1e-6, "{law:?}: worst {worst:e}");
        assert!(skipped * 5 < n, "{law:?}: {skipped} of {n} skipped");
    }
}

#[test]
fn the_tails_and_the_clamp_stay_finite() {
    for law in Law::ALL {
        let bin_nll = |mu, s, x, delta| law.bin_nll(mu, s, x, delta);
        for &(mu, s, x, delta) in &[
            (0.0, LOG_SCALE_MIN, 1e3, 1e-5),
            (0.0, -40.0, -1e3, 1e-5),
            (0.0, 50.0, 1e3, 1e-5),
            (0.0, 0.0, 1e-12, 1e-12),
            (0.0, 0.0, 0.0, 1e9),
            (5.0, LOG_SCALE_MAX, 0.0, 1e-9),
        ] {
            let (nll, dmu, ds) = bin_nll(mu, s, x, delta);
            assert!(
                nll.is_finite() && dmu.is_finite() && ds.is_finite(),
                "{law:?} {mu} {s} {x} {delta}: {nll} {dmu} {ds}"
            );
            assert!(nll >= 0.0);
        }
        // Far in a tail the cost is linear: (|x−μ| − δ/2)/b − ln(1 − e^{−δ/b}),
        // plus ln 2 for a Laplace law (whose tail density is ½e^{−z}, the
        // logistic's e^{−z}).
        let tail = (1e4 - 0.5e-3) - (-(-1e-3f64).exp_m1()).ln();
        let want = tail + if law == Law::Laplace { LN_2 } else { 0.0 };
        let (nll, _, _) = bin_nll(0.0, 0.0, 1e4, 1e-3);
        assert!((nll - want).abs() < 1e-9 * want, "{law:?}: {nll} vs {want}");
        let (nll, _, _) = bin_nll(0.0, 0.0, -1e4, 1e-3);
        assert!((nll - want).abs() < 1e-9 * want, "{law:?}: {nll} vs {want}");
        // A bin far wider than the scale holding the location costs nothing.
        assert!(bin_nll(0.0, -10.0, 0.0, 1.0).0 < 1e-12);
        // Outside the clamp the log-scale gets no gradient, inside it does.
        assert_eq!(bin_nll(0.0, -17.0, 0.1, 1e-5).2, 0.0);
        assert_eq!(bin_nll(0.0, 9.0, 0.1, 1e-5).2, 0.0);
        assert!(bin_nll(0.0, -1.0, 0.1, 1e-5).2 != 0.0);
        assert_eq!(
            bin_nll(0.0, -17.0, 0.1, 1e-5).0,
            bin_nll(0.0, -16.0, 0.1, 1e-5).0
        );
        // Bits are nats over ln 2.
        let (m, s, x, d) = (0.1, -2.0, 0.3, 0.01);
        assert!((law.bin_bits(m, s, x, d) * LN_2 - bin_nll(m, s, x, d).0).abs() < 1e-12);
    }
    assert!((delta_for_scale(0.25) - 1.0 / 8192.0).abs() < 1e-18);
    // The two laws differ: same location and scale, other costs.
    let (a, b) = (Law::Laplace, Law::Logistic);
    assert!((a.bin_nll(0.0, 0.0, 0.7, 0.1).0 - b.bin_nll(0.0, 0.0, 0.7, 0.1).0).abs() > 0.1);
}

/// Head outputs `[R, 2C]` and targets over the regimes, in f32.
fn batch(rows: usize, channels: usize, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (mut head, mut targets, mut deltas) = (Vec::new(), Vec::new(), Vec::new());
    for (mu, s, x, delta) in cases(rows * channels, seed) {
        head.extend([mu as f32, s as f32]);
        targets.push(x as f32);
        deltas.push(delta as f32);
    }
    (head, targets, deltas)
}

#[test]
fn the_batched_loss_matches_the_reference_at_several_shapes() {
    for law in Law::ALL {
        for (i, (rows, channels)) in [(1, 1), (7, 2), (33, 1), (301, 2), (1000, 1)]
            .into_iter()
            .enumerate()
        {
            let (head, targets, deltas) = batch(rows, channels, 10 + i as u64);
            let f64s = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
            // The reference is only accurate where P is not tiny: drop the far
            // targets from both.
            let (h64, t64, d64) = (f64s(&head), f64s(&targets), f64s(&deltas));
            let keep: Vec<usize> = (0..targets.len())
                .filter(|&k| direct(law, h64[2 * k], h64[2 * k + 1], t64[k], d64[k]) < 25.0)
                .collect();
            let pick = |v: &[f64], w: usize| -> Vec<f64> {
                keep.iter()
                    .flat_map(|&k| v[k * w..(k + 1) * w].to_vec())
                    .collect()
            };
            let (hk, tk, dk) = (pick(&h64, 2), pick(&t64, 1), pick(&d64, 1));
            let want = reference(law, &hk, &tk, &dk);
            let (hk32, tk32, dk32): (Vec<f32>, Vec<f32>, Vec<f32>) = (
                hk.iter().map(|&v| v as f32).collect(),
                tk.iter().map(|&v| v as f32).collect(),
                dk.iter().map(|&v| v as f32).collect(),
            );
            let (mut d, mut scratch) = (Vec::new(), Vec::new());
            let got = law_nll_loss(
                law,
                &hk32,
                &tk32,
                Delta::PerTarget(&dk32),
                1,
                BurnIn::NONE,
                &mut d,
                &mut scratch,
            );
            assert!(
                (got - want).abs() < 1e-9 * want.abs().max(1.0),
                "{law:?} {rows}×{channels}: {got} vs {want}"
            );
            // The f32 path against the f64 one on everything, and the gradient's
            // mean scaling, with one δ for all as well.
            for delta in [Delta::PerTarget(&deltas), Delta::Uniform(0.01)] {
                let d64v: Vec<f64>;
                let delta64 = match delta {
                    Delta::PerTarget(_) => {
                        d64v = d64.clone();
                        Delta::PerTarget(&d64v[..])
                    }
                    Delta::Uniform(u) => Delta::Uniform(u),
                };
                let (mut g32, mut g64) = (Vec::new(), Vec::new());
                let l32 = law_nll_loss(
                    law,
                    &head,
                    &targets,
                    delta,
                    channels,
                    BurnIn::NONE,
                    &mut g32,
                    &mut scratch,
                );
                let l64 = law_nll_loss(
                    law,
                    &h64,
                    &t64,
                    delta64,
                    channels,
                    BurnIn::NONE,
                    &mut g64,
                    &mut scratch,
                );
                assert!((l32 - l64).abs() < 1e-9 * l64.abs().max(1.0));
                let n = targets.len() as f64;
                for (k, (a, b)) in g32.iter().zip(&g64).enumerate() {
                    let (_, dmu, ds) = law.bin_nll(
                        h64[k / 2 * 2],
                        h64[k / 2 * 2 + 1],
                        t64[k / 2],
                        match delta64 {
                            Delta::PerTarget(v) => v[k / 2],
                            Delta::Uniform(u) => u,
                        },
                    );
                    let want = if k % 2 == 0 { dmu } else { ds } / n;
                    assert!((b - want).abs() <= 1e-12 * want.abs().max(1e-300));
                    assert!((f64::from(*a) - b).abs() <= 1e-6 * b.abs() + 1e-30);
                }
            }
        }
    }
}

#[test]
fn the_point_prediction_is_the_location() {
    let head = [0.5f32, -2.0, -0.25, 1.0, 3.0, -7.0];
    let mut out = Vec::new();
    location(&head, &mut out);
    assert_eq!(out, vec![0.5, -0.25, 3.0]);
}

#[test]
fn sampling_is_seeded_scaled_and_centred() {
    for law in Law::ALL {
        let draw = |seed: u64, t: f64| {
            let mut rng = SplitMix64::derive(seed, 0);
            (0..20_000)
                .map(|_| law.sample(0.5, (0.2f64).ln(), t, &mut rng))
                .collect::<Vec<f64>>()
        };
        assert_eq!(draw(3, 1.0), draw(3, 1.0));
        assert_ne!(draw(3, 1.0), draw(4, 1.0));
        assert!(draw(3, 0.0).iter().all(|&v| v == 0.5));
        for t in [1.0, 0.5] {
            let v = draw(5, t);
            let n = v.len() as f64;
            let mean = v.iter().sum::<f64>() / n;
            // E|x − μ| = b for a Laplace law, 2·ln 2·b for a logistic one.
            let mad = v.iter().map(|x| (x - 0.5).abs()).sum::<f64>() / n;
            let want = 0.2 * t * if law == Law::Laplace { 1.0 } else { 2.0 * LN_2 };
            assert!(
                (mean - 0.5).abs() < 0.02 * t.max(0.1),
                "{law:?}: mean {mean}"
            );
            assert!(
                (mad - want).abs() < 0.02 * want * 3.0,
                "{law:?}: E|x−μ| {mad} at T {t}, want {want}"
            );
            assert!(v.iter().all(|x| x.is_finite()));
        }
    }
}

/// Burn-in over `[T, B]` rows: every masked row gets a zero gradient, its
/// target does not move the loss, and the mean is over the rows counted.
#[test]
fn burn_in_masks_every_head() {
    let (t, b, c, steps) = (6usize, 3usize, 2usize, 2usize);
    let carry = [false, true, false];
    let mask = BurnIn {
        steps,
        carry: &carry,
    };
    let rows = t * b;
    assert_eq!(mask.counted(rows), rows - 2 * steps);
    assert_eq!(BurnIn::NONE.counted(rows), rows);
    let masked = |row: usize| row / b < steps && !carry[row % b];
    for row in 0..rows {
        assert_eq!(mask.counts(row), !masked(row), "row {row}");
    }
    // A burn-in longer than the sequence leaves only the carried lanes.
    let long = BurnIn {
        steps: 99,
        carry: &carry,
    };
    assert_eq!(long.counted(rows), t);

    let mut rng = SplitMix64::new(7);
    let mut randn = |n: usize| (0..n).map(|_| rng.normal()).collect::<Vec<f64>>();
    let pred = randn(rows * c);
    let target = randn(rows * c);
    let logits = randn(rows * c * CLASSES);
    let mut head = randn(rows * c * 2);
    for h in head.chunks_mut(2) {
        h[1] = h[1].clamp(-2.0, 1.0);
    }
    // Targets moved in the masked rows only.
    let mut moved = target.clone();
    for (i, v) in moved.iter_mut().enumerate() {
        if masked(i / c) {
            *v += 5.0;
        }
    }
    let mut scratch = Vec::new();
    type Loss<'a> = Box<dyn Fn(&[f64], &mut Vec<f64>, &mut Vec<f64>) -> f64 + 'a>;
    let heads: [(&str, usize, Loss); 4] = [
        (
            "mse",
            1,
            Box::new(|y, d, _| mse_loss_masked(&pred, y, c, mask, d)),
        ),
        (
            "mulaw",
            CLASSES,
            Box::new(|y, d, s| softmax_xent_loss_masked(&logits, y, 0.3, c, mask, d, s)),
        ),
        (
            "laplace",
            2,
            Box::new(|y, d, s| {
                law_nll_loss(Law::Laplace, &head, y, Delta::Uniform(0.01), c, mask, d, s)
            }),
        ),
        (
            "logistic",
            2,
            Box::new(|y, d, s| {
                law_nll_loss(Law::Logistic, &head, y, Delta::Uniform(0.01), c, mask, d, s)
            }),
        ),
    ];
    for (name, per, loss) in &heads {
        let (mut d, mut d_moved) = (Vec::new(), Vec::new());
        let l = loss(&target, &mut d, &mut scratch);
        let l_moved = loss(&moved, &mut d_moved, &mut scratch);
        assert_eq!(l, l_moved, "{name}: a masked target moved the loss");
        assert_eq!(d, d_moved, "{name}: a masked target moved the gradient");
        let row_width = c * per;
        for (row, g) in d.chunks(row_width).enumerate() {
            if masked(row) {
                assert!(
                    g.iter().all(|&v| v == 0.0),
                    "{name}: masked row {row} has a gradient"
                );
            } else {
                assert!(
                    g.iter().any(|&v| v != 0.0),
                    "{name}: counted row {row} has none"
                );
            }
        }
    }
    // The masked MSE is the plain MSE of the rows counted.
    let (mut kept_p, mut kept_t) = (Vec::new(), Vec::new());
    for i in 0..rows * c {
        if !masked(i / c) {
            kept_p.push(pred[i]);
            kept_t.push(target[i]);
        }
    }
    let mut d = Vec::new();
    let plain = mse_loss(&kept_p, &kept_t, &mut d);
    let masked_loss = mse_loss_masked(&pred, &target, c, mask, &mut d);
    assert!((plain - masked_loss).abs() < 1e-15 * plain);
    // No burn-in is the unmasked loss, bit for bit.
    let (mut d1, mut d2) = (Vec::new(), Vec::new());
    assert_eq!(
        mse_loss(&pred, &target, &mut d1),
        mse_loss_masked(&pred, &target, c, BurnIn::NONE, &mut d2)
    );
    assert_eq!(d1, d2);
}

#[test]
fn bits_per_sample_is_the_mean_code_length() {
    let head = [0.0f32, -2.0, 1.0, 0.5, -0.5, -8.0];
    let targets = [0.01f32, 3.0, -0.5];
    let delta = 1.0 / 1024.0;
    for law in Law::ALL {
        let want: f64 = (0..3)
            .map(|k| {
                law.bin_bits(
                    f64::from(head[2 * k]),
                    f64::from(head[2 * k + 1]),
                    f64::from(targets[k]),
                    delta,
                )
            })
            .sum::<f64>()
            / 3.0;
        let got = law::bits_per_sample(law, &head, &targets, delta);
        assert!((got - want).abs() < 1e-12, "{law:?}: {got} vs {want}");
        let per_target = law::bits_per_sample_per_target(law, &head, &targets, &[1.0 / 1024.0; 3]);
        assert!((per_target - got).abs() < 1e-12);
    }
}

/// Teacher-forced prediction with the head's raw output: the points are the
/// head's locations and the same as without it, lane cuts and all.
#[test]
fn teacher_forcing_hands_back_the_head() {
    use wavelstm::cpu::engine::CpuEngine;
    use wavelstm::engine::Engine;
    use wavelstm::model::{init_params, ModelConfig, Output};
    use wavelstm::optim::AdamConfig;
    use wavelstm::predict::{teacher_forced, teacher_forced_with_head, Plan};
    use wavelstm::preset::Defaults;
    let cfg = ModelConfig {
        frame: 2,
        hidden: 6,
        output: Output::Laplace { scale: 0.1 },
        ..Defaults::of(None).model(2)
    };
    let params = init_params(&cfg, &mut SplitMix64::new(3));
    let mut e = CpuEngine::new(cfg.clone(), AdamConfig::default(), params).unwrap();
    let mut rng = SplitMix64::new(4);
    let signal: Vec<f32> = (0..2 * 900).map(|_| rng.normal() as f32).collect();
    e.set_signal(&signal).unwrap();
    let plan = Plan {
        positions: 100..877,
        first_valid: 1,
        seq_len: 16,
        warmup: 40,
        max_lanes: 5,
        carry: true,
    };
    let plain = teacher_forced(&mut e, &plan, 900).unwrap();
    let (points, head) = teacher_forced_with_head(&mut e, &plan, 900).unwrap();
    assert_eq!(plain, points);
    assert_eq!(head.len(), 777 * cfg.outputs());
    let mut loc = Vec::new();
    location(&head, &mut loc);
    assert_eq!(loc, points);
}

/// Per-target bin widths through the engine (`set_signals_with_deltas`):
/// a training step's loss is the mean NLL of every gathered target under
/// its own frame's width, not under one width for all; bad widths are
/// refused.
#[test]
fn the_engine_costs_each_target_with_its_own_bin_width() {
    use wavelstm::cpu::engine::CpuEngine;
    use wavelstm::dataset::Batch;
    use wavelstm::engine::Engine;
    use wavelstm::model::{init_params, ModelConfig, Output};
    use wavelstm::optim::AdamConfig;
    use wavelstm::preset::Defaults;
    let (c, frames) = (2, 400);
    let cfg = ModelConfig {
        frame: 2,
        hidden: 6,
        output: Output::Laplace { scale: 0.1 },
        ..Defaults::of(None).model(c)
    };
    let params = init_params(&cfg, &mut SplitMix64::new(3));
    let mut rng = SplitMix64::new(5);
    let signal: Vec<f32> = (0..c * frames).map(|_| rng.normal() as f32).collect();
    // Widths from 1e-3 to 3 model units, a different one for every target.
    let deltas: Vec<f32> = (0..c * frames)
        .map(|_| 10f64.powf(rng.uniform(-3.0, 0.5)) as f32)
        .collect();
    let batch = Batch {
        starts: vec![3, 101, 250, 397],
        carry: vec![false; 4],
    };
    let t = 20;
    let mut e = CpuEngine::new(cfg.clone(), AdamConfig::default(), params.clone()).unwrap();
    e.set_signals_with_deltas(&signal, None, Some(&deltas))
        .unwrap();
    let (mut points, mut head) = (Vec::new(), Vec::new());
    e.predict_with_head(&batch, t, &mut points, Some(&mut head))
        .unwrap();
    let (mut want, mut uniform) = (0.0, 0.0);
    let b = batch.starts.len();
    for step in 0..t {
        for (lane, &s0) in batch.starts.iter().enumerate() {
            // Past the last target a lane reads the last one (`dataset::gather`).
            let p = (s0 + step).min(frames - 2);
            for ch in 0..c {
                let r = (step * b + lane) * c + ch;
                let (mu, s) = (f64::from(head[2 * r]), f64::from(head[2 * r + 1]));
                let x = f64::from(signal[(p + 1) * c + ch]);
                want += Law::Laplace
                    .bin_nll(mu, s, x, f64::from(deltas[(p + 1) * c + ch]))
                    .0;
                uniform += Law::Laplace.bin_nll(mu, s, x, delta_for_scale(0.1)).0;
            }
        }
    }
    let n = (t * b * c) as f64;
    let (want, uniform) = (want / n, uniform / n);
    e.train_step(&batch, t, 1e-3).unwrap();
    let got = e.take_stats(true).unwrap()[0].loss;
    assert!((got - want).abs() < 1e-6 * want.abs(), "{got} vs {want}");
    assert!(
        (got - uniform).abs() > 1e-2,
        "the widths changed nothing: {got} vs {uniform}"
    );

    let mut bad = |d: &[f32]| {
        e.set_signals_with_deltas(&signal, None, Some(d))
            .unwrap_err()
            .to_string()
    };
    assert!(bad(&deltas[..10]).contains("not as long"));
    let mut zero = deltas.clone();
    zero[7] = 0.0;
    assert!(bad(&zero).contains("positive finite"));
    zero[7] = f32::NAN;
    assert!(bad(&zero).contains("positive finite"));
    let mse = ModelConfig {
        output: Output::Mse,
        ..cfg
    };
    let mut e = CpuEngine::new(
        mse.clone(),
        AdamConfig::default(),
        init_params(&mse, &mut SplitMix64::new(1)),
    )
    .unwrap();
    let err = e
        .set_signals_with_deltas(&signal, None, Some(&deltas))
        .unwrap_err();
    assert!(
        err.to_string().contains("laplace or logistic head"),
        "{err}"
    );
}
