//! The long-term predictor of the cascade's residual (`long_lag`): it finds
//! a repeat seconds back and predicts it, it says so in its correlation, it
//! reads nothing ahead of the residual it predicts, and on a residual that
//! never repeats it stays near silent.

use wavelstm::long_lag::{LongLag, BLOCK, MIN_LAG, REACH, TEMPLATE};
use wavelstm::rng::SplitMix64;

/// Feed `e` one value at a time; the predictions made before each value.
fn run(e: &[f64]) -> Vec<(f64, f64)> {
    let mut ll = LongLag::new();
    e.iter()
        .map(|&v| {
            let p = ll.predict();
            ll.update(v);
            p
        })
        .collect()
}

#[test]
fn a_repeat_is_found_and_predicted() {
    // White noise repeating every `period` samples, at an odd lag, plus a
    // little fresh noise.
    let mut rng = SplitMix64::new(3);
    for period in [MIN_LAG + 1, 7 * BLOCK + 333] {
        let motif: Vec<f64> = (0..period).map(|_| rng.normal()).collect();
        let n = 4 * period + TEMPLATE;
        let e: Vec<f64> = (0..n)
            .map(|t| motif[t % period] + 0.01 * rng.normal())
            .collect();
        let preds = run(&e);
        // Nothing before the first search.
        assert!(preds[..TEMPLATE + MIN_LAG]
            .iter()
            .all(|&(p, r)| p == 0.0 && r == 0.0));
        // Once a whole period and a template are past, the next block is predicted.
        let from = (period + TEMPLATE).div_ceil(BLOCK) * BLOCK + BLOCK;
        let (mut err, mut sig) = (0.0, 0.0);
        for t in from..n {
            err += (e[t] - preds[t].0).powi(2);
            sig += e[t] * e[t];
            assert!(
                preds[t].1 > 0.99,
                "period {period}: correlation {} at {t}",
                preds[t].1
            );
        }
        let gain = 10.0 * (sig / err).log10();
        assert!(gain > 30.0, "period {period}: {gain:.1} dB");
    }
}

#[test]
fn noise_that_never_repeats_is_left_alone() {
    let mut rng = SplitMix64::new(4);
    let e: Vec<f64> = (0..60_000).map(|_| rng.normal()).collect();
    let preds = run(&e);
    let from = TEMPLATE + MIN_LAG + BLOCK;
    let n = (e.len() - from) as f64;
    let p2 = preds[from..].iter().map(|p| p.0 * p.0).sum::<f64>() / n;
    let r = preds[from..].iter().map(|p| p.1).fold(0.0f64, f64::max);
    // The best of tens of thousands of chance matches: small, and so are its taps.
    assert!(r < 0.1, "correlation {r}");
    assert!(p2 < 0.01, "prediction power {p2}");
}

#[test]
fn a_prediction_reads_only_the_past() {
    let mut rng = SplitMix64::new(5);
    let period = 6000;
    let motif: Vec<f64> = (0..period).map(|_| rng.normal()).collect();
    let e: Vec<f64> = (0..40_000).map(|t| motif[t % period]).collect();
    let a = run(&e);
    for t in [TEMPLATE + MIN_LAG + 5, 20_000, 30_719, 39_999] {
        let mut f = e.clone();
        f[t] += 10.0;
        let b = run(&f);
        assert_eq!(a[..=t], b[..=t], "changed at {t}");
    }
}

/// Past `2·REACH` residuals the predictor drops its oldest half (so a long
/// song does not keep 8 bytes of every residual); what it finds and
/// predicts after that is as before.
#[test]
fn a_long_stream_keeps_predicting_after_its_past_is_trimmed() {
    let mut rng = SplitMix64::new(5);
    let period = 5 * BLOCK + 77;
    let motif: Vec<f64> = (0..period).map(|_| rng.normal()).collect();
    let n = 2 * REACH + 3 * BLOCK;
    let mut ll = LongLag::new();
    let (mut err, mut sig) = (0.0, 0.0);
    for t in 0..n {
        let e = motif[t % period] + 0.01 * rng.normal();
        if t >= 2 * REACH + BLOCK {
            let (p, r) = ll.predict();
            assert!(r > 0.99, "correlation {r} at {t}");
            err += (e - p).powi(2);
            sig += e * e;
        }
        ll.update(e);
    }
    let gain = 10.0 * (sig / err).log10();
    assert!(gain > 30.0, "after the trim: {gain:.1} dB");
}

/// The FFT search with its kept transforms finds what the direct search of
/// the module's doc finds, at every search, on shapes small enough for the
/// direct one: odd sizes, a reach shorter than the stream (so transforms are
/// dropped and the past is trimmed), a segment shorter and one longer than
/// the template, on noise and on a noisy repeat.
#[test]
fn the_fft_search_finds_what_the_direct_search_finds() {
    use wavelstm::long_lag::{reference_match, Shape};
    let shapes = [
        Shape {
            block: 97,
            template: 301,
            min_lag: 150,
            reach: 2000,
            segment: 211,
        },
        Shape {
            block: 256,
            template: 512,
            min_lag: 700,
            reach: 3001,
            segment: 1536,
        },
        Shape {
            block: 128,
            template: 64,
            min_lag: 64,
            reach: 100_000,
            segment: 192,
        },
    ];
    let mut rng = SplitMix64::new(11);
    for shape in shapes {
        for repeat in [false, true] {
            let period = 3 * shape.template + 17;
            let motif: Vec<f64> = (0..period).map(|_| rng.normal()).collect();
            let n = 3 * shape.reach.min(4000) + 5 * shape.block;
            let e: Vec<f64> = (0..n)
                .map(|t| {
                    let fresh = rng.normal();
                    if repeat {
                        motif[t % period] + 0.3 * fresh
                    } else {
                        fresh
                    }
                })
                .collect();
            let mut ll = LongLag::with_shape(shape);
            let mut searches = 0;
            for (t, &v) in e.iter().enumerate() {
                ll.update(v);
                let n = t + 1;
                if n.is_multiple_of(shape.block) && n >= shape.template + shape.min_lag + 2 {
                    searches += 1;
                    let (got, want) = (ll.matched(), reference_match(&e[..n], shape));
                    let (got, want) = (got.expect("a match"), want.expect("a match"));
                    assert_eq!(got.lag, want.lag, "{shape:?}, repeat {repeat}, n {n}");
                    assert_eq!(got, want, "{shape:?}, repeat {repeat}, n {n}");
                    if repeat && n > period + shape.template + shape.min_lag {
                        assert_eq!(want.lag % period, 0, "{shape:?}: lag {}", want.lag);
                    }
                }
            }
            assert!(searches > 20, "{shape:?}: {searches} searches");
        }
    }
}
