//! The GPU twins of the location–scale heads (`laplace`, `logistic`) and of
//! the loss burn-in against the CPU: the kernels of shaders/law_nll.wgsl on
//! their own under both laws (random heads
//! over every regime of bin width against scale, odd shapes, one δ for all
//! and one per target, with and without a burn-in mask), the mse and μ-law
//! losses under a burn-in mask, and whole training runs, predictions and
//! free steps of the engine.
//!
//! They need a GPU adapter (lavapipe will do); without one they print why
//! and pass, unless WAVELSTM_REQUIRE_GPU=1, where they fail.

mod common;
use common::gpu::{assert_free_run_alike, gpu};
use common::max_abs_diff;

use wavelstm::cpu::engine::CpuEngine;
use wavelstm::cpu::law_nll::{law_nll_loss, location, Delta};
use wavelstm::cpu::mulaw::softmax_xent_loss_masked;
use wavelstm::cpu::network::{mse_loss_masked, BurnIn};
use wavelstm::dataset::Batch;
use wavelstm::engine::{Engine, StepStats};
use wavelstm::gpu::context::Gpu;
use wavelstm::gpu::engine::{GpuEngine, PathChoice};
use wavelstm::gpu::ops::law_nll::LawAt;
use wavelstm::gpu::program::{stats, LossMask, Path, Program};
use wavelstm::gpu::workbench::{Buf, Workbench};
use wavelstm::law::Law;
use wavelstm::model::{init_params, ModelConfig, Output};
use wavelstm::mulaw::CLASSES;
use wavelstm::optim::AdamConfig;
use wavelstm::preset::Defaults;
use wavelstm::rng::SplitMix64;

/// Heads `[R, 2]`, targets and bin widths over the regimes: bins from 1e-5
/// to 30 scales wide, targets inside their bin, near it, and far away.
fn regimes(n: usize, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = SplitMix64::new(seed);
    let (mut head, mut targets, mut deltas) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let mu = rng.uniform(-3.0, 3.0);
        let s = rng.uniform(-7.0, 2.0);
        let b = f64::exp(s);
        let delta = b * 10f64.powf(rng.uniform(-5.0, 1.5));
        let x = match i % 3 {
            0 => mu + rng.uniform(-0.5, 0.5) * delta,
            1 => mu + rng.uniform(-2.0, 2.0) * (delta + b),
            _ => mu + rng.uniform(-30.0, 30.0) * b,
        };
        head.extend([mu as f32, s as f32]);
        targets.push(x as f32);
        deltas.push(delta as f32);
    }
    (head, targets, deltas)
}

fn lanes_bits(carry: &[bool]) -> Vec<u32> {
    let mut v = vec![0u32; carry.len()];
    v.extend(carry.iter().map(|&c| u32::from(c)));
    v
}

fn rel(a: f32, b: f64, floor: f64) -> f64 {
    (f64::from(a) - b).abs() / b.abs().max(floor)
}

#[test]
fn law_kernels_match_the_cpu() {
    let Some(g) = gpu() else {
        return;
    };
    let mut wb = Workbench::new(g).unwrap();
    // (T, B, C, burn-in)
    for (i, (t, b, c, burn)) in [
        (1, 1, 1, 0),
        (7, 1, 1, 0),
        (11, 3, 1, 4),
        (43, 7, 1, 0),
        (25, 4, 2, 9),
    ]
    .into_iter()
    .enumerate()
    {
        let rows = t * b * c;
        let (head, targets, deltas) = regimes(rows, 40 + i as u64);
        let carry: Vec<bool> = (0..b).map(|lane| lane % 3 == 1).collect();
        wb.set_bits(Buf::Lanes, &lanes_bits(&carry));
        for (law, per_target) in Law::ALL.into_iter().flat_map(|l| [(l, false), (l, true)]) {
            // In `acts`: head, targets, deltas, dhead, per-row losses, locations.
            let (t_at, dl_at) = (2 * rows, 3 * rows);
            let (d_at, r_at, l_at) = (4 * rows, 6 * rows, 7 * rows);
            let mut acts = head.clone();
            acts.extend(&targets);
            acts.extend(&deltas);
            acts.resize(8 * rows, f32::NAN);
            wb.set(Buf::Acts, &acts);
            wb.set(Buf::Stats, &vec![0.0; stats::len(1)]);
            let uniform = 3e-4f32;
            let mut p = Program::default();
            let at = LawAt {
                head: 0,
                targets: t_at,
                dhead: d_at,
                per_row: r_at,
                delta_at: per_target.then_some(dl_at),
            };
            let mask = LossMask {
                channels: c,
                b,
                burn_in: burn,
            };
            p.law_nll(law, rows, at, uniform, mask);
            p.location_rows(rows, 0, l_at);
            wb.run(&p).unwrap();
            let loss = wb.read(Buf::Stats, stats::LOSS, 1).unwrap()[0];
            let grad = wb.read(Buf::Acts, d_at, 2 * rows).unwrap();
            let locs = wb.read(Buf::Acts, l_at, rows).unwrap();
            // The CPU in f64 on the same f32 inputs.
            let f64s = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
            let (h64, t64, d64) = (f64s(&head), f64s(&targets), f64s(&deltas));
            let delta = if per_target {
                Delta::PerTarget(&d64[..])
            } else {
                Delta::Uniform(f64::from(uniform))
            };
            let burn_in = BurnIn {
                steps: burn,
                carry: &carry,
            };
            let (mut d, mut scratch) = (Vec::new(), Vec::new());
            let want = law_nll_loss(law, &h64, &t64, delta, c, burn_in, &mut d, &mut scratch);
            let what = format!("{law:?} T {t} B {b} C {c} burn-in {burn} per-target {per_target}");
            assert!(rel(loss, want, 1.0) < 2e-5, "{what}: loss {loss} vs {want}");
            // Each gradient against the largest in its kind (∂μ up to 1/b).
            let worst_mu = d.iter().step_by(2).fold(0.0f64, |m, v| m.max(v.abs()));
            let worst_s = d
                .iter()
                .skip(1)
                .step_by(2)
                .fold(0.0f64, |m, v| m.max(v.abs()));
            for (k, (&a, &w)) in grad.iter().zip(&d).enumerate() {
                let scale = if k % 2 == 0 { worst_mu } else { worst_s };
                // Relative to itself where it is large, else to the largest.
                let err = (f64::from(a) - w).abs() / w.abs().max(1e-3 * scale);
                assert!(err < 1e-3, "{what}: gradient {k}: {a} vs {w}");
                if w == 0.0 {
                    assert_eq!(a, 0.0, "{what}: a masked or clamped gradient");
                }
            }
            let mut want_locs = Vec::new();
            location(&head, &mut want_locs);
            assert_eq!(locs, want_locs, "{what}: locations");
        }
    }
}

#[test]
fn mse_and_mulaw_losses_burn_in_like_the_cpu() {
    let Some(g) = gpu() else {
        return;
    };
    let mut wb = Workbench::new(g).unwrap();
    let mut rng = SplitMix64::new(9);
    for (t, b, c, burn) in [(5, 3, 1, 2), (9, 4, 2, 3), (3, 2, 1, 0)] {
        let carry: Vec<bool> = (0..b).map(|lane| lane == 1).collect();
        let burn_in = BurnIn {
            steps: burn,
            carry: &carry,
        };
        let mask = LossMask {
            channels: c,
            b,
            burn_in: burn,
        };
        let n = t * b * c;
        let mut randn = |k: usize| (0..k).map(|_| rng.normal() as f32).collect::<Vec<f32>>();
        // mse: pred, targets, dpred.
        let (pred, target) = (randn(n), randn(n));
        let mut acts = pred.clone();
        acts.extend(&target);
        acts.resize(3 * n, f32::NAN);
        wb.set(Buf::Acts, &acts);
        wb.set(Buf::Stats, &vec![0.0; stats::len(1)]);
        wb.set_bits(Buf::Lanes, &lanes_bits(&carry));
        let mut p = Program::default();
        p.mse_loss(n, 0, n, 2 * n, mask);
        wb.run(&p).unwrap();
        let mut d = Vec::new();
        let want = mse_loss_masked(&pred, &target, c, burn_in, &mut d);
        let loss = wb.read(Buf::Stats, stats::LOSS, 1).unwrap()[0];
        assert!(rel(loss, want, 1e-6) < 1e-5, "mse {loss} vs {want}");
        let grad = wb.read(Buf::Acts, 2 * n, n).unwrap();
        for (a, w) in grad.iter().zip(&d) {
            assert!(
                (a - w).abs() <= 1e-5 * w.abs().max(1e-3),
                "mse gradient {a} vs {w}"
            );
        }
        // mulaw: logits, targets, dlogits, per-row losses.
        let logits = randn(n * CLASSES);
        let targets = randn(n);
        let m = logits.len();
        let mut acts = logits.clone();
        acts.extend(&targets);
        acts.resize(2 * m + 2 * n, f32::NAN);
        wb.set(Buf::Acts, &acts);
        wb.set(Buf::Stats, &vec![0.0; stats::len(1)]);
        let mut p = Program::default();
        p.softmax_xent(n, 0, m, m + n, 2 * m + n, 0.3, mask);
        wb.run(&p).unwrap();
        let (mut d, mut scratch) = (Vec::new(), Vec::new());
        let want =
            softmax_xent_loss_masked(&logits, &targets, 0.3, c, burn_in, &mut d, &mut scratch);
        let loss = wb.read(Buf::Stats, stats::LOSS, 1).unwrap()[0];
        assert!(rel(loss, want, 1e-6) < 1e-4, "mulaw {loss} vs {want}");
        let grad = wb.read(Buf::Acts, m + n, m).unwrap();
        for (a, w) in grad.iter().zip(&d) {
            assert!(
                (a - w).abs() <= 1e-4 * w.abs().max(1e-4),
                "mulaw gradient {a} vs {w}"
            );
        }
    }
}

fn model(hidden: usize, channels: usize, head: Vec<usize>, output: Output) -> ModelConfig {
    ModelConfig {
        frame: 3,
        hidden,
        layers: 2,
        head,
        output,
        ..Defaults::of(None).model(channels)
    }
}

fn engines(cfg: &ModelConfig, gpu: Gpu, seed: u64, path: Path) -> (CpuEngine, GpuEngine) {
    let params = init_params(cfg, &mut SplitMix64::new(seed));
    let adam = AdamConfig::default();
    (
        CpuEngine::new(cfg.clone(), adam, params.clone()).unwrap(),
        GpuEngine::new(gpu, cfg.clone(), adam, params, PathChoice::Fixed(path), 1).unwrap(),
    )
}

/// The same `steps` training steps of `seq_len` on both engines, with a
/// burn-in of `burn_in`, from three lanes at `starts(step)` of which lane 1
/// carries from step 1 on (it continues where it stopped); then every step's
/// loss within 2e-3 (relative) of the CPU's, every parameter within 1e-3.
/// The CPU's step reports.
fn assert_trained_alike(
    (cpu, gpu): (&mut CpuEngine, &mut GpuEngine),
    burn_in: usize,
    steps: usize,
    seq_len: usize,
    starts: impl Fn(usize) -> Vec<usize>,
    what: &str,
) -> Vec<StepStats> {
    cpu.set_burn_in(burn_in);
    gpu.set_burn_in(burn_in);
    for step in 0..steps {
        let batch = Batch {
            starts: starts(step),
            carry: vec![false, step > 0, false],
        };
        cpu.train_step(&batch, seq_len, 5e-3).unwrap();
        gpu.train_step(&batch, seq_len, 5e-3).unwrap();
    }
    let (a, b) = (cpu.take_stats(true).unwrap(), gpu.take_stats(true).unwrap());
    assert_eq!(a.len(), steps);
    assert_eq!(b.len(), steps);
    for (s, (x, y)) in a.iter().zip(&b).enumerate() {
        let rel = (x.loss - y.loss).abs() / x.loss.abs().max(1e-3);
        assert!(
            rel < 2e-3,
            "{what}: step {s}: cpu {} gpu {}",
            x.loss,
            y.loss
        );
    }
    let (p, q) = (cpu.state().unwrap().params, gpu.state().unwrap().params);
    let worst = max_abs_diff(&p, &q);
    assert!(worst < 1e-3, "{what}: parameters {worst}");
    a
}

/// Training steps with a burn-in (lanes that start afresh and lanes that
/// carry), then predictions with the head's raw output, then free steps:
/// the GPU follows the CPU for the laplace and logistic heads and, with the
/// burn-in, the mse head.
#[test]
fn training_with_burn_in_prediction_and_free_steps_match_the_cpu() {
    let Some(g) = gpu() else {
        return;
    };
    for (output, channels, path) in [
        (Output::Laplace { scale: 0.05 }, 1, Path::Step),
        (Output::Laplace { scale: 0.2 }, 2, Path::Sequence),
        (Output::Logistic { scale: 0.1 }, 1, Path::Sequence),
        (Output::Mse, 2, Path::Step),
    ] {
        let cfg = model(9, channels, vec![5], output);
        let device = g.clone();
        let (mut cpu, mut gpu) = engines(&cfg, device, 4, path);
        let frames = 700;
        let signal: Vec<f32> = (0..frames * channels)
            .map(|i| {
                let n = (i / channels) as f64;
                (2.0 * (n * 0.05 + i as f64 % 2.0).sin() + 0.3 * (n * 0.31).cos()) as f32
            })
            .collect();
        cpu.set_signal(&signal).unwrap();
        gpu.set_signal(&signal).unwrap();
        let what = format!("{output:?} C {channels} {path:?}");
        let starts = |step| vec![2 + 31 * step, 300 + 16 * step, 500];
        assert_trained_alike((&mut cpu, &mut gpu), 5, 5, 16, starts, &what);

        let batch = Batch {
            starts: vec![5, 333],
            carry: vec![false; 2],
        };
        let (mut pa, mut pb, mut ha, mut hb) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        cpu.predict_with_head(&batch, 9, &mut pa, Some(&mut ha))
            .unwrap();
        gpu.predict_with_head(&batch, 9, &mut pb, Some(&mut hb))
            .unwrap();
        assert_eq!(pa.len(), 9 * 2 * channels);
        assert_eq!(ha.len(), 9 * 2 * cfg.outputs());
        for (x, y) in pa.iter().zip(&pb).chain(ha.iter().zip(&hb)) {
            assert!(
                (x - y).abs() <= 1e-3 * x.abs().max(1.0),
                "{what}: {x} vs {y}"
            );
        }
        if output.law().is_some() {
            // The point prediction is the head's location.
            let mut loc = Vec::new();
            location(&ha, &mut loc);
            assert_eq!(loc, pa, "{what}: point = location");
        }
        let window = signal[..2 * 3 * channels].to_vec();
        assert_free_run_alike(
            &mut cpu,
            &mut gpu,
            window,
            10,
            2 * cfg.outputs(),
            1e-3,
            &what,
        );
    }
}

/// The same with a bin width per target (a model over the cascade): both
/// engines gather each target's own width and train alike, and the loss is
/// not the uniform width's.
#[test]
fn training_with_per_target_bin_widths_matches_the_cpu() {
    let Some(g) = gpu() else {
        return;
    };
    for (channels, path, output) in [
        (1, Path::Step, Output::Laplace { scale: 0.1 }),
        (2, Path::Sequence, Output::Laplace { scale: 0.1 }),
        (1, Path::Sequence, Output::Logistic { scale: 0.1 }),
    ] {
        let cfg = model(7, channels, vec![], output);
        let device = g.clone();
        let (mut cpu, mut gpu) = engines(&cfg, device, 6, path);
        let frames = 500;
        let mut rng = SplitMix64::new(8);
        let signal: Vec<f32> = (0..frames * channels)
            .map(|i| ((i as f64 * 0.07).sin() + 0.2 * rng.normal()) as f32)
            .collect();
        let deltas: Vec<f32> = (0..frames * channels)
            .map(|_| 10f64.powf(rng.uniform(-3.5, 0.5)) as f32)
            .collect();
        cpu.set_signals_with_deltas(&signal, None, Some(&deltas))
            .unwrap();
        gpu.set_signals_with_deltas(&signal, None, Some(&deltas))
            .unwrap();
        let what = format!("C {channels} {path:?}");
        let starts = |step| vec![2 + 40 * step, 250 + 13 * step, 480];
        let a = assert_trained_alike((&mut cpu, &mut gpu), 3, 4, 13, starts, &what);
        // The widths matter: one width for all trains to another loss.
        let (mut u, _) = engines(&cfg, g.clone(), 6, path);
        u.set_signal(&signal).unwrap();
        u.set_burn_in(3);
        let batch = Batch {
            starts: vec![2, 250, 480],
            carry: vec![false; 3],
        };
        u.train_step(&batch, 13, 5e-3).unwrap();
        let uniform = u.take_stats(true).unwrap()[0].loss;
        assert!(
            (uniform - a[0].loss).abs() > 1e-2,
            "{what}: {uniform} vs {}",
            a[0].loss
        );
    }
}
