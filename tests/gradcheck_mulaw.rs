//! The `mulaw` head's gradients through the whole CPU network against
//! central finite differences in f64, the method of tests/gradcheck.rs
//! (fourth-order central difference, ε = 1e-3, relative error below 1e-6
//! with a 1e-6 floor, points within 2ε of a kink skipped, at most 2%),
//! with the softmax cross-entropy over 256 μ-law classes as the loss.

use wavelstm::cpu::mulaw::softmax_xent_loss;
use wavelstm::cpu::network::{backward, forward, Workspace};
use wavelstm::model::{Activation, CellActivation, GateActivation, ModelConfig, Output};
use wavelstm::rng::SplitMix64;

const EPS: f64 = 1e-3;
const FLOOR: f64 = 1e-6;
/// Audio units per model unit of the targets.
const SCALE: f32 = 0.3;

struct Case {
    cfg: ModelConfig,
    t: usize,
    b: usize,
}

fn cfg(layers: usize, frame: usize, hidden: usize, channels: usize, head: &[usize]) -> ModelConfig {
    ModelConfig {
        channels,
        frame,
        hidden,
        layers,
        head: head.to_vec(),
        cell_activation: CellActivation::Tanh,
        gate_activation: GateActivation::Sigmoid,
        lstm_output_activation: Activation::Linear,
        output_activation: Activation::Linear,
        leaky_slope: 0.3,
        output: Output::Mulaw { scale: SCALE },
    }
}

fn rel_err(a: f64, n: f64) -> f64 {
    (a - n).abs() / a.abs().max(n.abs()).max(FLOOR)
}

/// Worst relative error per parameter group (and h0, c0), every element checked.
#[allow(clippy::needless_range_loop)]
fn check(case: &Case, seed: u64, corrupt: Option<usize>) -> Vec<(String, f64)> {
    let c = &case.cfg;
    c.validate().unwrap();
    let layout = c.layout();
    let mut rng = SplitMix64::new(seed);
    let mut params: Vec<f64> = (0..layout.total).map(|_| rng.uniform(-0.8, 0.8)).collect();
    let x: Vec<f64> = (0..case.t * case.b * c.input_size())
        .map(|_| rng.normal())
        .collect();
    // Targets spread over the whole μ-law range in audio units.
    let target: Vec<f64> = (0..case.t * case.b * c.channels)
        .map(|_| rng.uniform(-1.0, 1.0) / f64::from(SCALE))
        .collect();
    let n_state = c.layers * case.b * c.hidden;
    let mut h0: Vec<f64> = (0..n_state).map(|_| rng.uniform(-0.9, 0.9)).collect();
    let mut c0: Vec<f64> = (0..n_state).map(|_| rng.normal()).collect();
    let scale = f64::from(SCALE);
    let mut ws = Workspace::default();
    let mut scratch = Vec::new();
    let mut loss = |params: &[f64], h0: &[f64], c0: &[f64], ws: &mut Workspace<f64>| {
        forward(c, params, case.t, case.b, &x, h0, c0, ws);
        let mut d = Vec::new();
        softmax_xent_loss(ws.prediction(), &target, scale, &mut d, &mut scratch)
    };
    forward(c, &params, case.t, case.b, &x, &h0, &c0, &mut ws);
    let mut dlogits = Vec::new();
    softmax_xent_loss(
        ws.prediction(),
        &target,
        scale,
        &mut dlogits,
        &mut Vec::new(),
    );
    let mut grads = vec![0.0; layout.total];
    let (mut dh0, mut dc0) = (vec![f64::NAN; n_state], vec![f64::NAN; n_state]);
    backward(
        c, &params, &x, &dlogits, &mut ws, &mut grads, &mut dh0, &mut dc0,
    );
    if let Some(i) = corrupt {
        grads[i] *= 1.0 + 1e-5;
    }
    // `which`: 0 parameters, 1 h0, 2 c0.
    let mut fd = |which: usize, i: usize, p: &mut Vec<f64>, h: &mut Vec<f64>, cc: &mut Vec<f64>| {
        let orig = match which {
            0 => p[i],
            1 => h[i],
            _ => cc[i],
        };
        let mut at = |d: f64, p: &mut Vec<f64>, h: &mut Vec<f64>, cc: &mut Vec<f64>| {
            match which {
                0 => p[i] = orig + d,
                1 => h[i] = orig + d,
                _ => cc[i] = orig + d,
            }
            loss(p, h, cc, &mut ws)
        };
        let mut central = |eps: f64, p: &mut Vec<f64>, h: &mut Vec<f64>, cc: &mut Vec<f64>| {
            (8.0 * (at(eps, p, h, cc) - at(-eps, p, h, cc))
                - (at(2.0 * eps, p, h, cc) - at(-2.0 * eps, p, h, cc)))
                / (12.0 * eps)
        };
        let n = central(EPS, p, h, cc);
        let n_small = central(EPS / 4.0, p, h, cc);
        match which {
            0 => p[i] = orig,
            1 => h[i] = orig,
            _ => cc[i] = orig,
        }
        let smooth = (n - n_small).abs() <= 1e-6 * n.abs().max(n_small.abs()).max(FLOOR);
        smooth.then_some(n)
    };
    let (mut kinks, mut total) = (0, 0);
    let mut worst = Vec::new();
    for e in &layout.entries {
        let mut w: f64 = 0.0;
        for i in e.offset..e.offset + e.len {
            total += 1;
            match fd(0, i, &mut params, &mut h0, &mut c0) {
                Some(n) => w = w.max(rel_err(grads[i], n)),
                None => kinks += 1,
            }
        }
        worst.push((e.name.clone(), w));
    }
    for (which, name, analytic) in [(1, "h0", &dh0), (2, "c0", &dc0)] {
        let mut w: f64 = 0.0;
        for (i, &a) in analytic.iter().enumerate() {
            total += 1;
            match fd(which, i, &mut params, &mut h0, &mut c0) {
                Some(n) => w = w.max(rel_err(a, n)),
                None => kinks += 1,
            }
        }
        worst.push((name.to_string(), w));
    }
    assert!(
        kinks * 50 <= total,
        "{kinks} of {total} points sit on a kink"
    );
    worst
}

fn assert_gradients(case: Case, seed: u64) {
    let worst = check(&case, seed, None);
    for (name, err) in &worst {
        assert!(*err < 1e-6, "{name}: worst relative error {err:.3e}");
    }
    assert_eq!(worst.len(), case.cfg.layout().entries.len() + 2);
}

#[test]
fn mulaw_head_linear() {
    assert_gradients(
        Case {
            cfg: cfg(1, 2, 4, 1, &[]),
            t: 3,
            b: 2,
        },
        11,
    );
}

#[test]
fn mulaw_head_two_layers_stereo_with_hidden_head() {
    let mut c = cfg(2, 1, 3, 2, &[5]);
    c.lstm_output_activation = Activation::LeakyRelu;
    assert_gradients(Case { cfg: c, t: 4, b: 2 }, 12);
}

/// The checker can fail: one gradient off by a relative 1e-5 is caught.
#[test]
fn checker_catches_a_wrong_mulaw_gradient() {
    let case = Case {
        cfg: cfg(1, 1, 3, 1, &[]),
        t: 2,
        b: 2,
    };
    let entry = case.cfg.layout().get("head.0.weight").unwrap().clone();
    let bad = check(&case, 13, Some(entry.offset + 100));
    let err = bad.iter().find(|(n, _)| *n == entry.name).unwrap().1;
    assert!(err > 1e-6, "corrupted gradient not caught ({err:e})");
}
