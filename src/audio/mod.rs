//! Audio in and out: decode a file into samples, change its channel layout or
//! sample rate, write it back as WAV, and measure its levels.
//!
//! Every sample in this crate is an `f32` in interleaved, frame-major order:
//! a *frame* is one instant and holds one sample per channel, so sample `ch`
//! of frame `f` sits at `samples[f * channels + ch]`. Integer formats map to
//! `[-1, 1]` by dividing by 2^(bits-1), which is exact up to 24 bits: a
//! 16-bit and a 24-bit file holding the same music decode to identical `f32`s.
//!
//! WAV is read by our own code (`wav`), because the format is simple, the
//! header is where malformed files do their damage, and reading it ourselves
//! lets every bad field be named in the error. FLAC, MP3 and Ogg Vorbis go
//! through symphonia (`compressed`). Channel layouts and rates are changed in
//! `layout`. Nothing here prints and nothing panics: every failure is an
//! [`Error::File`] naming the file and the problem in one line.
//!
//! # What a file may declare
//! A file is untrusted input, and its header is checked against these ranges
//! before anything is allocated for it: a sample rate from
//! [`MIN_SAMPLE_RATE`] to [`MAX_SAMPLE_RATE`] Hz, 1 to [`MAX_CHANNELS`]
//! channels. No decode or resample produces more than [`MAX_SAMPLES`]
//! samples, and every large buffer is reserved fallibly, so a file that
//! would need more memory than there is becomes an error, not an abort.
//! Samples must be finite and within [`MAX_LEVEL`] of full scale.

mod compressed;
mod layout;
mod metadata;
mod wav;

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

use crate::atomic::write_atomic;
use crate::error::{Error, Result};

/// Lowest sample rate a file may declare, in Hz. Below it lies no music:
/// telephone speech is 8 kHz, and a header claiming a few Hz is corrupt.
pub const MIN_SAMPLE_RATE: u32 = 1_000;
/// Highest sample rate a file may declare, in Hz (16 times 48 kHz, the top of
/// what studio converters offer).
pub const MAX_SAMPLE_RATE: u32 = 768_000;
/// Most channels a file may declare: enough for 7th-order ambisonics (64),
/// far fewer than the 65,535 a WAV header can state.
pub const MAX_CHANNELS: usize = 64;
/// Most samples (all channels) one decode or resample may produce: 2^30,
/// 4 GiB as `f32`, over three hours of 44.1 kHz stereo.
pub const MAX_SAMPLES: usize = 1 << 30;
/// Largest sample magnitude accepted, +60 dBFS. Float WAV and lossy decoders
/// may legitimately go somewhat beyond full scale (±1), but no recording sits
/// a thousand times over it: such values are bytes that are not samples (a
/// corrupt or mislabelled file), and a file holding them is refused.
pub const MAX_LEVEL: f32 = 1000.0;

/// Decoded audio.
///
/// `samples` is interleaved, frame-major: `samples[frame * channels + ch]`.
/// Integer PCM lands in `[-1, 1]`; float WAV keeps its stored values and a
/// lossy decoder may overshoot a little, so values beyond ±1 can occur.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    pub sample_rate: u32,
    pub channels: usize,
    pub samples: Vec<f32>,
}

impl Audio {
    /// Number of frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.len().checked_div(self.channels).unwrap_or(0)
    }

    /// Length in seconds.
    pub fn duration_secs(&self) -> f64 {
        if self.sample_rate == 0 {
            return 0.0;
        }
        self.frames() as f64 / f64::from(self.sample_rate)
    }

    /// One channel as its own contiguous signal; empty if `ch` is out of range.
    pub fn channel(&self, ch: usize) -> Vec<f32> {
        if ch >= self.channels {
            return Vec::new();
        }
        self.samples
            .iter()
            .skip(ch)
            .step_by(self.channels)
            .copied()
            .collect()
    }
}

/// The channel layout a caller wants. A run configuration stores it as
/// `"mono"` or `"stereo"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelMode {
    /// One channel: the mean of all the file's channels.
    Mono,
    /// Two channels: a mono file is copied into both; more than two is an error,
    /// since there is no single right way to fold surround into stereo.
    Stereo,
}

impl ChannelMode {
    /// `mono` or `stereo`, as a run configuration stores it.
    pub fn name(self) -> &'static str {
        match self {
            ChannelMode::Mono => "mono",
            ChannelMode::Stereo => "stereo",
        }
    }
}

/// Sample encoding for [`write_wav`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SampleFormat {
    /// 16-bit integer PCM, the format every player reads.
    #[default]
    Int16,
    /// 32-bit IEEE float: no quantisation, for inspecting model output exactly.
    Float32,
}

/// A decoded file and a short name of its codec ("PCM 16-bit", "FLAC", "MP3", "Vorbis", ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub audio: Audio,
    pub codec: String,
    /// Oddities the file was decoded in spite of (e.g. a partial last frame),
    /// one line each, for the caller to show.
    pub warnings: Vec<String>,
}

/// A summary of one file, as `wavelstm info` shows it.
///
/// Levels are per channel, in dB relative to full scale (1.0): `peak_dbfs` of
/// the largest magnitude, `rms_dbfs` of the root mean square over the whole
/// file. A silent channel reads `-inf`.
#[derive(Debug, Clone, PartialEq)]
pub struct FileInfo {
    pub codec: String,
    pub sample_rate: u32,
    pub channels: usize,
    pub frames: usize,
    pub duration_secs: f64,
    pub peak_dbfs: Vec<f64>,
    pub rms_dbfs: Vec<f64>,
    /// See [`Decoded::warnings`].
    pub warnings: Vec<String>,
}

/// Decode a whole file: WAV (8/16/24/32-bit integer, 32/64-bit float, plain or
/// `WAVE_FORMAT_EXTENSIBLE`), FLAC, MP3 or Ogg Vorbis, any channel count.
///
/// The container is recognised by its first bytes, not by the file name.
/// MP3 encoder delay and padding are trimmed (gapless), so an MP3 made from a
/// WAV decodes to the WAV's length. Files holding no frames, or any NaN or
/// infinite sample, are errors: nothing downstream could use them.
pub fn decode(path: &Path) -> Result<Decoded> {
    decode_bytes(path).map_err(|problem| Error::file(path, problem))
}

/// Decode `path`, then bring it to the channel layout `mode` and, if given and
/// different from the file's own, the sample rate `sample_rate`.
pub fn load(path: &Path, mode: ChannelMode, sample_rate: Option<u32>) -> Result<Audio> {
    load_with_warnings(path, mode, sample_rate).map(|(audio, _)| audio)
}

/// [`load`], and the decoder's warnings (see [`Decoded::warnings`]).
pub fn load_with_warnings(
    path: &Path,
    mode: ChannelMode,
    sample_rate: Option<u32>,
) -> Result<(Audio, Vec<String>)> {
    let Decoded {
        audio, warnings, ..
    } = decode(path)?;
    let audio = layout::channels_to(&audio, mode).map_err(|p| Error::file(path, p))?;
    let audio = match sample_rate {
        Some(rate) if rate != audio.sample_rate => {
            layout::resample_to(&audio, rate).map_err(|p| Error::file(path, p))?
        }
        _ => audio,
    };
    Ok((audio, warnings))
}

/// Change the channel layout (see [`ChannelMode`]); a layout that already
/// matches is returned unchanged.
pub fn convert_channels(audio: &Audio, mode: ChannelMode) -> Result<Audio> {
    layout::channels_to(audio, mode).map_err(Error::Other)
}

/// Resample to `to_rate` Hz.
///
/// The output has `round(frames * to_rate / sample_rate)` frames and is
/// time-aligned with the input: the resampler's filter delay is removed, so
/// frame `i` of the output sits at time `i / to_rate` of the input. The
/// filter is a windowed sinc at least 512 taps long at the lower rate,
/// applied by FFT (rubato's `FftFixedInOut`). Measured from 44.1 to 22.05 kHz:
/// flat within 0.01 dB up to 10.5 kHz (0.95 of the new Nyquist frequency),
/// more than 140 dB down from 11,025 Hz on, so nothing aliases.
pub fn resample(audio: &Audio, to_rate: u32) -> Result<Audio> {
    layout::resample_to(audio, to_rate).map_err(Error::Other)
}

/// Write `audio` as a WAV file, atomically (see [`crate::atomic`]).
///
/// Values outside `[-1, 1]` are clipped to it, never wrapped around, in both
/// formats, and NaN is written as 0. 16-bit output rounds to the nearest step
/// without dither, so 16-bit audio read by [`decode`] writes back bit for bit.
pub fn write_wav(path: &Path, audio: &Audio, format: SampleFormat) -> Result<()> {
    let problem = |p: String| Error::file(path, format!("cannot write: {p}"));
    layout::check_layout(audio).map_err(problem)?;
    let channels = u16::try_from(audio.channels).map_err(|_| {
        problem(format!(
            "{} channels is more than WAV can hold (65535)",
            audio.channels
        ))
    })?;
    let bytes_per_sample = match format {
        SampleFormat::Int16 => 2,
        SampleFormat::Float32 => 4,
    };
    // The RIFF size fields are 32-bit; leave room for the header.
    let data_bytes = audio.samples.len() as u64 * bytes_per_sample;
    if data_bytes > u64::from(u32::MAX) - 1024 {
        return Err(problem(format!(
            "{data_bytes} bytes of samples is more than a WAV file can hold (4 GiB)"
        )));
    }
    let spec = hound::WavSpec {
        channels,
        sample_rate: audio.sample_rate,
        bits_per_sample: (bytes_per_sample * 8) as u16,
        sample_format: match format {
            SampleFormat::Int16 => hound::SampleFormat::Int,
            SampleFormat::Float32 => hound::SampleFormat::Float,
        },
    };
    let hound_err = |e: hound::Error| Error::file(path, format!("cannot write: {e}"));
    write_atomic(path, |out| {
        let mut wav = hound::WavWriter::new(out, spec).map_err(hound_err)?;
        for &x in &audio.samples {
            match format {
                SampleFormat::Int16 => wav.write_sample(to_i16(x)),
                SampleFormat::Float32 => wav.write_sample(clip(x)),
            }
            .map_err(hound_err)?;
        }
        wav.finalize().map_err(hound_err)
    })
}

/// Decode `path` and measure it.
pub fn info(path: &Path) -> Result<FileInfo> {
    let Decoded {
        audio,
        codec,
        warnings,
    } = decode(path)?;
    let db = |x: f64| 20.0 * x.log10();
    let (mut peak_dbfs, mut rms_dbfs) = (Vec::new(), Vec::new());
    for ch in 0..audio.channels {
        let signal = audio.channel(ch);
        let peak = signal
            .iter()
            .fold(0.0f64, |m, &x| m.max(f64::from(x).abs()));
        let energy: f64 = signal.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        peak_dbfs.push(db(peak));
        rms_dbfs.push(db((energy / signal.len() as f64).sqrt()));
    }
    Ok(FileInfo {
        codec,
        sample_rate: audio.sample_rate,
        channels: audio.channels,
        frames: audio.frames(),
        duration_secs: audio.duration_secs(),
        peak_dbfs,
        rms_dbfs,
        warnings,
    })
}

// ---------------------------------------------------------------------------
// Decoding. Internal functions return the bare problem as a `String`; the
// public entry points attach the path.

type Problem<T> = std::result::Result<T, String>;

/// The largest file read: a full 4 GiB RIFF file.
const MAX_FILE_BYTES: u64 = 1 << 32;

/// Check what a header declares against the documented ranges (see the
/// module's documentation), before anything is allocated for it.
fn check_declared(sample_rate: u32, channels: usize) -> Problem<()> {
    if channels == 0 {
        return Err("invalid header: 0 channels".into());
    }
    if channels > MAX_CHANNELS {
        return Err(format!(
            "declares {channels} channels; at most {MAX_CHANNELS} are supported (corrupt header?)"
        ));
    }
    if sample_rate == 0 {
        return Err("invalid header: sample rate is 0 Hz".into());
    }
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sample_rate) {
        return Err(format!(
            "declares a sample rate of {sample_rate} Hz; rates from {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz are supported (corrupt header?)"
        ));
    }
    Ok(())
}

/// A sample buffer of `n` elements, reserved fallibly and within [`MAX_SAMPLES`].
fn sample_buffer(n: usize, what: &str) -> Problem<Vec<f32>> {
    let mut v = Vec::new();
    if n > MAX_SAMPLES {
        return Err(too_many_samples(n, what));
    }
    v.try_reserve_exact(n).map_err(|_| {
        format!(
            "not enough memory for {what}: {n} samples ({} MiB)",
            n >> 18
        )
    })?;
    Ok(v)
}

fn too_many_samples(n: usize, what: &str) -> String {
    format!("{what} would hold {n} samples, more than the {MAX_SAMPLES} this program handles")
}

/// What the first bytes of a file say it is.
enum Container {
    Wav,
    /// Handed to symphonia, with the extension to hint its probe.
    Other(&'static str),
}

fn decode_bytes(path: &Path) -> Problem<Decoded> {
    let bytes = read_file(path)?;
    let decoded = match sniff(&bytes)? {
        Container::Wav => wav::decode(&bytes)?,
        Container::Other(ext) => compressed::decode(bytes, ext)?,
    };
    check_samples(&decoded.audio)?;
    Ok(decoded)
}

fn read_file(path: &Path) -> Problem<Vec<u8>> {
    let meta = fs::metadata(path).map_err(io_problem)?;
    if meta.is_dir() {
        return Err("is a directory, not an audio file".into());
    }
    // Reading a device or a pipe might never end.
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    if meta.len() == 0 {
        return Err("empty file (0 bytes)".into());
    }
    // A WAV cannot be larger (its sizes are 32-bit), and a compressed file of
    // that size would decode to more than MAX_SAMPLES anyway.
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "{} bytes is larger than any file this program reads ({} bytes)",
            meta.len(),
            MAX_FILE_BYTES
        ));
    }
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(meta.len() as usize)
        .map_err(|_| format!("not enough memory to read its {} bytes", meta.len()))?;
    File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES).read_to_end(&mut bytes))
        .map_err(io_problem)?;
    if bytes.is_empty() {
        return Err("empty file (0 bytes)".into());
    }
    Ok(bytes)
}

fn io_problem(e: io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => format!("cannot read: {e}"),
    }
}

/// Recognise the container from its magic bytes.
///
/// Only files that *start* like a known format are decoded: symphonia's probe
/// would otherwise scan arbitrary bytes for anything resembling an MP3 frame
/// sync and decode noise from, say, a text file.
fn sniff(b: &[u8]) -> Problem<Container> {
    let starts = |magic: &[u8]| b.starts_with(magic);
    if starts(b"RIFF") {
        return Ok(Container::Wav);
    }
    if starts(b"RF64") || starts(b"RIFX") {
        return Err(
            "unsupported WAV variant (RF64 or big-endian RIFX); only RIFF WAV is read".into(),
        );
    }
    if starts(b"fLaC") {
        return Ok(Container::Other("flac"));
    }
    if starts(b"OggS") {
        return Ok(Container::Other("ogg"));
    }
    // An ID3v2 tag or an MPEG audio frame sync (11 set bits).
    if starts(b"ID3") || (b.len() >= 2 && b[0] == 0xFF && b[1] & 0xE0 == 0xE0) {
        return Ok(Container::Other("mp3"));
    }
    let head = String::from_utf8_lossy(&b[..b.len().min(8)]);
    Err(format!("not a recognised audio file (expected WAV, FLAC, MP3 or Ogg Vorbis); it starts with {head:?}"))
}

/// Reject what no caller can use: no frames, or samples that are not numbers
/// or not audio (beyond [`MAX_LEVEL`]).
fn check_samples(audio: &Audio) -> Problem<()> {
    check_declared(audio.sample_rate, audio.channels)?;
    if audio.frames() == 0 {
        return Err("no audio: the file holds 0 frames".into());
    }
    if let Some(i) = audio.samples.iter().position(|x| !x.is_finite()) {
        let what = if audio.samples[i].is_nan() {
            "NaN"
        } else {
            "infinite"
        };
        return Err(format!(
            "sample {} of channel {} is {what} (counting from 0)",
            i / audio.channels,
            i % audio.channels
        ));
    }
    if let Some(i) = audio.samples.iter().position(|x| x.abs() > MAX_LEVEL) {
        let x = audio.samples[i];
        return Err(format!(
            "sample {} of channel {} is {x:e} ({:+.0} dBFS), more than {:.0} dB over full scale: not audio samples (corrupt file?)",
            i / audio.channels,
            i % audio.channels,
            20.0 * f64::from(x.abs()).log10(),
            20.0 * f64::from(MAX_LEVEL).log10()
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Writing.

/// NaN carries no level, so silence is the only honest value for it.
pub(crate) fn clip(x: f32) -> f32 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(-1.0, 1.0)
    }
}

/// Full scale is 32768 steps each way, but +1.0 has no step of its own: it
/// lands on 32767, the largest positive value.
pub(crate) fn to_i16(x: f32) -> i16 {
    (clip(x) * 32_768.0).round().min(32_767.0) as i16
}
