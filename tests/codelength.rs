//! Bits per sample: the Laplace law and the μ-law grid against values worked
//! out by hand (to the digits printed), the 16-bit rounding, channels apart.

use wavelstm::codelength::{laplace_bits, residual_bits, to_16bit, AdaptiveLaplace, MulawGrid};
use wavelstm::mulaw;

#[test]
fn laplace_law_by_hand() {
    // e = 0, b = 1: −log2(1 − e^{−1/2}) = −log2(0.393469…) = 1.345677.
    assert!((laplace_bits(0, 1.0) - 1.3456768717052028).abs() < 1e-12);
    // e = ±3, b = 2: 1 + 2.5/(2 ln 2) − log2(1 − e^{−1/2}) = 4.149046.
    assert!((laplace_bits(3, 2.0) - 4.149045672816407).abs() < 1e-12);
    assert_eq!(laplace_bits(-3, 2.0), laplace_bits(3, 2.0));
    // The same value as the CDF difference F(3.5) − F(2.5) read off directly.
    let cdf = |t: f64, s: f64| {
        if t < 0.0 {
            0.5 * (t / s).exp()
        } else {
            1.0 - 0.5 * (-t / s).exp()
        }
    };
    for (e, b) in [(0i64, 0.3), (1, 0.3), (2, 5.0), (-7, 3.0), (40, 16.0)] {
        let direct = -(cdf(e as f64 + 0.5, b) - cdf(e as f64 - 0.5, b)).log2();
        assert!((laplace_bits(e, b) - direct).abs() < 1e-9, "e {e} b {b}");
    }
    // A law: the probabilities of all integers add up to 1.
    for b in [0.3, 1.0, 16.0, 300.0] {
        let total: f64 = (-20000i64..=20000)
            .map(|e| (-laplace_bits(e, b)).exp2())
            .sum();
        assert!((total - 1.0).abs() < 1e-9, "b {b}: {total}");
    }
    // Far outliers cost what they should: linear in |e|, no floor.
    assert!(laplace_bits(10_000, 0.3) > 40_000.0);
}

#[test]
fn adaptive_scale_by_hand() {
    // m = 16: e = 0 costs laplace_bits(0, 16) = 5.022483, then m = 16 − 16/32 = 15.5;
    // e = 5 costs laplace_bits(5, 15.5) = 5.419332, then m = 15.5 + (5 − 15.5)/32 = 15.171875;
    // e = −3 costs laplace_bits(3, 15.171875) = 5.208337.
    let mut c = AdaptiveLaplace::default();
    let want = [5.022483407080117, 5.419331608869485, 5.208336634175519];
    for (e, w) in [0i64, 5, -3].into_iter().zip(want) {
        let got = c.cost(e);
        assert!((got - w).abs() < 1e-12, "e {e}: {got} vs {w}");
    }
    assert_eq!(c.mean_abs, 15.171875 + (3.0 - 15.171875) / 32.0);

    // residual_bits: the same three residuals as samples and predictions.
    let t = [0.0, 5.0 / 32768.0, -3.0 / 32768.0];
    let mean = residual_bits(&t, &[0.0; 3], 1);
    assert!((mean - 5.216717216708374).abs() < 1e-12, "{mean}");
    // Two channels: each its own coder, so interleaving with an exactly
    // predicted channel averages the two channels' own figures.
    let two: Vec<f64> = t.iter().flat_map(|&v| [v, 0.0]).collect();
    let both = residual_bits(&two, &[0.0; 6], 2);
    let silent = residual_bits(&[0.0; 3], &[0.0; 3], 1);
    assert!((both - (mean + silent) / 2.0).abs() < 1e-12);
}

#[test]
fn the_16_bit_grid() {
    assert_eq!(to_16bit(0.5 / 32768.0), 0); // ties to even
    assert_eq!(to_16bit(1.5 / 32768.0), 2);
    assert_eq!(to_16bit(-2.5 / 32768.0), -2);
    assert_eq!(to_16bit(1.0), 32767); // clamped
    assert_eq!(to_16bit(-1.0), -32768);
    assert_eq!(to_16bit(-3.0), -32768);
    assert_eq!(to_16bit(f64::NAN), 0);
}

#[test]
fn mulaw_grid_by_hand() {
    let g = MulawGrid::new(1.0);
    // Class 128 is y = F(x) in [0, 2/255): x < (256^{2/255} − 1)/255 = 1.743e-4,
    // 5.71 steps of the grid, so the integers 0..=5; class 127 holds −5..=−1.
    assert_eq!(g.count(128), 6);
    assert_eq!(g.count(127), 5);
    assert_eq!(g.class(0.0), 128);
    assert_eq!(g.class(5.0 / 32768.0), 128);
    assert_eq!(g.class(6.0 / 32768.0), 129);
    assert_eq!(
        (0..mulaw::CLASSES).map(|k| g.count(k)).sum::<usize>(),
        65536
    );
    // Uniform logits: −log2(1/256) + log2(6) = 8 + 2.584963 bits for a sample in class 128.
    let flat = vec![0.0f32; mulaw::CLASSES];
    assert!((g.bits(&flat, 3.0 / 32768.0) - (8.0 + 6f64.log2())).abs() < 1e-9);
    // All the probability on class 128: log2(6) bits; and uniform over the
    // integers (p_k = n_k / 65536) is 16 bits for every sample.
    let mut peaked = vec![-1000.0f32; mulaw::CLASSES];
    peaked[128] = 0.0;
    assert!((g.bits(&peaked, 0.0) - 6f64.log2()).abs() < 1e-9);
    let uniform: Vec<f32> = (0..mulaw::CLASSES)
        .map(|k| (g.count(k) as f32).ln())
        .collect();
    for x in [0.0, -0.3, 0.9, 1.0] {
        assert!((g.bits(&uniform, x) - 16.0).abs() < 1e-5, "x {x}");
    }
}
