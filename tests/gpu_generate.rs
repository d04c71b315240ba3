//! The GPU twins of this feature against the CPU engine: the `mulaw` head's
//! kernels (shaders/softmax_xent.wgsl) on random logits at odd shapes, a
//! short μ-law training run, and free running from a primed state.
//!
//! They need a GPU adapter (lavapipe will do); without one they print why
//! and pass, unless WAVELSTM_REQUIRE_GPU=1, where they fail.

mod common;
use common::gpu::{assert_free_run_alike, gpu};

use std::time::Instant;
use wavelstm::cpu::engine::CpuEngine;
use wavelstm::cpu::mulaw::{expected_value, softmax_xent_loss};
use wavelstm::dataset::Batch;
use wavelstm::engine::Engine;
use wavelstm::gpu::context::Gpu;
use wavelstm::gpu::engine::{GpuEngine, PathChoice};
use wavelstm::gpu::program::{stats, LossMask, Path, Program};
use wavelstm::gpu::workbench::{Buf, Workbench};
use wavelstm::model::{init_params, ModelConfig, Output};
use wavelstm::mulaw::CLASSES;
use wavelstm::optim::AdamConfig;
use wavelstm::preset::Defaults;
use wavelstm::rng::SplitMix64;

fn model(hidden: usize, channels: usize, output: Output) -> ModelConfig {
    ModelConfig {
        frame: 2,
        hidden,
        output,
        ..Defaults::of(None).model(channels)
    }
}

fn engines(cfg: &ModelConfig, gpu: Gpu, seed: u64) -> (CpuEngine, GpuEngine) {
    let params = init_params(cfg, &mut SplitMix64::new(seed));
    let adam = AdamConfig::default();
    (
        CpuEngine::new(cfg.clone(), adam, params.clone()).unwrap(),
        GpuEngine::new(
            gpu,
            cfg.clone(),
            adam,
            params,
            PathChoice::Fixed(Path::Step),
            1,
        )
        .unwrap(),
    )
}

fn noise(n: usize, seed: u64, amp: f64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| (amp * rng.normal()) as f32).collect()
}

#[test]
fn softmax_xent_kernels_match_the_cpu() {
    let Some(g) = gpu() else {
        return;
    };
    let scale = 0.2f32;
    let mut wb = Workbench::new(g).unwrap();
    for (i, rows) in [1usize, 7, 33, 301].into_iter().enumerate() {
        let logits = noise(rows * CLASSES, 10 + i as u64, 3.0);
        let targets = noise(rows, 20 + i as u64, 2.0);
        // In `acts`: logits, targets, dlogits, per-row losses, expected values.
        let n = logits.len();
        let (t_at, d_at, row_at, e_at) = (n, n + rows, 2 * n + rows, 2 * n + 2 * rows);
        let mut acts = logits.clone();
        acts.extend(&targets);
        acts.resize(e_at + rows, f32::NAN);
        wb.set(Buf::Acts, &acts);
        wb.set(Buf::Stats, &vec![0.0; stats::len(1)]);
        let mut p = Program::default();
        p.softmax_xent(rows, 0, t_at, d_at, row_at, scale, LossMask::none(1));
        p.expected_rows(rows, 0, e_at, scale);
        wb.run(&p).unwrap();
        let loss = wb.read(Buf::Stats, stats::LOSS, 1).unwrap()[0];
        let grad = wb.read(Buf::Acts, d_at, n).unwrap();
        let expected = wb.read(Buf::Acts, e_at, rows).unwrap();
        let (mut d, mut scratch, mut e) = (Vec::new(), Vec::new(), Vec::new());
        let want = softmax_xent_loss(&logits, &targets, f64::from(scale), &mut d, &mut scratch);
        expected_value(&logits, f64::from(scale), &mut e);
        let rel = |a: f32, b: f32, floor: f32| (a - b).abs() / b.abs().max(floor);
        assert!(
            rel(loss, want as f32, 1e-6) < 1e-4,
            "{rows} rows: loss {loss} vs {want}"
        );
        let floor = 1e-3 / rows as f32;
        let worst = grad
            .iter()
            .zip(&d)
            .map(|(&a, &b)| rel(a, b, floor))
            .fold(0.0, f32::max);
        assert!(worst < 1e-4, "{rows} rows: gradient off by {worst:e}");
        let worst = expected
            .iter()
            .zip(&e)
            .map(|(&a, &b)| rel(a, b, 1e-3))
            .fold(0.0, f32::max);
        assert!(
            worst < 1e-4,
            "{rows} rows: expected values off by {worst:e}"
        );
    }
}

#[test]
fn a_short_mulaw_training_run_matches_the_cpu() {
    let Some(g) = gpu() else {
        return;
    };
    let cfg = model(8, 1, Output::Mulaw { scale: 0.1 });
    let (mut cpu, mut gpu) = engines(&cfg, g.clone(), 2);
    let signal: Vec<f32> = (0..600)
        .map(|n| (3.0 * (n as f64 * 0.07).sin()) as f32)
        .collect();
    cpu.set_signal(&signal).unwrap();
    gpu.set_signal(&signal).unwrap();
    for step in 0..4 {
        let batch = Batch {
            starts: vec![1 + 37 * step, 200 + 11 * step, 400],
            carry: vec![false; 3],
        };
        cpu.train_step(&batch, 16, 1e-2).unwrap();
        gpu.train_step(&batch, 16, 1e-2).unwrap();
    }
    let (a, b) = (cpu.take_stats(true).unwrap(), gpu.take_stats(true).unwrap());
    assert_eq!(a.len(), 4);
    for (s, (x, y)) in a.iter().zip(&b).enumerate() {
        let rel = (x.loss - y.loss).abs() / x.loss.abs();
        assert!(rel < 1e-3, "step {s}: cpu {} gpu {}", x.loss, y.loss);
    }
    // And predict's point values (expected values) agree too.
    let batch = Batch {
        starts: vec![5, 300],
        carry: vec![false; 2],
    };
    let (mut p, mut q) = (Vec::new(), Vec::new());
    cpu.predict(&batch, 9, &mut p).unwrap();
    gpu.predict(&batch, 9, &mut q).unwrap();
    assert_eq!(p.len(), 18);
    for (x, y) in p.iter().zip(&q) {
        assert!((x - y).abs() <= 1e-3 * x.abs().max(1.0), "{x} vs {y}");
    }
}

#[test]
fn free_running_matches_the_cpu() {
    let Some(g) = gpu() else {
        return;
    };
    for output in [Output::Mse, Output::Mulaw { scale: 0.5 }] {
        let cfg = model(6, 2, output);
        let device = g.clone();
        let (mut cpu, mut gpu) = engines(&cfg, device, 3);
        let signal = noise(200 * 2, 5, 1.0);
        cpu.set_signal(&signal).unwrap();
        gpu.set_signal(&signal).unwrap();
        let batch = Batch {
            starts: vec![1; 3],
            carry: vec![false; 3],
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        cpu.predict(&batch, 40, &mut a).unwrap();
        gpu.predict(&batch, 40, &mut b).unwrap();
        let started = Instant::now();
        let steps = 30;
        let window = signal[..3 * 2 * 2].to_vec();
        let what = format!("{output:?}");
        assert_free_run_alike(
            &mut cpu,
            &mut gpu,
            window,
            steps,
            3 * cfg.outputs(),
            1e-4,
            &what,
        );
        eprintln!(
            "{output:?}: {:.0} µs per free step (CPU and GPU together)",
            started.elapsed().as_secs_f64() * 1e6 / steps as f64
        );
    }
}
