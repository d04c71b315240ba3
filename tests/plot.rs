//! Every plot writes a real PNG of the promised size; bad paths and bad
//! windows are errors, never panics.

use std::path::{Path, PathBuf};
use wavelstm::plot::{self, EpochLoss, HEIGHT, WIDTH};
use wavelstm::Error;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wavelstm-plot-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Width and height from the PNG signature and the IHDR chunk that must follow it.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(
        &b[..8],
        b"\x89PNG\r\n\x1a\n",
        "{}: not a PNG",
        path.display()
    );
    assert_eq!(&b[12..16], b"IHDR");
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    assert_eq!(be(8), 13, "IHDR length");
    assert!(b.len() > 1000, "an image with something drawn on it");
    assert_eq!(&b[b.len() - 8..b.len() - 4], b"IEND");
    (be(16), be(20))
}

fn tone(n: usize, rate: f64, hz: f64) -> Vec<f32> {
    (0..n)
        .map(|i| (0.5 * (2.0 * std::f64::consts::PI * hz * i as f64 / rate).sin()) as f32)
        .collect()
}

fn history() -> Vec<EpochLoss> {
    (1..=5)
        .map(|e| EpochLoss {
            epoch: e,
            train_mse: 1e-2 / e as f64,
            valid_mse: 1.2e-2 / e as f64,
        })
        .collect()
}

#[test]
fn loss_plot_writes_a_png() {
    let p = tmpdir("loss").join("loss.png");
    let base = [("next = current", 3e-3), ("LPC-32", 2e-5)];
    plot::loss_plot(&p, &history(), &base).unwrap();
    assert_eq!(png_size(&p), (WIDTH, HEIGHT));
    // One epoch is a plot too (a single point).
    plot::loss_plot(&p, &history()[..1], &[]).unwrap();
    assert_eq!(png_size(&p), (WIDTH, HEIGHT));
    assert!(plot::loss_plot(&p, &[], &base).is_err());
}

#[test]
fn prediction_plot_writes_a_png_and_checks_its_window() {
    let p = tmpdir("pred").join("pred.png");
    let x = tone(44_100, 44_100.0, 220.0);
    let y: Vec<f32> = x.iter().map(|v| v * 0.97).collect();
    plot::prediction_plot(&p, &x, &y, 44_100, 0.5, 0.55).unwrap();
    assert_eq!(png_size(&p), (WIDTH, HEIGHT));
    for (from, to) in [(0.6, 0.5), (2.0, 3.0), (-1.0, 0.1), (f64::NAN, 0.2)] {
        match plot::prediction_plot(&p, &x, &y, 44_100, from, to) {
            Err(Error::Config(_)) => {}
            other => panic!("{from}..{to}: {other:?}"),
        }
    }
}

#[test]
fn spectrogram_plot_writes_a_png() {
    let p = tmpdir("spec").join("spec.png");
    let a = tone(3 * 22_050, 22_050.0, 1000.0);
    let b = tone(3 * 22_050, 22_050.0, 3000.0);
    plot::spectrogram_plot(&p, &a, &b, 22_050, ["original", "predicted"]).unwrap();
    assert_eq!(png_size(&p), (WIDTH, HEIGHT));
    // Shorter than one STFT frame: still a plot.
    plot::spectrogram_plot(&p, &a[..100], &b[..300], 22_050, ["a", "b"]).unwrap();
    assert!(plot::spectrogram_plot(&p, &[], &b, 22_050, ["a", "b"]).is_err());
}

#[test]
fn spectrum_plot_writes_a_png_and_refuses_nothing_to_plot() {
    let p = tmpdir("lts").join("lts.png");
    let a = wavelstm::spectrum::long_term(&tone(22_050, 22_050.0, 1000.0));
    let b = wavelstm::spectrum::long_term(&tone(22_050, 22_050.0, 3000.0));
    let curves = vec![("song".to_string(), a), ("take".to_string(), b.clone())];
    plot::spectrum_plot(&p, 22_050, &curves).unwrap();
    assert_eq!(png_size(&p), (WIDTH, HEIGHT));
    // Digital silence has a level too (the floor), so it plots.
    let silent = vec![("silence".to_string(), vec![0.0; b.len()])];
    plot::spectrum_plot(&p, 22_050, &silent).unwrap();
    assert!(plot::spectrum_plot(&p, 22_050, &[]).is_err());
    assert!(plot::spectrum_plot(&p, 0, &curves).is_err());
}

#[test]
fn stft_finds_a_tone_in_its_bin() {
    let rate = 16_000.0;
    // Bin 64 of a 1024-point FFT at 16 kHz is 1000 Hz.
    let x = tone(8000, rate, 1000.0);
    let s = plot::stft(&x, 256);
    let bins = 513;
    assert_eq!(s.len() % bins, 0);
    let frame = &s[2 * bins..3 * bins];
    let peak = (0..bins)
        .max_by(|&i, &j| frame[i].total_cmp(&frame[j]))
        .unwrap();
    assert_eq!(peak, 64);
}

#[test]
fn bad_paths_are_errors_naming_the_file() {
    let dir = tmpdir("bad");
    let missing = dir.join("no/such/dir/plot.png");
    let x = tone(4000, 8000.0, 440.0);
    let results = [
        plot::loss_plot(&missing, &history(), &[]),
        plot::prediction_plot(&missing, &x, &x, 8000, 0.1, 0.2),
        plot::spectrogram_plot(&missing, &x, &x, 8000, ["a", "b"]),
        plot::spectrum_plot(&missing, 8000, &[("a".into(), vec![1.0; 9])]),
        // A directory is not a file to replace.
        plot::loss_plot(&dir, &history(), &[]),
    ];
    for r in results {
        match r {
            Err(e @ Error::File { .. }) => assert!(
                e.to_string().contains("plot") || e.to_string().contains("bad"),
                "{e}"
            ),
            other => panic!("expected a file error, got {other:?}"),
        }
    }
    assert!(!missing.exists());
}
