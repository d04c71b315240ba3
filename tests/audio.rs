//! Tests for `wavelstm::audio` and `wavelstm::atomic`.
//!
//! The clips in `assets/audio/` are described in `assets/audio/LICENSES.md`,
//! including the exact relations between them that these tests rely on (the
//! FLAC is the piano WAV losslessly, the 24-bit WAV is the 16-bit one times
//! 256, and so on). Malformed files are crafted byte by byte in a scratch
//! directory, so each test states exactly what is wrong with its input.

use std::f64::consts::TAU;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use wavelstm::atomic::write_atomic;
use wavelstm::audio::{self, Audio, ChannelMode, SampleFormat};
use wavelstm::Error;

mod common;
use common::riff::{chunk, chunk_claiming, fmt_body, fmt_chunk, riff};
use common::{asset, max_abs_diff};

// ---------------------------------------------------------------------------
// Helpers

const PIANO_WAV: &str = "piano_sabatella_unclaimed_gift.wav";
const PIANO_FLAC: &str = "piano_sabatella_unclaimed_gift.flac";
const PIANO_S24: &str = "piano_sabatella_unclaimed_gift_3s_s24.wav";
const ORCH_WAV: &str = "orchestral_kaufman_heroes_rite.wav";
const ORCH_OGG: &str = "orchestral_kaufman_heroes_rite.ogg";
const ORCH_MONO: &str = "orchestral_kaufman_heroes_rite_mono_22050.wav";
const ELEC_WAV: &str = "electronic_savino_palace.wav";
const ELEC_MP3: &str = "electronic_savino_palace.mp3";
const ELEC_F32: &str = "electronic_savino_palace_2s_f32.wav";

fn decode(name: &str) -> Audio {
    audio::decode(&asset(name))
        .unwrap_or_else(|e| panic!("{e}"))
        .audio
}

/// The 16-bit samples of a WAV, read by hound: an independent reader to check ours against.
fn hound_i16(name: &str) -> Vec<i16> {
    let mut r = hound::WavReader::open(asset(name)).unwrap();
    r.samples::<i16>().map(Result::unwrap).collect()
}

/// A directory of its own under the system temp dir, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("wavelstm-audio-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        fs::write(&p, bytes).unwrap();
        p
    }

    fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Deterministic noise bytes (xorshift), for "random bytes after a valid header".
fn noise(n: usize, mut s: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 32) as u8
        })
        .collect()
}

/// A well-formed plain WAV (`tag` 1 = integer PCM, 3 = float) around `data`.
fn wav(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
    riff(&[fmt_chunk(tag, channels, rate, bits), chunk(b"data", data)])
}

fn i16_bytes(v: &[i16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// `decode` must fail with a one-line `Error::File` naming `path` whose
/// problem mentions every one of `words` (case-insensitive). Returns the problem.
#[track_caller]
fn assert_fails(path: &Path, words: &[&str]) -> String {
    match audio::decode(path) {
        Ok(d) => panic!(
            "{} decoded ({} frames) but should have failed",
            path.display(),
            d.audio.frames()
        ),
        Err(e @ Error::File { .. }) => {
            let shown = e.to_string();
            let Error::File {
                path: named,
                problem,
            } = e
            else {
                unreachable!()
            };
            assert_eq!(named, path, "the error names another file: {shown}");
            assert!(shown.contains(&path.display().to_string()), "{shown}");
            assert!(!problem.contains('\n'), "not one line: {problem:?}");
            for w in words {
                assert!(
                    problem.to_lowercase().contains(&w.to_lowercase()),
                    "{problem:?} does not mention {w:?}"
                );
            }
            problem
        }
        Err(e) => panic!("expected a file error, got {e:?}"),
    }
}

/// Correlation and SNR (dB) of `test` shifted by `lag` frames against `reference`.
fn similarity(reference: &[f32], test: &[f32], lag: isize) -> (f64, f64) {
    let (mut xy, mut xx, mut yy, mut err) = (0.0, 0.0, 0.0, 0.0);
    for (i, &x) in reference.iter().enumerate() {
        let Some(&y) = usize::try_from(i as isize + lag)
            .ok()
            .and_then(|j| test.get(j))
        else {
            continue;
        };
        let (x, y) = (f64::from(x), f64::from(y));
        xy += x * y;
        xx += x * x;
        yy += y * y;
        err += (x - y) * (x - y);
    }
    (xy / (xx * yy).sqrt(), 10.0 * (xx / err).log10())
}

/// Check that `test` matches `reference` best with no shift at all, and
/// reaches the given correlation and SNR there.
#[track_caller]
fn assert_aligned_match(
    what: &str,
    reference: &[f32],
    test: &[f32],
    min_corr: f64,
    min_snr_db: f64,
) {
    let (corr, snr) = similarity(reference, test, 0);
    assert!(
        corr > min_corr,
        "{what}: correlation {corr:.6} <= {min_corr}"
    );
    assert!(
        snr > min_snr_db,
        "{what}: SNR {snr:.2} dB <= {min_snr_db} dB"
    );
    for lag in [-2, -1, 1, 2] {
        let (_, snr_off) = similarity(reference, test, lag);
        assert!(
            snr > snr_off + 3.0,
            "{what}: lag {lag} fits about as well ({snr_off:.2} dB vs {snr:.2} dB)"
        );
    }
}

fn rms(v: &[f32]) -> f64 {
    (v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>() / v.len() as f64).sqrt()
}

fn sine(freq: f64, amp: f64, rate: u32, frames: usize) -> Audio {
    let samples = (0..frames)
        .map(|i| (amp * (TAU * freq * i as f64 / f64::from(rate)).sin()) as f32)
        .collect();
    Audio {
        sample_rate: rate,
        channels: 1,
        samples,
    }
}

// ---------------------------------------------------------------------------
// The shipped clips

#[test]
fn every_clip_decodes_with_its_documented_format() {
    let table = [
        (PIANO_WAV, "PCM 16-bit", 44_100, 2, 441_000),
        (ORCH_WAV, "PCM 16-bit", 44_100, 2, 441_000),
        (ELEC_WAV, "PCM 16-bit", 44_100, 2, 441_000),
        (PIANO_FLAC, "FLAC", 44_100, 2, 441_000),
        (PIANO_S24, "PCM 24-bit", 44_100, 2, 132_300),
        (ORCH_OGG, "Vorbis", 44_100, 2, 441_000),
        (ORCH_MONO, "PCM 16-bit", 22_050, 1, 220_500),
        // Gapless trimming (LAME tag) gives exactly the WAV's length.
        (ELEC_MP3, "MP3", 44_100, 2, 441_000),
        (ELEC_F32, "PCM 32-bit float", 44_100, 2, 88_200),
    ];
    for (name, codec, rate, channels, frames) in table {
        let d = audio::decode(&asset(name)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.codec, codec, "{name}");
        assert_eq!(d.audio.sample_rate, rate, "{name}");
        assert_eq!(d.audio.channels, channels, "{name}");
        assert_eq!(d.audio.frames(), frames, "{name}");
        assert_eq!(d.audio.samples.len(), frames * channels, "{name}");
        assert!(d.audio.samples.iter().all(|x| x.abs() <= 1.0), "{name}");
    }
}

#[test]
fn wav_16bit_is_each_sample_over_32768() {
    let ours = decode(PIANO_WAV);
    let theirs = hound_i16(PIANO_WAV);
    assert_eq!(ours.samples.len(), theirs.len());
    assert!(ours
        .samples
        .iter()
        .zip(&theirs)
        .all(|(&a, &s)| a == f32::from(s) / 32768.0));
    // Interleaving: frame 1000 of the right channel.
    assert_eq!(
        ours.channel(1)[1000],
        f32::from(theirs[2 * 1000 + 1]) / 32768.0
    );
}

#[test]
fn flac_decodes_bit_identical_to_its_wav() {
    let (flac, wav) = (decode(PIANO_FLAC), decode(PIANO_WAV));
    assert_eq!(flac.samples.len(), wav.samples.len());
    assert!(flac
        .samples
        .iter()
        .zip(&wav.samples)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
}

#[test]
fn wav_24bit_equals_16bit_exactly() {
    let (s24, s16) = (decode(PIANO_S24), decode(PIANO_WAV));
    let n = 132_300 * 2;
    assert_eq!(s24.samples.len(), n);
    assert!(s24.samples == s16.samples[..n]);
    // And not trivially: the clip is not silent.
    assert!(rms(&s24.samples) > 0.05);
}

#[test]
fn float_wav_equals_16bit_over_32768_exactly() {
    let f32_clip = decode(ELEC_F32);
    let s16 = hound_i16(ELEC_WAV);
    let n = 88_200 * 2;
    assert_eq!(f32_clip.samples.len(), n);
    assert!(f32_clip
        .samples
        .iter()
        .zip(&s16[..n])
        .all(|(&f, &s)| f == f32::from(s) / 32768.0));
}

/// Both channels of the lossy `clip` against the `wav` it was made from, by
/// [`assert_aligned_match`].
#[track_caller]
fn assert_stereo_matches_its_wav(
    codec: &str,
    clip: &str,
    wav: &str,
    min_corr: f64,
    min_snr_db: f64,
) {
    let (lossy, wav) = (decode(clip), decode(wav));
    assert_eq!(lossy.frames(), wav.frames());
    for ch in 0..2 {
        assert_aligned_match(
            &format!("{codec} channel {ch}"),
            &wav.channel(ch),
            &lossy.channel(ch),
            min_corr,
            min_snr_db,
        );
    }
}

#[test]
fn mp3_matches_its_wav_sample_aligned() {
    // Measured: correlation 0.99970 / SNR 32.1 dB (left), 0.99970 / 32.2 dB (right),
    // both at lag 0; one frame off, the SNR drops to about 20.7 dB.
    assert_stereo_matches_its_wav("MP3", ELEC_MP3, ELEC_WAV, 0.999, 30.0);
}

#[test]
fn ogg_vorbis_matches_its_wav_sample_aligned() {
    // Measured: correlation 0.99736 / SNR 22.8 dB per channel at lag 0
    // (18.6 dB one frame off).
    assert_stereo_matches_its_wav("Vorbis", ORCH_OGG, ORCH_WAV, 0.995, 21.0);
}

#[test]
fn mp3_without_a_lame_tag_is_not_called_truncated() {
    // Drop the first MPEG frame (the Xing/LAME info frame after the ID3v2
    // tag). Symphonia then estimates the length from the bitrate (453,888
    // frames here), which a VBR file does not reach; that guess must not be
    // taken for a declared length.
    let mp3 = fs::read(asset(ELEC_MP3)).unwrap();
    let id3_end = 10 + mp3[6..10].iter().fold(0, |n, &b| n << 7 | usize::from(b));
    let header = &mp3[id3_end..id3_end + 4];
    assert_eq!(header[..2], [0xFF, 0xFB], "MPEG-1 Layer III frame expected");
    let kbps = [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ][usize::from(header[2] >> 4)];
    let info_frame = 144 * kbps * 1000 / 44_100 + usize::from((header[2] >> 1) & 1);
    let mut bytes = mp3[..id3_end].to_vec();
    bytes.extend(&mp3[id3_end + info_frame..]);

    let dir = Scratch::new("nolame");
    let d = audio::decode(&dir.file("no_info_frame.mp3", &bytes)).unwrap_or_else(|e| panic!("{e}"));
    // Without the tag nothing is trimmed: 384 MPEG frames of 1152 samples.
    assert_eq!((d.codec.as_str(), d.audio.frames()), ("MP3", 384 * 1152));
}

#[test]
fn container_is_recognised_by_content_not_name() {
    let dir = Scratch::new("sniff");
    let disguised = dir.file("actually_flac.wav", &fs::read(asset(PIANO_FLAC)).unwrap());
    let d = audio::decode(&disguised).unwrap();
    assert_eq!(d.codec, "FLAC");
    assert!(d.audio == decode(PIANO_WAV));
}

#[test]
fn info_reports_the_piano_levels() {
    // LICENSES.md (sox stats): peak -0.16 dBFS, RMS -16.8 dB over the whole file.
    let i = audio::info(&asset(PIANO_WAV)).unwrap();
    assert_eq!(i.codec, "PCM 16-bit");
    assert_eq!((i.sample_rate, i.channels, i.frames), (44_100, 2, 441_000));
    assert_eq!(i.duration_secs, 10.0);
    assert_eq!((i.peak_dbfs.len(), i.rms_dbfs.len()), (2, 2));
    let loudest_peak = i
        .peak_dbfs
        .iter()
        .cloned()
        .fold(f64::NEG_INFINITY, f64::max);
    assert!((loudest_peak - -0.16).abs() < 0.01, "peak {loudest_peak}");
    // Per channel (measured -16.47 and -17.16 dB); their mean power is sox's overall figure.
    assert!((i.rms_dbfs[0] - -16.47).abs() < 0.05, "{:?}", i.rms_dbfs);
    assert!((i.rms_dbfs[1] - -17.16).abs() < 0.05, "{:?}", i.rms_dbfs);
    let mean_power = i
        .rms_dbfs
        .iter()
        .map(|db| 10f64.powf(db / 10.0))
        .sum::<f64>()
        / 2.0;
    assert!((10.0 * mean_power.log10() - -16.8).abs() < 0.05);
}

#[test]
fn info_of_a_silent_channel_is_minus_infinity() {
    let dir = Scratch::new("silent");
    let p = dir.file(
        "half_silent.wav",
        &wav(1, 2, 8000, 16, &i16_bytes(&[0, 16384, 0, -16384])),
    );
    let i = audio::info(&p).unwrap();
    assert_eq!(i.peak_dbfs[0], f64::NEG_INFINITY);
    assert_eq!(i.rms_dbfs[0], f64::NEG_INFINITY);
    assert!((i.peak_dbfs[1] - 20.0 * 0.5f64.log10()).abs() < 1e-9);
}

// ---------------------------------------------------------------------------
// WAV variants crafted here

#[test]
fn wav_8_and_32_bit_integer_and_64_bit_float_decode_exactly() {
    let dir = Scratch::new("variants");
    let p8 = dir.file("u8.wav", &wav(1, 1, 8000, 8, &[0, 128, 255, 64]));
    assert_eq!(
        decode_path(&p8).samples,
        vec![-1.0, 0.0, 127.0 / 128.0, -0.5]
    );

    let s32: Vec<u8> = [i32::MIN, 0, 1 << 16, -(1 << 30)]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let p32 = dir.file("s32.wav", &wav(1, 2, 8000, 32, &s32));
    assert_eq!(
        decode_path(&p32).samples,
        vec![-1.0, 0.0, 1.0 / 32768.0, -0.5]
    );

    let f64s: Vec<u8> = [0.25f64, -0.125, 1.5, 0.0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let d = audio::decode(&dir.file("f64.wav", &wav(3, 1, 8000, 64, &f64s))).unwrap();
    assert_eq!(d.codec, "PCM 64-bit float");
    // Float values are kept as stored, even beyond full scale.
    assert_eq!(d.audio.samples, vec![0.25, -0.125, 1.5, 0.0]);
}

fn decode_path(p: &Path) -> Audio {
    audio::decode(p).unwrap_or_else(|e| panic!("{e}")).audio
}

/// WAVE_FORMAT_EXTENSIBLE `fmt ` body: the 16 common bytes, then cbSize = 22,
/// valid bits, channel mask and the sub-format GUID.
fn extensible_fmt(sub_tag: u16, channels: u16, bits: u16, valid_bits: u16) -> Vec<u8> {
    let mut f = fmt_body(0xFFFE, channels, 48_000, channels * bits / 8, bits);
    f.extend(22u16.to_le_bytes());
    f.extend(valid_bits.to_le_bytes());
    f.extend(0u32.to_le_bytes());
    f.extend(sub_tag.to_le_bytes());
    f.extend([
        0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
    ]);
    f
}

#[test]
fn wave_format_extensible_and_many_channels() {
    let dir = Scratch::new("extensible");
    // 40 channels: more than any speaker layout, still just numbers.
    let frames: Vec<i16> = (0..40 * 3).map(|i| i as i16 * 100).collect();
    let p = dir.file(
        "many.wav",
        &riff(&[
            chunk(b"fmt ", &extensible_fmt(1, 40, 16, 16)),
            chunk(b"data", &i16_bytes(&frames)),
        ]),
    );
    let d = audio::decode(&p).unwrap();
    assert_eq!(
        (
            d.codec.as_str(),
            d.audio.channels,
            d.audio.frames(),
            d.audio.sample_rate
        ),
        ("PCM 16-bit", 40, 3, 48_000)
    );
    assert_eq!(
        d.audio.channel(39),
        vec![3900.0 / 32768.0, 7900.0 / 32768.0, 11900.0 / 32768.0]
    );

    // 20 valid bits in 24-bit containers: left-justified, so the same scaling applies.
    let s24 = [0x00, 0x00, 0x80, 0x10, 0x00, 0x00];
    let d = audio::decode(&dir.file(
        "s20.wav",
        &riff(&[
            chunk(b"fmt ", &extensible_fmt(1, 1, 24, 20)),
            chunk(b"data", &s24),
        ]),
    ))
    .unwrap();
    assert_eq!(d.codec, "PCM 24-bit (20 valid bits)");
    assert_eq!(d.audio.samples, vec![-1.0, 16.0 / 8_388_608.0]);

    let float = riff(&[
        chunk(b"fmt ", &extensible_fmt(3, 1, 32, 32)),
        chunk(b"data", &f32_bytes(&[0.5, -0.25])),
    ]);
    assert_eq!(
        decode_path(&dir.file("float.wav", &float)).samples,
        vec![0.5, -0.25]
    );
}

#[test]
fn wav_with_extra_chunks_and_odd_sizes_decodes() {
    let dir = Scratch::new("chunks");
    // An odd-sized chunk before `fmt ` (padded to even), a LIST chunk, and junk after `data`.
    let mut bytes = riff(&[
        chunk(b"junk", &[1, 2, 3]),
        chunk(b"fmt ", &fmt_body(1, 1, 16_000, 2, 16)),
        chunk(b"LIST", b"INFOxxxx"),
        chunk(b"data", &i16_bytes(&[1, -2, 3])),
        chunk(b"id3 ", &[9; 10]),
    ]);
    bytes.extend([0xAB; 5]);
    let a = decode_path(&dir.file("chunks.wav", &bytes));
    assert_eq!(
        a.samples,
        vec![1.0 / 32768.0, -2.0 / 32768.0, 3.0 / 32768.0]
    );
}

// ---------------------------------------------------------------------------
// Bad input: each a one-line error naming the file

#[test]
fn missing_file_directory_and_empty_file_fail() {
    let dir = Scratch::new("basic");
    assert_fails(&dir.0.join("nope.wav"), &["no such file"]);
    fs::create_dir(dir.0.join("folder.wav")).unwrap();
    assert_fails(&dir.0.join("folder.wav"), &["directory"]);
    assert_fails(&dir.file("empty.wav", b""), &["empty"]);
}

#[test]
fn text_file_named_wav_fails() {
    let dir = Scratch::new("text");
    let p = dir.file("notes.wav", b"These are my notes, not a song.\n");
    let problem = assert_fails(&p, &["not a recognised audio file"]);
    assert!(problem.contains("These ar"), "{problem}");
    // Random binary is not probed for MP3 frame syncs either.
    assert_fails(
        &dir.file("noise.mp3", &noise(4096, 7)),
        &["not a recognised audio file"],
    );
}

#[test]
fn truncated_wav_names_both_sizes() {
    let dir = Scratch::new("truncwav");
    // A real file cut in half: the data chunk promises 1,764,000 bytes.
    let full = fs::read(asset(PIANO_WAV)).unwrap();
    let p = dir.file("half.wav", &full[..full.len() / 2]);
    assert_fails(
        &p,
        &["truncated", "1764000", &(full.len() / 2 - 44).to_string()],
    );
    // A crafted one promising 1000 bytes and holding 10.
    let p = dir.file(
        "short.wav",
        &riff(&[
            chunk(b"fmt ", &fmt_body(1, 1, 8000, 2, 16)),
            chunk_claiming(b"data", 1000, &[0; 10]),
        ]),
    );
    assert_fails(&p, &["truncated", "1000", "10"]);
    // Cut inside the header.
    assert_fails(&dir.file("stub.wav", b"RIFF\x24\x00"), &["too short"]);
    assert_fails(&dir.file("nofmt.wav", &full[..12]), &["no fmt chunk"]);
    assert_fails(
        &dir.file("cutfmt.wav", &full[..20]),
        &["truncated", "fmt", "16 bytes", "only 0"],
    );
    assert_fails(&dir.file("nodata.wav", &full[..40]), &["no data chunk"]);
}

#[test]
fn truncated_flac_is_caught_by_its_declared_length() {
    let dir = Scratch::new("truncflac");
    let full = fs::read(asset(PIANO_FLAC)).unwrap();
    let p = dir.file("cut.flac", &full[..full.len() / 2]);
    let problem = assert_fails(&p, &["truncated", "441000"]);
    // The frames that did decode are counted: about half.
    let decoded: usize = problem
        .split("decoded ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!((150_000..300_000).contains(&decoded), "{problem}");
    // Cut inside the metadata blocks.
    assert_fails(&dir.file("stub.flac", &full[..100]), &["FLAC"]);
}

#[test]
fn corrupt_files_fail() {
    let dir = Scratch::new("corrupt");
    // Valid headers and first frames, then random bytes.
    for (name, keep) in [(PIANO_FLAC, 0.2), (ELEC_MP3, 0.1)] {
        let full = fs::read(asset(name)).unwrap();
        let n = (full.len() as f64 * keep) as usize;
        let mut bytes = full[..n].to_vec();
        bytes.extend(noise(full.len() - n, 99));
        let ext = name.rsplit('.').next().unwrap();
        assert_fails(&dir.file(&format!("corrupt.{ext}"), &bytes), &["corrupt"]);
    }
    // Noise after a float WAV header soon holds a bit pattern that is not a number.
    let bytes = wav(3, 2, 44_100, 32, &noise(40_000, 5));
    assert_fails(
        &dir.file("corrupt_f32.wav", &bytes),
        &["sample", "of channel"],
    );
    // An Ogg page with a damaged checksum.
    let mut ogg = fs::read(asset(ORCH_OGG)).unwrap();
    ogg[200] ^= 0x55;
    assert_fails(&dir.file("corrupt.ogg", &ogg), &["Ogg"]);
}

#[test]
fn impossible_wav_headers_fail() {
    let dir = Scratch::new("headers");
    let data = chunk(b"data", &[0; 16]);
    #[rustfmt::skip]
    let cases: [(&str, Vec<u8>, &[&str]); 11] = [
        ("zero_channels.wav",  fmt_body(1, 0, 44_100, 0, 16),                &["0 channels"]),
        ("zero_rate.wav",      fmt_body(1, 2, 0, 4, 16),                     &["sample rate", "0 Hz"]),
        ("zero_bits.wav",      fmt_body(1, 2, 44_100, 0, 0),                 &["0 bits per sample"]),
        ("seven_bits.wav",     fmt_body(1, 1, 44_100, 1, 7),                 &["7 bits per sample"]),
        ("float16.wav",        fmt_body(3, 1, 44_100, 2, 16),                &["16 bits per sample", "float"]),
        ("block_align.wav",    fmt_body(1, 2, 44_100, 3, 16),                &["block align"]),
        ("short_fmt.wav",      fmt_body(1, 2, 44_100, 4, 16)[..10].to_vec(), &["fmt chunk is 10 bytes"]),
        ("alaw.wav",           fmt_body(6, 1, 8000, 1, 8),                   &["unsupported", "A-law"]),
        ("ext_short.wav",      fmt_body(0xFFFE, 1, 8000, 2, 16),             &["EXTENSIBLE"]),
        ("ext_valid_bits.wav", extensible_fmt(1, 1, 16, 20),                 &["20 valid bits"]),
        ("ext_subformat.wav",  extensible_fmt(2, 1, 16, 16),                 &["unsupported", "0x0002"]),
    ];
    for (name, fmt, words) in cases {
        assert_fails(
            &dir.file(name, &riff(&[chunk(b"fmt ", &fmt), data.clone()])),
            words,
        );
    }

    let fmt = chunk(b"fmt ", &fmt_body(1, 2, 44_100, 4, 16));
    // Absurd data size: far more than the file holds.
    let p = dir.file(
        "huge_data.wav",
        &riff(&[fmt.clone(), chunk_claiming(b"data", 0xFFFF_FFF0, &[0; 16])]),
    );
    assert_fails(&p, &["truncated", "4294967280", "16"]);
    // Absurd size on a chunk before `data`.
    let p = dir.file(
        "huge_list.wav",
        &riff(&[
            fmt.clone(),
            chunk_claiming(b"LIST", 0x7FFF_0000, b"INFO"),
            data.clone(),
        ]),
    );
    assert_fails(&p, &["truncated", "LIST"]);
    // A frame and a half of data: the whole frame is decoded, the rest
    // ignored with a warning (as other decoders do).
    let d = audio::decode(&dir.file(
        "half_frame.wav",
        &riff(&[fmt.clone(), chunk(b"data", &[0, 1, 0, 2, 9, 9])]),
    ))
    .unwrap();
    assert_eq!(d.audio.samples, vec![256.0 / 32768.0, 512.0 / 32768.0]);
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
    assert!(
        d.warnings[0].contains("partial frame") && d.warnings[0].contains("2 of 4 bytes"),
        "{:?}",
        d.warnings
    );
    assert_fails(
        &dir.file("data_first.wav", &riff(&[data.clone(), fmt])),
        &["before the fmt chunk"],
    );
    let mut avi = riff(&[data]);
    avi[8..12].copy_from_slice(b"AVI ");
    assert_fails(&dir.file("movie.wav", &avi), &["not a WAVE"]);
    let mut rf64 = wav(1, 1, 8000, 16, &[0; 4]);
    rf64[..4].copy_from_slice(b"RF64");
    assert_fails(&dir.file("rf64.wav", &rf64), &["unsupported", "RF64"]);
}

#[test]
fn nan_and_infinite_samples_are_located() {
    let dir = Scratch::new("nan");
    let mut v = vec![0.0f32; 10];
    v[7] = f32::NAN; // frame 3, channel 1
    let p = dir.file("nan.wav", &wav(3, 2, 8000, 32, &f32_bytes(&v)));
    assert_fails(&p, &["sample 3 of channel 1 is NaN"]);
    let mut v = vec![0.1f32; 9];
    v[4] = f32::NEG_INFINITY; // frame 1, channel 1
    let p = dir.file("inf.wav", &wav(3, 3, 8000, 32, &f32_bytes(&v)));
    assert_fails(&p, &["sample 1 of channel 1 is infinite"]);
}

#[test]
fn files_with_zero_frames_fail() {
    let dir = Scratch::new("zero");
    assert_fails(
        &dir.file("no_frames.wav", &wav(1, 2, 44_100, 16, &[])),
        &["0 frames"],
    );
}

#[test]
fn mangled_headers_never_panic() {
    // Every prefix of a real header, and random bytes written over it: each
    // must come back as Ok or as a file error, never as a panic.
    let dir = Scratch::new("fuzz");
    let music = &fs::read(asset(PIANO_S24)).unwrap()[1000..3000];
    let plain = wav(1, 2, 44_100, 16, music);
    let extensible = riff(&[
        chunk(b"fmt ", &extensible_fmt(1, 2, 24, 24)),
        chunk(b"data", &music[..1998]),
    ]);
    for sample in [plain, extensible] {
        for n in 0..=100 {
            let _ = audio::decode(&dir.file("prefix.wav", &sample[..n]));
        }
        let r = noise(4 * 2000, 3);
        for i in 0..2000 {
            let mut b = sample.clone();
            b[usize::from(r[4 * i]) % 80] = r[4 * i + 1];
            b[usize::from(r[4 * i + 2]) % 80] = r[4 * i + 3];
            if let Err(e) = audio::decode(&dir.file("mangled.wav", &b)) {
                assert!(matches!(e, Error::File { .. }), "{e:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Channels

#[test]
fn mono_is_the_mean_of_the_channels() {
    let stereo = decode(PIANO_WAV);
    let mono = audio::load(&asset(PIANO_WAV), ChannelMode::Mono, None).unwrap();
    assert_eq!(
        (mono.channels, mono.sample_rate, mono.frames()),
        (1, 44_100, 441_000)
    );
    let (l, r) = (stereo.channel(0), stereo.channel(1));
    assert!(mono
        .samples
        .iter()
        .zip(l.iter().zip(&r))
        .all(|(&m, (&a, &b))| m == (a + b) / 2.0));

    let three = Audio {
        sample_rate: 10,
        channels: 3,
        samples: vec![0.3, 0.6, 0.9, -1.0, 0.0, 0.4],
    };
    let m = audio::convert_channels(&three, ChannelMode::Mono).unwrap();
    assert_eq!(
        m.samples,
        vec![(0.3 + 0.6 + 0.9) / 3.0, (-1.0 + 0.0 + 0.4) / 3.0]
    );
}

#[test]
fn stereo_duplicates_a_mono_file_and_keeps_stereo() {
    let stereo = audio::load(&asset(ORCH_MONO), ChannelMode::Stereo, None).unwrap();
    let mono = decode(ORCH_MONO);
    assert_eq!((stereo.channels, stereo.frames()), (2, 220_500));
    assert_eq!(stereo.channel(0), mono.samples);
    assert_eq!(stereo.channel(1), mono.samples);
    assert!(
        audio::load(&asset(PIANO_WAV), ChannelMode::Stereo, None).unwrap() == decode(PIANO_WAV)
    );
}

#[test]
fn stereo_from_three_channels_is_an_error() {
    let dir = Scratch::new("three");
    let p = dir.file(
        "three.wav",
        &wav(1, 3, 8000, 16, &i16_bytes(&[1, 2, 3, 4, 5, 6])),
    );
    match audio::load(&p, ChannelMode::Stereo, None) {
        Err(Error::File { path, problem }) => {
            assert_eq!(path, p);
            assert!(problem.contains("3 channels"), "{problem}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    assert_eq!(
        audio::load(&p, ChannelMode::Mono, None).unwrap().samples,
        vec![2.0 / 32768.0, 5.0 / 32768.0]
    );
}

#[test]
fn inconsistent_audio_is_an_error_not_a_panic() {
    let bad = [
        Audio {
            sample_rate: 8000,
            channels: 0,
            samples: vec![0.0; 4],
        },
        Audio {
            sample_rate: 0,
            channels: 1,
            samples: vec![0.0; 4],
        },
        Audio {
            sample_rate: 8000,
            channels: 2,
            samples: vec![0.0; 5],
        },
    ];
    let dir = Scratch::new("inconsistent");
    for a in &bad {
        assert!(audio::convert_channels(a, ChannelMode::Mono).is_err());
        assert!(audio::resample(a, 16_000).is_err());
        assert!(audio::write_wav(&dir.0.join("x.wav"), a, SampleFormat::Int16).is_err());
    }
    assert_eq!(bad[0].frames(), 0);
    assert_eq!(bad[1].duration_secs(), 0.0);
    assert!(decode(ORCH_MONO).channel(1).is_empty());
    assert!(dir.entries().is_empty());
}

// ---------------------------------------------------------------------------
// Resampling

#[test]
fn sox_mono_22k_matches_our_mixdown_and_resampling() {
    // sox made the 22,050 Hz clip with `remix 1,2 rate -v`, and `remix 1,2`
    // averages: its level equals the mean mixdown (RMS ratio measured 1.00001).
    let sox = decode(ORCH_MONO);
    let ours = audio::load(&asset(ORCH_WAV), ChannelMode::Mono, None).unwrap();

    // Ours down to 22,050 Hz vs sox's: measured correlation 0.9999991, SNR 57.6 dB.
    let down = audio::resample(&ours, 22_050).unwrap();
    assert_eq!(down.frames(), sox.frames());
    assert!((rms(&down.samples) / rms(&sox.samples) - 1.0).abs() < 1e-3);
    assert_aligned_match(
        "44.1k mixdown resampled to 22.05k vs sox",
        &sox.samples,
        &down.samples,
        0.99999,
        55.0,
    );

    // Sox's up to 44,100 Hz vs our mixdown: measured correlation 0.999987, SNR
    // 46.0 dB (lower, because what lay above 11 kHz is gone for good).
    let up = audio::load(&asset(ORCH_MONO), ChannelMode::Mono, Some(44_100)).unwrap();
    assert_eq!((up.sample_rate, up.frames()), (44_100, 441_000));
    assert_aligned_match(
        "22.05k resampled to 44.1k vs mixdown",
        &ours.samples,
        &up.samples,
        0.9999,
        44.0,
    );
}

#[test]
fn sine_keeps_frequency_phase_and_level_through_down_and_up() {
    let (freq, amp) = (1000.0, 0.5);
    let x = sine(freq, amp, 44_100, 44_101);
    let down = audio::resample(&x, 22_050).unwrap();
    // round(44101 / 2) = round(22050.5) = 22051, then exactly double.
    assert_eq!((down.sample_rate, down.frames()), (22_050, 22_051));
    let up = audio::resample(&down, 44_100).unwrap();
    assert_eq!((up.sample_rate, up.frames()), (44_100, 44_102));

    // Away from the edges (where the signal starts and stops abruptly) the
    // result is the same sine: same frequency, phase and level.
    let mid = 2000..42_000;
    let expected = sine(freq, amp, 44_100, 44_102).samples;
    let worst = mid
        .clone()
        .map(|i| (up.samples[i] - expected[i]).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-3, "max deviation {worst}");
    let level_db = 20.0 * (rms(&up.samples[mid.clone()]) / rms(&expected[mid.clone()])).log10();
    assert!(level_db.abs() < 0.01, "level changed by {level_db} dB");
    let crossings = up.samples[mid.clone()]
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count();
    assert_eq!(
        crossings,
        2 * 40_000 * 1000 / 44_100,
        "zero crossings of 1 kHz over 40,000 frames"
    );
}

#[test]
fn downsampling_filters_out_what_the_new_rate_cannot_hold() {
    // 15 kHz is above 11,025 Hz; without a filter it would alias to 7.05 kHz.
    let x = sine(15_000.0, 0.5, 44_100, 44_100);
    let down = audio::resample(&x, 22_050).unwrap();
    let residue = rms(&down.samples[1000..21_000]);
    assert!(residue < 0.5 * 1e-4, "residue {residue} (above -80 dB)");
}

#[test]
fn resample_lengths_rates_and_odd_ratios() {
    let x = sine(440.0, 0.8, 44_100, 4410);
    for (to, frames) in [
        (48_000, 4800),
        (16_000, 1600),
        (8_000, 800),
        (44_101, 4410),
        (96_000, 9600),
    ] {
        let y = audio::resample(&x, to).unwrap();
        assert_eq!(
            (y.sample_rate, y.channels, y.frames()),
            (to, 1, frames),
            "to {to}"
        );
        // A ratio with no common factor (44,100:44,101) goes through the same filter.
        if to == 44_101 {
            let expected = sine(440.0, 0.8, 44_101, frames).samples;
            let worst = (500..3900)
                .map(|i| (y.samples[i] - expected[i]).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 1e-3, "44.1k -> 44.101k: max deviation {worst}");
        }
    }
    // Same rate: untouched. Empty: empty. Zero: an error.
    assert!(audio::resample(&x, 44_100).unwrap() == x);
    let empty = Audio {
        sample_rate: 44_100,
        channels: 2,
        samples: vec![],
    };
    assert_eq!(audio::resample(&empty, 22_050).unwrap().frames(), 0);
    assert!(audio::resample(&x, 0).is_err());
}

#[test]
fn resampling_keeps_channels_apart() {
    // Left a 500 Hz sine, right silent: nothing may leak across.
    let l = sine(500.0, 0.5, 32_000, 3200).samples;
    let samples = l.iter().flat_map(|&v| [v, 0.0]).collect();
    let y = audio::resample(
        &Audio {
            sample_rate: 32_000,
            channels: 2,
            samples,
        },
        48_000,
    )
    .unwrap();
    assert_eq!(y.frames(), 4800);
    assert!(y.channel(1).iter().all(|&v| v == 0.0));
    assert!(rms(&y.channel(0)[500..4300]) > 0.35);
}

// ---------------------------------------------------------------------------
// Writing

#[test]
fn write_wav_int16_round_trips_within_one_step() {
    let dir = Scratch::new("write16");
    // The decoded clip is on the 16-bit grid already: it comes back bit for bit.
    let piano = decode(PIANO_S24);
    let p = dir.0.join("piano.wav");
    audio::write_wav(&p, &piano, SampleFormat::Int16).unwrap();
    let d = audio::decode(&p).unwrap();
    assert_eq!(d.codec, "PCM 16-bit");
    assert!(d.audio == piano);
    // Arbitrary values land on the nearest step.
    let x = sine(1234.5, 0.9, 16_000, 1000);
    audio::write_wav(&p, &x, SampleFormat::default()).unwrap();
    let y = decode_path(&p);
    assert_eq!((y.sample_rate, y.channels), (16_000, 1));
    let worst = max_abs_diff(&x.samples, &y.samples);
    assert!(worst <= 0.5 / 32768.0 + 1e-9, "worst {worst}");
}

#[test]
fn write_wav_float32_round_trips_exactly() {
    let dir = Scratch::new("writef32");
    let samples: Vec<f32> = (0..3 * 500)
        .map(|i| ((i as f32) * 0.37).sin() * 0.999)
        .collect();
    let x = Audio {
        sample_rate: 96_000,
        channels: 3,
        samples,
    };
    let p = dir.0.join("float.wav");
    audio::write_wav(&p, &x, SampleFormat::Float32).unwrap();
    let d = audio::decode(&p).unwrap();
    assert_eq!(d.codec, "PCM 32-bit float");
    assert!(d.audio == x);
}

#[test]
fn write_wav_clips_instead_of_wrapping() {
    let dir = Scratch::new("clip");
    let x = Audio {
        sample_rate: 8000,
        channels: 1,
        samples: vec![
            2.0,
            -3.0,
            1.0,
            -1.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            0.99999,
            -0.5,
        ],
    };
    let p = dir.0.join("clip16.wav");
    audio::write_wav(&p, &x, SampleFormat::Int16).unwrap();
    let ints: Vec<i16> = hound::WavReader::open(&p)
        .unwrap()
        .samples::<i16>()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        ints,
        vec![32767, -32768, 32767, -32768, 0, 32767, -32768, 32767, -16384]
    );

    let p = dir.0.join("clipf.wav");
    audio::write_wav(&p, &x, SampleFormat::Float32).unwrap();
    assert_eq!(
        decode_path(&p).samples,
        vec![1.0, -1.0, 1.0, -1.0, 0.0, 1.0, -1.0, 0.99999, -0.5]
    );
}

#[test]
fn write_wav_into_a_missing_directory_fails_and_leaves_nothing() {
    let dir = Scratch::new("missingdir");
    let p = dir.0.join("no/such/dir/out.wav");
    let e = audio::write_wav(&p, &sine(440.0, 0.5, 8000, 100), SampleFormat::Int16).unwrap_err();
    assert!(
        matches!(&e, Error::File { path, .. } if path == &p),
        "{e:?}"
    );
    assert!(!dir.0.join("no").exists());
    assert!(dir.entries().is_empty());
}

#[test]
fn a_failed_write_leaves_the_existing_file_alone() {
    let dir = Scratch::new("atomic");
    let p = dir.file("model.bin", b"old contents");
    let e = write_atomic(&p, |w| {
        w.write_all(b"new but incomplete").unwrap();
        Err(Error::Other("disk full, say".into()))
    })
    .unwrap_err();
    assert!(e.to_string().contains("disk full"));
    assert_eq!(fs::read(&p).unwrap(), b"old contents");
    assert_eq!(
        dir.entries(),
        vec!["model.bin"],
        "the temporary file was left behind"
    );

    // Writing over a directory fails at the rename: the directory survives, no temporary remains.
    fs::create_dir(dir.0.join("taken.wav")).unwrap();
    let e = audio::write_wav(
        &dir.0.join("taken.wav"),
        &sine(440.0, 0.5, 8000, 100),
        SampleFormat::Int16,
    )
    .unwrap_err();
    assert!(e.to_string().contains("taken.wav"), "{e}");
    assert!(dir.0.join("taken.wav").is_dir());
    assert_eq!(dir.entries(), vec!["model.bin", "taken.wav"]);

    // A write that succeeds replaces the file whole.
    write_atomic(&p, |w| {
        w.write_all(b"new")
            .map_err(|e| Error::file(&p, e.to_string()))
    })
    .unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"new");
    assert_eq!(dir.entries(), vec!["model.bin", "taken.wav"]);
}

#[test]
fn write_atomic_refuses_a_path_without_a_file_name() {
    for p in ["/", ".."] {
        let e = write_atomic(Path::new(p), |_| Ok(())).unwrap_err();
        assert!(
            matches!(&e, Error::File { problem, .. } if problem.contains("does not name a file")),
            "{e:?}"
        );
    }
}
