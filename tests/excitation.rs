//! The excitation's colour (`excitation`): Levinson–Durbin against a direct
//! solve of the Toeplitz normal equations, the whole fit against a readable
//! f64 reference, the response's folded transform against a direct DFT, the
//! filter's unit power, and a take over the cascade whose long-term
//! spectrum lies closer to its coloured prime's with the shaping than
//! without.

mod common;
use common::normal_equations::gauss;
use wavelstm::audio::ChannelMode;
use wavelstm::cpu::engine::CpuEngine;
use wavelstm::dataset::DataConfig;
use wavelstm::excitation::{
    self, autocorrelation_of, condition, impulse_response, levinson, response_power, Shaper,
};
use wavelstm::generate::{generate, GenerateConfig};
use wavelstm::hybrid::{HybridConfig, Stream};
use wavelstm::model::{init_params, ModelConfig, Output};
use wavelstm::optim::AdamConfig;
use wavelstm::preset::Defaults;
use wavelstm::residual::Residual;
use wavelstm::rng::SplitMix64;
use wavelstm::run_config::{LrSchedule, RunConfig};
use wavelstm::spectrum::{self, BINS, WELCH_LEN};

/// `Σ_j a_j r_{|i−j|} = −r_i` solved directly, and `E = r_0 + Σ_j a_j r_j`.
fn direct(r: &[f64]) -> (Vec<f64>, f64) {
    let p = r.len() - 1;
    let m = (0..p)
        .map(|i| (0..p).map(|j| r[i.abs_diff(j)]).collect())
        .collect();
    let b = (1..=p).map(|i| -r[i]).collect();
    let a = gauss(m, b);
    let e = r[0] + a.iter().zip(&r[1..]).map(|(a, r)| a * r).sum::<f64>();
    (a, e)
}

/// A coloured noise: white noise through a two-pole resonance at
/// `f` (cycles per sample, radius `rho`), plus a little white noise.
fn coloured(n: usize, seed: u64, f: f64, rho: f64, amp: f64) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    let (a1, a2) = (
        2.0 * rho * (2.0 * std::f64::consts::PI * f).cos(),
        -rho * rho,
    );
    let (mut y1, mut y2) = (0.0, 0.0);
    (0..n)
        .map(|_| {
            let y = rng.normal() + a1 * y1 + a2 * y2;
            y2 = y1;
            y1 = y;
            amp * (y + 0.01 * rng.normal())
        })
        .collect()
}

/// The biased autocorrelation `r_0 ..= r_p` of `x`.
fn autocorr(x: &[f64], p: usize) -> Vec<f64> {
    (0..=p)
        .map(|k| {
            x[..x.len() - k]
                .iter()
                .zip(&x[k..])
                .map(|(a, b)| a * b)
                .sum()
        })
        .collect()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
}

#[test]
fn levinson_matches_a_direct_solve_of_the_normal_equations() {
    for (p, seed, f, rho) in [
        (1, 1, 0.05, 0.9),
        (5, 2, 0.2, 0.99),
        (17, 3, 0.31, 0.7),
        (32, 4, 0.01, 0.999),
    ] {
        let r = autocorr(&coloured(4000 + 7 * p, seed, f, rho, 1.0), p);
        let (a, e) = levinson(&r).expect("a positive definite autocorrelation");
        let (a_ref, e_ref) = direct(&r);
        assert_eq!(a.len(), p);
        for (j, (x, y)) in a.iter().zip(&a_ref).enumerate() {
            assert!(
                (x - y).abs() < 1e-7 * (1.0 + y.abs()),
                "order {p}, a_{}: {x} against {y}",
                j + 1
            );
        }
        assert!(close(e, e_ref, 1e-8), "order {p}: E {e} against {e_ref}");
        assert!(e > 0.0 && e < r[0]);
    }
    // Not positive definite: refused.
    assert!(levinson(&[1.0, 1.0]).is_none());
    assert!(levinson(&[0.0, 0.0, 0.0]).is_none());
    assert!(levinson(&[1.0, f64::NAN]).is_none());
}

#[test]
fn the_fit_is_what_the_reference_computes() {
    let rate = 8000;
    // A power spectrum with a peak and a slope, `[BINS]`.
    let power: Vec<f64> = (0..BINS)
        .map(|k| {
            let f = k as f64 / BINS as f64;
            1e-3 * (-6.0 * f).exp() + 1.0 / (1.0 + ((f - 0.3) / 0.02).powi(2))
        })
        .collect();
    for order in [1, 8, 32] {
        let sh = Shaper::fit(&power, order, rate);
        // Reference: the two-sided spectrum written out, its inverse DFT
        // term by term, the lag window and correction, a direct solve.
        let two_sided: Vec<f64> = (0..WELCH_LEN)
            .map(|k| power[k.min(WELCH_LEN - k)])
            .collect();
        let mut r: Vec<f64> = (0..=order)
            .map(|j| {
                two_sided
                    .iter()
                    .enumerate()
                    .map(|(k, t)| {
                        let w = 2.0 * std::f64::consts::PI * (j * k) as f64 / WELCH_LEN as f64;
                        t * w.cos()
                    })
                    .sum()
            })
            .collect();
        let s = 2.0 * std::f64::consts::PI * excitation::LAG_WINDOW_HZ / rate as f64;
        for (j, v) in r.iter_mut().enumerate() {
            *v *= (-0.5 * (s * j as f64).powi(2)).exp();
        }
        r[0] *= 1.0 + excitation::WHITE_NOISE;
        let (a_ref, e_ref) = direct(&r);
        assert_eq!(sh.coefficients().len(), order);
        for (x, y) in sh.coefficients().iter().zip(&a_ref) {
            assert!(
                (x - y).abs() < 1e-8 * (1.0 + y.abs()),
                "order {order}: {x} against {y}"
            );
        }
        assert!(close(sh.gain(), (e_ref / r[0]).sqrt(), 1e-9));
        // The library's pieces agree with it too.
        let mut r2 = autocorrelation_of(&power, order);
        condition(
            &mut r2,
            excitation::LAG_WINDOW_HZ,
            rate,
            excitation::WHITE_NOISE,
        );
        for (x, y) in r2.iter().zip(&r) {
            assert!(close(*x, *y, 1e-10));
        }
    }
    // Order 0, a wrong length and a silent spectrum are white.
    assert!(Shaper::fit(&power, 0, rate).coefficients().is_empty());
    assert!(Shaper::fit(&power[1..], 8, rate).coefficients().is_empty());
    assert!(Shaper::fit(&vec![0.0; BINS], 8, rate)
        .coefficients()
        .is_empty());
}

#[test]
fn the_folded_response_is_the_dft_of_the_whole_response() {
    let h = coloured(5 * WELCH_LEN + 123, 9, 0.1, 0.95, 0.3);
    let got = response_power(&h);
    assert_eq!(got.len(), BINS);
    for k in [0, 1, 17, 300, 511, 1024] {
        let (mut re, mut im) = (0.0, 0.0);
        for (n, v) in h.iter().enumerate() {
            let w = -2.0 * std::f64::consts::PI * ((k * n) % WELCH_LEN) as f64 / WELCH_LEN as f64;
            re += v * w.cos();
            im += v * w.sin();
        }
        let want = re * re + im * im;
        assert!(
            close(got[k], want, 1e-9),
            "bin {k}: {} against {want}",
            got[k]
        );
    }
}

#[test]
fn the_frozen_synthesis_is_its_impulse_response_and_the_shaper_keeps_unit_power() {
    // A frozen stream is linear: fed base + e, it puts out its ringing
    // plus h * e.
    let cfg = HybridConfig::default();
    let mut st = Stream::new(&cfg);
    for v in coloured(3000, 5, 0.05, 0.98, 0.01) {
        st.update(v);
    }
    st.hold_gains();
    st.freeze_cascade();
    let n = 600;
    let h = impulse_response(&st, n);
    let e = coloured(n, 6, 0.2, 0.5, 1e-3);
    let (mut fed, mut idle) = (st.clone(), st.clone());
    for i in 0..n {
        let (x, x0) = (fed.base() + e[i], idle.base());
        fed.update(x);
        idle.update(x0);
        let conv: f64 = (0..=i).map(|j| h[j] * e[i - j]).sum();
        assert!(
            (x - x0 - conv).abs() < 1e-9,
            "sample {i}: {} against {conv}",
            x - x0
        );
    }

    // Unit noise through a fitted shaper comes out at unit power.
    let x = coloured(1 << 16, 7, 0.12, 0.97, 1.0);
    let power = spectrum::long_term(&x.iter().map(|&v| v as f32).collect::<Vec<_>>());
    let mut sh = Shaper::fit(&power, 32, 8000);
    let mut rng = SplitMix64::new(3);
    let y: Vec<f64> = (0..200_000).map(|_| sh.next(rng.normal())).collect();
    let ms = y.iter().map(|v| v * v).sum::<f64>() / y.len() as f64;
    assert!((ms - 1.0).abs() < 0.05, "mean square {ms}");
    // White is the identity.
    let mut w = Shaper::white();
    assert_eq!(w.next(0.25), 0.25);
}

/// An untrained hybrid model's take after a coloured-noise prime, at the
/// given excitation order: its LSD from the prime's long-term spectrum.
fn take_lsd(prime: &[f32], order: usize) -> f64 {
    let r = take(prime, order, Output::Mse, None);
    assert!(r.level_vs_prime_db().abs() < 6.0, "order {order}: {r:?}");
    assert_eq!(r.clipped, 0, "order {order}: {r:?}");
    r.lsd_db.unwrap()
}

/// A 3-s take after `prime` (8 kHz) of an untrained hybrid with head
/// `output`, its raw log-scale output biased by `log_scale_bias` (a
/// location–scale head's).
fn take(
    prime: &[f32],
    order: usize,
    output: Output,
    log_scale_bias: Option<f32>,
) -> wavelstm::take_report::TakeReport {
    let hybrid = HybridConfig::default();
    let model = ModelConfig {
        frame: 1,
        features: hybrid.features(),
        hidden: 8,
        layers: 1,
        head: vec![],
        output,
        ..Defaults::of(None).model(1)
    };
    let run = RunConfig {
        data: DataConfig {
            frame: 1,
            seq_len: 32,
            batch: 1,
            valid_fraction: 0.1,
            stateful: true,
            shuffle: false,
            burn_in: 0,
        },
        model: model.clone(),
        adam: AdamConfig::default(),
        seed: 0,
        epochs: 1,
        sample_rate: 8000,
        channel_mode: ChannelMode::Mono,
        scale: 1.0,
        songs: vec![],
        lr_schedule: LrSchedule::Constant,
        schedule_steps: 1,
        residual: Residual::Cascade {
            hybrid: hybrid.clone(),
        },
        max_frames: None,
    };
    let mut params = init_params(&model, &mut SplitMix64::new(11));
    if let Some(bias) = log_scale_bias {
        let head = model.layout().dense[0].bias;
        params[head + 1] = bias;
    }
    let mut engine = CpuEngine::new(model, AdamConfig::default(), params).unwrap();
    let g = GenerateConfig {
        frames: 24_000,
        takes: 1,
        seed: 4,
        temperature: 1.0,
        song_spectrum: Some(spectrum::long_term(prime)),
        measure_int16: false,
        excitation_order: order,
    };
    let mut reports = generate(&mut engine, &run, prime, &g, &mut |_| Ok(()), &mut |_| {}).unwrap();
    reports.remove(0)
}

#[test]
fn a_head_that_widens_its_own_draws_is_held_near_the_primes_level() {
    // Draws e³ ≈ 20 times the residual's gain wide: the take runs loud,
    // the guard cuts the network's share of the location and of the spread,
    // and the calibrated excitation carries the level from there.
    let x = coloured(16_000, 14, 0.05, 0.99, 0.003);
    let prime: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    for output in [
        Output::Laplace { scale: 1.0 },
        Output::Logistic { scale: 1.0 },
    ] {
        let r = take(&prime, 32, output, Some(3.0));
        let last = r.last_second_rms_dbfs - r.prime_rms_dbfs;
        let what = format!(
            "{output:?}: last second {last:+.1} dB, {} clipped",
            r.clipped
        );
        assert!(last.abs() < 6.0, "{what}");
        assert!(r.clipped * 1000 < r.samples, "{what}");
        // Its own width, unbiased, keeps the whole take near the prime.
        let r = take(&prime, 32, output, None);
        let level = r.level_vs_prime_db();
        assert!(level.abs() < 6.0, "{output:?} unbiased: {level:+.1} dB");
    }
}

#[test]
fn a_shaped_take_is_closer_to_its_coloured_prime_than_a_white_one() {
    // The prime's colour changes at 1.5 s, from a low resonance to a high
    // one: the cascade freezes into the last colour, while the prime's
    // long-term spectrum holds both (as a song's notes change).
    let mut x = coloured(12_000, 12, 0.02, 0.995, 0.002);
    x.extend(coloured(4_000, 13, 0.15, 0.98, 0.004));
    let prime: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let (white, shaped) = (take_lsd(&prime, 0), take_lsd(&prime, 32));
    assert!(
        shaped < white - 1.0,
        "white {white:.2} dB, shaped {shaped:.2} dB"
    );
}
