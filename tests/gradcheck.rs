//! Every gradient of the CPU engine against central finite differences in f64.
//!
//! For each parameter (and each element of the initial states h0, c0) the
//! analytic gradient `a` from `network::backward` is compared with
//! the fourth-order central difference
//! `n = (8(L(θ+ε) − L(θ−ε)) − (L(θ+2ε) − L(θ−2ε))) / 12ε`, ε = 1e-3 (its
//! truncation error is O(ε⁴), so ε can stay large enough that rounding in the
//! loss, ~1e-15/ε, stays near 1e-12). The relative error
//! `|a − n| / max(|a|, |n|, 1e-6)` must stay below 1e-6 everywhere. The floor
//! only matters for gradients that are themselves about zero (below 1e-6),
//! where it turns the check into an absolute one at 1e-12.
//!
//! LeakyReLU and the hard sigmoid have kinks, where no finite difference is
//! right. Each point is also estimated with ε/4; where the two estimates
//! disagree (a kink within 2ε) the point is not compared, and at most 2% of
//! the points of a case may be skipped that way.
//!
//! The loss is the model's own: mean squared error for the `mse` head,
//! softmax cross-entropy over the 256 μ-law classes for the `mulaw` head,
//! the discretized Laplace or logistic NLL for the `laplace` and `logistic`
//! heads (with one bin width
//! per target, some bins far from the location and some holding it), each
//! with or without a loss burn-in.

use wavelstm::cpu::law_nll::{law_nll_loss, Delta};
use wavelstm::cpu::mulaw::softmax_xent_loss_masked;
use wavelstm::cpu::network::{backward, forward, mse_loss_masked, BurnIn, Workspace};
use wavelstm::model::{Activation, CellActivation, GateActivation, ModelConfig, Output};
use wavelstm::preset::Defaults;
use wavelstm::rng::SplitMix64;

struct Case {
    cfg: ModelConfig,
    t: usize,
    b: usize,
    /// Random initial states (a stateful chunk) or zeros (a fresh sequence).
    stateful: bool,
    /// Loss burn-in timesteps of the lanes that start afresh (the even
    /// lanes; odd lanes carry their state in).
    burn_in: usize,
}

impl Case {
    /// `b` lanes of `t` timesteps of `cfg` from random initial states
    /// (`stateful`) or zeros, with no loss burn-in.
    fn new(cfg: ModelConfig, t: usize, b: usize, stateful: bool) -> Case {
        Case {
            cfg,
            t,
            b,
            stateful,
            burn_in: 0,
        }
    }

    fn carry(&self) -> Vec<bool> {
        (0..self.b).map(|lane| lane % 2 == 1).collect()
    }
}

fn cfg(layers: usize, frame: usize, hidden: usize, channels: usize, head: &[usize]) -> ModelConfig {
    ModelConfig {
        frame,
        hidden,
        layers,
        head: head.to_vec(),
        ..Defaults::of(None).model(channels)
    }
}

struct Problem {
    params: Vec<f64>,
    x: Vec<f64>,
    target: Vec<f64>,
    h0: Vec<f64>,
    c0: Vec<f64>,
    /// A location–scale head's bin width per target.
    delta: Vec<f64>,
}

/// The head's loss of the predictions `pred` and its gradient into `d`.
fn head_loss(case: &Case, p: &Problem, pred: &[f64], d: &mut Vec<f64>) -> f64 {
    let carry = case.carry();
    let burn_in = BurnIn {
        steps: case.burn_in,
        carry: &carry,
    };
    let (cfg, target) = (&case.cfg, &p.target);
    let c = cfg.channels;
    match cfg.output {
        Output::Mse => mse_loss_masked(pred, target, c, burn_in, d),
        Output::Mulaw { scale } => softmax_xent_loss_masked(
            pred,
            target,
            f64::from(scale),
            c,
            burn_in,
            d,
            &mut Vec::new(),
        ),
        Output::Laplace { .. } | Output::Logistic { .. } => law_nll_loss(
            cfg.output.law().expect("a location–scale head").0,
            pred,
            target,
            Delta::PerTarget(&p.delta),
            c,
            burn_in,
            d,
            &mut Vec::new(),
        ),
    }
}

fn loss(case: &Case, p: &Problem, ws: &mut Workspace<f64>) -> f64 {
    forward(&case.cfg, &p.params, case.t, case.b, &p.x, &p.h0, &p.c0, ws);
    let mut d = Vec::new();
    head_loss(case, p, ws.prediction(), &mut d)
}

/// Step of the finite differences.
const EPS: f64 = 1e-3;
/// Gradients smaller than this are compared absolutely (see the module doc).
const FLOOR: f64 = 1e-6;

fn rel_err(a: f64, n: f64) -> f64 {
    (a - n).abs() / a.abs().max(n.abs()).max(FLOOR)
}

/// Returns the worst relative error per parameter group, checking every element.
#[allow(clippy::needless_range_loop)]
fn check(case: &Case, seed: u64, corrupt: Option<usize>) -> Vec<(String, f64)> {
    let c = &case.cfg;
    c.validate().unwrap();
    let mut rng = SplitMix64::new(seed);
    let layout = c.layout();
    // Weights a bit larger than PyTorch's init so every gate is away from
    // linear behaviour and the test exercises the nonlinearities.
    let mut p = Problem {
        params: (0..layout.total).map(|_| rng.uniform(-0.8, 0.8)).collect(),
        x: (0..case.t * case.b * c.input_size())
            .map(|_| rng.normal())
            .collect(),
        target: (0..case.t * case.b * c.channels)
            .map(|_| match c.output {
                Output::Mse => rng.normal(),
                // Spread over the whole μ-law range in audio units.
                Output::Mulaw { scale } => rng.uniform(-1.0, 1.0) / f64::from(scale),
                // Placed against the locations below.
                Output::Laplace { .. } | Output::Logistic { .. } => 0.0,
            })
            .collect(),
        h0: vec![0.0; c.layers * case.b * c.hidden],
        c0: vec![0.0; c.layers * case.b * c.hidden],
        // Bins from far narrower than the scale (e^s with s ≈ ±1) to wider.
        delta: (0..case.t * case.b * c.channels)
            .map(|i| [0.003, 0.05, 0.4, 3.0][i % 4])
            .collect(),
    };
    if case.stateful {
        p.h0.iter_mut().for_each(|v| *v = rng.uniform(-0.9, 0.9));
        p.c0.iter_mut().for_each(|v| *v = rng.normal());
    }
    let mut ws = Workspace::default();
    forward(c, &p.params, case.t, case.b, &p.x, &p.h0, &p.c0, &mut ws);
    if c.output.law().is_some() {
        // Half the targets of the wide bins inside the bin around their
        // location, away from its edges (kinks of the second derivative,
        // which a perturbed location must not reach: a narrow bin holding
        // its location would be all edge), the rest one to three scales
        // away on either side.
        let head = ws.prediction().to_vec();
        for (i, t) in p.target.iter_mut().enumerate() {
            let (mu, b) = (head[2 * i], head[2 * i + 1].exp());
            *t = if p.delta[i] >= 0.4 && i % 8 < 4 {
                mu + rng.uniform(-0.25, 0.25) * p.delta[i]
            } else {
                let side = if rng.next_f64() < 0.5 { -1.0 } else { 1.0 };
                mu + side * (p.delta[i] + rng.uniform(1.0, 3.0) * b)
            };
        }
    }
    let mut dpred = Vec::new();
    head_loss(case, &p, ws.prediction(), &mut dpred);
    let mut grads = vec![0.0; layout.total];
    let mut dh0 = vec![f64::NAN; p.h0.len()];
    let mut dc0 = vec![f64::NAN; p.c0.len()];
    backward(
        c, &p.params, &p.x, &dpred, &mut ws, &mut grads, &mut dh0, &mut dc0,
    );
    if let Some(i) = corrupt {
        grads[i] *= 1.0 + 1e-5;
    }

    let mut fd = |p: &mut Problem, which: usize, i: usize| {
        let slot = |p: &mut Problem| -> *mut f64 {
            match which {
                0 => &mut p.params[i],
                1 => &mut p.h0[i],
                _ => &mut p.c0[i],
            }
        };
        // SAFETY: the pointer is into `p`, used before `p` is borrowed again.
        let orig = unsafe { *slot(p) };
        let mut at = |d: f64| {
            unsafe { *slot(p) = orig + d };
            loss(case, p, &mut ws)
        };
        let mut central = |eps: f64| {
            (8.0 * (at(eps) - at(-eps)) - (at(2.0 * eps) - at(-2.0 * eps))) / (12.0 * eps)
        };
        let (n, n_small) = (central(EPS), central(EPS / 4.0));
        unsafe { *slot(p) = orig };
        // On a smooth stretch the two estimates agree to ~1e-9; a kink within
        // 2ε (LeakyReLU at 0, hard sigmoid at ±2.5) breaks the Taylor series
        // and the two disagree by orders of magnitude more.
        let smooth = (n - n_small).abs() <= 1e-6 * n.abs().max(n_small.abs()).max(FLOOR);
        smooth.then_some(n)
    };
    let mut kinks = 0;
    let mut total = 0;
    let mut worst = Vec::new();
    for e in &layout.entries {
        let mut w: f64 = 0.0;
        for i in e.offset..e.offset + e.len {
            total += 1;
            match fd(&mut p, 0, i) {
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
            match fd(&mut p, which, i) {
                Some(n) => w = w.max(rel_err(a, n)),
                None => kinks += 1,
            }
        }
        worst.push((name.to_string(), w));
    }
    // A kink is rare; many would mean the check is not checking.
    assert!(
        kinks * 50 <= total,
        "{kinks} of {total} points sit on a kink"
    );
    worst
}

fn assert_gradients(case: Case, seed: u64) {
    let worst = check(&case, seed, None);
    for (name, err) in &worst {
        assert!(
            *err < 1e-6,
            "{name}: worst relative error {err:.3e} (layers {}, frame {}, T {}, H {}, {:?}/{:?}, stateful {})",
            case.cfg.layers,
            case.cfg.frame,
            case.t,
            case.cfg.hidden,
            case.cfg.cell_activation,
            case.cfg.gate_activation,
            case.stateful
        );
    }
    // Every group was checked, including h0 and c0.
    assert_eq!(worst.len(), case.cfg.layout().entries.len() + 2);
}

#[test]
fn one_layer_frame1_seq1_fresh_state() {
    assert_gradients(Case::new(cfg(1, 1, 3, 1, &[]), 1, 3, false), 1);
}

#[test]
fn one_layer_frame3_seq17_stateful() {
    assert_gradients(Case::new(cfg(1, 3, 7, 1, &[]), 17, 2, true), 2);
}

#[test]
fn three_layers_seq17_fresh_state_with_head() {
    assert_gradients(Case::new(cfg(3, 1, 5, 1, &[6, 3]), 17, 3, false), 3);
}

#[test]
fn three_layers_frame3_seq17_stateful_linear_cell() {
    let mut c = cfg(3, 3, 5, 1, &[4]);
    c.cell_activation = CellActivation::Linear;
    assert_gradients(Case::new(c, 17, 2, true), 4);
}

#[test]
fn hard_sigmoid_gates_both_cell_activations() {
    for (i, cell) in [CellActivation::Tanh, CellActivation::Linear]
        .into_iter()
        .enumerate()
    {
        let mut c = cfg(2, 1, 6, 1, &[]);
        c.gate_activation = GateActivation::HardSigmoid;
        c.cell_activation = cell;
        assert_gradients(Case::new(c, 17, 3, i == 0), 5 + i as u64);
    }
}

#[test]
fn stereo_channels_and_leaky_activations() {
    let mut c = cfg(2, 3, 9, 2, &[5]);
    c.lstm_output_activation = Activation::LeakyRelu;
    c.output_activation = Activation::LeakyRelu;
    assert_gradients(Case::new(c, 5, 2, true), 7);
}

/// The notebook's model in miniature: frame 3, seq-len 1, linear cell,
/// hard-sigmoid gates, LeakyReLU after the LSTM and after every dense layer.
#[test]
fn seed_preset_shape() {
    let mut c = cfg(1, 3, 10, 1, &[6, 4, 3]);
    c.cell_activation = CellActivation::Linear;
    c.gate_activation = GateActivation::HardSigmoid;
    c.lstm_output_activation = Activation::LeakyRelu;
    c.output_activation = Activation::LeakyRelu;
    assert_gradients(Case::new(c, 1, 5, false), 8);
}

/// The checker itself must be able to fail: one analytic value off by a
/// relative 1e-5 (a bug far subtler than a wrong sign) is caught in its group.
#[test]
fn checker_catches_a_wrong_gradient() {
    let case = Case::new(cfg(2, 1, 3, 1, &[]), 4, 2, true);
    let clean = check(&case, 9, None);
    assert!(clean.iter().all(|(_, e)| *e < 1e-6));
    let entry = case.cfg.layout().get("weight_hh_l1").unwrap().clone();
    let bad = check(&case, 9, Some(entry.offset + 5));
    for ((name, e_clean), (_, e_bad)) in clean.iter().zip(&bad) {
        if *name == entry.name {
            assert!(
                *e_bad > 1e-6,
                "{name}: corrupted gradient not caught ({e_bad:e})"
            );
        } else {
            assert_eq!(e_clean, e_bad, "{name}: other groups unaffected");
        }
    }
}

/// With the gradient of element `at` of parameter `name` off by a relative
/// 1e-5, the checker must flag that parameter.
fn assert_corruption_caught(case: &Case, seed: u64, name: &str, at: usize) {
    let entry = case.cfg.layout().get(name).unwrap().clone();
    let bad = check(case, seed, Some(entry.offset + at));
    let err = bad.iter().find(|(n, _)| *n == entry.name).unwrap().1;
    assert!(
        err > 1e-6,
        "{name}: corrupted gradient not caught ({err:e})"
    );
}

/// Audio units per model unit of the μ-law cases' targets.
const MULAW_SCALE: f32 = 0.3;

fn mulaw(mut c: ModelConfig) -> ModelConfig {
    c.output = Output::Mulaw { scale: MULAW_SCALE };
    c
}

#[test]
fn mulaw_head_linear() {
    assert_gradients(Case::new(mulaw(cfg(1, 2, 4, 1, &[])), 3, 2, true), 11);
}

#[test]
fn mulaw_head_two_layers_stereo_with_hidden_head() {
    let mut c = mulaw(cfg(2, 1, 3, 2, &[5]));
    c.lstm_output_activation = Activation::LeakyRelu;
    assert_gradients(Case::new(c, 4, 2, true), 12);
}

/// The checker fails on the μ-law head too: one gradient off by a relative 1e-5.
#[test]
fn checker_catches_a_wrong_mulaw_gradient() {
    let case = Case::new(mulaw(cfg(1, 1, 3, 1, &[])), 2, 2, true);
    assert_corruption_caught(&case, 13, "head.0.weight", 100);
}

fn laplace(mut c: ModelConfig) -> ModelConfig {
    c.output = Output::Laplace { scale: 0.3 };
    c
}

#[test]
fn laplace_head_linear() {
    assert_gradients(Case::new(laplace(cfg(1, 2, 4, 1, &[])), 5, 3, true), 21);
}

#[test]
fn laplace_head_two_layers_stereo_with_hidden_head() {
    let mut c = laplace(cfg(2, 1, 5, 2, &[6]));
    c.lstm_output_activation = Activation::LeakyRelu;
    assert_gradients(Case::new(c, 6, 2, false), 22);
}

fn logistic(mut c: ModelConfig) -> ModelConfig {
    c.output = Output::Logistic { scale: 0.3 };
    c
}

#[test]
fn logistic_head_linear_and_two_layers_stereo_with_hidden_head() {
    assert_gradients(Case::new(logistic(cfg(1, 2, 4, 1, &[])), 5, 3, true), 24);
    let mut c = logistic(cfg(2, 1, 5, 2, &[6]));
    c.lstm_output_activation = Activation::LeakyRelu;
    assert_gradients(
        Case {
            burn_in: 2,
            ..Case::new(c, 6, 2, false)
        },
        25,
    );
}

/// The checker fails on the Laplace head too: one gradient off by a relative 1e-5.
#[test]
fn checker_catches_a_wrong_laplace_gradient() {
    let case = Case::new(laplace(cfg(1, 1, 3, 1, &[])), 3, 2, true);
    // The log-scale's bias.
    assert_corruption_caught(&case, 23, "head.0.bias", 1);
}

/// A loss burn-in on every head: the gradients of the masked loss are
/// still right everywhere (the masked timesteps reach the loss only
/// through the state they pass on).
#[test]
fn burn_in_every_head() {
    for (i, c) in [
        cfg(1, 2, 4, 1, &[]),
        mulaw(cfg(1, 1, 3, 2, &[])),
        laplace(cfg(2, 1, 4, 2, &[3])),
    ]
    .into_iter()
    .enumerate()
    {
        assert_gradients(
            Case {
                burn_in: 3,
                ..Case::new(c, 7, 3, i == 1)
            },
            [30, 31, 42][i],
        );
    }
}
