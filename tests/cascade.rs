//! The cascade: EWLS against the weighted normal equations summed from
//! scratch, NLMS against a hand-worked case and a plain f64 loop, the
//! combiner's rules, causality and channels, and the figures on the bundled
//! clips (the cascade never worse than its first stage).

use wavelstm::cascade::{
    self, Cascade, CascadeConfig, Ewls, EwlsConfig, Mix, MixConfig, MixRule, Nlms, NlmsConfig,
};
use wavelstm::codelength::residual_bits;
use wavelstm::metrics::score;
use wavelstm::rng::SplitMix64;

mod common;
use common::normal_equations::{add_row, gauss};
use common::{asset, mono_and_scored};

/// A noisy AR(3) signal whose level swells and fades: what the stages must track.
fn synthetic(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    let mut x = vec![0.0f64; n];
    for t in 3..n {
        let e = rng.next_f64() - 0.5;
        let level = 1.0 + 0.8 * (t as f64 / 500.0).sin();
        x[t] = 1.6 * x[t - 1] - 0.9 * x[t - 2] + 0.2 * x[t - 3] + 0.05 * level * e;
    }
    x
}

/// The EWLS coefficients after samples `x[..=n]`, the long way: every row
/// `h_k = (x[k−1], …, x[k−P])` (zeros before the start) weighed by
/// `λ^{n−k}`, the normal equations summed from scratch, the same ridge.
fn direct_ewls(x: &[f64], n: usize, cfg: &EwlsConfig) -> Vec<f64> {
    let p = cfg.order;
    let at = |i: isize| if i < 0 { 0.0 } else { x[i as usize] };
    let mut r = vec![vec![0.0f64; p]; p];
    let mut rhs = vec![0.0f64; p];
    for (k, &xk) in x.iter().enumerate().take(n + 1) {
        let w = cfg.lambda.powi((n - k) as i32);
        let h: Vec<f64> = (1..=p).map(|l| at(k as isize - l as isize)).collect();
        add_row(&mut r, &mut rhs, &h, xk, w);
    }
    let delta = cfg.ridge * (0..p).map(|i| r[i][i]).sum::<f64>() / p as f64;
    for (i, row) in r.iter_mut().enumerate() {
        row[i] += delta;
    }
    gauss(r, rhs)
}

#[test]
fn ewls_matches_the_weighted_normal_equations_summed_from_scratch() {
    for (order, lambda, every, n) in [
        (1, 0.99, 1, 60),
        (5, 0.99, 3, 400),
        (7, 0.95, 1, 300),
        (32, 0.998, 8, 1200),
    ] {
        let x = synthetic(n, order as u64);
        let cfg = EwlsConfig {
            order,
            lambda,
            every,
            ridge: 1e-6,
        };
        let mut s = Ewls::new(cfg);
        let rms = (x.iter().map(|v| v * v).sum::<f64>() / n as f64).sqrt();
        let mut checked = 0;
        for t in 0..n {
            s.update(x[t]);
            // Solved after every `every`-th sample; past the first rows only
            // (before them the system is nearly singular and the ridge rules).
            if (t + 1) % every == 0 && t >= 4 * order {
                let want = direct_ewls(&x, t, &cfg);
                let got = s.coefficients();
                for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g - w).abs() < 1e-6 * (1.0 + w.abs()),
                        "order {order} t {t} a[{k}]: {g} vs {w}"
                    );
                }
                // And the prediction made from them.
                let pred: f64 = (0..order)
                    .map(|k| want[k] * if t >= k { x[t - k] } else { 0.0 })
                    .sum();
                assert!(
                    (s.predict() - pred).abs() < 1e-9 * rms.max(1e-30),
                    "order {order} t {t}"
                );
                checked += 1;
            }
        }
        assert!(checked > 10, "order {order}: only {checked} solves checked");
    }
}

#[test]
fn ewls_predicts_a_noiseless_ar2_exactly_and_survives_silence() {
    // x[t] = 2cos(w)·x[t−1] − x[t−2]: a sinusoid, exactly AR(2).
    let w = 0.05f64;
    let x: Vec<f64> = (0..2000).map(|t| (w * t as f64).sin() * 0.5).collect();
    let mut s = Ewls::new(EwlsConfig {
        order: 4,
        lambda: 0.999,
        every: 4,
        ridge: 1e-12,
    });
    let mut worst = 0.0f64;
    for t in 0..x.len() - 1 {
        s.update(x[t]);
        if t > 200 {
            worst = worst.max((s.predict() - x[t + 1]).abs());
        }
    }
    assert!(worst < 1e-6, "worst error {worst}");

    // Digital silence first: no solve, prediction 0, nothing non-finite.
    let mut s = Ewls::new(EwlsConfig::default());
    for _ in 0..100 {
        s.update(0.0);
        assert_eq!(s.predict(), 0.0);
    }
    s.update(1e-4);
    assert!(s.predict().is_finite());
}

#[test]
fn nlms_hand_worked_case() {
    // Two taps, μ = 0.5, inputs 1, 2, 3 (worked on paper):
    //   u=1: h = (0,0): no change, w = (0,0); h ← (1,0), ‖h‖² = 1, û = 0
    //   u=2: e = 2, w += 0.5·2/1·(1,0) = (1,0); h ← (2,1), ‖h‖² = 5, û = 2
    //   u=3: e = 1, w += 0.5·1/5·(2,1) = (1.2,0.1); h ← (3,2), û = 3.6 + 0.2 = 3.8
    let mut s = Nlms::new(NlmsConfig { taps: 2, step: 0.5 });
    assert_eq!(s.predict(), 0.0);
    s.update(1.0);
    assert_eq!(s.weights(), &[0.0, 0.0]);
    assert_eq!(s.predict(), 0.0);
    s.update(2.0);
    assert_eq!(s.weights(), &[1.0, 0.0]);
    assert_eq!(s.predict(), 2.0);
    s.update(3.0);
    let w = s.weights();
    assert!(
        (w[0] - 1.2).abs() < 1e-6 && (w[1] - 0.1).abs() < 1e-6,
        "{w:?}"
    );
    assert!((s.predict() - 3.8).abs() < 1e-6, "{}", s.predict());
}

#[test]
fn nlms_matches_a_plain_f64_loop() {
    for taps in [1, 7, 16, 33, 256] {
        let u = synthetic(3000, 40 + taps as u64);
        let step = 0.01;
        let mut s = Nlms::new(NlmsConfig { taps, step });
        let mut w = vec![0.0f64; taps];
        let mut worst = 0.0f64;
        let rms = (u.iter().map(|v| v * v).sum::<f64>() / u.len() as f64).sqrt();
        for t in 0..u.len() {
            // The reference: the window and its energy from scratch each sample.
            let h: Vec<f64> = (0..taps)
                .map(|k| if t > k { u[t - 1 - k] } else { 0.0 })
                .collect();
            let pred: f64 = w.iter().zip(&h).map(|(a, b)| a * b).sum();
            worst = worst.max((s.predict() - pred).abs());
            let e = u[t] - pred;
            let energy: f64 = h.iter().map(|v| v * v).sum();
            for (wk, hk) in w.iter_mut().zip(&h) {
                *wk += step * e * hk / (energy + cascade::nlms::EPSILON);
            }
            s.update(u[t]);
        }
        // f32 weights and history against f64: a few ulps of the signal's level.
        assert!(worst < 1e-4 * rms, "taps {taps}: worst {worst} (rms {rms})");
    }
}

#[test]
fn combiner_rules() {
    let none = MixConfig {
        rule: MixRule::Sum,
        bias_rate: 0.0,
    };
    let m = Mix::new(none, 3);
    assert_eq!(m.combine(&[1.0, 2.0, -0.5]), 2.5);

    // Sign-sign: each weight moves by exactly ±μ.
    let mut m = Mix::new(
        MixConfig {
            rule: MixRule::SignSign { step: 0.125 },
            bias_rate: 0.0,
        },
        3,
    );
    m.update(&[1.0, -2.0, 0.0], 5.0, 0.5);
    assert_eq!(m.weights(), &[1.125, 0.875, 1.0]);

    // Least squares: a stage that predicts nothing of the target is muted,
    // one that is right is kept at 1.
    let ls = MixConfig {
        rule: MixRule::LeastSquares {
            lambda: 0.98,
            ridge: 1e-4,
        },
        bias_rate: 0.0,
    };
    let mut rng = SplitMix64::new(9);
    let mut m = Mix::new(ls, 2);
    for _ in 0..2000 {
        let x = rng.next_f64() - 0.5;
        let noise = rng.next_f64() - 0.5;
        let preds = [x, noise];
        let e = x - m.combine(&preds);
        m.update(&preds, x, e);
    }
    let w = m.weights();
    assert!((w[0] - 1.0).abs() < 1e-2 && w[1] < 0.05, "{w:?}");
    // A target that is the sum of two stages keeps both at 1; weights stay in [0, 1].
    let mut m = Mix::new(ls, 2);
    for _ in 0..2000 {
        let (a, b) = (rng.next_f64() - 0.5, rng.next_f64() - 0.5);
        let e = a + b - m.combine(&[a, b]);
        m.update(&[a, b], a + b, e);
    }
    assert!(
        m.weights().iter().all(|w| (w - 1.0).abs() < 1e-3),
        "{:?}",
        m.weights()
    );

    // Bias: a constant offset of the target is learned.
    let mut m = Mix::new(
        MixConfig {
            rule: MixRule::Sum,
            bias_rate: 0.01,
        },
        1,
    );
    for _ in 0..5000 {
        let p = [0.25];
        let x = 0.25 + 0.1;
        let e = x - m.combine(&p);
        m.update(&p, x, e);
    }
    assert!((m.bias() - 0.1).abs() < 1e-6, "{}", m.bias());
}

#[test]
fn cascade_is_causal_streams_like_the_batch_call_and_keeps_channels_apart() {
    let cfg = CascadeConfig::default();
    let a: Vec<f32> = synthetic(3000, 1).iter().map(|&v| v as f32).collect();
    let b: Vec<f32> = synthetic(3000, 2).iter().map(|&v| v as f32).collect();
    let pos = 1000..2999;
    let pa = cascade::predict(&a, 1, pos.clone(), &cfg);

    // The streaming loop gives the same predictions.
    let mut s = Cascade::new(&cfg);
    for (t, &v) in a.iter().enumerate().take(pos.end) {
        s.update(v as f64);
        if t >= pos.start {
            assert_eq!(s.predict() as f32, pa[t - pos.start], "t {t}");
            // The stages add up to the plain cascade's prediction, stage 0 is the base.
            assert_eq!(s.base(), s.stage_predictions()[0]);
        }
    }

    // Changing the future changes no prediction of the past.
    let mut future = a.clone();
    for v in &mut future[2000..] {
        *v = -*v * 3.0;
    }
    let pf = cascade::predict(&future, 1, pos.clone(), &cfg);
    assert_eq!(pa[..1000], pf[..1000]);
    assert_ne!(pa[1000..], pf[1000..]);

    // Stereo: each channel as if alone.
    let ab: Vec<f32> = a.iter().zip(&b).flat_map(|(&x, &y)| [x, y]).collect();
    let pab = cascade::predict(&ab, 2, pos.clone(), &cfg);
    let pb = cascade::predict(&b, 1, pos.clone(), &cfg);
    for i in 0..pos.len() {
        assert_eq!(pab[2 * i], pa[i]);
        assert_eq!(pab[2 * i + 1], pb[i]);
    }

    // The configuration survives a checkpoint's round trip.
    let json = serde_json::to_string(&cfg).unwrap();
    let back: CascadeConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cfg);
}

/// Prediction gain and bits per sample of `cfg` on the last 10 % of a bundled clip (mono).
fn figures(clip: &str, cfg: &CascadeConfig) -> (f64, f64) {
    let (a, pos) = mono_and_scored(&asset(clip));
    let pred = cascade::predict(&a.samples, 1, pos.clone(), cfg);
    let gain = score(&pred, &a.samples, 1, pos.clone(), 1.0).gain_db;
    let target: Vec<f64> = a.samples[pos.start + 1..pos.end + 1]
        .iter()
        .map(|&v| v as f64)
        .collect();
    let p: Vec<f64> = pred.iter().map(|&v| v as f64).collect();
    (gain, residual_bits(&target, &p, 1))
}

/// On the three bundled clips (the shared clips, bit for bit): EWLS alone
/// reproduces the issue-10 prototype's figures, and the cascade is never
/// worse than EWLS by more than 0.5 dB or 0.02 bits per sample; it also
/// keeps the levels issue 10 asked of it (measured: 60.32 / 46.69 / 32.48 dB,
/// 1.968 / 6.562 / 8.524 bits; the defaults were chosen on the first 90 %).
#[test]
fn cascade_never_worse_than_its_first_stage_on_the_bundled_clips() {
    // (clip, prototype's EWLS dB and bits, issue-10 target dB and bits)
    let clips = [
        ("piano_sabatella_unclaimed_gift.wav", 56.9, 2.37, 58.5, 2.0),
        ("orchestral_kaufman_heroes_rite.wav", 43.9, 7.46, 44.5, 6.6),
        ("electronic_savino_palace.wav", 30.9, 8.91, 31.5, 8.6),
    ];
    for (clip, proto_db, proto_bits, want_db, want_bits) in clips {
        let (eg, eb) = figures(clip, &CascadeConfig::ewls_only());
        assert!(
            (eg - proto_db).abs() < 0.1,
            "{clip}: EWLS {eg} dB vs the prototype's {proto_db}"
        );
        assert!(
            (eb - proto_bits).abs() < 0.01,
            "{clip}: EWLS {eb} b vs the prototype's {proto_bits}"
        );
        let (cg, cb) = figures(clip, &CascadeConfig::default());
        assert!(cg > eg - 0.5, "{clip}: cascade {cg} dB, EWLS {eg} dB");
        assert!(cb < eb + 0.02, "{clip}: cascade {cb} b, EWLS {eb} b");
        assert!(
            cg >= want_db && cb <= want_bits,
            "{clip}: cascade {cg} dB {cb} b"
        );
    }
}

/// EWLS's prediction gain on the first 90 % of the bundled piano (the part
/// settings may be chosen on), solving every `every` samples.
fn ewls_training_gain(every: usize) -> f64 {
    let (a, scored) = mono_and_scored(&asset("piano_sabatella_unclaimed_gift.wav"));
    let pos = 0..scored.start;
    let mut cfg = CascadeConfig::ewls_only();
    cfg.ewls.every = every;
    let pred = cascade::predict(&a.samples, 1, pos.clone(), &cfg);
    score(&pred, &a.samples, 1, pos, 1.0).gain_db
}

/// Solving half as often costs little: at the piano's first onset the window
/// holds fewer samples than the order, and a solve there overfits; without
/// the early re-solve on stale coefficients interval 16 lost 20 dB against
/// interval 8 (32.8 against 52.6 dB). Measured with it: 52.97 against 52.56 dB.
#[test]
fn ewls_solving_every_16_samples_keeps_the_gain_of_every_8() {
    let (g8, g16) = (ewls_training_gain(8), ewls_training_gain(16));
    assert!(g8 > 52.0, "interval 8: {g8} dB");
    assert!(g16 > g8 - 1.0, "interval 16: {g16} dB, interval 8: {g8} dB");
}
