//! What the command-line tests share: the binary, the bundled clips, a
//! fresh scratch folder per test.
#![allow(dead_code)] // each test binary uses its own subset

pub mod engines;
pub mod gpu;
pub mod models;
pub mod normal_equations;
pub mod riff;
pub mod sums;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use wavelstm::audio::{self, Audio, ChannelMode};
use wavelstm::dataset::valid_frames;

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wavelstm"))
}

/// Run the binary to completion.
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

/// Run the binary and insist that it succeeds (its stderr is the message).
pub fn run_ok(args: &[&str]) -> Output {
    let out = run(args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    out
}

/// Run the binary with `args`, which it must refuse with a message saying
/// `says` and no panic text; returns the message.
#[track_caller]
pub fn run_refused(args: &[&str], says: &str) -> String {
    let out = run(args);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{args:?} was accepted");
    assert!(err.contains(says), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    err
}

/// `train` the small model the command-line tests share (8 units, batches
/// of 4) on `song` into `out`, with `extra` options after.
pub fn train_small_args<'a>(song: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        s(song),
        "--out",
        s(out),
        "--hidden",
        "8",
        "--batch",
        "4",
    ];
    args.extend_from_slice(extra);
    args
}

/// Run [`train_small_args`]; it must succeed.
pub fn train_small(song: &Path, out: &Path, extra: &[&str]) -> Output {
    run_ok(&train_small_args(song, out, extra))
}

/// `train --resume MODEL --out MODEL --max-steps STEPS` with `extra`
/// options after: a run taken up from its own checkpoint.
pub fn resume_args<'a>(model: &'a Path, steps: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        "--resume",
        s(model),
        "--out",
        s(model),
        "--max-steps",
        steps,
    ];
    args.extend_from_slice(extra);
    args
}

/// Run [`resume_args`] to completion (it may fail: the caller judges).
pub fn resume(model: &Path, steps: &str, extra: &[&str]) -> Output {
    run(&resume_args(model, steps, extra))
}

/// `predict --model MODEL SONG --out OUT` with `extra` options after, run
/// to completion (it may fail: the caller judges).
pub fn predict(model: &Path, song: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["predict", "--model", s(model), s(song), "--out", s(out)];
    args.extend_from_slice(extra);
    run(&args)
}

/// `generate --model MODEL --prime PRIME --out OUT` with `extra` options
/// after, run to completion (it may fail: the caller judges).
pub fn generate(model: &Path, prime: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "generate",
        "--model",
        s(model),
        "--prime",
        s(prime),
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// The report of `eval --model MODEL SONG --json` with `extra` options
/// after; it must succeed.
pub fn eval_json(model: &Path, song: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["eval", "--model", s(model), s(song), "--json"];
    args.extend_from_slice(extra);
    let out = run_ok(&args);
    serde_json::from_slice(&out.stdout).expect("eval --json prints JSON")
}

/// `text` must hold every one of `words` (a failure names the missing one
/// and shows the whole text).
#[track_caller]
pub fn assert_mentions(text: &str, words: &[&str]) {
    for w in words {
        assert!(text.contains(w), "no `{w}` in\n{text}");
    }
}

/// The largest |a − b| over the two slices, side by side.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A clip bundled in assets/audio.
pub fn asset(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/audio")
        .join(name)
}

/// The 3-second 24-bit piano clip: the song most command-line tests train on.
pub fn short_piano() -> PathBuf {
    asset("piano_sabatella_unclaimed_gift_3s_s24.wav")
}

/// An empty folder of its own for test `name` of this test binary and process.
pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "wavelstm-{}-{}-{name}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The song at `path` mixed down to mono, and the positions scored on it:
/// those whose next sample lies in its last 10 %.
pub fn mono_and_scored(path: &Path) -> (Audio, Range<usize>) {
    let a = audio::load(path, ChannelMode::Mono, None).unwrap();
    let n = a.frames();
    let scored = n - valid_frames(n, 0.1) - 1..n - 1;
    (a, scored)
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
