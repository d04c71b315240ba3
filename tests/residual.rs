//! `--residual lpc` in the library: the targets are the causal LPC-32
//! residual (checked against `lpc` run directly), the streaming LPC of
//! generation predicts what the block LPC does, a trained residual model's
//! prediction is LPC's plus its output, and the checkpoint keeps the choice
//! (an older checkpoint, without it, loads as no residual).

use std::path::{Path, PathBuf};
use wavelstm::audio::{Audio, ChannelMode};
use wavelstm::checkpoint::{self, Cursor};
use wavelstm::cpu::engine::CpuEngine;
use wavelstm::dataset::{DataConfig, Dataset};
use wavelstm::engine::Engine;
use wavelstm::eval::{self, Scope};
use wavelstm::lpc::{self, LpcConfig, LpcStream};
use wavelstm::model::{init_params, ModelConfig};
use wavelstm::optim::AdamConfig;
use wavelstm::predict::{teacher_forced, Plan};
use wavelstm::preset::Defaults;
use wavelstm::residual::Residual;
use wavelstm::rng::SplitMix64;
use wavelstm::run_config::{LrSchedule, RunConfig};
use wavelstm::train::{train, warmup_frames, MAX_LANES};

const RATE: u32 = 8000;

/// Partials whose pitch drifts and a little noise: LPC predicts most of it,
/// not all of it.
fn synth(frames: usize, channels: usize, seed: u64) -> Audio {
    let mut rng = SplitMix64::new(seed);
    let mut samples = Vec::with_capacity(frames * channels);
    let (mut ph1, mut ph2) = (0.0f64, 0.4f64);
    for n in 0..frames {
        let t = n as f64 / RATE as f64;
        ph1 += 2.0 * std::f64::consts::PI * (330.0 + 40.0 * (1.3 * t).sin()) / RATE as f64;
        ph2 += 2.0 * std::f64::consts::PI * 1170.0 / RATE as f64;
        let v = 0.3 * ph1.sin() + 0.1 * ph2.sin() * (0.5 + 0.5 * (2.1 * t).cos());
        for ch in 0..channels {
            samples.push((v * (1.0 - 0.3 * ch as f64) + 0.004 * rng.normal()) as f32);
        }
    }
    Audio {
        sample_rate: RATE,
        channels,
        samples,
    }
}

fn data(frame: usize) -> DataConfig {
    DataConfig {
        frame,
        seq_len: 32,
        batch: 8,
        valid_fraction: 0.1,
        stateful: false,
        shuffle: true,
        burn_in: 0,
    }
}

#[test]
fn targets_are_the_lpc_residual_of_each_song_in_its_own_units() {
    let c = 2;
    let songs = vec![
        (PathBuf::from("a"), synth(5000, c, 1)),
        (PathBuf::from("b"), synth(3100, c, 2)),
    ];
    let mut ds = Dataset::new(songs, &data(1), None).unwrap();
    assert!(ds.targets().is_none());
    let residual_scale = ds.learn_lpc_residual(None).unwrap();
    let r = ds.residual.clone().unwrap();
    assert_eq!(ds.targets().unwrap(), &r.target[..]);
    assert_eq!(r.ratio, residual_scale / ds.scale);

    let cfg = LpcConfig::standard(RATE);
    let (mut sum, mut n) = (0.0f64, 0usize);
    for s in &ds.songs {
        // Each song alone: LPC never reads across a song boundary.
        let x = &ds.signal[s.offset * c..(s.offset + s.frames) * c];
        let pred = lpc::lpc(x, c, 0..s.frames - 1, &cfg);
        for f in 1..s.frames {
            for ch in 0..c {
                let (v, b) = (x[f * c + ch], pred[(f - 1) * c + ch]);
                let i = (s.offset + f) * c + ch;
                assert_eq!(r.base[i], b, "song {} frame {f}", s.path.display());
                let want = ((v as f64 - b as f64) / r.ratio as f64) as f32;
                assert_eq!(r.target[i], want, "song {} frame {f}", s.path.display());
                if f < s.train_frames {
                    sum += (v as f64 - b as f64).powi(2);
                    n += 1;
                }
            }
        }
        // The first frame has no past: nothing is subtracted.
        assert_eq!(r.base[s.offset * c], 0.0);
    }
    let rms = (sum / n as f64).sqrt() * ds.scale as f64;
    assert!(((residual_scale as f64 - rms) / rms).abs() < 1e-5);
    // LPC takes most of this signal (all but its first block, where it
    // falls back to next = current): the residual is below it.
    assert!(
        residual_scale < 0.5 * ds.scale,
        "{residual_scale} vs {}",
        ds.scale
    );

    // A given scale is kept (a resumed run).
    let songs = vec![(PathBuf::from("a"), synth(5000, c, 1))];
    let mut again = Dataset::new(songs, &data(1), Some(ds.scale)).unwrap();
    assert_eq!(again.learn_lpc_residual(Some(0.5)).unwrap(), 0.5);
    assert_eq!(again.residual.unwrap().ratio, 0.5 / ds.scale);
}

#[test]
fn the_streaming_lpc_predicts_what_the_block_lpc_predicts() {
    let x = synth(7000, 1, 3).samples;
    // A short history and block, so the stream trims its past many times.
    let cfg = LpcConfig {
        history: 1500,
        block: 256,
        ..LpcConfig::standard(RATE)
    };
    let want = lpc::lpc(&x, 1, 0..x.len() - 1, &cfg);
    let mut stream = LpcStream::new(cfg);
    assert_eq!(stream.predict(), 0.0, "nothing to predict from");
    let rms = (x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
    for (t, &v) in x.iter().enumerate() {
        stream.push(v);
        if t + 1 < x.len() {
            let got = stream.predict();
            let w = want[t] as f64;
            // Same fit, summed in another order: equal to rounding.
            assert!(
                (got - w).abs() < 1e-4 * rms,
                "frame {}: {got} vs {w}",
                t + 1
            );
        }
    }
}

fn run_config() -> RunConfig {
    RunConfig {
        model: ModelConfig {
            frame: 2,
            hidden: 16,
            ..Defaults::of(None).model(1)
        },
        data: data(2),
        adam: AdamConfig {
            lr: 3e-3,
            clip: 1.0,
            ..AdamConfig::default()
        },
        seed: 4,
        epochs: 1,
        sample_rate: RATE,
        channel_mode: ChannelMode::Mono,
        scale: 0.0,
        songs: vec!["a".into()],
        lr_schedule: LrSchedule::Cosine,
        schedule_steps: 40,
        residual: Residual::Lpc { scale: 0.0 },
        max_frames: None,
    }
}

/// Train a residual model for 40 steps on one synthetic song.
fn trained(out: &Path) -> (RunConfig, Audio, CpuEngine) {
    let mut cfg = run_config();
    let song = synth(12_000, 1, 5);
    let mut ds = Dataset::new(vec![("a".into(), song.clone())], &cfg.data, None).unwrap();
    cfg.scale = ds.scale;
    cfg.residual = Residual::Lpc {
        scale: ds.learn_lpc_residual(None).unwrap(),
    };
    let params = init_params(&cfg.model, &mut SplitMix64::new(cfg.seed));
    let mut engine = CpuEngine::new(cfg.model.clone(), cfg.adam, params).unwrap();
    let history = train(
        &mut engine,
        &ds,
        &cfg,
        Cursor::default(),
        vec![],
        Some(40),
        out,
        &mut |_| {},
    )
    .unwrap();
    let v = history.last().unwrap().valid;
    // Validation scores the prediction of the signal, LPC's included: far
    // beyond next = current on this signal.
    assert!(v.gain_db > v.baseline_gain_db + 10.0, "{v:?}");
    (cfg, song, engine)
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wavelstm-residual-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("model.safetensors")
}

#[test]
fn a_residual_models_prediction_is_lpc_plus_its_output() {
    let out = tmp("roundtrip");
    let (cfg, song, mut engine) = trained(&out);
    let frames = song.frames();
    let pos = eval::positions(frames, cfg.model.frame, Scope::Whole);
    let forced = eval::predict_signal(&mut engine, &cfg, song, pos.clone()).unwrap();

    // The model's raw outputs on the same positions, planned as eval plans them.
    engine.set_signal(&forced.signal).unwrap();
    let plan = Plan {
        positions: pos.clone(),
        first_valid: cfg.model.frame - 1,
        seq_len: cfg.data.seq_len,
        warmup: warmup_frames(cfg.sample_rate, cfg.data.seq_len),
        max_lanes: MAX_LANES,
        carry: Plan::carries_state(cfg.data.stateful, cfg.data.seq_len),
    };
    let raw = teacher_forced(&mut engine, &plan, frames).unwrap();
    let lpc = lpc::lpc(&forced.signal, 1, pos, &LpcConfig::standard(RATE));
    let Residual::Lpc { scale } = cfg.residual else {
        unreachable!()
    };
    let ratio = (scale / cfg.scale) as f64;
    assert!(raw.iter().any(|&y| y != 0.0));
    for (i, ((&p, &l), &y)) in forced.pred.iter().zip(&lpc).zip(&raw).enumerate() {
        assert_eq!(p, (l as f64 + ratio * y as f64) as f32, "position {i}");
    }
}

#[test]
fn the_checkpoint_keeps_the_residual_and_older_ones_have_none() {
    let out = tmp("checkpoint");
    let (cfg, _, _) = trained(&out);
    let ck = checkpoint::load(&out).unwrap();
    assert_eq!(ck.config, cfg);
    assert!(matches!(ck.config.residual, Residual::Lpc { scale } if scale > 0.0));

    // The same file as a checkpoint written before `residual` existed.
    let old = out.with_file_name("old.safetensors");
    std::fs::write(&old, without_residual(&std::fs::read(&out).unwrap())).unwrap();
    let ck = checkpoint::load(&old).unwrap();
    assert_eq!(ck.config.residual, Residual::None);
    assert_eq!(
        RunConfig {
            residual: cfg.residual.clone(),
            ..ck.config
        },
        cfg
    );
}

/// A safetensors file with the `residual` key taken out of its config
/// (the header, 8 bytes of length then JSON, padded back to its length with
/// spaces, as the format allows).
fn without_residual(file: &[u8]) -> Vec<u8> {
    let n = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&file[8..8 + n]).unwrap();
    let meta = header["__metadata__"]["wavelstm"].as_str().unwrap();
    let mut meta: serde_json::Value = serde_json::from_str(meta).unwrap();
    assert!(meta["config"]
        .as_object_mut()
        .unwrap()
        .remove("residual")
        .is_some());
    header["__metadata__"]["wavelstm"] = serde_json::Value::String(meta.to_string());
    let mut text = serde_json::to_vec(&header).unwrap();
    assert!(text.len() <= n);
    text.resize(n, b' ');
    [&file[..8], &text[..], &file[8 + n..]].concat()
}
