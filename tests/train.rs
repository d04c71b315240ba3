//! The training loop end to end on the CPU: it learns, it is deterministic
//! whatever the thread count, and a resumed run is the same run.

use std::path::{Path, PathBuf};
use wavelstm::audio::{Audio, ChannelMode};
use wavelstm::checkpoint::{self, Cursor};
use wavelstm::cpu::engine::CpuEngine;
use wavelstm::dataset::{DataConfig, Dataset};
use wavelstm::epoch_report::EpochReport;
use wavelstm::model::{init_params, ModelConfig};
use wavelstm::optim::AdamConfig;
use wavelstm::preset::Defaults;
use wavelstm::rng::SplitMix64;
use wavelstm::run_config::{LrSchedule, RunConfig};
use wavelstm::train::train;

/// A few detuned partials with slow amplitude envelopes and a little noise:
/// predictable from the past, but not by "next = current" alone.
fn synth(frames: usize, seed: u64) -> Audio {
    let mut rng = SplitMix64::new(seed);
    let rate = 8000.0;
    let samples = (0..frames)
        .map(|n| {
            let t = n as f64 / rate;
            let env = 0.6 + 0.4 * (2.0 * std::f64::consts::PI * 0.7 * t).sin();
            let s = 0.30 * (2.0 * std::f64::consts::PI * 440.0 * t).sin() * env
                + 0.20 * (2.0 * std::f64::consts::PI * 660.0 * t + 0.3).sin()
                + 0.10 * (2.0 * std::f64::consts::PI * 1210.0 * t + 1.1).sin() * (1.0 - env)
                + 0.003 * rng.normal();
            s as f32
        })
        .collect();
    Audio {
        sample_rate: 8000,
        channels: 1,
        samples,
    }
}

fn config(stateful: bool) -> RunConfig {
    RunConfig {
        model: ModelConfig {
            frame: 2,
            hidden: 24,
            layers: 2,
            head: vec![8],
            ..Defaults::of(None).model(1)
        },
        data: DataConfig {
            frame: 2,
            seq_len: 32,
            batch: 8,
            valid_fraction: 0.1,
            stateful,
            shuffle: true,
            burn_in: 0,
        },
        adam: AdamConfig {
            lr: 3e-3,
            clip: 1.0,
            ..AdamConfig::default()
        },
        seed: 11,
        epochs: 2,
        sample_rate: 8000,
        channel_mode: ChannelMode::Mono,
        scale: 0.0,
        songs: vec!["a".into(), "b".into()],
        lr_schedule: LrSchedule::Cosine,
        schedule_steps: 300,
        residual: wavelstm::residual::Residual::None,
        max_frames: None,
    }
}

fn dataset(cfg: &mut RunConfig) -> Dataset {
    let songs = vec![
        (PathBuf::from("a"), synth(6000, 1)),
        (PathBuf::from("b"), synth(4500, 2)),
    ];
    let ds = Dataset::new(songs, &cfg.data, None).unwrap();
    cfg.scale = ds.scale;
    ds
}

/// [`config`] trained for `epochs` epochs, and its dataset (which sets the
/// scale).
fn setup(stateful: bool, epochs: u64) -> (RunConfig, Dataset) {
    let mut cfg = config(stateful);
    cfg.epochs = epochs;
    let ds = dataset(&mut cfg);
    (cfg, ds)
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wavelstm-train-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("model.safetensors")
}

/// Run from scratch (or from `resume`) and return the history.
fn run(
    cfg: &RunConfig,
    ds: &Dataset,
    out: &Path,
    max_steps: Option<u64>,
    resume: Option<&Path>,
) -> Vec<EpochReport> {
    let (params, state, cursor, history) = match resume {
        Some(p) => {
            let ck = checkpoint::load(p).unwrap();
            (
                ck.state.params.clone(),
                Some(ck.state),
                ck.cursor,
                ck.history,
            )
        }
        None => (
            init_params(&cfg.model, &mut SplitMix64::new(cfg.seed)),
            None,
            Cursor::default(),
            vec![],
        ),
    };
    let mut engine = CpuEngine::new(cfg.model.clone(), cfg.adam, params).unwrap();
    if let Some(s) = &state {
        wavelstm::engine::Engine::set_state(&mut engine, s).unwrap();
    }
    train(
        &mut engine,
        ds,
        cfg,
        cursor,
        history,
        max_steps,
        out,
        &mut |_| {},
    )
    .unwrap()
}

fn pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap()
}

#[test]
fn learns_to_beat_the_next_equals_current_baseline() {
    let (cfg, ds) = setup(false, 12);
    let out = tmp("learns");
    let h = run(&cfg, &ds, &out, None, None);
    let (first, last) = (&h[0], h.last().unwrap());
    eprintln!(
        "train MSE {:.3e} -> {:.3e}; validation gain {:.2} dB, baseline {:.2} dB",
        first.train_loss, last.train_loss, last.valid.gain_db, last.valid.baseline_gain_db
    );
    assert!(
        last.train_loss < first.train_loss * 0.5,
        "train MSE {} -> {}",
        first.train_loss,
        last.train_loss
    );
    assert!(
        last.valid.gain_db > last.valid.baseline_gain_db + 3.0,
        "validation gain {:.2} dB vs baseline {:.2} dB",
        last.valid.gain_db,
        last.valid.baseline_gain_db
    );
    assert_eq!(last.songs.len(), 2);
}

#[test]
fn same_seed_same_checkpoint_bytes_on_one_two_or_three_threads() {
    for stateful in [false, true] {
        let mut cfg = config(stateful);
        cfg.epochs = 1;
        // Big enough that every product and the fused passes take their
        // parallel paths (see cpu::matmul), so the thread count could matter.
        cfg.model.hidden = 64;
        cfg.data.batch = 16;
        cfg.data.seq_len = 64;
        let ds = dataset(&mut cfg);
        let files: Vec<Vec<u8>> = [1, 2, 3]
            .iter()
            .map(|&n| {
                let out = tmp(&format!("det-{stateful}-{n}"));
                pool(n).install(|| run(&cfg, &ds, &out, None, None));
                std::fs::read(&out).unwrap()
            })
            .collect();
        assert!(files[0] == files[1], "1 vs 2 threads (stateful {stateful})");
        assert!(files[0] == files[2], "1 vs 3 threads (stateful {stateful})");
        // A different seed gives a different model: the comparison can fail.
        let mut other = cfg.clone();
        other.seed += 1;
        let out = tmp(&format!("det-{stateful}-other"));
        run(&other, &ds, &out, None, None);
        assert!(files[0] != std::fs::read(&out).unwrap());
    }
}

#[test]
fn resume_continues_exactly_mid_epoch_and_across_epochs() {
    for stateful in [false, true] {
        let (cfg, ds) = setup(stateful, 2);
        let straight = tmp(&format!("straight-{stateful}"));
        let h_straight = run(&cfg, &ds, &straight, None, None);

        // Stop mid-way through the first epoch, resume, and finish.
        let steps = ds.steps_per_epoch(&cfg.data) as u64;
        let split = tmp(&format!("split-{stateful}"));
        run(&cfg, &ds, &split, Some(steps / 2), None);
        let ck = checkpoint::load(&split).unwrap();
        assert_eq!(
            ck.cursor,
            Cursor {
                epoch: 0,
                step_in_epoch: steps / 2,
                global_step: steps / 2
            }
        );
        if stateful {
            assert!(!ck.state.carry_h.is_empty(), "the carried state is saved");
        }
        let resumed = tmp(&format!("resumed-{stateful}"));
        std::fs::copy(&split, &resumed).unwrap();
        let h = run(&cfg, &ds, &resumed, None, Some(&split));
        let (a, b) = (
            checkpoint::load(&straight).unwrap(),
            checkpoint::load(&resumed).unwrap(),
        );
        assert_eq!(a.state, b.state, "stateful {stateful}");
        assert_eq!(a.cursor, b.cursor);
        assert_eq!(h.last().unwrap().valid, h_straight.last().unwrap().valid);
    }
}

#[test]
fn checkpoint_round_trip_and_init_by_name() {
    let (cfg, ds) = setup(true, 1);
    let out = tmp("roundtrip");
    run(&cfg, &ds, &out, Some(3), None);
    let ck = checkpoint::load(&out).unwrap();
    assert_eq!(ck.config, cfg);
    assert_eq!(ck.state.step, 3);
    let copy = tmp("roundtrip-copy");
    checkpoint::save(&copy, &ck).unwrap();
    // (float_roundtrip: the JSON history must read back to the same bits)
    assert!(
        std::fs::read(&out).unwrap() == std::fs::read(&copy).unwrap(),
        "save(load(f)) != f"
    );
    assert_eq!(
        checkpoint::load_weights(&out, &cfg.model).unwrap(),
        ck.state.params
    );

    // Weights for another shape are refused with the tensor named.
    let mut other = cfg.model.clone();
    other.hidden += 1;
    let err = checkpoint::load_weights(&out, &other)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("weight_ih_l0") && err.contains("shape"),
        "{err}"
    );
}

#[test]
fn bad_checkpoints_are_refused_with_the_file_named() {
    let dir = tmp("bad").parent().unwrap().to_path_buf();
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"definitely not a checkpoint").unwrap();
    let err = checkpoint::load(&junk).unwrap_err().to_string();
    assert!(
        err.contains("junk.safetensors") && err.contains("safetensors"),
        "{err}"
    );
    let missing = dir.join("missing.safetensors");
    assert!(checkpoint::load(&missing)
        .unwrap_err()
        .to_string()
        .contains("missing.safetensors"));
    // Cut a good checkpoint short: refused, not half-read.
    let (cfg, ds) = setup(false, 2);
    let good = tmp("bad-good");
    run(&cfg, &ds, &good, Some(1), None);
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert!(checkpoint::load(&cut)
        .unwrap_err()
        .to_string()
        .contains("cut.safetensors"));
}
