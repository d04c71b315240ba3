//! FLAC, MP3 and Ogg Vorbis, through symphonia.
//!
//! Past its magic bytes a file is untrusted, and symphonia is not free of
//! bugs on hostile input (version 0.5.5, the newest 0.5 release, indexes out
//! of bounds in its Vorbis floor decoder when a header's block size is
//! changed). A panic inside the decoder is caught and becomes an error like
//! any other, and the panic hook is silenced on this thread while it runs, so
//! the user sees one line naming the file, not a crash report.

use std::cell::Cell;
use std::io::{self, Cursor};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use symphonia::core::audio::{SampleBuffer, SignalSpec};
use symphonia::core::codecs::{
    CodecType, DecoderOptions, CODEC_TYPE_FLAC, CODEC_TYPE_MP3, CODEC_TYPE_NULL, CODEC_TYPE_VORBIS,
};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::{check_declared, too_many_samples, Audio, Decoded, Problem, MAX_SAMPLES};

/// Decode with symphonia, turning any panic inside it into an error.
pub(super) fn decode(bytes: Vec<u8>, ext: &'static str) -> Problem<Decoded> {
    quietly(|| symphonia_decode(bytes, ext)).unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(format!(
            "corrupt {} stream: the decoder failed on it ({msg})",
            container_name(ext)
        ))
    })
}

thread_local! {
    /// Set while this thread runs a decoder: its panics are caught, not reported.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Run `f`, catching a panic without the panic hook printing it.
///
/// The process has one panic hook, so it is wrapped once: the wrapper stays
/// silent on a thread inside `quietly` and hands every other panic (another
/// thread's, or this one's outside a decoder) to the hook it replaced.
fn quietly<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    static WRAP: Once = Once::new();
    WRAP.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info)
            }
        }));
    });
    let outer = QUIET.with(|q| q.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(outer));
    result
}

fn symphonia_decode(bytes: Vec<u8>, ext: &str) -> Problem<Decoded> {
    let bytes = super::metadata::strip(bytes, ext)?;
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes)), Default::default());
    let mut hint = Hint::new();
    hint.with_extension(ext);
    // Gapless: drop the encoder delay and padding recorded in the stream
    // (LAME tag, Vorbis granule positions) so lengths match the original.
    let format_opts = FormatOptions {
        enable_gapless: true,
        ..Default::default()
    };
    let probed = symphonia::default::get_probe()
        .format(&hint, source, &format_opts, &MetadataOptions::default())
        .map_err(|e| {
            format!(
                "cannot read the {} stream (corrupt or truncated?): {e}",
                container_name(ext)
            )
        })?;
    let mut reader = probed.format;
    let track = reader
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or("no audio track in the file")?;
    let track_id = track.id;
    let params = track.codec_params.clone();
    let codec = codec_name(params.codec);
    // What the container declares, checked before the decoder sizes its buffers.
    if let (Some(rate), Some(channels)) = (params.sample_rate, params.channels) {
        check_declared(rate, channels.count()).map_err(|p| format!("{codec} stream: {p}"))?;
    }
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(|e| format!("unsupported codec {codec}: {e}"))?;

    let mut samples = Vec::new();
    let mut spec: Option<SignalSpec> = None;
    let mut buf: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match reader.next_packet() {
            Ok(p) => p,
            // Symphonia reports the end of the stream as an unexpected EOF.
            Err(SymphoniaError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(SymphoniaError::ResetRequired) => {
                return Err(
                    "unsupported: the stream changes format partway (chained stream)".into(),
                )
            }
            Err(e) => return Err(format!("corrupt {codec} stream: {e}")),
        };
        if packet.track_id() != track_id {
            continue;
        }
        // A packet that fails to decode is an error, not something to skip:
        // silently dropped packets would shift everything after them in time.
        let decoded = decoder.decode(&packet).map_err(|e| {
            let at = samples.len() / spec.map_or(1, |s| s.channels.count().max(1));
            format!("corrupt {codec} stream at frame {at}: {e}")
        })?;
        let this_spec = *decoded.spec();
        match spec {
            None => {
                check_declared(this_spec.rate, this_spec.channels.count())
                    .map_err(|p| format!("{codec} stream: {p}"))?;
                spec = Some(this_spec);
            }
            Some(s) if s != this_spec => {
                return Err("unsupported: the sample rate or channel count changes partway".into())
            }
            Some(_) => {}
        }
        if decoded.frames() == 0 {
            continue;
        }
        let capacity = decoded.capacity() as u64;
        let b = match &mut buf {
            Some(b) if b.capacity() as u64 >= capacity * this_spec.channels.count() as u64 => b,
            _ => buf.insert(SampleBuffer::new(capacity, this_spec)),
        };
        b.copy_interleaved_ref(decoded);
        let new = b.samples();
        // A few bytes of a compressed stream can claim a great many frames:
        // the output is bounded, and grown fallibly.
        let total = samples.len() + new.len();
        if total > MAX_SAMPLES {
            return Err(too_many_samples(total, &format!("the {codec} stream")));
        }
        samples.try_reserve(new.len()).map_err(|_| {
            format!("not enough memory to decode the {codec} stream ({total} samples)")
        })?;
        samples.extend_from_slice(new);
    }

    // A stream cut short (or ending in garbage, which the demuxers skip while
    // hunting for the next sync word) usually ends cleanly at a packet
    // boundary; only the length its header declares reveals the loss. That
    // length is exact for FLAC (STREAMINFO), Ogg (last granule position) and
    // an MP3 with a LAME tag; without one, symphonia guesses an MP3's length
    // from its bitrate, which proves nothing.
    let declared = match params.codec {
        CODEC_TYPE_MP3 if params.delay.is_none() => None,
        _ => params.n_frames,
    };
    let channels = spec.map_or(1, |s| s.channels.count().max(1));
    let got = (samples.len() / channels) as u64;
    if let Some(declared) = declared.filter(|&n| got < n) {
        return Err(format!("truncated or corrupt: decoded {got} of the {declared} frames the {codec} stream declares"));
    }
    let Some(spec) = spec else {
        return Err(format!("no audio: the {codec} stream holds 0 frames"));
    };
    let audio = Audio {
        sample_rate: spec.rate,
        channels: spec.channels.count(),
        samples,
    };
    Ok(Decoded {
        audio,
        codec,
        warnings: Vec::new(),
    })
}

fn container_name(ext: &str) -> &str {
    match ext {
        "flac" => "FLAC",
        "mp3" => "MP3",
        "ogg" => "Ogg",
        other => other,
    }
}

fn codec_name(codec: CodecType) -> String {
    match codec {
        CODEC_TYPE_FLAC => "FLAC".into(),
        CODEC_TYPE_MP3 => "MP3".into(),
        CODEC_TYPE_VORBIS => "Vorbis".into(),
        other => symphonia::default::get_codecs()
            .get_codec(other)
            .map_or_else(|| format!("{other}"), |d| d.short_name.to_string()),
    }
}
