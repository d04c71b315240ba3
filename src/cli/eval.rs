//! `wavelstm eval`: a model scored on songs next to the classic predictors,
//! as a table or JSON, optionally with spectrograms.

use super::CommonArgs;
use crate::checkpoint;
use crate::error::{Error, Result};
use crate::eval::{self, Scope, SongReport};
use crate::plot;
use crate::run_config::RunConfig;
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
#[command(
    after_help = "Scored part: a checkpoint records its training songs by path only, so a song cannot be recognised by its content. By default the last --valid-fraction of every song is scored (for a training song that is exactly the part it was never trained on); --all scores the whole song. Songs listed as training songs are marked with *. All five predictors are scored on the same samples, each with its bits per sample (the 16-bit residual under an adaptive Laplace law; a mulaw, laplace or logistic model: also its own probability of each 16-bit sample), at the model's rate and channel layout."
)]
pub(super) struct EvalArgs {
    /// A checkpoint written by `wavelstm train`.
    #[arg(long, short)]
    model: PathBuf,
    /// Songs to score (WAV, MP3, FLAC, Ogg Vorbis).
    #[arg(required = true)]
    songs: Vec<PathBuf>,
    /// Score the whole of every song.
    #[arg(long, conflicts_with = "valid_fraction")]
    all: bool,
    /// Score the last F of every song [default: the model's own --valid-fraction].
    #[arg(long)]
    valid_fraction: Option<f64>,
    /// Print the results as JSON on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// Write spectrograms of the original and the predicted scored part: into
    /// this directory (one PNG per song), or to this .png file (one song).
    #[arg(long)]
    plot: Option<PathBuf>,
    #[command(flatten)]
    adapt: super::adapt::AdaptArgs,
    #[command(flatten)]
    pub(super) common: CommonArgs,
}

pub(super) fn run(a: &EvalArgs) -> Result<()> {
    let ck = checkpoint::load(&a.model)?;
    let cfg = &ck.config;
    let scope = if a.all {
        Scope::Whole
    } else {
        match a.valid_fraction.unwrap_or(cfg.data.valid_fraction) {
            f if !(0.0..1.0).contains(&f) => {
                return Err(Error::config("--valid-fraction must be in [0, 1)"))
            }
            // A model trained without a validation part: nothing is held out.
            0.0 => Scope::Whole,
            f => Scope::Last(f),
        }
    };
    let adapt = a.adapt.config();
    if let Some(ad) = &adapt {
        eval::check_adapt(cfg, ad)?;
    }
    let plots = plot_paths(a.plot.as_deref(), &a.songs)?;
    let mut engine = super::checkpoint_engine(&a.common, &ck)?;
    eprintln!("evaluating on {}", engine.describe());
    let mut reports = Vec::new();
    for (song, plot_path) in a.songs.iter().zip(plots) {
        let started = std::time::Instant::now();
        let (r, forced) =
            eval::evaluate_adapting(engine.as_mut(), cfg, song, scope, adapt.as_ref())?;
        eprintln!(
            "{}: scored in {:.1} s{}",
            song.display(),
            started.elapsed().as_secs_f64(),
            if adapt.is_some() { " (adapting)" } else { "" }
        );
        if let Some(path) = plot_path {
            let (x, y) = forced.scored_mono(cfg.scale);
            let name = song
                .file_name()
                .map_or(r.song.clone(), |n| n.to_string_lossy().into());
            plot::spectrogram_plot(
                &path,
                &x,
                &y,
                cfg.sample_rate,
                [
                    &format!("{name}, {}: original", r.part),
                    &format!("predicted ({:.1} dB gain)", r.model.gain_db),
                ],
            )?;
            if !a.json {
                println!("spectrograms -> {}", path.display());
            }
        }
        reports.push(r);
    }
    if a.json {
        let doc = serde_json::json!({
            "model": a.model.display().to_string(),
            "sample_rate": cfg.sample_rate,
            "channel_mode": cfg.channel_mode,
            "songs": reports,
        });
        let text = serde_json::to_string_pretty(&doc).map_err(|e| Error::Other(e.to_string()))?;
        println!("{text}");
    } else {
        print_eval_table(&a.model, cfg, &reports);
    }
    Ok(())
}

/// Where `eval --plot` writes each song's spectrograms: one `.png` file for
/// one song, or `DIR/<song name>.png` (created if need be) for any number.
fn plot_paths(plot: Option<&Path>, songs: &[PathBuf]) -> Result<Vec<Option<PathBuf>>> {
    let Some(target) = plot else {
        return Ok(vec![None; songs.len()]);
    };
    let is_png = target
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if is_png && !target.is_dir() {
        if songs.len() != 1 {
            return Err(Error::config(
                "--plot FILE.png takes one song; give a directory for several",
            ));
        }
        return Ok(vec![Some(target.to_path_buf())]);
    }
    std::fs::create_dir_all(target)
        .map_err(|e| Error::file(target, format!("cannot create: {e}")))?;
    let mut used = std::collections::HashSet::new();
    Ok(songs
        .iter()
        .map(|s| {
            let stem = s
                .file_stem()
                .map_or("song".into(), |n| n.to_string_lossy().into_owned());
            // Two songs of the same name in different folders get -2, -3, ...
            let mut name = stem.clone();
            let mut k = 1;
            while !used.insert(name.clone()) {
                k += 1;
                name = format!("{stem}-{k}");
            }
            Some(target.join(format!("{name}.png")))
        })
        .collect())
}

fn print_eval_table(model: &Path, cfg: &RunConfig, reports: &[SongReport]) {
    println!(
        "model {} ({} Hz, {}); MSE in sample units (full scale = 1), prediction gain in dB, bits per sample (b)",
        model.display(),
        cfg.sample_rate,
        cfg.channel_mode.name()
    );
    let names: Vec<String> = reports
        .iter()
        .map(|r| format!("{}{}", r.song, if r.training_song { " *" } else { "" }))
        .collect();
    let w = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:<w$}  {:<9} {:>9}  {:>27}  {:>27}  {:>27}  {:>27}  {:>27}",
        "song", "part", "samples", "model", "next = current", "linear", "LPC-32", "cascade"
    );
    for (r, name) in reports.iter().zip(&names) {
        let cell = |f: &eval::Figure| {
            format!(
                "{:.3e} {:>6.2} dB {:>5.2} b",
                f.mse, f.gain_db, f.bits_per_sample
            )
        };
        println!(
            "{:<w$}  {:<9} {:>9}  {:>27}  {:>27}  {:>27}  {:>27}  {:>27}",
            name,
            r.part,
            r.samples,
            cell(&r.model),
            cell(&r.next_equals_current),
            cell(&r.linear),
            cell(&r.lpc),
            cell(&r.cascade)
        );
    }
    for (r, name) in reports.iter().zip(&names) {
        if let Some(bits) = r.model_bits_per_sample {
            println!("{name}: the model's own distribution: {bits:.3} bits per sample (16-bit)");
        }
    }
    if reports.iter().any(|r| r.training_song) {
        println!("* a training song of this model (by path): only its last part was held out");
    }
}
