//! How much the cascade leaves for a learned predictor to take, measured on
//! the training part of each clip only (the scored last 10 % is never
//! read): everything is fitted on frames `[2048, 0.8·N)` and measured on
//! `[0.8·N, 0.9·N)`, the last tenth of the part `train` learns from.
//!
//! ```text
//! cargo run --release --example headroom -- CLIP...
//! ```
//! Per clip, on the cascade's residual `e` (mono mixdown, 16-bit units):
//! - its RMS in 16-bit steps, and the cascade's prediction gain there;
//! - **linear**: a ridge regression of `e/g` on the last K residuals `/g`
//!   and the stage predictions `/g` (g: the hybrid's causal residual gain,
//!   an exponential mean of e² over ~512 samples), fitted on the fitting
//!   part; its gain on the measured part in gain units (every sample
//!   weighed alike, what bits follow) and in audio units (what prediction
//!   gain follows), for K = 32 and 256;
//! - **long lag**: the causal long-term predictor over the residual that
//!   `--long-lag` feeds the network (`long_lag`: every 2048 samples the lag
//!   ≥ 4096 whose past best matches the last 8192 residuals, three taps
//!   fitted on that match); its gain in audio units and the share of its
//!   2048-sample blocks it helps;
//! - **shape**: bits per sample of the integer residual under the cascade
//!   coder's adaptive scale rule (running mean |e|, rate 1/32) with a
//!   Laplace law and with a logistic law of the same mean |e|.

use wavelstm::audio::{self, ChannelMode};
use wavelstm::cascade::{Cascade, CascadeConfig};
use wavelstm::codelength::to_16bit;
use wavelstm::law::Law;
use wavelstm::long_lag::{LongLag, BLOCK};

/// Solve `a·w = b` (`a` symmetric positive definite, `n × n`) by Cholesky.
fn solve_spd(mut a: Vec<f64>, mut b: Vec<f64>, n: usize) -> Vec<f64> {
    for j in 0..n {
        let d = (a[j * n + j] - (0..j).map(|k| a[j * n + k].powi(2)).sum::<f64>()).sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let s = a[i * n + j] - (0..j).map(|k| a[i * n + k] * a[j * n + k]).sum::<f64>();
            a[i * n + j] = s / d;
        }
    }
    for i in 0..n {
        b[i] = (b[i] - (0..i).map(|k| a[i * n + k] * b[k]).sum::<f64>()) / a[i * n + i];
    }
    for i in (0..n).rev() {
        b[i] = (b[i] - (i + 1..n).map(|k| a[k * n + i] * b[k]).sum::<f64>()) / a[i * n + i];
    }
    b
}

fn db(num: f64, den: f64) -> f64 {
    10.0 * (num / den).log10()
}

/// Ridge regression of `e/g` on K lags of `e/g` and the stage predictions
/// `/g`: its gain on `test` in gain units and in audio units.
fn linear(
    e: &[f64],
    g: &[f64],
    stages: &[Vec<f64>],
    k: usize,
    fit: (usize, usize),
    test: (usize, usize),
) -> (f64, f64) {
    let n = k + stages[0].len();
    let row = |t: usize| -> Vec<f64> {
        let mut r: Vec<f64> = (1..=k).map(|j| e[t - j] / g[t]).collect();
        r.extend(stages[t].iter().map(|s| s / g[t]));
        r
    };
    let (mut a, mut b) = (vec![0.0; n * n], vec![0.0; n]);
    for t in fit.0..fit.1 {
        let (r, y) = (row(t), e[t] / g[t]);
        for i in 0..n {
            b[i] += r[i] * y;
            for j in 0..n {
                a[i * n + j] += r[i] * r[j];
            }
        }
    }
    for i in 0..n {
        a[i * n + i] += 1e-2;
    }
    let w = solve_spd(a, b, n);
    let (mut y2, mut r2, mut ya2, mut ra2) = (0.0, 0.0, 0.0, 0.0);
    for t in test.0..test.1 {
        let y = e[t] / g[t];
        let res = y - row(t).iter().zip(&w).map(|(x, w)| x * w).sum::<f64>();
        y2 += y * y;
        r2 += res * res;
        ya2 += e[t] * e[t];
        ra2 += (res * g[t]).powi(2);
    }
    (db(y2, r2), db(ya2, ra2))
}

/// The causal long-term predictor (`long_lag`, as the hybrid's
/// `--long-lag` features run it) over `e`, measured on `test`: its gain in
/// audio units, and the share of its blocks it helps.
fn long_lag(e: &[f64], test: (usize, usize)) -> (f64, usize, usize) {
    let mut ll = LongLag::new();
    let (mut before, mut after) = (0.0, 0.0);
    let (mut helped, mut blocks, mut block) = (0, 0, (0.0, 0.0));
    for (t, &v) in e.iter().enumerate().take(test.1) {
        if t >= test.0 {
            let p = ll.predict().0;
            block.0 += v * v;
            block.1 += (v - p).powi(2);
            if (t + 1).is_multiple_of(BLOCK) || t + 1 == test.1 {
                before += block.0;
                after += block.1;
                helped += usize::from(block.1 < block.0);
                blocks += 1;
                block = (0.0, 0.0);
            }
        }
        ll.update(v);
    }
    (db(before, after), helped, blocks)
}

/// Bits per sample of the integer residuals `ei` on `test` under the
/// coder's running mean |e| (rate 1/32, start 16, floor 0.3) with `law`.
fn shape(ei: &[i64], law: Law, test: (usize, usize)) -> f64 {
    let mut mean_abs = 16.0f64;
    let mut total = 0.0;
    for (t, &v) in ei.iter().enumerate().take(test.1) {
        let b = mean_abs.max(0.3);
        // Of the same mean |e| as the Laplace law's b: 2·ln 2·s for a logistic law.
        let s = match law {
            Law::Laplace => b,
            Law::Logistic => b / (2.0 * std::f64::consts::LN_2),
        };
        if t >= test.0 {
            total += law.bin_bits(0.0, s.ln(), v as f64, 1.0);
        }
        mean_abs += (v.unsigned_abs() as f64 - mean_abs) / 32.0;
    }
    total / (test.1 - test.0) as f64
}

fn main() {
    for clip in std::env::args().skip(1) {
        let a = audio::load(clip.as_ref(), ChannelMode::Mono, None).expect("a clip");
        let n = a.frames();
        let (fit, test) = ((2048, n * 8 / 10), (n * 8 / 10, n * 9 / 10));
        let mut cascade = Cascade::new(&CascadeConfig::default());
        let (mut e, mut stages, mut ei, mut x2) = (Vec::new(), Vec::new(), Vec::new(), 0.0);
        // Everything in 16-bit steps; only frames before 0.9·N are read.
        for (t, &v) in a.samples[..test.1].iter().enumerate() {
            let x = f64::from(v) * 32768.0;
            let p = cascade.predict() * 32768.0;
            e.push(x - p);
            stages.push(
                cascade
                    .stage_predictions()
                    .iter()
                    .map(|s| s * 32768.0)
                    .collect::<Vec<f64>>(),
            );
            ei.push(i64::from(to_16bit(f64::from(v))) - i64::from(to_16bit(p / 32768.0)));
            if t >= test.0 {
                x2 += x * x;
            }
            cascade.update(f64::from(v));
        }
        // The hybrid's residual gain: g_t from e before t, floor one step.
        let mut g = vec![1.0; e.len()];
        let mut v = 0.0;
        for t in 1..e.len() {
            v += (e[t - 1] * e[t - 1] - v) / 512.0;
            g[t] = v.sqrt().max(1.0);
        }
        let e2: f64 = e[test.0..test.1].iter().map(|v| v * v).sum();
        let name = std::path::Path::new(&clip)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .to_string();
        println!(
            "{name}: measured on frames {}..{} (fitted on {}..{}); cascade {:.2} dB, residual RMS {:.2} steps",
            test.0,
            test.1,
            fit.0,
            fit.1,
            db(x2, e2),
            (e2 / (test.1 - test.0) as f64).sqrt()
        );
        for k in [32, 256] {
            let (gu, au) = linear(&e, &g, &stages, k, fit, test);
            println!("  linear, {k} residual lags + stages: {gu:+.2} dB in gain units, {au:+.2} dB in audio units");
        }
        let (gain, helped, blocks) = long_lag(&e, test);
        println!("  long lag (causal, per 2048-sample block): {gain:+.2} dB, helps {helped} of {blocks} blocks");
        let (lap, logi) = (
            shape(&ei, Law::Laplace, test),
            shape(&ei, Law::Logistic, test),
        );
        println!(
            "  shape under the coder's scale rule: Laplace {lap:.3} b, logistic {logi:.3} b ({:+.3} b)",
            logi - lap
        );
    }
}
