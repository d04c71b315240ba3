//! The location–scale heads and the loss burn-in as a user meets them:
//! `train --output laplace` (or `logistic`) writes a checkpoint that carries
//! the head (its bin scale) and the burn-in, `eval --json` reports the
//! model's own bits per sample under its own law, `generate` samples
//! reproducibly from a seed (and takes the location at temperature 0), and
//! bad `--burn-in` values are refused.

mod common;
use common::{eval_json, resume, run, s, short_piano, text, tmpdir, train_small};

use std::path::{Path, PathBuf};
use wavelstm::model::Output;

fn train(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let model = dir.join(format!("{name}.safetensors"));
    let mut args = vec!["--seq-len", "32", "--max-steps", "4", "--device", "cpu"];
    args.extend_from_slice(extra);
    train_small(&short_piano(), &model, &args);
    model
}

#[test]
fn the_checkpoint_carries_the_head_and_the_burn_in() {
    let dir = tmpdir("checkpoint");
    let model = train(&dir, "laplace", &["--output", "laplace"]);
    let ck = wavelstm::checkpoint::load(&model).unwrap();
    let cfg = &ck.config;
    // Its bins are 16-bit steps in the units of the signal's scale.
    assert_eq!(cfg.model.output, Output::Laplace { scale: cfg.scale });
    assert_eq!(cfg.model.outputs(), 2);
    // The default burn-in: min(seq-len / 4, 32).
    assert_eq!(cfg.data.burn_in, 8);
    let explicit = train(&dir, "explicit", &["--output", "laplace", "--burn-in", "3"]);
    assert_eq!(
        wavelstm::checkpoint::load(&explicit)
            .unwrap()
            .config
            .data
            .burn_in,
        3
    );
    // A residual model's head counts bins in the residual's units.
    let residual = train(
        &dir,
        "residual",
        &["--output", "laplace", "--residual", "lpc"],
    );
    let cfg = wavelstm::checkpoint::load(&residual).unwrap().config;
    match (cfg.model.output, cfg.residual) {
        (Output::Laplace { scale }, wavelstm::residual::Residual::Lpc { scale: r }) => {
            assert_eq!(scale, r)
        }
        other => panic!("{other:?}"),
    }
    // Training goes on from the checkpoint.
    let out = resume(&model, "6", &["--device", "cpu"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn eval_reports_the_models_own_bits_per_sample() {
    let dir = tmpdir("eval");
    let model = train(&dir, "laplace", &["--output", "laplace"]);
    let doc = eval_json(&model, &short_piano(), &["--device", "cpu"]);
    let song = &doc["songs"][0];
    let bits = song["model_bits_per_sample"].as_f64().expect("a number");
    // A barely trained model: more than nothing, less than a raw 24 bits.
    assert!(bits > 1.0 && bits < 24.0, "{bits}");
    assert!(song["model"]["gain_db"].as_f64().unwrap().is_finite());
    let table = run(&[
        "eval",
        "--model",
        s(&model),
        s(&short_piano()),
        "--device",
        "cpu",
    ]);
    assert!(
        text(&table.stdout).contains("bits per sample"),
        "{}",
        text(&table.stdout)
    );
    // The logistic head: its own law, over the cascade too, and another
    // figure than the Laplace head's from the same seed.
    for (name, extra) in [
        ("logistic", &["--output", "logistic"][..]),
        ("hybrid", &["--output", "logistic", "--base", "cascade"][..]),
    ] {
        let logistic = train(&dir, name, extra);
        let cfg = wavelstm::checkpoint::load(&logistic).unwrap().config;
        assert!(
            matches!(cfg.model.output, Output::Logistic { .. }),
            "{name}"
        );
        let doc = eval_json(&logistic, &short_piano(), &["--device", "cpu"]);
        let own = doc["songs"][0]["model_bits_per_sample"]
            .as_f64()
            .expect("a number");
        assert!(
            own > 0.5 && own < 24.0 && own != bits,
            "{name}: {own} vs {bits}"
        );
    }
    // The mse head has no distribution to cost.
    let mse = train(&dir, "mse", &[]);
    let doc = eval_json(&mse, &short_piano(), &["--device", "cpu"]);
    assert!(doc["songs"][0]["model_bits_per_sample"].is_null());
}

fn generate(model: &Path, out: &Path, seed: &str, temperature: &str) {
    let o = common::generate(
        model,
        &short_piano(),
        out,
        &[
            "--prime-seconds",
            "0.2",
            "--seconds",
            "0.3",
            "--variations",
            "2",
            "--seed",
            seed,
            "--temperature",
            temperature,
            "--device",
            "cpu",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
}

#[test]
fn generation_samples_reproducibly_and_takes_the_location_at_zero() {
    for head in ["laplace", "logistic"] {
        let dir = tmpdir(&format!("generate-{head}"));
        let model = train(&dir, head, &["--output", head]);
        let read = |p: PathBuf| std::fs::read(p).unwrap();
        generate(&model, &dir.join("a.wav"), "5", "1");
        generate(&model, &dir.join("b.wav"), "5", "1");
        generate(&model, &dir.join("c.wav"), "6", "1");
        generate(&model, &dir.join("z.wav"), "5", "0");
        for (a, b, same, why) in [
            ("a_1.wav", "b_1.wav", true, "same seed, same take"),
            ("a_1.wav", "c_1.wav", false, "another seed"),
            ("a_1.wav", "a_2.wav", false, "two takes differ"),
            ("z_1.wav", "z_2.wav", true, "T = 0: the location"),
        ] {
            let (a, b) = (read(dir.join(a)), read(dir.join(b)));
            if same {
                assert_eq!(a, b, "{head}: {why}");
            } else {
                assert_ne!(a, b, "{head}: {why}");
            }
        }
    }
}

#[test]
fn bad_burn_in_values_are_refused() {
    let dir = tmpdir("refused");
    let model = dir.join("m.safetensors");
    for bad in ["32", "40"] {
        let out = run(&[
            "train",
            s(&short_piano()),
            "--out",
            s(&model),
            "--seq-len",
            "32",
            "--burn-in",
            bad,
            "--device",
            "cpu",
        ]);
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(
            err.contains("--burn-in") && err.trim().lines().count() == 1,
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(!model.exists());
    }
    // --burn-in 0 counts every timestep, as before it existed.
    let zero = train(&dir, "zero", &["--burn-in", "0"]);
    assert_eq!(
        wavelstm::checkpoint::load(&zero)
            .unwrap()
            .config
            .data
            .burn_in,
        0
    );
}
