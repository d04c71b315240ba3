//! `wavelstm generate`: takes primed on a song's start and run free, each
//! streamed to its WAV, their levels printed, optionally a spectrogram.

use super::CommonArgs;
use crate::atomic;
use crate::audio::{self, ChannelMode, SampleFormat};
use crate::checkpoint;
use crate::error::{Error, Result};
use crate::eval;
use crate::generate::{self, GenerateConfig, TakeReport};
use crate::model::Output;
use crate::plot;
use crate::spectrum;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args, Debug)]
#[command(
    after_help = "The model reads the first --prime-seconds of the song teacher-forced, then runs free: \
each output sample becomes the newest sample of the next input window. Outputs are clipped to full \
scale (±1 in audio units) before they are fed back. A model with the mse head is deterministic, so \
its variations are identical; a mulaw head samples at --temperature (0: the most likely value), a \
laplace or logistic head with its scale times --temperature (0: its location); a model over the cascade \
(--base cascade) adds --temperature times unit Gaussian noise in its local gain units to its output \
(its excitation; 0: deterministic), and the cascade runs on the generated past. The \
takes are written in the song's level at the model's sample rate, without the prime.

Printed for every take: its RMS, peak and clipped share; the quietest second (the lowest RMS of any \
one-second stretch, dBFS); its RMS minus the prime's (dB); and the log-spectral distance of its \
long-term spectrum from the whole song's (mono mixes; Welch, 2048-point Hann frames at 50 % overlap, \
the RMS over all 1025 bins of the difference of their levels in dB). For scale, on the shared clips \
the two halves of a song are 3-6 dB apart and white noise at the song's RMS 38-71 dB."
)]
pub(super) struct GenerateArgs {
    /// A checkpoint written by `wavelstm train`.
    #[arg(long, short)]
    pub(super) model: PathBuf,
    /// The song whose start primes the model.
    #[arg(long)]
    pub(super) prime: PathBuf,
    /// Seconds to generate per take.
    #[arg(long, default_value_t = 20.0)]
    pub(super) seconds: f64,
    /// The WAV to write; with --variations K > 1, NAME_1.wav ... NAME_K.wav.
    #[arg(long, short, default_value = "gen.wav")]
    pub(super) out: PathBuf,
    /// Seconds of the song read before the model runs free.
    #[arg(long, default_value_t = 2.0)]
    pub(super) prime_seconds: f64,
    /// Takes generated together, as one batch.
    #[arg(long, default_value_t = 1)]
    pub(super) variations: usize,
    /// Seed of the sampling (mulaw, laplace and logistic heads); the same seed gives the same takes.
    #[arg(long, default_value_t = 0)]
    pub(super) seed: u64,
    /// Softmax temperature of the mulaw head (0: most likely value), factor on the
    /// laplace or logistic head's scale (0: its location), level of the excitation of a model over
    /// the cascade; no effect on a plain mse model.
    #[arg(long, default_value_t = 1.0)]
    pub(super) temperature: f64,
    /// Write 32-bit float instead of 16-bit PCM.
    #[arg(long)]
    pub(super) float: bool,
    /// Also draw the long-term spectra of the whole song and of every take
    /// (the spectra the spectral distance compares) to this PNG.
    #[arg(long)]
    pub(super) plot: Option<PathBuf>,
    /// Also write spectrograms of the original (prime and how the song goes on)
    /// and of the prime followed by the first take, side by side, to this PNG.
    #[arg(long)]
    pub(super) spectrogram: Option<PathBuf>,
    #[command(flatten)]
    pub(super) common: CommonArgs,
}

/// The file of take `k` (from 1) of `takes`: `out` itself for one take,
/// else `out` with `_k` before its extension.
fn take_path(out: &Path, k: usize, takes: usize) -> PathBuf {
    if takes == 1 {
        return out.to_path_buf();
    }
    let stem = out
        .file_stem()
        .map_or("gen".into(), |s| s.to_string_lossy().into_owned());
    let name = match out.extension() {
        Some(e) => format!("{stem}_{k}.{}", e.to_string_lossy()),
        None => format!("{stem}_{k}"),
    };
    out.with_file_name(name)
}

/// Generate as the arguments say; returns each take's levels.
pub(super) fn run(a: &GenerateArgs) -> Result<Vec<TakeReport>> {
    let positive = |v: f64| v.is_finite() && v > 0.0;
    // The rate is the model's, known later: check at the highest one first.
    generate::take_frames(a.seconds, audio::MAX_SAMPLE_RATE, 1, 2)?;
    if !positive(a.prime_seconds) {
        return Err(Error::config("--prime-seconds must be a positive number"));
    }
    if a.variations == 0 {
        return Err(Error::config("--variations must be at least 1"));
    }
    if !(a.temperature.is_finite() && a.temperature >= 0.0) {
        return Err(Error::config("--temperature must be a number ≥ 0"));
    }
    let paths: Vec<PathBuf> = (1..=a.variations)
        .map(|k| take_path(&a.out, k, a.variations))
        .collect();
    for p in paths.iter().chain(&a.plot).chain(&a.spectrogram) {
        atomic::check_output(p)?;
    }
    let ck = checkpoint::load(&a.model)?;
    let cfg = &ck.config;
    let song = eval::load_song(&a.prime, cfg)?;
    let rate = cfg.sample_rate;
    let c = song.channels;
    let prime_frames = ((a.prime_seconds * rate as f64).round() as usize).min(song.frames());
    let frames = generate::take_frames(a.seconds, rate, c, if a.float { 4 } else { 2 })?;
    let prime: Vec<f32> = song.samples[..prime_frames * c]
        .iter()
        .map(|v| v / cfg.scale)
        .collect();
    let mut engine = super::checkpoint_engine(&a.common, &ck)?;
    let format = if a.float {
        SampleFormat::Float32
    } else {
        SampleFormat::Int16
    };
    let mut streams = paths
        .iter()
        .map(|p| crate::wavstream::WavStream::create(p, c, rate, format))
        .collect::<Result<Vec<_>>>()?;
    eprintln!(
        "generating {} take(s) of {:.2} s on {} after {:.2} s of {}",
        a.variations,
        frames as f64 / rate as f64,
        engine.describe(),
        prime_frames as f64 / rate as f64,
        a.prime.display()
    );
    let bar = ProgressBar::new(frames as u64);
    bar.set_style(
        ProgressStyle::with_template("generating [{bar:30}] {pos}/{len} frames {msg} ETA {eta}")
            .expect("static template")
            .progress_chars("=> "),
    );
    let song_spectrum =
        spectrum::long_term(&audio::convert_channels(&song, ChannelMode::Mono)?.samples);
    let started = Instant::now();
    let g = GenerateConfig {
        frames,
        takes: a.variations,
        seed: a.seed,
        temperature: a.temperature,
        song_spectrum: Some(song_spectrum.clone()),
        measure_int16: !a.float,
        excitation_order: crate::excitation::DEFAULT_ORDER,
    };
    let reports = generate::generate(
        engine.as_mut(),
        cfg,
        &prime,
        &g,
        &mut |frame| {
            for (s, f) in streams.iter_mut().zip(frame.chunks_exact(c)) {
                s.write_frame(f)?;
            }
            Ok(())
        },
        &mut |done| {
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            bar.set_position(done as u64);
            bar.set_message(format!(
                "{:.2}x real time",
                done as f64 / rate as f64 / secs
            ));
        },
    )?;
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    for s in streams {
        s.finish()?;
    }
    let audio_secs = frames as f64 / rate as f64;
    println!(
        "{} take(s) of {:.2} s in {:.1} s on {}: {:.2}x real time ({:.2}x counting every take)",
        a.variations,
        audio_secs,
        wall,
        engine.describe(),
        audio_secs / wall.max(1e-9),
        audio_secs * a.variations as f64 / wall.max(1e-9)
    );
    for (p, r) in paths.iter().zip(&reports) {
        println!("{}", take_summary(p, r));
    }
    if matches!(cfg.model.output, Output::Mse) && a.variations > 1 {
        println!("note: the mse head is deterministic, so the takes are identical; train with --output laplace, logistic or mulaw to sample");
    }
    let name = a
        .prime
        .file_name()
        .map_or("song".into(), |n| n.to_string_lossy().into_owned());
    if let Some(plot_path) = &a.plot {
        let mut curves = vec![(format!("{name} (whole song)"), song_spectrum)];
        for (p, r) in paths.iter().zip(&reports) {
            let take = p
                .file_name()
                .map_or("take".into(), |n| n.to_string_lossy().into_owned());
            let lsd = r
                .lsd_db
                .map_or(String::new(), |d| format!(", {d:.1} dB away"));
            curves.push((format!("{take}{lsd}"), r.spectrum.clone()));
        }
        plot::spectrum_plot(plot_path, rate, &curves)?;
        println!("long-term spectra -> {}", plot_path.display());
    }
    if let Some(plot_path) = &a.spectrogram {
        let mono = |x: &audio::Audio| audio::convert_channels(x, ChannelMode::Mono);
        let end = (prime_frames + frames).min(song.frames());
        let original = mono(&audio::Audio {
            sample_rate: rate,
            channels: c,
            samples: song.samples[..end * c].to_vec(),
        })?;
        let take = audio::load(&paths[0], ChannelMode::Mono, None)?;
        let mut generated = mono(&audio::Audio {
            sample_rate: rate,
            channels: c,
            samples: song.samples[..prime_frames * c].to_vec(),
        })?
        .samples;
        generated.extend_from_slice(&take.samples);
        plot::spectrogram_plot(
            plot_path,
            &original.samples,
            &generated,
            rate,
            [
                &format!("{name}: original"),
                &format!(
                    "{:.1} s prime, then generated",
                    prime_frames as f64 / rate as f64
                ),
            ],
        )?;
        println!("spectrograms -> {}", plot_path.display());
    }
    Ok(reports)
}

fn take_summary(path: &Path, r: &TakeReport) -> String {
    let mut verdict = String::new();
    if r.collapsed() {
        verdict.push_str(&format!(
            ", COLLAPSED to silence (last second below {} dBFS)",
            generate::SILENCE_DBFS
        ));
    }
    if r.exploded() {
        verdict.push_str(&format!(
            ", EXPLODED (more than {}% of samples clipped)",
            generate::EXPLODED_FRACTION * 100.0
        ));
    }
    format!(
        "{}: RMS {:.1} dBFS (last second {:.1} dBFS), peak {:.3}, clipped {:.2}%{}\n  \
         quietest second {:.1} dBFS, RMS {:+.1} dB from the prime's, \
         spectral distance from the song {}",
        path.display(),
        r.rms_dbfs,
        r.last_second_rms_dbfs,
        r.peak,
        100.0 * r.clipped as f64 / r.samples.max(1) as f64,
        verdict,
        r.quietest_second_dbfs,
        r.level_vs_prime_db(),
        r.lsd_db.map_or("-".into(), |d| format!("{d:.1} dB")),
    )
}
