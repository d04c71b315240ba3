//! What `generate` reports of a take ([`TakeReport`]) and the bounds on
//! what it may be asked for.

use crate::error::{Error, Result};

/// Levels of one take, in audio units (full scale = 1) over all channels.
#[derive(Clone, Debug, PartialEq)]
pub struct TakeReport {
    pub frames: usize,
    pub rms_dbfs: f64,
    /// RMS over the take's last second (or all of it, when shorter).
    pub last_second_rms_dbfs: f64,
    pub peak: f64,
    /// Samples the model put beyond full scale (clipped before feedback).
    pub clipped: u64,
    pub samples: u64,
    /// The lowest RMS of any one-second stretch of the take (every start,
    /// frame by frame; all of it when shorter), over all channels.
    pub quietest_second_dbfs: f64,
    /// The prime's RMS over all channels.
    pub prime_rms_dbfs: f64,
    /// The take's long-term spectrum, its mono mix (`spectrum`).
    pub spectrum: Vec<f64>,
    /// Its log-spectral distance from the song's (`spectrum::lsd_db`), when given one.
    pub lsd_db: Option<f64>,
}

/// Below this RMS over its last second a take has collapsed to silence.
pub const SILENCE_DBFS: f64 = -60.0;
/// More than this fraction of clipped samples: the take exploded.
pub const EXPLODED_FRACTION: f64 = 0.01;

impl TakeReport {
    /// The take's RMS minus the prime's, dB.
    pub fn level_vs_prime_db(&self) -> f64 {
        self.rms_dbfs - self.prime_rms_dbfs
    }
    pub fn collapsed(&self) -> bool {
        self.last_second_rms_dbfs < SILENCE_DBFS
    }
    pub fn exploded(&self) -> bool {
        self.clipped as f64 > EXPLODED_FRACTION * self.samples as f64
    }
}

/// Longest take `generate` writes: one hour. Generation runs at about real
/// time, so a longer request is far more likely a slip (`--seconds 1e12`)
/// than a wish, and it would fill a disk before it finished.
pub const MAX_SECONDS: f64 = 3600.0;

/// Frames of a take of `seconds` at `sample_rate`, after checking the
/// request: a positive number, at most [`MAX_SECONDS`], and small enough for
/// a WAV file of `channels` channels of `bytes_per_sample` bytes (4 GiB).
pub fn take_frames(
    seconds: f64,
    sample_rate: u32,
    channels: usize,
    bytes_per_sample: usize,
) -> Result<usize> {
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(Error::config("--seconds must be a positive number"));
    }
    if seconds > MAX_SECONDS {
        return Err(Error::config(format!(
            "--seconds {seconds} is more than the {MAX_SECONDS} seconds (one hour) a take may last"
        )));
    }
    let frames = ((seconds * f64::from(sample_rate)).round() as usize).max(1);
    let bytes = frames as u64 * (channels * bytes_per_sample) as u64;
    if bytes > crate::wavstream::MAX_DATA_BYTES {
        return Err(Error::config(format!(
            "--seconds {seconds}: {bytes} bytes of samples is more than a WAV file can hold (4 GiB)"
        )));
    }
    Ok(frames)
}

pub(crate) fn dbfs(mean_square: f64) -> f64 {
    10.0 * mean_square.max(1e-30).log10()
}
