//! Adam and gradient clipping against hand-computed references.

use wavelstm::cpu::adam::{adam_step, clip_global_norm, global_norm};
use wavelstm::optim::AdamConfig;

/// Algorithm 1 of Kingma & Ba (with AdamW's decoupled decay first), in f64,
/// one scalar at a time.
fn reference(cfg: &AdamConfig, steps: &[Vec<f64>], p0: &[f64]) -> Vec<f64> {
    let mut p = p0.to_vec();
    let mut m = vec![0.0; p.len()];
    let mut v = vec![0.0; p.len()];
    for (t, g) in steps.iter().enumerate() {
        let t = (t + 1) as i32;
        for i in 0..p.len() {
            m[i] = cfg.beta1 * m[i] + (1.0 - cfg.beta1) * g[i];
            v[i] = cfg.beta2 * v[i] + (1.0 - cfg.beta2) * g[i] * g[i];
            let m_hat = m[i] / (1.0 - cfg.beta1.powi(t));
            let v_hat = v[i] / (1.0 - cfg.beta2.powi(t));
            p[i] -= cfg.lr * cfg.weight_decay * p[i];
            p[i] -= cfg.lr * m_hat / (v_hat.sqrt() + cfg.eps);
        }
    }
    p
}

fn run(cfg: &AdamConfig, steps: &[Vec<f64>], p0: &[f64]) -> Vec<f32> {
    let mut p: Vec<f32> = p0.iter().map(|&x| x as f32).collect();
    let mut m = vec![0.0f32; p.len()];
    let mut v = vec![0.0f32; p.len()];
    for (t, g) in steps.iter().enumerate() {
        let g: Vec<f32> = g.iter().map(|&x| x as f32).collect();
        adam_step(cfg, t as u64 + 1, &mut p, &g, &mut m, &mut v);
    }
    p
}

fn grads(n: usize, steps: usize) -> Vec<Vec<f64>> {
    // Values chosen so g ranges over several orders of magnitude and signs.
    (0..steps)
        .map(|s| {
            (0..n)
                .map(|i| ((i * 7 + s * 3) as f64 * 0.37).sin() * 10f64.powi(i as i32 % 5 - 3))
                .collect()
        })
        .collect()
}

#[test]
fn adam_matches_the_paper_over_several_steps() {
    let n = 40_000; // more than one parallel chunk
    let p0: Vec<f64> = (0..n).map(|i| (i as f64 * 0.01).cos()).collect();
    for cfg in [
        AdamConfig::default(),
        AdamConfig {
            lr: 3e-2,
            beta1: 0.8,
            beta2: 0.99,
            eps: 1e-6,
            weight_decay: 0.1,
            clip: 0.0,
        },
    ] {
        let steps = grads(n, 7);
        let want = reference(&cfg, &steps, &p0);
        let got = run(&cfg, &steps, &p0);
        for i in 0..n {
            // f32 arithmetic on values of order 1: a few ulps per step.
            assert!(
                (got[i] as f64 - want[i]).abs() <= 1e-6 * (1.0 + want[i].abs()),
                "element {i}: {} vs {}",
                got[i],
                want[i]
            );
        }
        // The first step moves every parameter with a nonzero gradient by about lr.
        let one = run(&cfg, &steps[..1], &p0);
        let moved = (p0[1] - one[1] as f64).abs();
        assert!(
            (moved - cfg.lr * (1.0 + 0.0)).abs() < 0.2 * cfg.lr + cfg.lr * cfg.weight_decay,
            "first step moved {moved}"
        );
    }
}

#[test]
fn adam_reference_differs_when_bias_correction_is_dropped() {
    // Guard that the comparison above can fail: without bias correction the
    // first step is (1-β1)/√(1-β2) ≈ 3.16× smaller in magnitude.
    let cfg = AdamConfig::default();
    let g = vec![vec![0.5f64]];
    let want = reference(&cfg, &g, &[0.0]);
    let no_bc =
        -cfg.lr * ((1.0 - cfg.beta1) * 0.5) / (((1.0 - cfg.beta2) * 0.25f64).sqrt() + cfg.eps);
    assert!((want[0] - no_bc).abs() > 1e-4);
    assert!((run(&cfg, &g, &[0.0])[0] as f64 - want[0]).abs() < 1e-7);
}

#[test]
fn global_norm_and_clipping() {
    let g: Vec<f32> = (0..50_000)
        .map(|i| ((i % 13) as f32 - 6.0) * 0.01)
        .collect();
    let want = g
        .iter()
        .map(|&x| (x as f64) * (x as f64))
        .sum::<f64>()
        .sqrt();
    assert!((global_norm(&g) - want).abs() < 1e-9 * want);

    // Clipping to half the norm halves every gradient and reports the old norm.
    let mut c = g.clone();
    let before = clip_global_norm(&mut c, want / 2.0);
    assert!((before - want).abs() < 1e-9 * want);
    for (a, b) in c.iter().zip(&g) {
        assert!((a - b / 2.0).abs() <= 1e-6 * b.abs().max(1e-6));
    }
    assert!((global_norm(&c) - want / 2.0).abs() < 1e-6 * want);

    // Under the threshold, or with clipping off (0), nothing changes.
    let mut d = g.clone();
    clip_global_norm(&mut d, want * 2.0);
    assert_eq!(d, g);
    clip_global_norm(&mut d, 0.0);
    assert_eq!(d, g);
}

#[test]
fn clipping_then_adam_over_steps_matches_reference() {
    let cfg = AdamConfig {
        clip: 0.05,
        ..AdamConfig::default()
    };
    let n = 1000;
    let steps = grads(n, 5);
    // Reference: clip each step's gradient in f64, then Adam.
    let clipped: Vec<Vec<f64>> = steps
        .iter()
        .map(|g| {
            let norm = g.iter().map(|x| x * x).sum::<f64>().sqrt();
            let s = if norm > cfg.clip {
                cfg.clip / norm
            } else {
                1.0
            };
            g.iter().map(|x| x * s).collect()
        })
        .collect();
    let p0 = vec![0.25; n];
    let want = reference(&cfg, &clipped, &p0);
    let mut p: Vec<f32> = p0.iter().map(|&x| x as f32).collect();
    let (mut m, mut v) = (vec![0.0; n], vec![0.0; n]);
    for (t, g) in steps.iter().enumerate() {
        let mut g: Vec<f32> = g.iter().map(|&x| x as f32).collect();
        clip_global_norm(&mut g, cfg.clip);
        adam_step(&cfg, t as u64 + 1, &mut p, &g, &mut m, &mut v);
    }
    for i in 0..n {
        assert!((p[i] as f64 - want[i]).abs() < 1e-6, "element {i}");
    }
}

#[test]
fn cosine_schedule_runs_from_lr_to_its_floor() {
    use wavelstm::run_config::{LrSchedule, RunConfig, COSINE_FLOOR};
    let cfg: RunConfig = serde_json::from_value(serde_json::json!({
        "model": {"channels": 1, "frame": 1, "hidden": 2, "layers": 1, "head": [],
                  "cell_activation": "tanh", "gate_activation": "sigmoid",
                  "lstm_output_activation": "linear", "output_activation": "linear", "leaky_slope": 0.3},
        "data": {"frame": 1, "seq_len": 4, "batch": 1, "valid_fraction": 0.1, "stateful": false, "shuffle": true},
        "adam": {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0, "clip": 0.0},
        "seed": 0, "epochs": 1, "sample_rate": 8000, "channel_mode": "mono", "scale": 1.0, "songs": [],
        "lr_schedule": "cosine", "schedule_steps": 100
    }))
    .unwrap();
    assert_eq!(cfg.lr_at(0), 0.01);
    assert!((cfg.lr_at(50) - 0.01 * (1.0 + COSINE_FLOOR) / 2.0).abs() < 1e-12);
    assert!((cfg.lr_at(100) - 0.01 * COSINE_FLOOR).abs() < 1e-12);
    assert_eq!(cfg.lr_at(100), cfg.lr_at(1000), "flat after the plan");
    assert!(
        (1..100).all(|t| cfg.lr_at(t) < cfg.lr_at(t - 1)),
        "strictly decreasing"
    );
    let constant = RunConfig {
        lr_schedule: LrSchedule::Constant,
        ..cfg
    };
    assert_eq!(constant.lr_at(77), 0.01);
}

/// Adam's update is compiled for each instruction set; no operation in it
/// is fused, so every variant must give the same bits, on a buffer long
/// enough to be shared out in parallel chunks and with an odd tail.
#[test]
fn every_instruction_set_gives_the_same_bits() {
    use wavelstm::cpu::adam::adam_step_on;
    use wavelstm::cpu::isa::Isa;
    let n = 70_001;
    let steps = grads(n, 4);
    let cfg = AdamConfig {
        weight_decay: 0.01,
        ..AdamConfig::default()
    };
    let run_on = |isa: Isa| {
        let mut p: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
        for (t, g) in steps.iter().enumerate() {
            let g: Vec<f32> = g.iter().map(|&x| x as f32).collect();
            adam_step_on(isa, &cfg, t as u64 + 1, &mut p, &g, &mut m, &mut v);
        }
        (p, m, v)
    };
    let isas = Isa::all_supported();
    let first = run_on(isas[0]);
    for &isa in &isas[1..] {
        assert!(run_on(isa) == first, "{isa:?} differs from {:?}", isas[0]);
    }
}

/// PyTorch's formula for Adam's moments (`torch.optim.Adam`: `1 − β` taken in
/// double), in f64 from the f32 gradients the engine sees; also the moment
/// `m` would have with every gradient's magnitude, the scale its rounding
/// error is measured against (`m` itself may cancel to near zero).
fn torch_moments(cfg: &AdamConfig, steps: &[Vec<f32>]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let n = steps[0].len();
    let (mut m, mut m_abs, mut v) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    for g in steps {
        for i in 0..n {
            let g = f64::from(g[i]);
            m[i] = cfg.beta1 * m[i] + (1.0 - cfg.beta1) * g;
            m_abs[i] = cfg.beta1 * m_abs[i] + (1.0 - cfg.beta1) * g.abs();
            v[i] = cfg.beta2 * v[i] + (1.0 - cfg.beta2) * g * g;
        }
    }
    (m, m_abs, v)
}

/// The moments after one and after ten steps agree with PyTorch's formula to
/// f32 rounding. Rounding `β2` to f32 before `1 − β2` (as this optimizer once
/// did) leaves every `v` 1.3e-5 below it, forty times this tolerance.
#[test]
fn moments_match_pytorch_formula_to_f32_rounding() {
    let n = 70_001; // parallel chunks and an odd tail
    for cfg in [
        AdamConfig::default(),
        // β1 < 0.5: lerp takes its other form.
        AdamConfig {
            beta1: 0.3,
            beta2: 0.99,
            ..AdamConfig::default()
        },
    ] {
        let steps: Vec<Vec<f32>> = grads(n, 10)
            .into_iter()
            .map(|g| g.into_iter().map(|x| x as f32).collect())
            .collect();
        for (t, tol) in [(1usize, 3e-7), (10, 1.5e-6)] {
            let (m_ref, m_abs, v_ref) = torch_moments(&cfg, &steps[..t]);
            let mut p = vec![0.5f32; n];
            let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
            for (k, g) in steps[..t].iter().enumerate() {
                adam_step(&cfg, k as u64 + 1, &mut p, g, &mut m, &mut v);
            }
            let (mut worst_m, mut worst_v) = (0.0f64, 0.0f64);
            for i in 0..n {
                if v_ref[i] == 0.0 {
                    assert_eq!((m[i], v[i]), (0.0, 0.0), "element {i}");
                    continue;
                }
                worst_m = worst_m.max((f64::from(m[i]) - m_ref[i]).abs() / m_abs[i]);
                worst_v = worst_v.max((f64::from(v[i]) - v_ref[i]).abs() / v_ref[i]);
            }
            assert!(
                worst_m <= tol && worst_v <= tol,
                "β = ({}, {}) after {t} steps: m off by {worst_m:e}, v by {worst_v:e} (relative), tolerance {tol:e}",
                cfg.beta1,
                cfg.beta2
            );
        }
    }
}

/// [`adam_step_halves`] over `ranges` of an `n`-long buffer, run one half
/// after the other and both at once, for three steps: asserts it gives the
/// bits of one [`adam_step`] per range; returns how many parameters moved.
fn halves_against_one_step_per_range(n: usize, ranges: &[std::ops::Range<usize>]) -> usize {
    use wavelstm::cpu::adam::adam_step_halves;
    let cfg = AdamConfig {
        weight_decay: 0.01,
        ..AdamConfig::default()
    };
    let start = || {
        let p: Vec<f32> = (0..n).map(|i| (i as f32 * 0.61).cos()).collect();
        (p, vec![0.0f32; n], vec![0.0f32; n])
    };
    let (mut want_p, mut want_m, mut want_v) = start();
    let (mut seq_p, mut seq_m, mut seq_v) = start();
    let (mut par_p, mut par_m, mut par_v) = start();
    for (t, g) in grads(n, 3).iter().enumerate() {
        let g: Vec<f32> = g.iter().map(|&x| x as f32).collect();
        let t = t as u64 + 1;
        for r in ranges {
            let r = r.clone();
            adam_step(
                &cfg,
                t,
                &mut want_p[r.clone()],
                &g[r.clone()],
                &mut want_m[r.clone()],
                &mut want_v[r],
            );
        }
        let one_by_one = |job: &(dyn Fn(usize) + Sync)| {
            job(1);
            job(0);
        };
        adam_step_halves(
            &cfg, t, ranges, &mut seq_p, &g, &mut seq_m, &mut seq_v, one_by_one,
        );
        let at_once = |job: &(dyn Fn(usize) + Sync)| {
            std::thread::scope(|s| {
                s.spawn(|| job(1));
                job(0);
            })
        };
        adam_step_halves(
            &cfg, t, ranges, &mut par_p, &g, &mut par_m, &mut par_v, at_once,
        );
    }
    for (name, p, m, v) in [
        ("one half after the other", &seq_p, &seq_m, &seq_v),
        ("both halves at once", &par_p, &par_m, &par_v),
    ] {
        let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(
            same(p, &want_p) && same(m, &want_m) && same(v, &want_v),
            "{ranges:?}, {name}: differs from one step per range"
        );
    }
    want_p
        .iter()
        .zip(start().0)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count()
}

/// The optimizer of the window step cuts the elements of its ranges in two
/// halves for two threads: over ranges of odd lengths with gaps between
/// them (where the cut falls inside a range, at a range's end, or leaves a
/// half empty), run one half after the other or both at once, it must give
/// the bits of one Adam step per range and leave the gaps alone.
#[test]
fn adam_in_two_halves_gives_the_bits_of_one_step_per_range() {
    use std::ops::Range;
    let n = 1201;
    let (whole, one) = (0..n, 5..6);
    let sets: [&[Range<usize>]; 5] = [
        std::slice::from_ref(&whole),
        &[3..40, 41..41, 57..1000, 1001..1199],
        &[0..600, 600..1201],
        std::slice::from_ref(&one),
        &[],
    ];
    for ranges in sets {
        let moved = halves_against_one_step_per_range(n, ranges);
        let len: usize = ranges.iter().map(Range::len).sum();
        assert_eq!(moved, len, "{ranges:?}: every parameter in a range moves");
    }
}

/// A range long enough for the pool (which `adam_step_halves` hands it to,
/// as `adam_step` would): the same bits as one step over it.
#[test]
fn adam_in_two_halves_gives_the_same_bits_on_a_range_for_the_pool() {
    let n = 70_001;
    let all_but_one = 1..n;
    let moved = halves_against_one_step_per_range(n, std::slice::from_ref(&all_but_one));
    assert!(moved > n * 99 / 100, "only {moved} of {n} parameters moved");
}
