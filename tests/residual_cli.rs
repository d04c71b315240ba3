//! `--residual lpc` end to end through the binary: train records it in the
//! checkpoint, eval's model figure is the training run's validation figure
//! and starts from LPC's level, predict and generate honour it (generation
//! is deterministic and of the exact length), a resumed run keeps it, and a
//! μ-law head is refused.

mod common;
use common::{
    eval_json, generate, predict, resume, run, short_piano, text, tmpdir, train_small_args,
};

use wavelstm::residual::Residual;

#[test]
fn a_residual_model_trains_evaluates_predicts_and_generates() {
    let dir = tmpdir("e2e");
    let model = dir.join("m.safetensors");
    let clip = short_piano();
    let train = |extra: &[&str]| {
        let mut args = vec!["--seq-len", "64", "--seed", "2", "--device", "cpu"];
        args.extend(extra);
        run(&train_small_args(&clip, &model, &args))
    };
    let out = train(&["--max-steps", "3", "--residual", "lpc"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("residual of causal LPC-32"));
    let ck = wavelstm::checkpoint::load(&model).unwrap();
    let Residual::Lpc { scale } = ck.config.residual else {
        panic!("no residual in the checkpoint: {:?}", ck.config.residual)
    };
    assert!(scale > 0.0 && scale < 0.1 * ck.config.scale, "{scale}");

    let doc = eval_json(&model, &clip, &["--device", "cpu"]);
    let song = &doc["songs"][0];
    let gain = |name: &str| song[name]["gain_db"].as_f64().unwrap();
    let valid = ck.history.last().unwrap().valid;
    assert!((gain("model") - valid.gain_db).abs() < 1e-6);
    // Three steps teach the model little, but its output only adds to LPC's,
    // in the residual's units: it starts near LPC, far above the others.
    assert!(gain("model") > gain("linear"), "{song}");
    assert!(gain("model") > gain("lpc") - 10.0, "{song}");

    let pred = dir.join("pred.wav");
    let out = predict(&model, &clip, &pred, &["--device", "cpu"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(hound::WavReader::open(&pred).unwrap().duration(), 132_300);

    let (g1, g2) = (dir.join("g1.wav"), dir.join("g2.wav"));
    for g in [&g1, &g2] {
        let take = [
            "--prime-seconds",
            "1.5",
            "--seconds",
            "0.1",
            "--device",
            "cpu",
        ];
        let out = generate(&model, &clip, g, &take);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let r = hound::WavReader::open(&g1).unwrap();
    assert_eq!((r.spec().sample_rate, r.duration()), (44100, 4410));
    let samples: Vec<i16> = r.into_samples().map(Result::unwrap).collect();
    assert!(samples.iter().any(|&v| v != 0), "the take is not silent");
    assert_eq!(std::fs::read(&g1).unwrap(), std::fs::read(&g2).unwrap());

    // Resuming keeps the residual and its scale.
    let out = resume(&model, "4", &["--device", "cpu"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let again = wavelstm::checkpoint::load(&model).unwrap();
    assert_eq!(again.config.residual, Residual::Lpc { scale });
    assert_eq!(again.cursor.global_step, 4);

    let out = train(&["--max-steps", "1", "--residual", "lpc", "--output", "mulaw"]);
    assert!(!out.status.success());
    assert!(
        // --residual lpc is the old name of --base lpc, and is refused as that.
        text(&out.stderr).contains("--base lpc needs --output mse"),
        "{}",
        text(&out.stderr)
    );
}
