//! The demo (what running with no command does): the recommended model
//! (`--preset hybrid`: an LSTM over the cascade's residual) trained on the
//! bundled piano clip for about a minute, then the clip predicted, scored
//! and continued, and a summary of it all.
//!
//! [`run`] takes its steps from a [`Commands`]: the command line's own
//! `train`, `predict` and `generate` (which print as they go), so the demo
//! runs exactly what the commands run.

use crate::checkpoint;
use crate::engine::Engine;
use crate::epoch_report::EpochReport;
use crate::error::{Error, Result};
use crate::eval::{self, Scope, SongReport};
use crate::generate::TakeReport;
use crate::model::Output;
use crate::preset::Preset;
use crate::residual::Residual;
use crate::run_config::RunConfig;
use crate::train_setup::TrainOptions;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Seconds generated.
pub const SECONDS: f64 = 3.0;
/// Seconds of the clip generation is primed on.
pub const PRIME_SECONDS: f64 = 2.0;
/// Where the demo writes by default.
pub const OUT_DIR: &str = "wavelstm-out";

/// The bundled clip: the repository's copy, wherever the binary is run from.
pub fn clip() -> PathBuf {
    let rel = Path::new("assets/audio/piano_sabatella_unclaimed_gift.wav");
    if rel.exists() {
        rel.to_path_buf()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
    }
}

/// Training steps: `--preset hybrid`'s schedule cut to about a minute on 2
/// cores (its 40 epochs of the clip are 1,920 steps, 92 s on a quiet Xeon
/// model 207; 1,200 steps took 52 s and scored the same to 0.01 dB).
pub const STEPS: u64 = 1200;

/// The demo's training run: `--preset hybrid` for `steps` steps, its
/// schedule fitted to them; the checkpoint `out`.
pub fn train_options(clip: &Path, out: &Path, steps: u64) -> TrainOptions {
    TrainOptions {
        songs: vec![clip.to_path_buf()],
        out: out.to_path_buf(),
        preset: Some(Preset::Hybrid),
        max_steps: Some(steps),
        ..TrainOptions::default()
    }
}

/// The model in words, as the summary names it.
fn describe(cfg: &RunConfig) -> String {
    let m = &cfg.model;
    let base = match cfg.residual {
        Residual::None => "",
        Residual::Lpc { .. } => " over LPC-32's residual",
        Residual::Cascade { .. } => " over the cascade's residual",
    };
    let head = match m.output {
        Output::Mse => "linear head",
        Output::Mulaw { .. } => "mu-law head",
        Output::Laplace { .. } => "Laplace head",
        Output::Logistic { .. } => "logistic head",
    };
    format!(
        "{} x {} LSTM{base}, {head} ({} parameters)",
        m.layers,
        m.hidden,
        m.layout().total
    )
}

/// What the demo wrote and measured.
pub struct DemoRun<'a> {
    pub clip: &'a Path,
    pub steps: u64,
    pub train_secs: f64,
    pub samples_per_sec: f64,
    pub config: &'a RunConfig,
    pub valid: &'a SongReport,
    /// Seconds of prime and of generated audio, wall-clock seconds, the take.
    pub prime_secs: f64,
    pub gen_secs: f64,
    pub gen_wall: f64,
    pub take: &'a TakeReport,
    pub files: [(&'a str, PathBuf); 6],
}

/// The summary table, as shown and as written to `summary.txt`.
pub fn summary(d: &DemoRun) -> String {
    let mut t = format!(
        "wavelstm demo summary\n\
         song:      {}\n\
         model:     {}\n\
         training:  {} steps in {:.1} s ({:.0} samples/s)\n\n\
         one-step prediction of the last 10% of the clip (never trained on),\n\
         all predictors on the same {} samples:\n\
         \x20 {:<22} {:>10} {:>9} {:>12}\n",
        d.clip.display(),
        describe(d.config),
        d.steps,
        d.train_secs,
        d.samples_per_sec,
        d.valid.samples,
        "predictor",
        "MSE",
        "gain",
        "bits/sample"
    );
    let v = d.valid;
    for (name, f) in [
        ("model", &v.model),
        ("next = current", &v.next_equals_current),
        ("linear extrapolation", &v.linear),
        ("LPC-32", &v.lpc),
        ("cascade", &v.cascade),
    ] {
        t.push_str(&format!(
            "  {name:<22} {:>10.3e} {:>6.2} dB {:>12.3}\n",
            f.mse, f.gain_db, f.bits_per_sample
        ));
    }
    if let Some(bits) = v.model_bits_per_sample {
        t.push_str(&format!(
            "  {:<22} {:>10} {:>9} {bits:>12.3}\n",
            "model, its own law", "", ""
        ));
    }
    // A head with a law of its own is coded by it, as a codec would.
    let (bits, by) = match v.model_bits_per_sample {
        Some(own) => (own, " (its own law)"),
        None => (v.model.bits_per_sample, ""),
    };
    t.push_str(&format!(
        "  the model against the cascade: {:+.2} dB, {:+.3} bits/sample{by}\n",
        v.model.gain_db - v.cascade.gain_db,
        bits - v.cascade.bits_per_sample
    ));
    t.push_str(&format!(
        "\ngeneration: {:.1} s after a {:.1} s prime, in {:.1} s: {:.2}x real time\n\
         \x20 the take: RMS {:.1} dBFS, last second {:.1} dBFS, peak {:.3}{}\n\
         \x20 quietest second {:.1} dBFS, RMS {:+.1} dB from the prime's, \
         spectral distance from the song {}\n\nfiles:\n",
        d.gen_secs,
        d.prime_secs,
        d.gen_wall,
        d.gen_secs / d.gen_wall.max(1e-9),
        d.take.rms_dbfs,
        d.take.last_second_rms_dbfs,
        d.take.peak,
        if d.take.collapsed() {
            " (collapsed to silence)"
        } else if d.take.exploded() {
            " (exploded)"
        } else {
            ""
        },
        d.take.quietest_second_dbfs,
        d.take.level_vs_prime_db(),
        d.take.lsd_db.map_or("-".into(), |v| format!("{v:.1} dB")),
    ));
    for (what, path) in &d.files {
        t.push_str(&format!("  {what:<22} {}\n", path.display()));
    }
    t
}

/// Write the summary to `path`, atomically.
pub fn write_summary(path: &Path, summary: &str) -> Result<()> {
    crate::atomic::write_atomic(path, |w| {
        use std::io::Write;
        w.write_all(summary.as_bytes())
            .map_err(|e| Error::file(path, format!("cannot write: {e}")))
    })
}

/// The commands the demo runs, as the caller runs them.
pub trait Commands {
    /// The demo starts learning `clip` for `steps` steps.
    fn started(&mut self, clip: &Path, steps: u64);
    /// `train` as `o` says; the run's history.
    fn train(&mut self, o: &TrainOptions) -> Result<Vec<EpochReport>>;
    /// `predict` of `song` by `model` into `out`, plotted to `plot`.
    fn predict(&mut self, model: &Path, song: &Path, out: &Path, plot: &Path) -> Result<()>;
    /// An engine for `cfg`, holding `params`.
    fn engine(&mut self, cfg: &RunConfig, params: Vec<f32>) -> Result<Box<dyn Engine>>;
    /// `generate`: one take as `take` says.
    fn generate(&mut self, take: &Take) -> Result<Vec<TakeReport>>;
}

/// The demo's take: `seconds` by `model` into `out`, after `prime_seconds` of `prime`.
pub struct Take<'a> {
    pub model: &'a Path,
    pub prime: &'a Path,
    pub prime_seconds: f64,
    pub seconds: f64,
    pub out: &'a Path,
}

/// The demo into `out_dir`: `steps` training steps, `gen_seconds` generated.
/// Returns the summary (also written to `summary.txt`).
pub fn run(
    out_dir: &Path,
    steps: u64,
    gen_seconds: f64,
    commands: &mut dyn Commands,
) -> Result<String> {
    let clip = clip();
    std::fs::create_dir_all(out_dir)
        .map_err(|e| Error::file(out_dir, format!("cannot create: {e}")))?;
    let file = |name: &str| out_dir.join(name);
    let model = file("model.safetensors");
    commands.started(&clip, steps);
    let started = Instant::now();
    let history = commands.train(&train_options(&clip, &model, steps))?;
    let train_secs = started.elapsed().as_secs_f64();
    let last = history
        .last()
        .ok_or_else(|| Error::Other("the demo trained no epoch".into()))?;
    commands.predict(&model, &clip, &file("pred.wav"), &file("pred.png"))?;
    let ck = checkpoint::load(&model)?;
    let cfg = &ck.config;
    let mut engine = commands.engine(cfg, ck.state.params.clone())?;
    let (valid, _) = eval::evaluate(
        engine.as_mut(),
        cfg,
        &clip,
        Scope::Last(cfg.data.valid_fraction),
    )?;
    let started = Instant::now();
    let takes = commands.generate(&Take {
        model: &model,
        prime: &clip,
        prime_seconds: PRIME_SECONDS,
        seconds: gen_seconds,
        out: &file("gen.wav"),
    })?;
    let gen_wall = started.elapsed().as_secs_f64();
    let summary_path = file("summary.txt");
    let text = summary(&DemoRun {
        clip: &clip,
        steps: history.iter().map(|r| r.steps).sum(),
        train_secs,
        samples_per_sec: last.samples_per_sec,
        config: cfg,
        valid: &valid,
        prime_secs: PRIME_SECONDS,
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
    write_summary(&summary_path, &text)?;
    Ok(text)
}
