//! The engine contract, one suite run on every engine (`for_each_engine`):
//! what an engine refuses (input and state that do not fit the model, the
//! same rule on the CPU and the GPU, `engine::check`) and what it keeps
//! (a state set is the state read back; a prediction from a zero state does
//! not depend on what ran before).

mod common;
use common::engines::for_each_engine;

use wavelstm::dataset::Batch;
use wavelstm::engine::{Engine, TrainState};
use wavelstm::model::{init_params, ModelConfig};
use wavelstm::preset::Defaults;
use wavelstm::rng::SplitMix64;

/// Two layers, a dense head, a window of three stereo frames: every shape
/// rule has a dimension of its own to get wrong.
fn model() -> ModelConfig {
    ModelConfig {
        frame: 3,
        hidden: 8,
        layers: 2,
        head: vec![5],
        ..Defaults::of(None).model(2)
    }
}

fn random(rng: &mut SplitMix64, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.uniform(-0.5, 0.5) as f32).collect()
}

const FRAMES: usize = 200;

/// The model, its initial parameters and a signal of [`FRAMES`] frames.
fn setup() -> (ModelConfig, Vec<f32>, Vec<f32>) {
    let cfg = model();
    let mut rng = SplitMix64::new(13);
    let params = init_params(&cfg, &mut rng);
    let signal = random(&mut rng, FRAMES * cfg.channels);
    (cfg, params, signal)
}

fn batch(starts: &[usize], carry: bool) -> Batch {
    Batch {
        starts: starts.to_vec(),
        carry: vec![carry; starts.len()],
    }
}

#[test]
fn signals_that_are_not_whole_frames_or_do_not_match_are_refused() {
    let (cfg, params, signal) = setup();
    for_each_engine(&cfg, &params, |name, e| {
        assert!(
            e.set_signal(&signal[..signal.len() - 1]).is_err(),
            "{name}: half a frame"
        );
        let short = &signal[..signal.len() - cfg.channels];
        assert!(
            e.set_signals(&signal, Some(short)).is_err(),
            "{name}: targets a frame short"
        );
        e.set_signals(&signal, Some(&signal))
            .unwrap_or_else(|x| panic!("{name}: {x}"));
        e.set_signal(&signal)
            .unwrap_or_else(|x| panic!("{name}: {x}"));
    });
}

#[test]
fn batches_that_do_not_fit_the_signal_are_refused() {
    let (cfg, params, signal) = setup();
    for_each_engine(&cfg, &params, |name, e| {
        e.set_signal(&signal).unwrap();
        let mut out = Vec::new();
        let first = cfg.frame - 1;
        let bad = [
            ("no lanes", batch(&[], false), 4),
            ("a window before the signal", batch(&[first - 1], false), 4),
            ("no target after the signal", batch(&[FRAMES - 1], false), 1),
            ("no timesteps", batch(&[first], false), 0),
            (
                "flags and lanes disagree",
                Batch {
                    starts: vec![first, first + 1],
                    carry: vec![false],
                },
                4,
            ),
        ];
        for (what, b, t) in &bad {
            assert!(
                e.predict(b, *t, &mut out).is_err(),
                "{name} predict: {what}"
            );
            assert!(
                e.train_step(b, *t, 1e-3).is_err(),
                "{name} train_step: {what}"
            );
        }
        e.predict(&batch(&[first, FRAMES - 2], false), 1, &mut out)
            .unwrap_or_else(|x| panic!("{name}: {x}"));
        assert_eq!(out.len(), 2 * cfg.channels, "{name}: [T, B, C]");
    });
}

#[test]
fn free_step_inputs_must_be_whole_windows() {
    let (cfg, params, _) = setup();
    let width = cfg.input_size();
    for_each_engine(&cfg, &params, |name, e| {
        let mut out = Vec::new();
        assert!(
            e.free_step(&[], true, &mut out).is_err(),
            "{name}: no lanes"
        );
        let ragged = vec![0.1; 2 * width - 1];
        assert!(
            e.free_step(&ragged, true, &mut out).is_err(),
            "{name}: a ragged window"
        );
        e.free_step(&vec![0.1; 2 * width], true, &mut out)
            .unwrap_or_else(|x| panic!("{name}: {x}"));
        assert_eq!(out.len(), 2 * cfg.outputs(), "{name}: [B, outputs]");
    });
}

/// A state of `lanes` carried lanes, every value distinct from the initial ones.
fn some_state(cfg: &ModelConfig, lanes: usize) -> TrainState {
    let mut rng = SplitMix64::new(29);
    let n = cfg.layout().total;
    let carry = cfg.layers * lanes * cfg.hidden;
    TrainState {
        params: random(&mut rng, n),
        adam_m: random(&mut rng, n),
        adam_v: random(&mut rng, n).iter().map(|v| v.abs()).collect(),
        step: 17,
        carry_h: random(&mut rng, carry),
        carry_c: random(&mut rng, carry),
    }
}

#[test]
fn states_that_do_not_fit_the_model_are_refused_alike() {
    let (cfg, params, _) = setup();
    let good = some_state(&cfg, 3);
    let lane = cfg.layers * cfg.hidden;
    let mut bad = Vec::new();
    let mut s = good.clone();
    s.params.pop();
    bad.push(("a parameter short", s));
    let mut s = good.clone();
    s.adam_m.push(0.0);
    bad.push(("a first moment too many", s));
    let mut s = good.clone();
    s.adam_v.pop();
    bad.push(("a second moment short", s));
    let mut s = good.clone();
    s.carry_c.truncate(lane);
    bad.push(("h and c of different sizes", s));
    let mut s = good.clone();
    s.carry_h.truncate(2 * lane + 1);
    s.carry_c.truncate(2 * lane + 1);
    bad.push(("part of a lane carried", s));
    for_each_engine(&cfg, &params, |name, e| {
        let before = e.state().unwrap();
        for (what, s) in &bad {
            assert!(e.set_state(s).is_err(), "{name}: {what}");
        }
        assert_eq!(
            e.state().unwrap(),
            before,
            "{name}: a refused state changes nothing"
        );
    });
}

#[test]
fn a_state_set_is_the_state_read_back() {
    let (cfg, params, _) = setup();
    for lanes in [0, 1, 3] {
        let s = some_state(&cfg, lanes);
        for_each_engine(&cfg, &params, |name, e| {
            e.set_state(&s).unwrap_or_else(|x| panic!("{name}: {x}"));
            assert_eq!(e.state().unwrap(), s, "{name}: {lanes} lane(s)");
        });
    }
}

#[test]
fn set_state_replaces_the_weights_predictions_use() {
    let (cfg, params, signal) = setup();
    let s = some_state(&cfg, 0);
    let b = batch(&[2, 50, 120], false);
    for_each_engine(&cfg, &params, |name, e| {
        e.set_signal(&signal).unwrap();
        let mut out = Vec::new();
        e.predict(&b, 8, &mut out).unwrap();
        e.set_state(&s).unwrap();
        let mut again = Vec::new();
        e.predict(&b, 8, &mut again).unwrap();
        assert_ne!(out, again, "{name}: the new weights predict otherwise");
        let fresh = {
            let mut fresh = Vec::new();
            let mut f = wavelstm::cpu::engine::CpuEngine::new(
                cfg.clone(),
                Default::default(),
                s.params.clone(),
            )
            .unwrap();
            f.set_signal(&signal).unwrap();
            f.predict(&b, 8, &mut fresh).unwrap();
            fresh
        };
        for (a, w) in again.iter().zip(&fresh) {
            assert!((a - w).abs() <= 1e-4, "{name}: {a} vs the CPU's {w}");
        }
    });
}

#[test]
fn a_prediction_from_a_zero_state_forgets_what_ran_before() {
    let (cfg, params, signal) = setup();
    let b = batch(&[2, 60, 130], false);
    for_each_engine(&cfg, &params, |name, e| {
        e.set_signal(&signal).unwrap();
        let mut first = Vec::new();
        e.predict(&b, 8, &mut first).unwrap();
        // Other work in between: carried predictions, training, free steps.
        let mut scratch = Vec::new();
        e.predict(&batch(&[10, 20, 30], false), 5, &mut scratch)
            .unwrap();
        e.predict(&batch(&[15, 25, 35], true), 5, &mut scratch)
            .unwrap();
        e.train_step(&batch(&[40, 80], false), 6, 1e-3).unwrap();
        e.take_stats(true).unwrap();
        e.free_step(&vec![0.2; 3 * cfg.input_size()], false, &mut scratch)
            .unwrap();
        // The same weights as for `first`, then the same zero-state batch.
        let mut s = e.state().unwrap();
        s.params.clone_from(&params);
        e.set_state(&s).unwrap();
        let mut again = Vec::new();
        e.predict(&b, 8, &mut again).unwrap();
        assert_eq!(first, again, "{name}");
        // And a carried batch after it continues rather than restarts.
        let mut carried = Vec::new();
        e.predict(&batch(&[10, 68, 138], true), 8, &mut carried)
            .unwrap();
        let mut restarted = Vec::new();
        e.predict(&batch(&[10, 68, 138], false), 8, &mut restarted)
            .unwrap();
        assert_ne!(carried, restarted, "{name}: carry is honoured");
    });
}

#[test]
fn a_fresh_free_step_forgets_the_carried_state() {
    let (cfg, params, _) = setup();
    let width = cfg.input_size();
    let inputs: Vec<f32> = (0..2 * width)
        .map(|i| (i as f32 * 0.37).sin() * 0.3)
        .collect();
    for_each_engine(&cfg, &params, |name, e| {
        let mut first = Vec::new();
        e.free_step(&inputs, true, &mut first).unwrap();
        let mut next = Vec::new();
        e.free_step(&inputs, false, &mut next).unwrap();
        assert_ne!(first, next, "{name}: the state carries on");
        let mut again = Vec::new();
        e.free_step(&inputs, true, &mut again).unwrap();
        assert_eq!(first, again, "{name}: fresh starts from zero");
    });
}
