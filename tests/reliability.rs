//! What a hostile user once broke, one test per class: absurd declared
//! formats, samples far beyond full scale, checkpoints holding non-finite
//! values, resume with `--max-frames`, arguments that do no work or cannot
//! be written, stale temporary files, and a WAV ending in a partial frame.

mod common;
use common::{generate, predict, resume, run, s, text, tmpdir};

use std::path::{Path, PathBuf};
use std::process::Output;
use wavelstm::audio::{self, Audio, SampleFormat, MAX_SAMPLES};
use wavelstm::checkpoint;

/// A WAV file of the given header fields around `data`.
fn wav(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
    let block = channels.wrapping_mul(bits / 8);
    let mut fmt = Vec::new();
    fmt.extend(tag.to_le_bytes());
    fmt.extend(channels.to_le_bytes());
    fmt.extend(rate.to_le_bytes());
    fmt.extend(rate.wrapping_mul(u32::from(block)).to_le_bytes());
    fmt.extend(block.to_le_bytes());
    fmt.extend(bits.to_le_bytes());
    let mut body = b"WAVEfmt ".to_vec();
    body.extend((fmt.len() as u32).to_le_bytes());
    body.extend(fmt);
    body.extend(b"data");
    body.extend((data.len() as u32).to_le_bytes());
    body.extend(data);
    let mut out = b"RIFF".to_vec();
    out.extend((body.len() as u32).to_le_bytes());
    out.extend(body);
    out
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn decode_err(path: &Path) -> String {
    let e = audio::decode(path).expect_err("refused").to_string();
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(e.contains(name) && !e.contains('\n'), "{e}");
    e
}

/// A fresh folder for test `name` holding [`song`] as song.wav.
fn dir_with_song(name: &str) -> (PathBuf, PathBuf) {
    let dir = tmpdir(name);
    let clip = song(&dir, "song.wav");
    (dir, clip)
}

/// Half a second of a synthetic mono song: two partials and a little noise.
fn song(dir: &Path, name: &str) -> PathBuf {
    let rate = 8000;
    let mut state = 7u64;
    let samples = (0..rate / 2)
        .map(|i| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let t = i as f32 / rate as f32;
            0.4 * (2.0 * std::f32::consts::PI * 220.0 * t).sin()
                + 0.2 * (2.0 * std::f32::consts::PI * 331.0 * t).sin()
                + 0.01 * ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
        })
        .collect();
    let p = dir.join(name);
    let a = Audio {
        sample_rate: rate,
        channels: 1,
        samples,
    };
    audio::write_wav(&p, &a, SampleFormat::Float32).unwrap();
    p
}

const TINY: [&str; 8] = [
    "--hidden",
    "8",
    "--seq-len",
    "16",
    "--batch",
    "4",
    "--seed",
    "9",
];

fn train(song: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["train", s(song), "--out", s(out)];
    args.extend(TINY);
    args.extend(extra);
    run(&args)
}

/// A failure as the user sees it: non-zero exit, one error line, no panic.
fn fails_with(out: &Output, words: &[&str]) -> String {
    let err = text(&out.stderr);
    assert!(!out.status.success(), "succeeded: {err}");
    assert!(out.status.code().is_some(), "died of a signal: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    for w in words {
        assert!(err.contains(w), "{w:?} missing from: {err}");
    }
    err
}

// ---------------------------------------------------------------------------
// Audio.

#[test]
fn absurd_declared_rates_and_channel_counts_are_refused() {
    let dir = tmpdir("declared");
    let data = [0u8; 64];
    for (name, channels, rate, words) in [
        ("one_hz.wav", 1, 1, ["1 Hz", "1000 to 768000"]),
        ("giga.wav", 1, u32::MAX, ["4294967295 Hz", "supported"]),
        (
            "channels.wav",
            65_535,
            44_100,
            ["65535 channels", "at most 64"],
        ),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, wav(1, channels, rate, 16, &data)).unwrap();
        let e = decode_err(&p);
        for w in words {
            assert!(e.contains(w), "{w:?} missing from {e}");
        }
    }
    // The edges of the range are accepted.
    for rate in [audio::MIN_SAMPLE_RATE, audio::MAX_SAMPLE_RATE] {
        let p = dir.join("edge.wav");
        std::fs::write(&p, wav(1, 1, rate, 16, &data)).unwrap();
        assert_eq!(audio::decode(&p).unwrap().audio.sample_rate, rate);
    }
}

#[test]
fn resampling_is_bounded_before_anything_is_allocated() {
    // 1000 Hz to 768 kHz multiplies the length by 768: past MAX_SAMPLES.
    let frames = MAX_SAMPLES / 768 + 1000;
    let a = Audio {
        sample_rate: 1000,
        channels: 1,
        samples: vec![0.0; frames],
    };
    let e = audio::resample(&a, 768_000).unwrap_err().to_string();
    assert!(e.contains("would make more than"), "{e}");
    let e = audio::resample(&a, 5).unwrap_err().to_string();
    assert!(e.contains("cannot resample to 5 Hz"), "{e}");
    // A 1 kHz song given as the second one is brought to the first's rate.
    let dir = tmpdir("resample");
    let p = dir.join("slow.wav");
    std::fs::write(&p, wav(1, 1, 1000, 16, &[0u8; 2000])).unwrap();
    let up = audio::load(&p, audio::ChannelMode::Mono, Some(44_100)).unwrap();
    assert_eq!(up.frames(), 44_100);
}

#[test]
fn float_samples_far_beyond_full_scale_are_refused() {
    let dir = tmpdir("level");
    // +771 dBFS, as a fuzzed file held: refused with the sample located.
    let p = dir.join("loud.wav");
    std::fs::write(&p, wav(3, 1, 8000, 32, &f32_bytes(&[0.1, 3.4e38, 0.0]))).unwrap();
    let e = decode_err(&p);
    assert!(
        e.contains("sample 1 of channel 0") && e.contains("+771 dBFS"),
        "{e}"
    );
    // A stereo file at ±3e38 in both channels, whose mixdown would be inf.
    let p = dir.join("stereo.wav");
    std::fs::write(
        &p,
        wav(3, 2, 8000, 32, &f32_bytes(&[3e38, 3e38, -3e38, -3e38])),
    )
    .unwrap();
    decode_err(&p);
    // Somewhat over full scale is a legitimate float file.
    let p = dir.join("hot.wav");
    std::fs::write(&p, wav(3, 1, 8000, 32, &f32_bytes(&[2.0, -900.0]))).unwrap();
    assert_eq!(audio::decode(&p).unwrap().audio.samples, vec![2.0, -900.0]);
}

#[test]
fn a_partial_last_frame_is_ignored_with_a_warning() {
    let dir = tmpdir("partial");
    // 16-bit stereo: two whole frames and 3 bytes of a third.
    let p = dir.join("partial.wav");
    std::fs::write(
        &p,
        wav(1, 2, 44_100, 16, &[1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6]),
    )
    .unwrap();
    let out = run(&["info", s(&p)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("2 frames"),
        "{}",
        text(&out.stdout)
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("warning: ") && err.contains("partial.wav") && err.contains("3 of 4 bytes"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// Checkpoints.

/// Replace the metadata JSON of a checkpoint file by `edit` of it, keeping
/// the header's length (padded with spaces, as safetensors allows).
fn edit_meta(file: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let n = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&file[8..8 + n]).unwrap();
    let mut meta: serde_json::Value =
        serde_json::from_str(header["__metadata__"]["wavelstm"].as_str().unwrap()).unwrap();
    edit(&mut meta);
    header["__metadata__"]["wavelstm"] = serde_json::Value::String(meta.to_string());
    let mut t = serde_json::to_vec(&header).unwrap();
    assert!(t.len() <= n);
    t.resize(n, b' ');
    [&file[..8], &t[..], &file[8 + n..]].concat()
}

#[test]
fn checkpoints_never_hold_non_finite_values_and_loading_names_the_culprit() {
    let (dir, clip) = dir_with_song("finite");
    let model = dir.join("m.safetensors");
    let out = train(&clip, &model, &["--max-steps", "2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let good = std::fs::read(&model).unwrap();
    let ck = checkpoint::load(&model).unwrap();

    // Saving: a NaN weight, moment or history figure is refused, named,
    // and the file on disk is left alone.
    let mut bad = ck.clone();
    bad.state.params[3] = f32::NAN;
    let e = checkpoint::save(&model, &bad).unwrap_err().to_string();
    assert!(e.contains("weight_ih_l0") && e.contains("NaN"), "{e}");
    let mut bad = ck.clone();
    let last = bad.state.adam_v.len() - 1;
    bad.state.adam_v[last] = f32::INFINITY;
    let e = checkpoint::save(&model, &bad).unwrap_err().to_string();
    assert!(e.contains("adam.v."), "{e}");
    let mut bad = ck.clone();
    bad.history[0].valid.gain_db = f64::NAN;
    let e = checkpoint::save(&model, &bad).unwrap_err().to_string();
    assert!(e.contains("history[0].valid.gain_db"), "{e}");
    let mut bad = ck.clone();
    bad.config.scale = f32::INFINITY;
    assert!(checkpoint::save(&model, &bad).is_err());
    assert!(
        std::fs::read(&model).unwrap() == good,
        "the good file is kept"
    );

    // Loading: a null where a number belongs is named.
    let p = dir.join("null.safetensors");
    std::fs::write(
        &p,
        edit_meta(&good, |m| {
            m["history"][0]["train_mse"] = serde_json::Value::Null
        }),
    )
    .unwrap();
    let e = checkpoint::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("null.safetensors") && e.contains("history[0].train_mse"),
        "{e}"
    );
    let p = dir.join("scale.safetensors");
    std::fs::write(&p, edit_meta(&good, |m| m["config"]["scale"] = 0.into())).unwrap();
    let e = checkpoint::load(&p).unwrap_err().to_string();
    assert!(e.contains("config.scale"), "{e}");
}

#[test]
fn a_diverging_run_names_the_parameter_group_and_keeps_the_good_checkpoint() {
    let (dir, clip) = dir_with_song("diverge");
    let model = dir.join("m.safetensors");
    // A rate an f32 cannot hold is refused before any work.
    let out = train(&clip, &model, &["--lr", "1e39", "--max-steps", "1"]);
    fails_with(&out, &["--lr 1e39"]);
    assert!(!model.exists());

    // Rates an f32 holds but no model survives: the error names the step
    // and the parameter group, and no checkpoint holds a non-finite value.
    for lr in ["1e38", "1e30"] {
        let m = dir.join(format!("m{lr}.safetensors"));
        let out = train(&clip, &m, &["--max-steps", "3", "--lr", lr, "--clip", "0"]);
        let err = fails_with(&out, &["training diverged"]);
        assert!(
            [
                "weight_ih_l0",
                "weight_hh_l0",
                "bias_ih_l0",
                "bias_hh_l0",
                "head."
            ]
            .iter()
            .any(|g| err.contains(g)),
            "no parameter group named: {err}"
        );
        if let Ok(ck) = checkpoint::load(&m) {
            assert!(ck.state.params.iter().all(|x| x.is_finite()));
        }
    }
}

#[test]
fn valid_fraction_zero_trains_and_its_checkpoint_loads() {
    let (dir, clip) = dir_with_song("nofraction");
    let model = dir.join("m.safetensors");
    let out = train(
        &clip,
        &model,
        &["--valid-fraction", "0", "--max-steps", "2"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("no validation part"),
        "{}",
        text(&out.stdout)
    );
    let ck = checkpoint::load(&model).unwrap();
    assert_eq!(ck.history[0].valid.samples, 0);
    assert!(ck.history[0].valid.gain_db.is_finite());
    // Usable by every command that reads checkpoints.
    let out = run(&["eval", "--model", s(&model), s(&clip)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = resume(&model, "3", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// `--max-frames` is stored in the checkpoint and honoured by `--resume`: a
/// run stopped and resumed ends with the very bits of a straight run.
#[test]
fn resume_with_max_frames_is_byte_identical_to_a_straight_run() {
    let (dir, clip) = dir_with_song("maxframes");
    let common = [
        "--max-frames",
        "1500",
        "--lr-schedule",
        "constant",
        "--epochs",
        "3",
    ];
    let straight = dir.join("straight.safetensors");
    let mut args = common.to_vec();
    args.extend(["--max-steps", "40"]);
    let out = train(&clip, &straight, &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        checkpoint::load(&straight).unwrap().config.max_frames,
        Some(1500)
    );

    let split = dir.join("split.safetensors");
    let mut args = common.to_vec();
    args.extend(["--max-steps", "13"]);
    let out = train(&clip, &split, &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = resume(&split, "40", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (a, b) = (
        checkpoint::load(&straight).unwrap(),
        checkpoint::load(&split).unwrap(),
    );
    // Every bit of the state and the configuration; the history differs
    // only by the report of the part-epoch where the first run stopped.
    assert_eq!(a.cursor, b.cursor);
    assert_eq!(a.config, b.config);
    assert!(a.state == b.state, "the resumed weights differ");
    assert_eq!(a.history.last(), b.history.last());
    assert_eq!(b.history.len(), a.history.len() + 1);
}

// ---------------------------------------------------------------------------
// Arguments.

#[test]
fn runs_that_do_nothing_are_refused_with_a_message() {
    let (dir, clip) = dir_with_song("nothing");
    let model = dir.join("m.safetensors");
    fails_with(
        &train(&clip, &model, &["--epochs", "0"]),
        &["--epochs 0", "nothing to train"],
    );
    fails_with(
        &train(&clip, &model, &["--max-steps", "0"]),
        &["--max-steps 0", "nothing to train"],
    );
    assert!(!model.exists());
    // Resuming a run that is already done says so.
    assert!(train(&clip, &model, &["--max-steps", "2"]).status.success());
    let out = resume(&model, "2", &[]);
    fails_with(&out, &["nothing to train", "2 step(s)"]);
}

#[test]
fn outputs_that_cannot_be_written_are_refused_before_any_work() {
    let (dir, clip) = dir_with_song("outputs");
    let missing = dir.join("no/such/folder/m.safetensors");
    let out = train(&clip, &missing, &["--max-steps", "2"]);
    fails_with(&out, &["does not exist", "no/such/folder"]);
    let out = train(&clip, &dir, &["--max-steps", "2"]);
    fails_with(&out, &["is a directory"]);
    // Nothing was trained: no progress on stdout.
    assert!(
        !text(&out.stdout).contains("epoch"),
        "{}",
        text(&out.stdout)
    );

    let model = dir.join("m.safetensors");
    assert!(train(&clip, &model, &["--max-steps", "1"]).status.success());
    let gen = |out: &Path, seconds: &str| {
        generate(
            &model,
            &clip,
            out,
            &["--seconds", seconds, "--prime-seconds", "0.1"],
        )
    };
    fails_with(
        &gen(&missing.with_extension("wav"), "0.1"),
        &["does not exist"],
    );
    fails_with(&gen(&dir, "0.1"), &["is a directory"]);
    fails_with(&gen(&dir.join("g.wav"), "1e12"), &["--seconds", "one hour"]);
    fails_with(&gen(&dir.join("g.wav"), "nan"), &["--seconds"]);
    assert!(!dir.join("g.wav").exists());
    let out = predict(&model, &clip, &missing, &[]);
    fails_with(&out, &["does not exist"]);
    // No temporary file is left by any of them.
    let temps: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(temps.is_empty(), "{temps:?}");
}

#[test]
fn stale_temporary_files_are_removed_by_the_next_run() {
    let (dir, clip) = dir_with_song("stale");
    let model = dir.join("m.safetensors");
    // Left by killed runs (no such process), by a live one (this test), and
    // a user's file that only looks similar.
    let dead = [
        ".m.safetensors.4294960001.0.tmp",
        ".loss.png.4294960002.3.tmp",
        ".other.wav.4294960003.12.tmp",
    ];
    let kept = [
        format!(".m.safetensors.{}.0.tmp", std::process::id()),
        ".notes.tmp".to_string(),
        ".m.safetensors.x.0.tmp".to_string(),
    ];
    for f in dead
        .iter()
        .map(|s| s.to_string())
        .chain(kept.iter().cloned())
    {
        std::fs::write(dir.join(f), b"partial").unwrap();
    }
    assert!(train(&clip, &model, &["--max-steps", "1"]).status.success());
    for f in dead {
        assert!(!dir.join(f).exists(), "{f} is still there");
    }
    for f in &kept {
        assert!(dir.join(f).exists(), "{f} was removed");
    }
}
