//! The demo (what running with no command does): the `train`, `predict`,
//! `eval` and `generate` commands' own code run one after the other on the
//! bundled clip, then the summary (see `crate::demo`).

use super::generate::GenerateArgs;
use super::predict::PredictArgs;
use super::CommonArgs;
use crate::checkpoint;
use crate::demo::{self, DemoRun};
use crate::error::{Error, Result};
use crate::eval::{self, Scope};
use std::path::Path;
use std::time::Instant;

pub(super) fn run(out_dir: &Path, steps: u64, gen_seconds: f64) -> Result<()> {
    let clip = demo::clip();
    std::fs::create_dir_all(out_dir)
        .map_err(|e| Error::file(out_dir, format!("cannot create: {e}")))?;
    let file = |name: &str| out_dir.join(name);
    let model = file("model.safetensors");
    println!(
        "wavelstm demo: learning {} ({} steps)",
        clip.display(),
        steps
    );
    let common = CommonArgs::default();
    let choice = common.engine_choice();
    let started = Instant::now();
    let history = super::train::run(&demo::train_options(&clip, &model, steps), &choice)?;
    let train_secs = started.elapsed().as_secs_f64();
    let last = history
        .last()
        .ok_or_else(|| Error::Other("the demo trained no epoch".into()))?;
    super::predict::run(&PredictArgs {
        model: model.clone(),
        song: clip.clone(),
        out: file("pred.wav"),
        float: false,
        plot: Some(file("pred.png")),
        from: None,
        to: None,
        common: common.clone(),
    })?;
    let ck = checkpoint::load(&model)?;
    let cfg = &ck.config;
    let mut engine = super::make_engine(&choice, &cfg.model, cfg.adam, ck.state.params.clone())?;
    let (valid, _) = eval::evaluate(
        engine.as_mut(),
        cfg,
        &clip,
        Scope::Last(cfg.data.valid_fraction),
    )?;
    let started = Instant::now();
    let takes = super::generate::run(&GenerateArgs {
        model: model.clone(),
        prime: clip.clone(),
        seconds: gen_seconds,
        out: file("gen.wav"),
        prime_seconds: demo::PRIME_SECONDS,
        variations: 1,
        seed: 0,
        temperature: 1.0,
        float: false,
        plot: None,
        common,
    })?;
    let gen_wall = started.elapsed().as_secs_f64();
    let summary_path = file("summary.txt");
    let summary = demo::summary(&DemoRun {
        clip: &clip,
        steps: history.iter().map(|r| r.steps).sum(),
        train_secs,
        samples_per_sec: last.samples_per_sec,
        model: &cfg.model,
        valid: &valid,
        prime_secs: demo::PRIME_SECONDS,
        gen_secs: gen_seconds,
        gen_wall,
        take: &takes[0],
        files: [
            ("model", model.clone()),
            ("loss per epoch", file("loss.png")),
            ("predicted clip", file("pred.wav")),
            ("prediction plot", file("pred.png")),
            ("generated", file("gen.wav")),
            ("this summary", summary_path.clone()),
        ],
    });
    demo::write_summary(&summary_path, &summary)?;
    println!("\n{summary}");
    Ok(())
}
