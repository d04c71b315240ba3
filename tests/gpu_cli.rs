//! The GPU through the binary: `train --device gpu` reaches the CPU's
//! validation figures, a GPU checkpoint resumes on the CPU, `predict` runs
//! on the GPU, `devices` lists the adapter, and a wrong `--adapter` is
//! refused with the list of adapters.
//!
//! Skipped (with the reason printed) on a machine without an adapter,
//! unless WAVELSTM_REQUIRE_GPU=1.

mod common;
use common::{max_abs_diff, predict, run, short_piano, text, tmpdir};

use std::path::{Path, PathBuf};
use wavelstm::checkpoint;

/// The binary needs an adapter; the opener shared by the GPU tests decides
/// whether its absence skips or fails (WAVELSTM_REQUIRE_GPU=1).
fn have_gpu() -> bool {
    common::gpu::gpu().is_some()
}

fn train(dir: &Path, device: &str, extra: &[&str]) -> PathBuf {
    let model = dir.join(format!("{device}.safetensors"));
    let clip = short_piano();
    let mut args = vec![
        "train",
        clip.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--device",
        device,
        "--hidden",
        "12",
        "--layers",
        "2",
        "--seq-len",
        "32",
        "--batch",
        "6",
        "--max-steps",
        "30",
        "--seed",
        "4",
        "--stateful",
    ];
    args.extend(extra);
    let out = run(&args);
    assert!(
        out.status.success(),
        "train --device {device}: {}",
        text(&out.stderr)
    );
    model
}

#[test]
fn training_on_the_gpu_reaches_the_cpu_figures() {
    if !have_gpu() {
        return;
    }
    let dir = tmpdir("train");
    let cpu = checkpoint::load(&train(&dir, "cpu", &[])).unwrap();
    let gpu = checkpoint::load(&train(&dir, "gpu", &["--readback-every", "4"])).unwrap();
    let (c, g) = (&cpu.history[0], &gpu.history[0]);
    assert_eq!(c.steps, g.steps);
    let rel = |a: f64, b: f64| (a - b).abs() / b.abs();
    assert!(
        rel(g.train_loss, c.train_loss) < 1e-3,
        "train MSE {} vs {}",
        g.train_loss,
        c.train_loss
    );
    assert!(
        rel(g.valid.mse, c.valid.mse) < 1e-3,
        "valid MSE {} vs {}",
        g.valid.mse,
        c.valid.mse
    );
    assert!(
        (g.valid.gain_db - c.valid.gain_db).abs() < 0.01,
        "gain {} vs {}",
        g.valid.gain_db,
        c.valid.gain_db
    );

    // The GPU's checkpoint resumes on the CPU (same format, same names).
    let model = dir.join("gpu.safetensors");
    let out = run(&[
        "train",
        "--resume",
        model.to_str().unwrap(),
        "--out",
        dir.join("resumed.safetensors").to_str().unwrap(),
        "--device",
        "cpu",
        "--max-steps",
        "35",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let resumed = checkpoint::load(&dir.join("resumed.safetensors")).unwrap();
    assert_eq!(resumed.state.step, 35);

    // predict on the GPU writes the same song the CPU predicts.
    let clip = short_piano();
    let mut outs = Vec::new();
    for device in ["cpu", "gpu"] {
        let wav = dir.join(format!("pred_{device}.wav"));
        let out = predict(&model, &clip, &wav, &["--float", "--device", device]);
        assert!(
            out.status.success(),
            "predict --device {device}: {}",
            text(&out.stderr)
        );
        let samples: Vec<f32> = hound::WavReader::open(&wav)
            .unwrap()
            .samples::<f32>()
            .map(|s| s.unwrap())
            .collect();
        outs.push(samples);
    }
    assert_eq!(outs[0].len(), outs[1].len());
    let worst = max_abs_diff(&outs[0], &outs[1]);
    assert!(
        worst < 1e-4,
        "GPU prediction differs from the CPU's by {worst}"
    );
}

#[test]
fn devices_lists_the_adapter_and_a_wrong_name_lists_them_all() {
    if !have_gpu() {
        return;
    }
    let out = run(&["devices"]);
    assert!(out.status.success());
    let listing = text(&out.stdout);
    assert!(
        listing.contains("max_storage_buffer_binding_size"),
        "{listing}"
    );

    let dir = tmpdir("adapter");
    let model = dir.join("m.safetensors");
    let clip = short_piano();
    let out = run(&[
        "train",
        clip.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--device",
        "gpu",
        "--adapter",
        "no-such-adapter-here",
        "--max-steps",
        "1",
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("no-such-adapter-here") && err.contains("adapters here"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !model.exists(),
        "nothing is written when the device is refused"
    );
}

/// Without a desktop session, Mesa's device-select layer made libwayland
/// print "error: XDG_RUNTIME_DIR is invalid ..." on every adapter probe;
/// the binary turns that layer off when there is no session.
#[test]
fn probing_the_adapters_prints_no_display_error_without_a_session() {
    if !have_gpu() {
        return;
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wavelstm"))
        .arg("devices")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("NODEVICE_SELECT")
        .output()
        .expect("run wavelstm devices");
    assert!(out.status.success());
    let err = text(&out.stderr);
    assert!(!err.contains("XDG_RUNTIME_DIR"), "{err}");
}
