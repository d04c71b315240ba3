//! `wavelstm generate` as a user meets it: a tiny μ-law model trained for a
//! few steps on a bundled clip generates 0.2 s (exact length, header, one
//! file per take, a plot, the same bytes for the same seed), and bad input
//! fails with one line, a non-zero exit and no output file.

mod common;
use common::{asset, run, text, tmpdir, train_small};

use std::path::{Path, PathBuf};

fn clip() -> PathBuf {
    asset("electronic_savino_palace_2s_f32.wav")
}

/// A fresh folder for test `name`, and in it a small model with the
/// `output` head trained for 3 steps on [`clip`].
fn trained(name: &str, output: &str) -> (PathBuf, PathBuf) {
    let dir = tmpdir(name);
    let model = dir.join(format!("{output}.safetensors"));
    train_small(
        &clip(),
        &model,
        &[
            "--seq-len",
            "32",
            "--max-steps",
            "3",
            "--output",
            output,
            "--device",
            "cpu",
        ],
    );
    (dir, model)
}

#[test]
fn a_mulaw_model_generates_takes_of_the_exact_length() {
    let (dir, model) = trained("mulaw", "mulaw");
    let gen = dir.join("gen.wav");
    let plot = dir.join("gen.png");
    let args = |out: &Path| {
        vec![
            "generate".to_string(),
            "--model".into(),
            model.display().to_string(),
            "--prime".into(),
            clip().display().to_string(),
            "--prime-seconds".into(),
            "0.1".into(),
            "--seconds".into(),
            "0.2".into(),
            "--variations".into(),
            "2".into(),
            "--seed".into(),
            "5".into(),
            "--out".into(),
            out.display().to_string(),
            "--device".into(),
            "cpu".into(),
        ]
    };
    let mut first = args(&gen);
    let spectrogram = dir.join("spectrogram.png");
    first.extend([
        "--plot".to_string(),
        plot.display().to_string(),
        "--spectrogram".to_string(),
        spectrogram.display().to_string(),
    ]);
    let refs: Vec<&str> = first.iter().map(String::as_str).collect();
    let out = run(&refs);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("real time") && stdout.contains("RMS"),
        "{stdout}"
    );
    // The three figures, for each take.
    for k in [1, 2] {
        let line = stdout
            .lines()
            .skip_while(|l| !l.contains(&format!("gen_{k}.wav")))
            .nth(1)
            .unwrap_or_default();
        assert!(
            line.contains("quietest second")
                && line.contains("from the prime's")
                && line.contains("spectral distance from the song")
                && line.ends_with(" dB"),
            "{stdout}"
        );
    }
    assert!(!gen.exists(), "two takes are gen_1.wav and gen_2.wav");
    for k in [1, 2] {
        let take = dir.join(format!("gen_{k}.wav"));
        let r = hound::WavReader::open(&take).unwrap();
        let spec = r.spec();
        assert_eq!((spec.channels, spec.bits_per_sample), (1, 16));
        // The clip is 44.1 kHz: 0.2 s is 8820 frames exactly.
        assert_eq!((spec.sample_rate, r.len()), (44_100, 8820), "{take:?}");
    }
    assert!(plot.exists() && spectrogram.exists());
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The same seed again: the same bytes.
    let again = dir.join("again.wav");
    let second = args(&again);
    let refs: Vec<&str> = second.iter().map(String::as_str).collect();
    assert!(run(&refs).status.success());
    for k in [1, 2] {
        assert_eq!(
            std::fs::read(dir.join(format!("gen_{k}.wav"))).unwrap(),
            std::fs::read(dir.join(format!("again_{k}.wav"))).unwrap()
        );
    }
}

#[test]
fn bad_input_fails_cleanly_without_output() {
    let (dir, model) = trained("bad", "mse");
    let gen = dir.join("gen.wav");
    let not_audio = dir.join("notes.txt");
    std::fs::write(&not_audio, "not audio").unwrap();
    let (m, c, o) = (
        model.to_str().unwrap(),
        clip().display().to_string(),
        gen.to_str().unwrap(),
    );
    let n = not_audio.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--model", m, "--prime", n], "notes.txt"),
        (vec!["--model", n, "--prime", &c], "notes.txt"),
        (
            vec!["--model", m, "--prime", &c, "--seconds", "0"],
            "--seconds",
        ),
        (
            vec!["--model", m, "--prime", &c, "--variations", "0"],
            "--variations",
        ),
        (
            vec!["--model", m, "--prime", &c, "--temperature=-1"],
            "--temperature",
        ),
    ];
    for (args, names) in cases {
        let mut all = vec!["generate", "--out", o, "--device", "cpu"];
        all.extend(args);
        let out = run(&all);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{all:?}: {err}");
        assert!(
            err.contains("error:") && err.contains(names),
            "{all:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(!gen.exists(), "{all:?} left an output file");
    }
}
