//! A whole song predicted teacher-forced, and the prediction brought back to
//! the song's own rate and channel count (what `wavelstm predict` writes).

use crate::adapt::AdaptConfig;
use crate::audio::{self, Audio};
use crate::engine::Engine;
use crate::error::Result;
use crate::eval::{self, Scope};
use crate::metrics::{score, Score};
use crate::run_config::RunConfig;
use std::path::Path;

/// A whole song, teacher-forced.
pub struct SongPrediction {
    pub score: Score,
    /// The song and its prediction as the model hears them (its rate and
    /// channel layout; the first `frame` frames have no prediction and are copied).
    pub input: Audio,
    pub predicted: Audio,
    /// The prediction at the song's own rate and channel count.
    pub out: Audio,
}

/// Predict a whole song.
pub fn predict_song(
    engine: &mut dyn Engine,
    cfg: &RunConfig,
    song: &Path,
) -> Result<SongPrediction> {
    predict_song_adapting(engine, cfg, song, None)
}

/// [`predict_song`], the model adapting as it goes when `adapt` is given
/// (dynamic evaluation over the whole song, see `adapt`).
pub fn predict_song_adapting(
    engine: &mut dyn Engine,
    cfg: &RunConfig,
    song: &Path,
    adapt: Option<&AdaptConfig>,
) -> Result<SongPrediction> {
    let raw = audio::decode(song)?.audio;
    let (rate, channels) = (raw.sample_rate, raw.channels);
    let input = eval::load_song(song, cfg)?;
    let frame = cfg.model.frame;
    let positions = eval::positions(input.frames(), frame, Scope::Whole);
    let forced = eval::predict_signal_adapting(engine, cfg, input, positions, adapt)?;
    let c = forced.input.channels;
    let s = score(
        &forced.pred,
        &forced.signal,
        c,
        forced.positions.clone(),
        cfg.scale,
    );
    let mut samples = forced.input.samples[..frame * c].to_vec();
    samples.extend(forced.pred.iter().map(|v| v * cfg.scale));
    let predicted = Audio {
        sample_rate: cfg.sample_rate,
        channels: c,
        samples,
    };
    // Back to the song's own rate and channel count.
    let mut out = predicted.clone();
    if out.channels != channels {
        out = spread_channels(&out, channels);
    }
    if out.sample_rate != rate {
        out = audio::resample(&out, rate)?;
    }
    Ok(SongPrediction {
        score: s,
        input: forced.input,
        predicted,
        out,
    })
}

/// Copy a mono prediction into every channel, or mix stereo down to the song's layout.
pub fn spread_channels(a: &Audio, channels: usize) -> Audio {
    let frames = a.frames();
    let mut samples = Vec::with_capacity(frames * channels);
    for f in 0..frames {
        let frame = &a.samples[f * a.channels..(f + 1) * a.channels];
        let mean = frame.iter().sum::<f32>() / a.channels as f32;
        for ch in 0..channels {
            samples.push(if a.channels == 1 {
                frame[0]
            } else if ch < a.channels && channels >= a.channels {
                frame[ch]
            } else {
                mean
            });
        }
    }
    Audio {
        sample_rate: a.sample_rate,
        channels,
        samples,
    }
}
