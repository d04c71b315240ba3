//! The binary as a user meets it: a real run end to end, and every kind of
//! bad input answered with one line naming the file, a non-zero exit, no
//! panic and nothing half-written.

mod common;
use common::riff::{chunk_claiming, fmt_chunk, riff};
use common::{assert_mentions, asset, predict, resume, run, s, text, tmpdir, train_small};

use std::path::PathBuf;

/// A small but real training run on a real clip: checkpoint, prediction WAV
/// at the song's own rate and channel count, resume.
#[test]
fn train_predict_resume_on_a_real_clip() {
    let dir = tmpdir("e2e");
    let model = dir.join("m.safetensors");
    let clip = asset("electronic_savino_palace_2s_f32.wav");
    let out = train_small(
        &clip,
        &model,
        &["--max-steps", "3", "--seq-len", "64", "--seed", "3"],
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("valid MSE") && stdout.contains("next = current"),
        "{stdout}"
    );
    assert!(model.exists());

    let pred = dir.join("pred.wav");
    let out = predict(&model, &clip, &pred, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("prediction gain"),
        "{}",
        text(&out.stdout)
    );
    let r = hound::WavReader::open(&pred).unwrap();
    assert_eq!(r.spec().sample_rate, 44100);
    assert_eq!(r.spec().channels, 2);
    assert_eq!(r.spec().bits_per_sample, 16);
    assert_eq!(r.duration(), 88_200);

    // Resume to 5 steps in all: the cursor moves on from 3.
    let out = resume(&model, "5", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ck = wavelstm::checkpoint::load(&model).unwrap();
    assert_eq!(ck.cursor.global_step, 5);
    assert_eq!(ck.state.step, 5);
}

/// The demo, shortened (3 steps, 0.2 s generated): every file it promises,
/// and the summary table on screen and in summary.txt.
#[test]
fn the_demo_writes_every_file_and_the_summary_table() {
    let dir = tmpdir("demo");
    let out = run(&[
        "demo",
        "--out-dir",
        s(&dir),
        "--steps",
        "3",
        "--seconds",
        "0.2",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for f in [
        "model.safetensors",
        "pred.wav",
        "gen.wav",
        "loss.png",
        "pred.png",
    ] {
        let bytes = std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        if f.ends_with(".png") {
            assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{f} is not a PNG");
        }
    }
    let gen = hound::WavReader::open(dir.join("gen.wav")).unwrap();
    assert_eq!(gen.duration(), 8820, "0.2 s at 44.1 kHz");
    let summary = std::fs::read_to_string(dir.join("summary.txt")).unwrap();
    assert_mentions(
        &summary,
        &[
            "model ",
            "next = current",
            "linear extrapolation",
            "LPC-32",
            "cascade",
            "bits/sample",
            "x real time",
            "gen.wav",
            "pred.png",
            "loss.png",
            "summary.txt",
        ],
    );
    assert!(
        text(&out.stdout).contains(&summary),
        "the same table on screen"
    );
}

#[test]
fn info_reports_format_and_levels() {
    let out = run(&[
        "info",
        asset("piano_sabatella_unclaimed_gift.flac")
            .to_str()
            .unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        s.contains("44100 Hz") && s.contains("2 ch") && s.contains("441000 frames"),
        "{s}"
    );
}

/// A WAV file with the given `fmt ` fields and data bytes, whose data chunk
/// claims `data_len` bytes.
fn wav_bytes(
    format: u16,
    channels: u16,
    rate: u32,
    bits: u16,
    data: &[u8],
    data_len: u32,
) -> Vec<u8> {
    riff(&[
        fmt_chunk(format, channels, rate, bits),
        chunk_claiming(b"data", data_len, data),
    ])
}

fn pcm16(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| (((i as f32 * 0.05).sin() * 10000.0) as i16).to_le_bytes())
        .collect()
}

/// Every bad file, given to `train` and to `predict`: one line naming the
/// file, exit code 1, no panic, and the existing checkpoint untouched.
#[test]
fn bad_inputs_fail_cleanly() {
    let dir = tmpdir("bad");
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let floats_with_nan: Vec<u8> = (0..4000)
        .flat_map(|i| {
            if i == 1234 {
                f32::NAN
            } else {
                (i as f32 * 0.01).sin() * 0.5
            }
            .to_le_bytes()
        })
        .collect();
    let mut corrupt = std::fs::read(asset("piano_sabatella_unclaimed_gift.flac")).unwrap();
    corrupt.truncate(200_000);
    for b in corrupt[2000..].iter_mut().step_by(7) {
        *b ^= 0x5a;
    }
    let good = std::fs::read(asset("piano_sabatella_unclaimed_gift.wav")).unwrap();
    let text_file = b"hello, I am a text file and not audio at all\n";
    #[rustfmt::skip]
    let cases: Vec<(PathBuf, &str)> = vec![
        (dir.join("missing.wav"), "no such file"),
        (dir.clone(), "directory"),
        (write("empty.wav", b""), "empty"),
        (write("text.wav", text_file), ""),
        (write("truncated.wav", &good[..good.len() / 3]), "truncated"),
        (write("corrupt.flac", &corrupt), ""),
        (write("zero_channels.wav", &wav_bytes(1, 0, 44100, 16, &pcm16(1000), 2000)), "channel"),
        (write("zero_rate.wav", &wav_bytes(1, 1, 0, 16, &pcm16(1000), 2000)), "rate"),
        (write("huge.wav", &wav_bytes(1, 1, 44100, 16, &pcm16(1000), 0xFFFF_FFF0)), ""),
        (write("bits7.wav", &wav_bytes(1, 1, 44100, 7, &pcm16(1000), 2000)), "bits"),
        (write("nan.wav", &wav_bytes(3, 1, 44100, 32, &floats_with_nan, 16000)), "nan"),
        (write("short.wav", &wav_bytes(1, 1, 44100, 16, &pcm16(100), 200)), "short"),
    ];
    let model = dir.join("keep.safetensors");
    std::fs::write(&model, b"previous checkpoint").unwrap();
    let pred = dir.join("pred.wav");
    for (path, word) in &cases {
        let p = s(path);
        let out = run(&[
            "train",
            p,
            "--out",
            s(&model),
            "--max-steps",
            "1",
            "--hidden",
            "4",
        ]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{p}: {err}");
        assert!(!err.contains("panicked"), "{p}: {err}");
        let line = err
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_else(|| panic!("{p}: no error line in {err}"));
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(
            line.contains(name),
            "{p}: error does not name the file: {line}"
        );
        assert!(
            line.to_lowercase().contains(word),
            "{p}: error does not say `{word}`: {line}"
        );
        assert_eq!(
            std::fs::read(&model).unwrap(),
            b"previous checkpoint",
            "{p}: checkpoint clobbered"
        );
    }
    // predict refuses a bad model file and a bad song without writing anything.
    let out = run(&[
        "predict",
        "--model",
        s(&model),
        asset("piano_sabatella_unclaimed_gift.wav")
            .to_str()
            .unwrap(),
        "--out",
        s(&pred),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("keep.safetensors"));
    assert!(!pred.exists());
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains("tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files left behind: {leftovers:?}"
    );
}

#[test]
fn bad_arguments_fail_cleanly() {
    let clip = asset("electronic_savino_palace_2s_f32.wav");
    let c = s(&clip);
    for args in [
        vec!["train", c, "--hidden", "0"],
        vec!["train", c, "--head", "50,x"],
        vec!["train", c, "--lr=-1"],
        vec!["train", c, "--batch", "100000"],
    ] {
        let out = run(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.starts_with("error:") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
    // Unknown options are the parser's business: exit 2 with usage.
    let out = run(&["train", c, "--no-such-option"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Stereo models read and write two channels; songs at another rate are
/// resampled in, and predictions go back out at the song's own rate.
#[test]
fn stereo_model_and_resampled_song() {
    let dir = tmpdir("stereo");
    let model = dir.join("s.safetensors");
    let clip = asset("electronic_savino_palace_2s_f32.wav");
    let small = [
        "--hidden",
        "6",
        "--seq-len",
        "32",
        "--batch",
        "4",
        "--max-steps",
        "2",
    ];
    let mut args = vec![
        "train",
        s(&clip),
        "--channels",
        "stereo",
        "--out",
        s(&model),
    ];
    args.extend(small);
    let out = run(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ck = wavelstm::checkpoint::load(&model).unwrap();
    assert_eq!(ck.config.model.channels, 2);
    assert_eq!(
        ck.config.model.layout().get("head.0.weight").unwrap().shape,
        vec![2, 6]
    );

    // The mono 22,050 Hz clip through the 44.1 kHz stereo model: out at 22,050 Hz, 1 channel.
    let mono = asset("orchestral_kaufman_heroes_rite_mono_22050.wav");
    let pred = dir.join("p.wav");
    let out = predict(&model, &mono, &pred, &["--float"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r = hound::WavReader::open(&pred).unwrap();
    assert_eq!(
        (
            r.spec().sample_rate,
            r.spec().channels,
            r.spec().bits_per_sample
        ),
        (22_050, 1, 32)
    );
    assert_eq!(r.duration(), 220_500);
}
