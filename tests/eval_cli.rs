//! `wavelstm eval` end to end: a tiny model trained by the binary, scored
//! as JSON, the figures checked against the training run's own validation
//! and against `lpc` run directly; plots and bad input.

mod common;
use common::{
    assert_mentions, asset, eval_json, mono_and_scored, run, run_ok, run_refused, s, text, tmpdir,
    train_small,
};

use std::path::{Path, PathBuf};
use wavelstm::cascade::{self, CascadeConfig};
use wavelstm::codelength::residual_bits;
use wavelstm::dataset::valid_frames;
use wavelstm::lpc::{self, LpcConfig};
use wavelstm::metrics::score;

/// Train 3 steps of a tiny mono model on `clip` into `dir`.
fn tiny_model(dir: &Path, clip: &Path) -> PathBuf {
    let model = dir.join("m.safetensors");
    train_small(
        clip,
        &model,
        &["--max-steps", "3", "--seq-len", "64", "--seed", "5"],
    );
    model
}

/// (mse, gain_db) of `predictor` in a song report.
fn figure(song: &serde_json::Value, predictor: &str) -> (f64, f64) {
    let f = &song[predictor];
    (
        f["mse"].as_f64().expect("mse is a number"),
        f["gain_db"].as_f64().expect("gain_db is a number"),
    )
}

/// `bits_per_sample` of `predictor` in a song report.
fn bits(song: &serde_json::Value, predictor: &str) -> f64 {
    song[predictor]["bits_per_sample"]
        .as_f64()
        .expect("bits_per_sample is a number")
}

#[test]
fn eval_json_matches_training_validation_and_direct_baselines() {
    let dir = tmpdir("json");
    let clip = asset("electronic_savino_palace_2s_f32.wav");
    let model = tiny_model(&dir, &clip);
    assert!(
        dir.join("loss.png").exists(),
        "train draws loss.png beside the checkpoint"
    );

    let out = run(&["eval", "--model", s(&model), s(&clip), "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(doc["sample_rate"], 44100);
    let songs = doc["songs"].as_array().unwrap();
    assert_eq!(songs.len(), 1);
    let song = &songs[0];
    assert_eq!(song["part"], "last 10%");
    assert_eq!(song["training_song"], true);

    // The default part is the training run's validation part: same model score.
    let ck = wavelstm::checkpoint::load(&model).unwrap();
    let valid = ck.history.last().unwrap().valid;
    let (mse, gain) = figure(song, "model");
    assert!(
        (gain - valid.gain_db).abs() < 1e-6,
        "{gain} vs {}",
        valid.gain_db
    );
    assert!((mse / valid.mse - 1.0).abs() < 1e-6);
    assert_eq!(song["samples"].as_u64().unwrap() as usize, valid.samples);

    // The classic predictors, run directly on the mono clip in sample units.
    let (a, positions) = mono_and_scored(&clip);
    assert_eq!(
        song["first_frame"].as_u64().unwrap() as usize,
        positions.start + 1
    );
    let x = &a.samples;
    let direct = [
        (
            "next_equals_current",
            lpc::next_equals_current(x, 1, positions.clone()),
        ),
        ("linear", lpc::linear(x, 1, positions.clone())),
        (
            "lpc",
            lpc::lpc(x, 1, positions.clone(), &LpcConfig::standard(a.sample_rate)),
        ),
        (
            "cascade",
            cascade::predict(x, 1, positions.clone(), &CascadeConfig::default()),
        ),
    ];
    let targets: Vec<f64> = x[positions.start + 1..positions.end + 1]
        .iter()
        .map(|&v| v as f64)
        .collect();
    for (name, pred) in direct {
        let want = score(&pred, x, 1, positions.clone(), 1.0);
        let p: Vec<f64> = pred.iter().map(|&v| v as f64).collect();
        let want_bits = residual_bits(&targets, &p, 1);
        // Rounding to the 16-bit grid can flip on an f32 ulp: a hair of slack.
        assert!(
            (bits(song, name) - want_bits).abs() < 1e-3,
            "{name}: {} vs {want_bits} bits",
            bits(song, name)
        );
        let (mse, gain) = figure(song, name);
        // The model's view is divided by its scale: equal up to f32 rounding.
        assert!(
            (gain - want.gain_db).abs() < 1e-3,
            "{name}: {gain} vs {}",
            want.gain_db
        );
        assert!(
            (mse / want.mse - 1.0).abs() < 1e-3,
            "{name}: {mse} vs {}",
            want.mse
        );
    }
    // The baselines differ from each other: the comparison above can fail.
    assert!(figure(song, "lpc").1 > figure(song, "next_equals_current").1 + 3.0);
    assert!(bits(song, "cascade") < bits(song, "next_equals_current") - 1.0);
    assert!(
        song.get("model_bits_per_sample").is_none(),
        "an mse head has no distribution"
    );
    let model_bits = bits(song, "model");
    assert!(model_bits.is_finite() && model_bits > 0.0, "{model_bits}");

    // --all scores every position but the first.
    let out = run(&["eval", "--model", s(&model), s(&clip), "--json", "--all"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let whole = &doc["songs"][0];
    assert_eq!(whole["part"], "whole");
    assert_eq!(whole["samples"].as_u64().unwrap() as usize, a.frames() - 1);
}

#[test]
fn eval_table_and_spectrograms() {
    let dir = tmpdir("table");
    let clip = asset("electronic_savino_palace_2s_f32.wav");
    let model = tiny_model(&dir, &clip);
    let other = asset("orchestral_kaufman_heroes_rite_mono_22050.wav");
    let plots = dir.join("plots");
    let out = run(&[
        "eval",
        "--model",
        s(&model),
        s(&clip),
        s(&other),
        "--plot",
        s(&plots),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert_mentions(
        &table,
        &[
            "model",
            "next = current",
            "linear",
            "LPC-32",
            "cascade",
            "last 10%",
            "dB",
            " b ",
        ],
    );
    // The training song is marked, the other one is not.
    assert!(
        table.contains("electronic_savino_palace_2s_f32.wav *"),
        "{table}"
    );
    assert!(!table.contains("mono_22050.wav *"), "{table}");
    for name in [
        "electronic_savino_palace_2s_f32.png",
        "orchestral_kaufman_heroes_rite_mono_22050.png",
    ] {
        let png = std::fs::read(plots.join(name)).expect("a spectrogram per song");
        assert_eq!(&png[1..4], b"PNG");
    }
}

#[test]
fn eval_errors_name_the_file_and_never_panic() {
    let dir = tmpdir("errors");
    let clip = asset("electronic_savino_palace_2s_f32.wav");
    let model = tiny_model(&dir, &clip);
    let missing = dir.join("missing.wav");
    let not_audio = asset("LICENSES.md");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["eval", "--model", s(&model), s(&missing)],
            "missing.wav",
        ),
        (
            vec!["eval", "--model", s(&model), s(&not_audio)],
            "LICENSES.md",
        ),
        // A WAV is not a checkpoint.
        (
            vec!["eval", "--model", s(&clip), s(&clip)],
            "electronic_savino_palace_2s_f32.wav",
        ),
        (
            vec!["eval", "--model", s(&missing), s(&clip)],
            "missing.wav",
        ),
        (
            vec![
                "eval",
                "--model",
                s(&model),
                s(&clip),
                s(&clip),
                "--plot",
                "one.png",
            ],
            "--plot",
        ),
        (
            vec![
                "eval",
                "--model",
                s(&model),
                s(&clip),
                "--valid-fraction",
                "1.5",
            ],
            "--valid-fraction",
        ),
    ];
    for (args, needle) in cases {
        run_refused(&args, needle);
    }
}

#[test]
fn eval_counts_a_mulaw_models_bits_by_its_own_probabilities() {
    use wavelstm::codelength::MulawGrid;
    use wavelstm::engine::Engine;
    use wavelstm::model::Output;
    let dir = tmpdir("mulaw");
    let clip = asset("electronic_savino_palace_2s_f32.wav");
    let model = dir.join("mu.safetensors");
    // seq-len 1 without carried state: every timestep starts from zero, so
    // the head's outputs can be had one position at a time below.
    run_ok(&[
        "train",
        s(&clip),
        "--out",
        s(&model),
        "--max-steps",
        "20",
        "--hidden",
        "8",
        "--seq-len",
        "1",
        "--batch",
        "16",
        "--seed",
        "5",
        "--output",
        "mulaw",
    ]);
    let doc = eval_json(&model, &clip, &[]);
    let song = &doc["songs"][0];
    let got = song["model_bits_per_sample"]
        .as_f64()
        .expect("a mulaw model's own bits");

    // The same figure the plain way: one fresh free step per scored position.
    let ck = wavelstm::checkpoint::load(&model).unwrap();
    let cfg = &ck.config;
    assert!(!wavelstm::predict::Plan::carries_state(
        cfg.data.stateful,
        cfg.data.seq_len
    ));
    let Output::Mulaw { scale: head_scale } = cfg.model.output else {
        panic!("a mulaw model")
    };
    let mut engine =
        wavelstm::cpu::engine::CpuEngine::new(cfg.model.clone(), cfg.adam, ck.state.params.clone())
            .unwrap();
    let a = wavelstm::eval::load_song(&clip, cfg).unwrap();
    let signal: Vec<f32> = a.samples.iter().map(|v| v / cfg.scale).collect();
    let n = a.frames();
    let positions = n - valid_frames(n, cfg.data.valid_fraction) - 1..n - 1;
    let grid = MulawGrid::new(head_scale as f64 / cfg.scale as f64);
    let mut total = 0.0;
    let mut logits = Vec::new();
    for p in positions.clone() {
        engine
            .free_step(&signal[p..p + 1], true, &mut logits)
            .unwrap();
        total += grid.bits(&logits, a.samples[p + 1] as f64);
    }
    let want = total / positions.len() as f64;
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    // Twenty steps learn something of the level: fewer bits than a uniform 16.
    assert!(want > 1.0 && want < 16.0, "{want}");
}
