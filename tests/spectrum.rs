//! The long-term spectrum and its figures (`spectrum`): a sine's peak bin,
//! Parseval, white noise flat, the distance of a signal from itself and
//! from itself at a gain, streaming = batch, the quietest window, and the
//! issue's figures for scale on the bundled clips.

use approx::assert_abs_diff_eq;
use wavelstm::audio::{self, ChannelMode};
use wavelstm::rng::SplitMix64;
use wavelstm::spectrum::{
    self, bin_hz, db, long_term, lsd_db, QuietestWindow, Welch, BINS, WELCH_HOP, WELCH_LEN,
};

fn noise(n: usize, sigma: f64, seed: u64) -> Vec<f32> {
    let mut r = SplitMix64::new(seed);
    (0..n).map(|_| (sigma * r.normal()) as f32).collect()
}

fn sine(n: usize, cycles_per_sample: f64, amp: f64) -> Vec<f32> {
    (0..n)
        .map(|i| (amp * (2.0 * std::f64::consts::PI * cycles_per_sample * i as f64).sin()) as f32)
        .collect()
}

fn peak_bin(p: &[f64]) -> usize {
    (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap()
}

#[test]
fn a_sines_power_peaks_in_its_bin() {
    // On a bin, between two bins (the nearer wins), and near both ends.
    for (f, want) in [(100.0, 100), (317.3, 317), (3.0, 3), (1020.0, 1020)] {
        let p = long_term(&sine(20 * WELCH_LEN, f / WELCH_LEN as f64, 0.5));
        assert_eq!(p.len(), BINS);
        assert_eq!(peak_bin(&p), want, "sine at bin {f}");
    }
    assert_abs_diff_eq!(bin_hz(100, 44_100), 100.0 * 44_100.0 / 2048.0);
}

#[test]
fn the_bins_sum_to_the_frames_weighted_mean_square() {
    let w: Vec<f64> = (0..WELCH_LEN)
        .map(|i| {
            (std::f64::consts::PI * i as f64 / WELCH_LEN as f64)
                .sin()
                .powi(2)
        })
        .collect();
    let w2: f64 = w.iter().map(|v| v * v).sum();
    // Odd lengths: the samples past the last whole frame do not count.
    for (n, seed) in [(WELCH_LEN, 1), (7 * WELCH_HOP + 333, 2), (40_001, 3)] {
        let x = noise(n, 0.3, seed);
        let p = long_term(&x);
        let frames = (n - WELCH_LEN) / WELCH_HOP + 1;
        let want: f64 = (0..frames)
            .map(|m| {
                (0..WELCH_LEN)
                    .map(|i| (w[i] * f64::from(x[m * WELCH_HOP + i])).powi(2))
                    .sum::<f64>()
                    / w2
            })
            .sum::<f64>()
            / frames as f64;
        let got: f64 = p.iter().sum();
        assert!(
            (got - want).abs() <= 1e-12 * want,
            "n {n}: Σ P = {got}, want {want}"
        );
    }
    // A full-scale sine: mean square 1/2.
    let total: f64 = long_term(&sine(50 * WELCH_LEN, 0.0371, 1.0)).iter().sum();
    assert_abs_diff_eq!(total, 0.5, epsilon = 1e-3);
}

#[test]
fn white_noise_is_flat_at_its_variance() {
    let sigma = 0.1;
    let p = long_term(&noise(44_100 * 10, sigma, 4));
    // Each bin averages 429 frames: its level scatters by ~0.2 dB.
    let want = db(2.0 * sigma * sigma / WELCH_LEN as f64);
    for (k, &v) in p.iter().enumerate().take(BINS - 1).skip(1) {
        assert!(
            (db(v) - want).abs() < 1.5,
            "bin {k}: {} dB, want {want}",
            db(v)
        );
    }
    let mean: f64 = p[1..BINS - 1].iter().map(|&v| db(v)).sum::<f64>() / (BINS - 2) as f64;
    assert!(
        (mean - want).abs() < 0.1,
        "mean level {mean} dB, want {want}"
    );
}

#[test]
fn the_distance_of_a_signal_from_itself_is_zero_and_a_gain_is_its_db() {
    let x = noise(30_000, 0.2, 5);
    let p = long_term(&x);
    assert_eq!(lsd_db(&p, &p), 0.0);
    for a in [0.5f32, 2.0, 0.1] {
        let y: Vec<f32> = x.iter().map(|v| v * a).collect();
        let d = lsd_db(&p, &long_term(&y));
        let want = (20.0 * f64::from(a).log10()).abs();
        assert!((d - want).abs() < 1e-4, "gain {a}: {d} dB, want {want}");
    }
    // Two noises differ by their scatter only; a low-passed one by much more.
    let q = long_term(&noise(30_000, 0.2, 6));
    assert!(lsd_db(&p, &q) < 2.0);
    let smooth: Vec<f32> = x.windows(8).map(|w| w.iter().sum::<f32>() / 8.0).collect();
    assert!(lsd_db(&p, &long_term(&smooth)) > 10.0);
}

#[test]
fn streaming_is_batch_and_a_short_signal_is_one_padded_frame() {
    let x = noise(9_999, 0.4, 7);
    let mut w = Welch::new();
    let mut part = Vec::new();
    for (i, &v) in x.iter().enumerate() {
        w.push(f64::from(v));
        if i == 4_999 {
            part = w.spectrum();
        }
    }
    assert_eq!(w.spectrum(), long_term(&x));
    assert_eq!(part, long_term(&x[..5_000]));
    // 1000 samples: one frame, zero-padded; nothing at all: zeros.
    let short = long_term(&x[..1000]);
    let mut padded = x[..1000].to_vec();
    padded.resize(WELCH_LEN, 0.0);
    assert_eq!(short, long_term(&padded));
    assert!(short.iter().sum::<f64>() > 0.0);
    assert!(long_term(&[]).iter().all(|&v| v == 0.0));
}

#[test]
fn the_quietest_window_is_the_lowest_sliding_mean_square() {
    let mut r = SplitMix64::new(8);
    let squares: Vec<f64> = (0..500)
        .map(|i| r.next_f64() * (1.0 + (i % 97) as f64))
        .collect();
    for window in [1, 7, 100, 500, 600] {
        let mut q = QuietestWindow::new(window);
        squares.iter().for_each(|&s| q.push(s));
        let want = if window > squares.len() {
            squares.iter().sum::<f64>() / squares.len() as f64
        } else {
            squares
                .windows(window)
                .map(|w| w.iter().sum::<f64>() / window as f64)
                .fold(f64::INFINITY, f64::min)
        };
        let got = q.least_mean_square();
        // The running sum rounds: within a few ulps of the largest square.
        assert!(
            (got - want).abs() <= 1e-12 * 97.0,
            "window {window}: {got}, want {want}"
        );
    }
    // A silent stretch as long as the window is found; a shorter one is not.
    let mut q = QuietestWindow::new(10);
    (0..50).for_each(|i| q.push(if (20..30).contains(&i) { 0.0 } else { 1.0 }));
    assert_eq!(q.least_mean_square(), 0.0);
    let mut q = QuietestWindow::new(10);
    (0..50).for_each(|i| q.push(if (20..29).contains(&i) { 0.0 } else { 1.0 }));
    assert_abs_diff_eq!(q.least_mean_square(), 0.1, epsilon = 1e-12);
    assert_eq!(QuietestWindow::new(4).least_mean_square(), 0.0);
}

/// The issue's figures for scale: the two halves of each shared clip (mono)
/// are 3.2–6.1 dB apart, white noise at the song's RMS 38–71 dB from it.
#[test]
fn the_clips_halves_and_white_noise_give_the_issues_figures() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/audio");
    // (clip, halves, noise) as computed by an independent NumPy script of
    // the module doc's definition.
    for (clip, halves, white) in [
        ("piano_sabatella_unclaimed_gift.wav", 6.12, 71.1),
        ("orchestral_kaufman_heroes_rite.wav", 5.57, 51.2),
        ("electronic_savino_palace.wav", 3.25, 38.5),
    ] {
        let x = audio::load(&dir.join(clip), ChannelMode::Mono, None)
            .unwrap()
            .samples;
        let h = x.len() / 2;
        let d = lsd_db(&long_term(&x[..h]), &long_term(&x[h..]));
        assert!(
            (d - halves).abs() < 0.02,
            "{clip}: halves {d:.3} dB, want {halves}"
        );
        let rms = (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
        let n = lsd_db(&long_term(&x), &long_term(&noise(x.len(), rms, 9)));
        assert!(
            (n - white).abs() < 0.3,
            "{clip}: white noise {n:.2} dB, want {white}"
        );
        assert!((3.2..=6.2).contains(&d) && (38.0..=72.0).contains(&n));
    }
    assert_eq!(spectrum::POWER_FLOOR, 1e-20);
}
