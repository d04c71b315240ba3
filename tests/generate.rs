//! Free running on the CPU: the one-step forward against the whole-sequence
//! forward, the state priming leaves behind, the μ-law head's loss and
//! point prediction against their references, and `generate` itself:
//! exact length, clipping, and bit-identical takes for a seed.

use wavelstm::audio::ChannelMode;
use wavelstm::cpu::engine::CpuEngine;
use wavelstm::cpu::mulaw::{expected_value, softmax_xent_loss, softmax_xent_reference};
use wavelstm::cpu::network::{forward, Workspace};
use wavelstm::cpu::step::{step_forward, StepScratch};
use wavelstm::dataset::{Batch, DataConfig};
use wavelstm::engine::Engine;
use wavelstm::generate::{generate, GenerateConfig, TakeReport};
use wavelstm::model::{init_params, Activation, ModelConfig, Output};
use wavelstm::mulaw::{self, CLASSES};
use wavelstm::optim::AdamConfig;
use wavelstm::preset::Defaults;
use wavelstm::rng::SplitMix64;
use wavelstm::run_config::{LrSchedule, RunConfig};
use wavelstm::spectrum::long_term;

fn model(
    layers: usize,
    frame: usize,
    hidden: usize,
    channels: usize,
    output: Output,
) -> ModelConfig {
    ModelConfig {
        frame,
        hidden,
        layers,
        head: vec![5],
        lstm_output_activation: Activation::LeakyRelu,
        output,
        ..Defaults::of(None).model(channels)
    }
}

fn run(model: ModelConfig, scale: f32, seq_len: usize) -> RunConfig {
    RunConfig {
        data: DataConfig {
            frame: model.frame,
            seq_len,
            batch: 4,
            valid_fraction: 0.1,
            stateful: false,
            shuffle: true,
            burn_in: 0,
        },
        model,
        adam: AdamConfig::default(),
        seed: 0,
        epochs: 1,
        sample_rate: 1000,
        channel_mode: ChannelMode::Mono,
        scale,
        songs: vec![],
        lr_schedule: LrSchedule::Constant,
        schedule_steps: 1,
        residual: wavelstm::residual::Residual::None,
        max_frames: None,
    }
}

fn noise(n: usize, seed: u64, amp: f64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| (amp * rng.normal()) as f32).collect()
}

#[test]
fn one_step_forward_matches_the_sequence_forward() {
    for (output, channels) in [(Output::Mse, 1), (Output::Mulaw { scale: 0.3 }, 2)] {
        let cfg = model(2, 3, 7, channels, output);
        let layout = cfg.layout();
        let mut rng = SplitMix64::new(5);
        let params: Vec<f64> = (0..layout.total).map(|_| rng.uniform(-0.7, 0.7)).collect();
        let b = 3;
        let n = cfg.layers * b * cfg.hidden;
        let x: Vec<f64> = (0..b * cfg.input_size()).map(|_| rng.normal()).collect();
        let h0: Vec<f64> = (0..n).map(|_| rng.uniform(-0.9, 0.9)).collect();
        let c0: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mut ws = Workspace::default();
        forward(&cfg, &params, 1, b, &x, &h0, &c0, &mut ws);
        let (mut h1, mut c1) = (vec![0.0; n], vec![0.0; n]);
        ws.final_state(&cfg, &mut h1, &mut c1);

        let (mut h, mut c) = (h0.clone(), c0.clone());
        let mut s = StepScratch::default();
        step_forward(&cfg, &layout, &params, b, &x, &mut h, &mut c, &mut s);
        assert_eq!(s.output().len(), b * cfg.outputs());
        let close = |a: &[f64], e: &[f64], what: &str| {
            for (i, (a, e)) in a.iter().zip(e).enumerate() {
                assert!((a - e).abs() < 1e-12, "{what}[{i}]: {a} vs {e}");
            }
        };
        close(s.output(), ws.prediction(), "output");
        close(&h, &h1, "h");
        close(&c, &c1, "c");
    }
}

/// Priming with `predict`, then `free_step` fed the true windows, is the
/// same computation as `predict` over the whole stretch: the state
/// `free_step` continues from is the one priming left.
#[test]
fn free_step_continues_from_the_primed_state() {
    let cfg = model(2, 2, 16, 1, Output::Mse);
    let params = init_params(&cfg, &mut SplitMix64::new(3));
    let signal = noise(300, 4, 1.0);
    let mut engine = CpuEngine::new(cfg.clone(), AdamConfig::default(), params).unwrap();
    engine.set_signal(&signal).unwrap();
    let first = cfg.frame - 1;
    let (primed, total) = (120, 200);
    let mut whole = Vec::new();
    let lane = |start| Batch {
        starts: vec![start],
        carry: vec![false],
    };
    engine.predict(&lane(first), total, &mut whole).unwrap();

    let mut out = Vec::new();
    engine.predict(&lane(first), primed, &mut out).unwrap();
    assert_eq!(&out[..], &whole[..primed]);
    for (step, &want) in whole.iter().enumerate().take(total).skip(primed) {
        let p = first + step;
        let window = &signal[p + 1 - cfg.frame..=p];
        engine.free_step(window, false, &mut out).unwrap();
        assert!(
            (out[0] - want).abs() < 1e-5,
            "step {step}: {} vs {want}",
            out[0]
        );
    }
    // And `fresh` really starts from zero: the first step of a zero-state pass.
    engine
        .free_step(&signal[first + 1 - cfg.frame..=first], true, &mut out)
        .unwrap();
    assert!((out[0] - whole[0]).abs() < 1e-5);
}

#[test]
fn mulaw_classes_round_trip_and_span_full_scale() {
    for k in 0..CLASSES {
        assert_eq!(mulaw::encode(mulaw::decode(k)), k, "class {k}");
        if k > 0 {
            assert!(mulaw::decode(k) > mulaw::decode(k - 1));
        }
    }
    assert_eq!(mulaw::encode(-1.0), 0);
    assert_eq!(mulaw::encode(1.0), 255);
    assert_eq!(mulaw::encode(7.0), 255, "beyond full scale clips");
    assert!((mulaw::decode(255) - 1.0).abs() < 1e-12);
    // Fine steps near silence, coarse ones near full scale.
    let step = |k: usize| mulaw::decode(k + 1) - mulaw::decode(k);
    assert!(step(128) < 1e-3 && step(254) > 0.02);
}

#[test]
fn softmax_xent_matches_its_reference_and_its_finite_differences() {
    let (rows, scale) = (7, 0.25);
    let mut rng = SplitMix64::new(9);
    let logits: Vec<f64> = (0..rows * CLASSES).map(|_| 3.0 * rng.normal()).collect();
    let targets: Vec<f64> = (0..rows).map(|_| 2.0 * rng.normal()).collect();
    let (mut d, mut scratch) = (Vec::new(), Vec::new());
    let loss = softmax_xent_loss(&logits, &targets, scale, &mut d, &mut scratch);
    let reference = softmax_xent_reference(&logits, &targets, scale);
    assert!((loss - reference).abs() < 1e-12 * reference.abs().max(1.0));
    let eps = 1e-4;
    for i in (0..logits.len()).step_by(37) {
        let mut z = logits.clone();
        z[i] += eps;
        let up = softmax_xent_reference(&z, &targets, scale);
        z[i] -= 2.0 * eps;
        let down = softmax_xent_reference(&z, &targets, scale);
        let n = (up - down) / (2.0 * eps);
        assert!((d[i] - n).abs() < 1e-8, "logit {i}: {} vs {n}", d[i]);
    }
    // Huge logits neither overflow the loss nor the gradient.
    let big: Vec<f32> = (0..CLASSES).map(|i| 1e4 * i as f32).collect();
    let (mut d32, mut s2) = (Vec::new(), Vec::new());
    let l = softmax_xent_loss(&big, &[0.0f32], 1.0, &mut d32, &mut s2);
    assert!(l.is_finite() && d32.iter().all(|v| v.is_finite()));
}

#[test]
fn expected_value_weighs_the_classes() {
    // All the mass on one class: its value, in model units.
    let scale = 0.5;
    let mut z = vec![-1e3f64; CLASSES];
    z[200] = 0.0;
    let mut out = Vec::new();
    expected_value(&z, scale, &mut out);
    assert!((out[0] - mulaw::decode(200) / scale).abs() < 1e-12);
    // Uniform: the classes' mean, zero by symmetry.
    expected_value(&vec![0.0f64; CLASSES], scale, &mut out);
    assert!(out[0].abs() < 1e-12);
}

fn takes(cfg: &ModelConfig, scale: f32, g: &GenerateConfig) -> (Vec<f32>, Vec<TakeReport>) {
    let params = init_params(cfg, &mut SplitMix64::new(21));
    let mut engine = CpuEngine::new(cfg.clone(), AdamConfig::default(), params).unwrap();
    let prime = noise(400 * cfg.channels, 8, 1.0);
    let mut written = Vec::new();
    let mut progress = Vec::new();
    let reports = generate(
        &mut engine,
        &run(cfg.clone(), scale, 32),
        &prime,
        g,
        &mut |f| {
            written.extend_from_slice(f);
            Ok(())
        },
        &mut |n| progress.push(n),
    )
    .unwrap();
    assert_eq!(progress.last(), Some(&g.frames));
    (written, reports)
}

#[test]
fn generation_has_the_exact_length_and_replays_from_a_seed() {
    let cfg = model(1, 3, 12, 2, Output::Mulaw { scale: 0.2 });
    let g = GenerateConfig {
        frames: 1500,
        takes: 3,
        seed: 42,
        temperature: 1.0,
        song_spectrum: None,
        measure_int16: false,
        excitation_order: 0,
    };
    let (a, ra) = takes(&cfg, 0.2, &g);
    assert_eq!(a.len(), g.frames * g.takes * cfg.channels);
    assert_eq!(ra.len(), 3);
    assert!(ra.iter().all(|r| r.frames == g.frames && r.samples == 3000));
    let (b, rb) = takes(&cfg, 0.2, &g);
    assert_eq!(
        a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        b.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        "same seed, same bits"
    );
    assert_eq!(ra, rb);
    // Every sample is a μ-law level, and the takes differ from each other.
    let levels: Vec<f32> = (0..CLASSES).map(|k| mulaw::decode(k) as f32).collect();
    assert!(a.iter().all(|v| levels.contains(v)));
    let take = |k: usize| -> Vec<f32> {
        a.chunks_exact(g.takes * cfg.channels)
            .flat_map(|f| f[k * cfg.channels..(k + 1) * cfg.channels].to_vec())
            .collect()
    };
    assert_ne!(take(0), take(1));
    let (c, _) = takes(
        &cfg,
        0.2,
        &GenerateConfig {
            seed: 43,
            ..g.clone()
        },
    );
    assert_ne!(a, c, "another seed, other takes");
    // Temperature 0 is the argmax: no randomness left.
    let greedy = GenerateConfig {
        temperature: 0.0,
        ..g.clone()
    };
    let (d, _) = takes(&cfg, 0.2, &greedy);
    let (e, _) = takes(&cfg, 0.2, &GenerateConfig { seed: 7, ..greedy });
    assert_eq!(d, e);
    // The figures: measured against take 0's own mono spectrum, take 0 is
    // 0 dB away and take 1 is not; the quietest second is no louder than
    // the whole take, and both are measured from the same samples.
    let mono: Vec<f32> = take(0)
        .chunks_exact(cfg.channels)
        .map(|f| f.iter().sum::<f32>() / cfg.channels as f32)
        .collect();
    let (_, rs) = takes(
        &cfg,
        0.2,
        &GenerateConfig {
            song_spectrum: Some(long_term(&mono)),
            ..g.clone()
        },
    );
    assert_eq!(rs[0].spectrum, long_term(&mono));
    assert_eq!(rs[0].lsd_db, Some(0.0));
    assert!(rs[1].lsd_db.unwrap() > 0.0);
    for r in &rs {
        assert!(r.quietest_second_dbfs <= r.rms_dbfs + 1e-9);
        assert!(r.quietest_second_dbfs > -100.0);
        assert!((r.level_vs_prime_db() - (r.rms_dbfs - r.prime_rms_dbfs)).abs() < 1e-12);
    }
    assert_eq!(ra[0].lsd_db, None);
}

#[test]
fn mse_generation_clips_what_it_feeds_back() {
    // A huge scale puts the outputs far beyond full scale in audio units.
    let cfg = model(1, 2, 8, 1, Output::Mse);
    let g = GenerateConfig {
        frames: 200,
        takes: 2,
        seed: 0,
        temperature: 1.0,
        song_spectrum: None,
        measure_int16: false,
        excitation_order: 0,
    };
    let (a, r) = takes(&cfg, 1e3, &g);
    assert_eq!(a.len(), 400);
    assert!(a.iter().all(|v| v.abs() <= 1.0));
    assert!(r[0].exploded() && !r[0].collapsed());
    assert_eq!(r[0], r[1], "the mse head is deterministic");
}
