//! The classic predictors: the LPC fit against a plain least-squares solve,
//! signals each predictor must get (nearly) exactly right, causality,
//! channels kept apart, and the reference figures on the bundled clips.

use wavelstm::lpc::{self, fit, fit_rows, LpcConfig};
use wavelstm::metrics::score;
use wavelstm::rng::SplitMix64;

mod common;
use common::normal_equations::{add_row, gauss};
use common::{asset, mono_and_scored};

/// A noisy AR(3) signal with slowly varying level: something LPC can fit
/// well but not perfectly.
fn synthetic(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    let mut x = vec![0.0f64; n];
    for t in 3..n {
        let e = rng.next_f64() - 0.5;
        x[t] = 1.6 * x[t - 1] - 0.9 * x[t - 2] + 0.2 * x[t - 3] + 0.05 * e;
    }
    let peak = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    x.iter().map(|v| (v / peak * 0.9) as f32).collect()
}

/// Least squares the long way: the design matrix row by row, its normal
/// equations summed naively, solved by Gaussian elimination with partial pivoting.
fn naive_least_squares(x: &[f32], rows: std::ops::Range<usize>, p: usize) -> Vec<f64> {
    let mut ata = vec![vec![0.0f64; p]; p];
    let mut atb = vec![0.0f64; p];
    for n in rows {
        let row: Vec<f64> = (1..=p).map(|k| x[n - k] as f64).collect();
        add_row(&mut ata, &mut atb, &row, x[n] as f64, 1.0);
    }
    gauss(ata, atb)
}

fn small_config() -> LpcConfig {
    LpcConfig {
        order: 6,
        block: 64,
        history: 300,
        ridge: 0.0,
        min_rows: 24,
    }
}

#[test]
fn fit_matches_a_plain_least_squares_solve() {
    let x = synthetic(2000, 1);
    for (p, rows) in [(6, 500..900), (12, 12..400), (32, 1000..1900)] {
        let a = fit(&x, rows.clone(), p, 0.0).expect("a noisy signal fits");
        let b = naive_least_squares(&x, rows, p);
        for (u, v) in a.iter().zip(&b) {
            assert!(
                (u - v).abs() < 1e-6 * (1.0 + v.abs()),
                "order {p}: {a:?} vs {b:?}"
            );
        }
    }
}

/// The block predictor (cached row sums, windows on the block grid) predicts
/// what the plain solve on the documented window predicts, block by block.
#[test]
fn block_predictor_uses_the_documented_windows() {
    let x = synthetic(1500, 2);
    let cfg = small_config();
    let positions = 100..1400;
    let got = lpc::lpc(&x, 1, positions.clone(), &cfg);
    let mut checked_fits = 0;
    for (i, p) in positions.enumerate() {
        let t = p + 1;
        let t0 = t / cfg.block * cfg.block;
        let rows = fit_rows(t0, cfg.history, cfg.order);
        let want = if rows.len() >= cfg.min_rows {
            checked_fits += 1;
            let a = naive_least_squares(&x, rows, cfg.order);
            (1..=cfg.order)
                .map(|k| a[k - 1] * x[t - k] as f64)
                .sum::<f64>()
        } else {
            x[t - 1] as f64
        };
        assert!(
            (got[i] as f64 - want).abs() < 1e-5,
            "target {t}: {} vs {want}",
            got[i]
        );
    }
    assert!(checked_fits > 1000);
    // The first block has no history to fit on: next = current.
    let early = lpc::lpc(&x, 1, 0..10, &cfg);
    assert_eq!(early, x[0..10].to_vec());
}

fn gain_db(pred: &[f32], x: &[f32], channels: usize, positions: std::ops::Range<usize>) -> f64 {
    score(pred, x, channels, positions, 1.0).gain_db
}

#[test]
fn lpc_predicts_a_sinusoid_recurrence_almost_perfectly() {
    let rate = 8000;
    let w = 2.0 * std::f64::consts::PI * 440.0 / rate as f64;
    // x[t] = 2cos(w)·x[t−1] − x[t−2], started on a sine of amplitude 0.8.
    let mut x = vec![0.0f64, 0.8 * w.sin()];
    for t in 2..3 * rate {
        x.push(2.0 * w.cos() * x[t - 1] - x[t - 2]);
    }
    let x: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let positions = rate..x.len() - 1;
    let pred = lpc::lpc(&x, 1, positions.clone(), &LpcConfig::standard(rate as u32));
    let g = gain_db(&pred, &x, 1, positions.clone());
    assert!(g > 80.0, "LPC-32 gain on a pure tone: {g:.1} dB");
    // Neither simple predictor comes close: the test can tell them apart.
    let g_lin = gain_db(&lpc::linear(&x, 1, positions.clone()), &x, 1, positions);
    assert!(g_lin < 40.0, "{g_lin}");
}

#[test]
fn linear_extrapolation_is_exact_on_a_ramp() {
    let x: Vec<f32> = (0..500).map(|t| -0.9 + 0.003 * t as f32).collect();
    let pred = lpc::linear(&x, 1, 1..499);
    for (i, v) in pred.iter().enumerate() {
        let target = x[i + 2];
        assert!((v - target).abs() < 1e-6, "{i}: {v} vs {target}");
    }
    // Next = current is off by the slope everywhere.
    let nc = lpc::next_equals_current(&x, 1, 1..499);
    assert!(nc.iter().zip(&x[2..]).all(|(v, t)| (v - t).abs() > 0.0029));
    // At position 0 there is one sample of past: it is repeated.
    assert_eq!(lpc::linear(&x, 1, 0..1), vec![x[0]]);
}

#[test]
fn changing_the_future_never_changes_a_prediction() {
    let x = synthetic(3000, 3);
    let cfg = small_config();
    let standard = LpcConfig {
        history: 1000,
        ..LpcConfig::standard(1000)
    };
    let cut = 1700; // predictions of targets ..= cut read frames < cut only
    let mut y = x.clone();
    let mut rng = SplitMix64::new(9);
    for v in &mut y[cut..] {
        *v = (rng.next_f64() * 2.0 - 1.0) as f32;
    }
    let positions = 0..2999;
    let upto = cut; // positions < cut have targets ≤ cut
    for (name, fx, fy) in [
        (
            "lpc small",
            lpc::lpc(&x, 1, positions.clone(), &cfg),
            lpc::lpc(&y, 1, positions.clone(), &cfg),
        ),
        (
            "lpc-32",
            lpc::lpc(&x, 1, positions.clone(), &standard),
            lpc::lpc(&y, 1, positions.clone(), &standard),
        ),
        (
            "linear",
            lpc::linear(&x, 1, positions.clone()),
            lpc::linear(&y, 1, positions.clone()),
        ),
        (
            "next",
            lpc::next_equals_current(&x, 1, positions.clone()),
            lpc::next_equals_current(&y, 1, positions.clone()),
        ),
    ] {
        assert_eq!(fx[..upto], fy[..upto], "{name}: the past changed");
        assert_ne!(
            fx[upto..],
            fy[upto..],
            "{name}: the future was not read at all"
        );
    }
    // Asking for fewer positions gives the same predictions (the block grid is fixed).
    let part = lpc::lpc(&x, 1, 777..1333, &cfg);
    assert_eq!(part, lpc::lpc(&x, 1, positions, &cfg)[777..1333]);
}

#[test]
fn channels_are_predicted_independently() {
    let (a, b) = (synthetic(2500, 4), synthetic(2500, 5));
    let stereo: Vec<f32> = a.iter().zip(&b).flat_map(|(&l, &r)| [l, r]).collect();
    let cfg = small_config();
    let positions = 10..2400;
    type Predictor = Box<dyn Fn(&[f32], usize) -> Vec<f32>>;
    let ps = positions.clone();
    let predictors: Vec<(&str, Predictor)> = vec![
        (
            "lpc",
            Box::new(move |x, c| lpc::lpc(x, c, ps.clone(), &cfg)),
        ),
        (
            "linear",
            Box::new({
                let ps = positions.clone();
                move |x, c| lpc::linear(x, c, ps.clone())
            }),
        ),
        (
            "next",
            Box::new({
                let ps = positions.clone();
                move |x, c| lpc::next_equals_current(x, c, ps.clone())
            }),
        ),
    ];
    for (name, f) in predictors {
        let both = f(&stereo, 2);
        let (l, r) = (f(&a, 1), f(&b, 1));
        assert_eq!(both.len(), 2 * positions.len());
        let (bl, br): (Vec<f32>, Vec<f32>) = both.chunks(2).map(|f| (f[0], f[1])).unzip();
        assert_eq!(bl, l, "{name}: left");
        assert_eq!(br, r, "{name}: right");
    }
}

/// The figures quoted in issue 4 (gain in dB on the last tenth of each clip,
/// mono mixdown): next = current, linear extrapolation, LPC-32.
#[test]
fn reference_figures_on_the_bundled_clips() {
    let clips = [
        ("piano_sabatella_unclaimed_gift.wav", [20.1, 34.9, 52.2]),
        ("orchestral_kaufman_heroes_rite.wav", [23.9, 33.4, 42.7]),
        ("electronic_savino_palace.wav", [22.1, 24.3, 30.8]),
    ];
    for (name, want) in clips {
        let (a, positions) = mono_and_scored(&asset(name));
        let x = &a.samples;
        let got = [
            gain_db(
                &lpc::next_equals_current(x, 1, positions.clone()),
                x,
                1,
                positions.clone(),
            ),
            gain_db(
                &lpc::linear(x, 1, positions.clone()),
                x,
                1,
                positions.clone(),
            ),
            gain_db(
                &lpc::lpc(x, 1, positions.clone(), &LpcConfig::standard(a.sample_rate)),
                x,
                1,
                positions.clone(),
            ),
        ];
        eprintln!("{name}: {got:.2?} (reference {want:?})");
        for (k, tol) in [(0, 0.1), (1, 0.1), (2, 0.5)] {
            assert!(
                (got[k] - want[k]).abs() <= tol,
                "{name}: predictor {k} gives {:.2} dB, reference {}",
                got[k],
                want[k]
            );
        }
    }
}
