//! Crash safety: `train` killed with SIGKILL again and again, half the
//! kills aimed at the moment a checkpoint's temporary file exists (a save in
//! progress). After every kill the checkpoint must load (never corrupt),
//! exist once it has existed (never lost) and never go back in steps (never
//! stale); the next run must remove the temporary files the killed ones left;
//! and the run resumed after the last kill must end with the same bits as a
//! run never killed.

#![cfg(unix)]

mod common;
use common::{bin, resume, resume_args, run, s, text, tmpdir};

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use wavelstm::audio::{self, Audio, SampleFormat};
use wavelstm::checkpoint;
use wavelstm::rng::SplitMix64;

/// Two seconds of a synthetic mono song at 8 kHz.
fn song(dir: &Path) -> PathBuf {
    let rate = 8000u32;
    let samples = (0..2 * rate)
        .map(|i| {
            let t = i as f32 / rate as f32;
            0.5 * (2.0 * std::f32::consts::PI * 220.0 * t).sin()
                + 0.2 * (2.0 * std::f32::consts::PI * 523.0 * t).sin()
        })
        .collect();
    let p = dir.join("song.wav");
    let a = Audio {
        sample_rate: rate,
        channels: 1,
        samples,
    };
    audio::write_wav(&p, &a, SampleFormat::Float32).unwrap();
    p
}

/// Short epochs (a checkpoint every 12 steps) of a model big enough that a
/// save takes a while: ~70 k parameters, ~0.8 MB with Adam's moments.
const STEPS: &str = "600";
fn args<'a>(song: &'a Path, out: &'a Path) -> Vec<&'a str> {
    vec![
        "train",
        s(song),
        "--out",
        s(out),
        "--hidden",
        "128",
        "--seq-len",
        "32",
        "--batch",
        "4",
        "--max-frames",
        "2000",
        "--lr-schedule",
        "constant",
        "--epochs",
        "1000",
        "--max-steps",
        STEPS,
        "--seed",
        "4",
    ]
}

fn temps(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n.ends_with(".tmp"))
        .collect()
}

fn spawn(args: &[&str]) -> Child {
    bin()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary runs")
}

#[test]
fn kill_9_never_leaves_a_corrupt_lost_or_stale_checkpoint() {
    let dir = tmpdir("kill");
    let song = song(&dir);
    let straight = dir.join("straight.safetensors");
    let out = run(&args(&song, &straight));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let want = checkpoint::load(&straight).unwrap();

    let model = dir.join("m.safetensors");
    let mut rng = SplitMix64::new(9);
    let (attempts, mut kills, mut during_save, mut left_temps) = (12, 0, 0, 0);
    let mut last_step = 0;
    for k in 0..attempts {
        let a = match model.exists() {
            true => resume_args(&model, STEPS, &[]),
            false => args(&song, &model),
        };
        let mut child = spawn(&a);
        let started = Instant::now();
        let aim_at_save = k % 2 == 0;
        let delay = Duration::from_millis(50 + rng.below(400));
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            let saving = temps(&dir).iter().any(|t| t.starts_with(".m.safetensors."));
            if (aim_at_save && saving) || (!aim_at_save && started.elapsed() > delay) {
                child.kill().unwrap();
                break;
            }
            if started.elapsed() > Duration::from_secs(120) {
                child.kill().unwrap();
                panic!("kill {k}: no save seen in two minutes");
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let status = child.wait().unwrap();
        let left = temps(&dir);
        kills += usize::from(status.code().is_none());
        if status.code().is_none() && !left.is_empty() {
            during_save += 1;
            left_temps += left.len();
        }
        if model.exists() {
            let ck = checkpoint::load(&model)
                .unwrap_or_else(|e| panic!("kill {k}: corrupt checkpoint: {e}"));
            assert!(
                ck.cursor.global_step >= last_step,
                "kill {k}: stale checkpoint ({} after {last_step})",
                ck.cursor.global_step
            );
            last_step = ck.cursor.global_step;
        } else {
            assert_eq!(last_step, 0, "kill {k}: the checkpoint was lost");
        }
        if status.success() {
            break;
        }
    }
    // The resumed run finishes, removes what the killed ones left, and ends
    // where the run that was never killed did.
    // (A run with nothing left to do is refused, after tidying the folder.)
    let out = resume(&model, STEPS, &[]);
    let err = text(&out.stderr);
    assert!(
        out.status.success() || err.contains("nothing to train"),
        "{err}"
    );
    assert!(temps(&dir).is_empty(), "left behind: {:?}", temps(&dir));
    let got = checkpoint::load(&model).unwrap();
    assert_eq!(got.cursor, want.cursor);
    assert!(
        got.state == want.state,
        "the resumed weights differ from the straight run's"
    );
    assert_eq!(got.history.last(), want.history.last());
    eprintln!(
        "{kills} kills: {during_save} during a save ({left_temps} temporary files left, all removed by the next run), \
         0 corrupt, 0 lost, 0 stale; resumed run bit-identical at step {}",
        got.cursor.global_step
    );
    assert!(
        during_save > 0,
        "no kill landed during a save: the test proved nothing"
    );
}
