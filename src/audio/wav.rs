//! RIFF WAV, read by our own code: every size in the header is checked
//! against the bytes actually present and every field against what the
//! format allows, so each bad field is named in the error.

use super::{check_declared, sample_buffer, Audio, Decoded, Problem};

/// How a WAV file stores its samples.
#[derive(Debug, Clone, Copy, PartialEq)]
enum WavEncoding {
    Int,
    Float,
}

/// The `fmt ` chunk, validated.
#[derive(Debug)]
struct WavFormat {
    encoding: WavEncoding,
    channels: usize,
    sample_rate: u32,
    /// Bits each sample occupies in the file.
    bits: u16,
    /// Bits that carry signal (`WAVE_FORMAT_EXTENSIBLE` may declare fewer than
    /// `bits`); the value is left-justified, so decoding ignores this.
    valid_bits: u16,
}

impl WavFormat {
    fn frame_bytes(&self) -> usize {
        self.channels * usize::from(self.bits / 8)
    }

    fn codec_name(&self) -> String {
        match self.encoding {
            WavEncoding::Float => format!("PCM {}-bit float", self.bits),
            WavEncoding::Int if self.valid_bits < self.bits => {
                format!("PCM {}-bit ({} valid bits)", self.bits, self.valid_bits)
            }
            WavEncoding::Int => format!("PCM {}-bit", self.bits),
        }
    }
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(super) fn decode(b: &[u8]) -> Problem<Decoded> {
    let (format, data, warnings) = parse_wav(b)?;
    let samples = wav_samples(&format, data)?;
    let codec = format.codec_name();
    Ok(Decoded {
        audio: Audio {
            sample_rate: format.sample_rate,
            channels: format.channels,
            samples,
        },
        codec,
        warnings,
    })
}

/// Walk the RIFF chunks up to `data` and return the format and the sample bytes.
///
/// Every size is checked against the bytes actually present, so a lying
/// header becomes an error here instead of an out-of-bounds read later.
/// Chunks after `data` (tags, cue points) are never looked at. A data chunk
/// ending in a partial frame (a cut-off file, a writer's bug) gives its whole
/// frames and a warning, as other decoders do.
fn parse_wav(b: &[u8]) -> Problem<(WavFormat, &[u8], Vec<String>)> {
    if b.len() < 12 {
        return Err(format!(
            "truncated: {} bytes is too short for a WAV header (12 needed)",
            b.len()
        ));
    }
    if &b[8..12] != b"WAVE" {
        let form = String::from_utf8_lossy(&b[8..12]);
        return Err(format!(
            "a RIFF file of form {form:?}, not a WAVE audio file"
        ));
    }
    let mut format: Option<WavFormat> = None;
    let mut pos = 12;
    loop {
        if b.len() - pos < 8 {
            let missing = if format.is_none() { "fmt" } else { "data" };
            return Err(format!(
                "truncated or malformed WAV: no {missing} chunk before the end of the file"
            ));
        }
        let id = &b[pos..pos + 4];
        let size = le_u32(b, pos + 4) as usize;
        let body = pos + 8;
        let remaining = b.len() - body;
        let name = String::from_utf8_lossy(id);
        if id == b"data" {
            let Some(format) = format else {
                return Err("malformed WAV: the data chunk comes before the fmt chunk".into());
            };
            if size > remaining {
                return Err(format!(
                    "truncated: the data chunk declares {size} bytes but only {remaining} remain in the file"
                ));
            }
            let frame = format.frame_bytes();
            let mut warnings = Vec::new();
            let partial = size % frame;
            if partial != 0 {
                warnings.push(format!(
                    "the data chunk ends in a partial frame ({partial} of {frame} bytes), which is ignored"
                ));
            }
            return Ok((format, &b[body..body + size - partial], warnings));
        }
        if size > remaining {
            return Err(format!("truncated: the {name:?} chunk declares {size} bytes but only {remaining} remain in the file"));
        }
        // A second `fmt ` chunk is not allowed by the format; the first one wins.
        if id == b"fmt " && format.is_none() {
            format = Some(parse_fmt(&b[body..body + size])?);
        }
        // Chunks are padded to an even length.
        pos = body + size + (size & 1);
        if pos > b.len() {
            return Err(format!(
                "truncated: the {name:?} chunk's padding byte is missing"
            ));
        }
    }
}

/// Validate a `fmt ` chunk body.
fn parse_fmt(f: &[u8]) -> Problem<WavFormat> {
    if f.len() < 16 {
        return Err(format!(
            "invalid WAV header: the fmt chunk is {} bytes, at least 16 are needed",
            f.len()
        ));
    }
    let tag = le_u16(f, 0);
    let channels = le_u16(f, 2);
    let sample_rate = le_u32(f, 4);
    let block_align = le_u16(f, 12);
    let bits = le_u16(f, 14);
    check_declared(sample_rate, usize::from(channels)).map_err(|p| format!("WAV header: {p}"))?;

    let (encoding, valid_bits) = match tag {
        0x0001 => (WavEncoding::Int, bits),
        0x0003 => (WavEncoding::Float, bits),
        0xFFFE => {
            // WAVE_FORMAT_EXTENSIBLE: cbSize, valid bits, channel mask, then a
            // GUID whose first two bytes are the real format tag.
            if f.len() < 40 || le_u16(f, 16) < 22 {
                return Err(
                    "invalid WAV header: WAVE_FORMAT_EXTENSIBLE without its 22-byte extension"
                        .into(),
                );
            }
            const GUID_TAIL: [u8; 14] = [
                0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
            ];
            let sub_tag = le_u16(f, 24);
            if f[26..40] != GUID_TAIL {
                return Err(
                    "unsupported WAV encoding: unknown WAVE_FORMAT_EXTENSIBLE sub-format GUID"
                        .into(),
                );
            }
            let encoding = match sub_tag {
                0x0001 => WavEncoding::Int,
                0x0003 => WavEncoding::Float,
                other => return Err(unsupported_tag(other)),
            };
            // Zero means "not specified", i.e. all of them.
            let valid = match le_u16(f, 18) {
                0 => bits,
                v => v,
            };
            if valid > bits {
                return Err(format!(
                    "invalid WAV header: {valid} valid bits in a {bits}-bit sample"
                ));
            }
            (encoding, valid)
        }
        other => return Err(unsupported_tag(other)),
    };

    match (encoding, bits) {
        (WavEncoding::Int, 8 | 16 | 24 | 32) | (WavEncoding::Float, 32 | 64) => {}
        (WavEncoding::Int, _) => {
            return Err(format!(
                "unsupported WAV sample size: {bits} bits per sample (integer PCM must be 8, 16, 24 or 32)"
            ))
        }
        (WavEncoding::Float, _) => {
            return Err(format!("unsupported WAV sample size: {bits} bits per sample (float PCM must be 32 or 64)"))
        }
    }
    let format = WavFormat {
        encoding,
        channels: usize::from(channels),
        sample_rate,
        bits,
        valid_bits,
    };
    if usize::from(block_align) != format.frame_bytes() {
        return Err(format!(
            "invalid WAV header: block align is {block_align} bytes, but {channels} channels of {bits} bits need {}",
            format.frame_bytes()
        ));
    }
    Ok(format)
}

fn unsupported_tag(tag: u16) -> String {
    let name = match tag {
        0x0002 => " (Microsoft ADPCM)",
        0x0006 => " (A-law)",
        0x0007 => " (µ-law)",
        0x0011 => " (IMA ADPCM)",
        0x0055 => " (MP3)",
        _ => "",
    };
    format!("unsupported WAV encoding: format tag 0x{tag:04X}{name}; only integer PCM and IEEE float are read")
}

/// Convert the data chunk to `f32`. Integers divide by 2^(bits-1), exactly.
fn wav_samples(format: &WavFormat, data: &[u8]) -> Problem<Vec<f32>> {
    let mut out = sample_buffer(data.len() / usize::from(format.bits / 8), "the data chunk")?;
    match (format.encoding, format.bits) {
        // 8-bit WAV alone is unsigned, centred on 128.
        (WavEncoding::Int, 8) => out.extend(data.iter().map(|&x| (f32::from(x) - 128.0) / 128.0)),
        (WavEncoding::Int, 16) => out.extend(
            data.chunks_exact(2)
                .map(|c| f32::from(i16::from_le_bytes([c[0], c[1]])) / 32_768.0),
        ),
        // Place the three bytes at the top of an i32 and shift back down to sign-extend.
        (WavEncoding::Int, 24) => out.extend(
            data.chunks_exact(3)
                .map(|c| (i32::from_le_bytes([0, c[0], c[1], c[2]]) >> 8) as f32 / 8_388_608.0),
        ),
        // 32-bit integers have more precision than f32; round once, via f64.
        (WavEncoding::Int, _) => out.extend(data.chunks_exact(4).map(|c| {
            (f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])) / 2_147_483_648.0) as f32
        })),
        (WavEncoding::Float, 32) => out.extend(
            data.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        ),
        (WavEncoding::Float, _) => {
            out.extend(data.chunks_exact(8).map(|c| {
                f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
            }))
        }
    }
    Ok(out)
}
