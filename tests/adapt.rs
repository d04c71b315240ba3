//! Dynamic evaluation (`--adapt`, `wavelstm::adapt`): strictly causal, it
//! changes what follows the first block and nothing before, the weights come
//! back unchanged, and the command line refuses what it cannot adapt.

mod common;
use common::{asset, eval_json, run_ok, run_refused, s, tmpdir, train_small};
use wavelstm::adapt::{adaptive_teacher_forced, AdaptConfig};
use wavelstm::cpu::engine::CpuEngine;
use wavelstm::engine::Engine;
use wavelstm::model::{init_params, ModelConfig, Output};
use wavelstm::optim::AdamConfig;
use wavelstm::predict::{teacher_forced, Plan};
use wavelstm::preset::Defaults;
use wavelstm::rng::SplitMix64;

fn model(output: Output) -> ModelConfig {
    let mut cfg = Defaults::of(None).model(1);
    cfg.hidden = 8;
    cfg.output = output;
    cfg
}

/// A few tones and some noise: something a small model can learn a little of.
fn signal(frames: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..frames)
        .map(|n| {
            let t = n as f64;
            (0.6 * (t * 0.043).sin() + 0.3 * (t * 0.171).sin() + 0.05 * rng.normal()) as f32
        })
        .collect()
}

fn plan(positions: std::ops::Range<usize>) -> Plan {
    Plan {
        positions,
        first_valid: 0,
        seq_len: 32,
        warmup: 100,
        max_lanes: 1,
        carry: true,
    }
}

const ADAPT: AdaptConfig = AdaptConfig {
    block: 64,
    steps: 2,
    lr: 1e-2,
};

fn engine(cfg: &ModelConfig) -> CpuEngine {
    let params = init_params(cfg, &mut SplitMix64::new(3));
    CpuEngine::new(cfg.clone(), AdamConfig::default(), params).unwrap()
}

#[test]
fn adaptation_is_causal_and_changes_only_what_follows_a_block() {
    for output in [Output::Mse, Output::Laplace { scale: 0.01 }] {
        let cfg = model(output);
        let x = signal(1200, 1);
        let positions = 300..1100;
        let with_head = matches!(output, Output::Laplace { .. });
        let run = |x: &[f32]| {
            let mut e = engine(&cfg);
            e.set_signal(x).unwrap();
            let before = e.state().unwrap();
            let got = adaptive_teacher_forced(
                &mut e,
                &plan(positions.clone()),
                1200,
                with_head,
                &ADAPT,
                8,
            )
            .unwrap();
            // The weights and the whole training state are put back.
            assert_eq!(e.state().unwrap(), before, "{output:?}: state restored");
            got
        };
        let (a, head) = run(&x);
        assert_eq!(a.len(), positions.len());
        assert_eq!(head.len(), if with_head { 2 * positions.len() } else { 0 });
        // The first block is the plain prediction; later blocks are not.
        let mut e = engine(&cfg);
        e.set_signal(&x).unwrap();
        let plain = teacher_forced(&mut e, &plan(positions.clone()), 1200).unwrap();
        let near = |u: f32, v: f32| (u - v).abs() <= 1e-5 * u.abs().max(1e-3);
        assert!(
            a[..ADAPT.block]
                .iter()
                .zip(&plain)
                .all(|(&u, &v)| near(u, v)),
            "{output:?}: the first block differs from the plain prediction"
        );
        let changed = a[ADAPT.block..]
            .iter()
            .zip(&plain[ADAPT.block..])
            .filter(|(u, v)| !near(**u, **v))
            .count();
        assert!(
            changed * 2 > a.len() - ADAPT.block,
            "{output:?}: adaptation changed {changed}"
        );

        // A changed sample changes no prediction of it or of anything before
        // it, in its block or any earlier one, and does change later ones.
        for m in [300 + 3 * 64 + 17, 300 + 5 * 64] {
            let mut y = x.clone();
            y[m] += 0.5;
            let (b, _) = run(&y);
            // Position p reads frames ..= p and predicts p + 1: those below m never see frame m.
            let safe = m - positions.start;
            assert_eq!(
                &a[..safe],
                &b[..safe],
                "{output:?}: frame {m} leaked backwards"
            );
            assert!(
                a[safe..] != b[safe..],
                "{output:?}: frame {m} changed nothing"
            );
        }
    }
}

#[test]
fn bad_settings_are_refused() {
    for (a, says) in [
        (
            AdaptConfig { block: 0, ..ADAPT },
            "--adapt-block must be at least 1",
        ),
        (AdaptConfig { steps: 0, ..ADAPT }, "--adapt-steps"),
        (AdaptConfig { lr: 0.0, ..ADAPT }, "--adapt-lr"),
        (
            AdaptConfig {
                lr: f64::NAN,
                ..ADAPT
            },
            "--adapt-lr",
        ),
        (
            AdaptConfig { block: 80, ..ADAPT },
            "multiple of the model's seq-len 32",
        ),
    ] {
        let err = a.validate(32).unwrap_err().to_string();
        assert!(err.contains(says), "{a:?}: {err}");
    }
    // At most one sequence: any block.
    AdaptConfig { block: 20, ..ADAPT }.validate(32).unwrap();
    let cfg = model(Output::Mse);
    let mut e = engine(&cfg);
    e.set_signal(&signal(500, 2)).unwrap();
    let mut p = plan(200..400);
    p.carry = false;
    let err = adaptive_teacher_forced(&mut e, &p, 500, false, &ADAPT, 8).unwrap_err();
    assert!(err.to_string().contains("carries its state"), "{err}");
}

fn clip() -> std::path::PathBuf {
    asset("piano_sabatella_unclaimed_gift_3s_s24.wav")
}

fn train(dir: &std::path::Path, name: &str, extra: &[&str]) -> std::path::PathBuf {
    let m = dir.join(name);
    let mut a = vec!["--seq-len", "64", "--max-steps", "3", "--device", "cpu"];
    a.extend(extra);
    train_small(&clip(), &m, &a);
    m
}

#[test]
fn eval_and_predict_adapt_a_hybrid_and_refuse_what_they_cannot() {
    let dir = tmpdir("cli");
    let clip = clip();
    let m = train(
        &dir,
        "hyb.safetensors",
        &["--preset", "hybrid", "--output", "laplace"],
    );
    let plain = eval_json(&m, &clip, &["--device", "cpu"]);
    let adapted = eval_json(
        &m,
        &clip,
        &[
            "--device",
            "cpu",
            "--adapt",
            "--adapt-block",
            "256",
            "--adapt-lr",
            "1e-2",
        ],
    );
    let figure = |v: &serde_json::Value, k: &str| v["songs"][0][k].clone();
    // The cascade is the same; the model's prediction and its own bits move.
    assert_eq!(figure(&plain, "cascade"), figure(&adapted, "cascade"));
    assert_ne!(figure(&plain, "model"), figure(&adapted, "model"));
    let bits = figure(&adapted, "model_bits_per_sample").as_f64().unwrap();
    assert!(bits.is_finite() && bits > 0.0 && bits < 16.0, "{bits}");

    let wav = dir.join("p.wav");
    run_ok(&[
        "predict",
        "--model",
        s(&m),
        s(&clip),
        "--out",
        s(&wav),
        "--adapt",
        "--adapt-block",
        "128",
        "--device",
        "cpu",
    ]);
    assert!(wav.exists());

    let lpc = train(&dir, "lpc.safetensors", &["--base", "lpc"]);
    let mulaw = train(&dir, "mulaw.safetensors", &["--output", "mulaw"]);
    for (model, args, says) in [
        (&m, vec!["--adapt-block", "64"], "--adapt"),
        (
            &m,
            vec!["--adapt", "--adapt-block", "100"],
            "multiple of the model's seq-len 64",
        ),
        (&m, vec!["--adapt", "--adapt-steps", "0"], "--adapt-steps"),
        (&m, vec!["--adapt", "--adapt-lr=-1"], "--adapt-lr"),
        (
            &lpc,
            vec!["--adapt"],
            "--adapt needs --base none or cascade",
        ),
        (
            &mulaw,
            vec!["--adapt"],
            "--adapt needs the mse, laplace or logistic head",
        ),
    ] {
        for cmd in ["eval", "predict"] {
            let out = dir.join("refused.wav");
            let mut a = vec![cmd, "--model", s(model), s(&clip), "--device", "cpu"];
            if cmd == "predict" {
                a.extend(["--out", s(&out)]);
            }
            a.extend(&args);
            run_refused(&a, says);
            assert!(!out.exists(), "{cmd} {args:?} wrote its output");
        }
    }
}
