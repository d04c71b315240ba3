//! `wavelstm predict`: a whole song predicted teacher-forced, written as a
//! WAV at the song's own rate and channel count, and optionally plotted.

use super::CommonArgs;
use crate::atomic;
use crate::audio::{self, ChannelMode, SampleFormat};
use crate::checkpoint;
use crate::error::{Error, Result};
use crate::metrics::Score;
use crate::plot;
use crate::predict_song::predict_song_adapting;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub(super) struct PredictArgs {
    /// A checkpoint written by `wavelstm train`.
    #[arg(long, short)]
    pub(super) model: PathBuf,
    /// The song to predict.
    pub(super) song: PathBuf,
    /// The predicted WAV to write.
    #[arg(long, short, default_value = "pred.wav")]
    pub(super) out: PathBuf,
    /// Write 32-bit float instead of 16-bit PCM.
    #[arg(long)]
    pub(super) float: bool,
    /// Also write the prediction unclipped, in audio units, at the model's rate
    /// with every channel it predicts: `[frames, channels]` little-endian f32,
    /// or NumPy's format for a `.npy` name. Row n predicts frame n from the
    /// frames before it (the first --frame rows, which have no window, hold the song).
    #[arg(long)]
    pub(super) raw: Option<PathBuf>,
    /// Also plot original and predicted waveform, and their difference, to this PNG
    /// (the model's view: its rate, mono mixdown or first channel).
    #[arg(long)]
    pub(super) plot: Option<PathBuf>,
    /// Start of the plotted window, in seconds [default: the middle of the song].
    #[arg(long, requires = "plot")]
    pub(super) from: Option<f64>,
    /// End of the plotted window, in seconds [default: --from + 0.05].
    #[arg(long, requires = "plot")]
    pub(super) to: Option<f64>,
    #[command(flatten)]
    pub(super) adapt: super::adapt::AdaptArgs,
    #[command(flatten)]
    pub(super) common: CommonArgs,
}

/// Seconds of waveform `predict --plot` shows by default: a few cycles of a
/// low note, each cycle still many samples wide.
const DEFAULT_PLOT_WINDOW: f64 = 0.05;

pub(super) fn run(a: &PredictArgs) -> Result<Score> {
    atomic::check_output(&a.out)?;
    let ck = checkpoint::load(&a.model)?;
    let mut engine = super::checkpoint_engine(&a.common, &ck)?;
    eprintln!("predicting on {}", engine.describe());
    if let (Some(from), Some(to)) = (a.from, a.to) {
        if !(from >= 0.0 && to > from) {
            return Err(Error::config("--from and --to: need 0 ≤ from < to"));
        }
    }
    let adapt = a.adapt.config();
    if let Some(ad) = &adapt {
        crate::eval::check_adapt(&ck.config, ad)?;
    }
    let p = predict_song_adapting(engine.as_mut(), &ck.config, &a.song, adapt.as_ref())?;
    audio::write_wav(
        &a.out,
        &p.out,
        if a.float {
            SampleFormat::Float32
        } else {
            SampleFormat::Int16
        },
    )?;
    if let Some(raw) = &a.raw {
        crate::rawaudio::write(raw, &p.predicted.samples, p.predicted.channels)?;
    }
    let s = p.score;
    println!(
        "{}: MSE {:.3e}, prediction gain {:.2} dB (next = current: {:.2} dB) -> {}",
        a.song.display(),
        s.mse,
        s.gain_db,
        s.baseline_gain_db,
        a.out.display()
    );
    if let Some(path) = &a.plot {
        let mono = |x: &audio::Audio| audio::convert_channels(x, ChannelMode::Mono);
        let (x, y) = (mono(&p.input)?, mono(&p.predicted)?);
        let from = a.from.unwrap_or(x.duration_secs() / 2.0);
        let to = a.to.unwrap_or(from + DEFAULT_PLOT_WINDOW);
        plot::prediction_plot(path, &x.samples, &y.samples, x.sample_rate, from, to).map_err(
            |e| match e {
                Error::Config(m) => Error::config(format!("--from / --to: {m}")),
                e => e,
            },
        )?;
        println!("waveform plot -> {}", path.display());
    }
    Ok(s)
}
