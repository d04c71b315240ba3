//! Seeded mutation fuzzing of every decoder: WAV (16-bit, 24-bit, 32-bit
//! float), MP3, FLAC and Ogg Vorbis.
//!
//! Each format starts from a small valid file and makes mutants of it by
//! byte flips, overwritten runs, truncation, size fields set to 0,
//! 0xFFFFFFFF or a huge value, duplicated and removed chunks (RIFF chunks,
//! Ogg pages, FLAC metadata blocks, MP3 frames) and insertions. Ogg pages
//! carry a CRC that would make the demuxer drop most mutants before the
//! decoder sees them, so half the Ogg mutants have their CRCs recomputed.
//!
//! Every mutant must be, in process, a decode that either succeeds with
//! finite samples within the documented limits or fails with an error that
//! names the mutant's file in one line; and, through the binary's `info`
//! under a 2 GiB address-space limit and a time limit, a run that prints no
//! panic text, dies of no signal and names every file it could not read.
//!
//! `WAVELSTM_FUZZ_MUTANTS` sets the mutants per format (default 300, about
//! a minute for all six on 2 cores); `WAVELSTM_FUZZ_SEED` the seed;
//! `WAVELSTM_FUZZ_KEEP=1` keeps the mutant files.

mod common;
use common::riff::{chunk, fmt_chunk, riff};
use common::{asset, bin, text, tmpdir};

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use wavelstm::audio::{self, MAX_CHANNELS, MAX_LEVEL, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};
use wavelstm::error::Error;
use wavelstm::rng::SplitMix64;

const DEFAULT_MUTANTS: usize = 300;
/// Files per run of the binary.
const BATCH: usize = 100;
/// Address space of the binary: far below what the absurd inputs once asked for.
const MEMORY_LIMIT_KIB: u64 = 2 << 20;
/// A whole batch must finish within this; each file decodes in milliseconds.
const BATCH_TIMEOUT: Duration = Duration::from_secs(120);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------
// Seeds: a fraction of a second of each format.

/// Frames of the WAV seeds: a quarter of a second of the piano clip.
const WAV_FRAMES: usize = 11_025;

fn wav_bytes(tag: u16, bits: u16, channels: u16, rate: u32, data: &[u8]) -> Vec<u8> {
    riff(&[
        fmt_chunk(tag, channels, rate, bits),
        chunk(b"LIST", b"INFOISFT\x04\0\0\0test"),
        chunk(b"data", data),
    ])
}

fn piano() -> Vec<f32> {
    let a = audio::decode(&asset("piano_sabatella_unclaimed_gift.wav"))
        .unwrap()
        .audio;
    a.samples[..WAV_FRAMES * 2].to_vec()
}

fn wav16() -> Vec<u8> {
    let data: Vec<u8> = piano()
        .iter()
        .flat_map(|x| ((x * 32768.0) as i16).to_le_bytes())
        .collect();
    wav_bytes(1, 16, 2, 44_100, &data)
}

fn wav24() -> Vec<u8> {
    let data: Vec<u8> = piano()
        .iter()
        .flat_map(|x| {
            let v = (x * 8_388_608.0) as i32;
            [v as u8, (v >> 8) as u8, (v >> 16) as u8]
        })
        .collect();
    wav_bytes(1, 24, 2, 44_100, &data)
}

fn wav_f32() -> Vec<u8> {
    let data: Vec<u8> = piano().iter().flat_map(|x| x.to_le_bytes()).collect();
    wav_bytes(3, 32, 2, 44_100, &data)
}

/// The bundled MP3's ID3 tag and its first 13 audio frames (a third of a
/// second), without the Xing/LAME frame, whose declared length they would
/// no longer reach.
fn mp3() -> Vec<u8> {
    let b = std::fs::read(asset("electronic_savino_palace.mp3")).unwrap();
    let id3_end = 10 + b[6..10].iter().fold(0, |n, &x| n << 7 | usize::from(x));
    let frames = mp3_frames(&b, id3_end);
    let mut out = b[..id3_end].to_vec();
    for f in &frames[1..14] {
        out.extend(&b[f.clone()]);
    }
    out
}

/// Made from a synthetic signal: `sox -n -r 44100 -c 2 -b 16 seed.wav synth
/// 0.3 pluck 220 pluck 330 gain -3`, then `flac -8` and `sox seed.wav -C 3 seed.ogg`.
fn seed_file(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fuzz_seeds")
            .join(name),
    )
    .unwrap()
}

// ---------------------------------------------------------------------------
// Structure: the units that can be duplicated or removed, and size fields.

fn le32(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
}

fn riff_chunks(b: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut pos = 12;
    while let Some(size) = le32(b, pos + 4) {
        let end = (pos + 8).saturating_add(size + (size & 1)).min(b.len());
        out.push(pos..end);
        pos = end;
    }
    out
}

/// The pieces of `b` laid end to end from `start`, each as long as
/// `piece_len` says at its start, until it says no more (the last one cut
/// at the end of `b`).
fn pieces(b: &[u8], start: usize, piece_len: impl Fn(usize) -> Option<usize>) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut pos = start;
    while let Some(len) = piece_len(pos) {
        out.push(pos..(pos + len).min(b.len()));
        pos += len;
    }
    out
}

/// MPEG-1 Layer III frames from `start` for as long as headers parse.
fn mp3_frames(b: &[u8], start: usize) -> Vec<Range<usize>> {
    const KBPS: [usize; 15] = [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ];
    const RATES: [usize; 3] = [44_100, 48_000, 32_000];
    pieces(b, start, |pos| {
        if !(pos + 4 <= b.len() && b[pos] == 0xFF && b[pos + 1] & 0xFE == 0xFA) {
            return None;
        }
        let (kbps, rate) = (b[pos + 2] >> 4, (b[pos + 2] >> 2) & 3);
        if kbps == 0 || kbps == 15 || rate == 3 {
            return None;
        }
        Some(
            144 * KBPS[usize::from(kbps)] * 1000 / RATES[usize::from(rate)]
                + usize::from((b[pos + 2] >> 1) & 1),
        )
    })
}

fn ogg_pages(b: &[u8]) -> Vec<Range<usize>> {
    pieces(b, 0, |pos| {
        if !(pos + 27 <= b.len() && &b[pos..pos + 4] == b"OggS") {
            return None;
        }
        let n = usize::from(b[pos + 26]);
        let table = b.get(pos + 27..pos + 27 + n)?;
        Some(27 + n + table.iter().map(|&x| usize::from(x)).sum::<usize>())
    })
}

fn flac_blocks(b: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut pos = 4;
    while pos + 4 <= b.len() {
        let len = (usize::from(b[pos + 1]) << 16)
            | (usize::from(b[pos + 2]) << 8)
            | usize::from(b[pos + 3]);
        let end = (pos + 4 + len).min(b.len());
        out.push(pos..end);
        if b[pos] & 0x80 != 0 {
            // The audio frames, as one unit.
            out.push(end..b.len());
            break;
        }
        pos = end;
    }
    out
}

/// A size field: where, how wide, and its byte order.
#[derive(Clone, Copy)]
struct SizeField {
    at: usize,
    width: usize,
    big_endian: bool,
}

fn size_fields(kind: Kind, b: &[u8]) -> Vec<SizeField> {
    let le = |at, width| SizeField {
        at,
        width,
        big_endian: false,
    };
    let be = |at, width| SizeField {
        at,
        width,
        big_endian: true,
    };
    match kind {
        Kind::Wav => {
            let mut v = vec![le(4, 4)];
            v.extend(riff_chunks(b).iter().map(|c| le(c.start + 4, 4)));
            v
        }
        Kind::Flac => flac_blocks(b)
            .iter()
            .filter(|r| r.start > 0)
            .map(|r| be(r.start + 1, 3))
            .collect(),
        // The ID3 tag's size, and the lengths in the first frames.
        Kind::Mp3 => vec![be(6, 4), be(10, 4), be(40, 4)],
        // The Vorbis comment header's vendor length and comment count.
        Kind::Ogg => find(b, b"\x03vorbis")
            .map(|at| vec![le(at + 7, 4), le(at + 11, 4)])
            .unwrap_or_default(),
    }
}

fn find(b: &[u8], needle: &[u8]) -> Option<usize> {
    b.windows(needle.len()).position(|w| w == needle)
}

fn units(kind: Kind, b: &[u8]) -> Vec<Range<usize>> {
    match kind {
        Kind::Wav => riff_chunks(b),
        Kind::Flac => flac_blocks(b),
        Kind::Mp3 => {
            let id3_end = b.get(6..10).map_or(0, |s| {
                10 + s.iter().fold(0, |n, &x| n << 7 | usize::from(x & 0x7F))
            });
            let tag = 0..id3_end.min(b.len());
            std::iter::once(tag).chain(mp3_frames(b, id3_end)).collect()
        }
        Kind::Ogg => ogg_pages(b),
    }
}

/// The Ogg page checksum: CRC-32, polynomial 0x04C11DB7, no reflection,
/// zero initial value, computed with the CRC field zeroed (Ogg, RFC 3533).
fn ogg_crc(page: &[u8]) -> u32 {
    let mut crc = 0u32;
    for &byte in page {
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

fn fix_ogg_crcs(b: &mut [u8]) {
    for page in ogg_pages(b) {
        let p = &mut b[page];
        if p.len() < 27 {
            continue;
        }
        p[22..26].fill(0);
        let crc = ogg_crc(p);
        p[22..26].copy_from_slice(&crc.to_le_bytes());
    }
}

// ---------------------------------------------------------------------------
// Mutation.

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Wav,
    Mp3,
    Flac,
    Ogg,
}

fn random_bytes(rng: &mut SplitMix64, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.next_u64() as u8).collect()
}

/// One mutation of `b`, in place; returns what it did, for failure reports.
fn mutate(kind: Kind, b: &mut Vec<u8>, rng: &mut SplitMix64) -> String {
    let n = b.len().max(1);
    let at = |rng: &mut SplitMix64, n: usize| rng.below(n as u64) as usize;
    // Headers are where malformed files do their damage: aim half the
    // point mutations at the first 256 bytes.
    let pos = |rng: &mut SplitMix64| {
        if rng.below(2) == 0 {
            at(rng, n.min(256))
        } else {
            at(rng, n)
        }
    };
    match rng.below(8) {
        0 => {
            let flips = 1 + rng.below(8);
            for _ in 0..flips {
                let i = pos(rng);
                if let Some(x) = b.get_mut(i) {
                    *x ^= 1 << rng.below(8);
                }
            }
            format!("{flips} bit flips")
        }
        1 => {
            let i = pos(rng);
            let len = (1 + rng.below(64) as usize).min(b.len().saturating_sub(i));
            let run = random_bytes(rng, len);
            b[i..i + len].copy_from_slice(&run);
            format!("{len} bytes overwritten at {i}")
        }
        2 => {
            let len = at(rng, n);
            b.truncate(len);
            format!("truncated to {len} bytes")
        }
        3 => {
            let fields = size_fields(kind, b);
            if fields.is_empty() {
                return "no size field".into();
            }
            let f = fields[at(rng, fields.len())];
            let max = (1u64 << (8 * f.width)) - 1;
            let value = match rng.below(4) {
                0 => 0,
                1 => max,
                2 => (b.len() as u64 * (2 + rng.below(1000))).min(max),
                _ => rng.next_u64() & max,
            };
            let bytes = value.to_le_bytes();
            for (k, &byte) in bytes.iter().take(f.width).enumerate() {
                let i = if f.big_endian {
                    f.at + f.width - 1 - k
                } else {
                    f.at + k
                };
                if let Some(x) = b.get_mut(i) {
                    *x = byte;
                }
            }
            format!("size field at {} set to {value:#x}", f.at)
        }
        4 | 5 => {
            let u = units(kind, b);
            if u.is_empty() {
                return "no unit".into();
            }
            let r = u[at(rng, u.len())].clone();
            if rng.below(2) == 0 {
                let copy = b[r.clone()].to_vec();
                b.splice(r.end..r.end, copy);
                format!("unit {r:?} duplicated")
            } else {
                b.drain(r.clone());
                format!("unit {r:?} removed")
            }
        }
        6 => {
            let i = pos(rng).min(b.len());
            let len = 1 + rng.below(256) as usize;
            let ins = random_bytes(rng, len);
            b.splice(i..i, ins);
            format!("{len} bytes inserted at {i}")
        }
        _ => {
            let i = at(rng, n.min(64));
            let v = rng.next_u64() as u8;
            if let Some(x) = b.get_mut(i) {
                *x = v;
            }
            format!("header byte {i} set to {v:#04x}")
        }
    }
}

// ---------------------------------------------------------------------------
// Checks.

/// The in-process checks of one mutant: whether it decoded, or what is wrong.
fn check_in_process(path: &Path, file_len: usize, kind: Kind) -> Result<bool, String> {
    let result = std::panic::catch_unwind(|| audio::decode(path));
    match result {
        Err(_) => Err("decode panicked".into()),
        Ok(Ok(d)) => {
            let a = &d.audio;
            if !(1..=MAX_CHANNELS).contains(&a.channels)
                || !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&a.sample_rate)
            {
                return Err(format!("decoded {} ch at {} Hz", a.channels, a.sample_rate));
            }
            if let Some(x) = a
                .samples
                .iter()
                .find(|x| !x.is_finite() || x.abs() > MAX_LEVEL)
            {
                return Err(format!("decoded sample {x}"));
            }
            // A WAV's samples are its bytes: never more of them than bytes.
            if kind == Kind::Wav && a.samples.len() > file_len {
                return Err(format!("{} samples from {file_len} bytes", a.samples.len()));
            }
            Ok(true)
        }
        Ok(Err(Error::File { path: p, problem })) => {
            if p != path {
                Err(format!("the error names {} instead", p.display()))
            } else if problem.is_empty() || problem.contains('\n') {
                Err(format!("not a one-line problem: {problem:?}"))
            } else {
                Ok(false)
            }
        }
        Ok(Err(e)) => Err(format!("an error without the file: {e}")),
    }
}

/// What one run of `info` over `files` showed wrong (empty: nothing).
fn check_binary(files: &[PathBuf]) -> (Vec<String>, Duration) {
    let mut cmd = if cfg!(unix) {
        // The limit applies to the shell, then to the binary it becomes.
        let mut c = std::process::Command::new("/bin/sh");
        c.arg("-c")
            .arg(format!(
                "ulimit -v {MEMORY_LIMIT_KIB} && exec \"$0\" \"$@\""
            ))
            .arg(bin().get_program());
        c
    } else {
        std::process::Command::new(bin().get_program())
    };
    cmd.arg("info").args(files);
    cmd.env("RUST_BACKTRACE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("the binary runs");
    // Read both pipes on threads so a full pipe never stalls the child.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut s).ok();
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut s).ok();
        s
    });
    let mut problems = Vec::new();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > BATCH_TIMEOUT {
            let _ = child.kill();
            problems.push(format!("timed out after {BATCH_TIMEOUT:?}"));
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    let (stdout, stderr) = (text(&t_out.join().unwrap()), text(&t_err.join().unwrap()));
    if status.code().is_none() {
        problems.push(format!("died of a signal ({status:?})"));
    }
    for bad in [
        "panicked",
        "RUST_BACKTRACE",
        "stack backtrace",
        "memory allocation",
    ] {
        if stderr.contains(bad) || stdout.contains(bad) {
            problems.push(format!("printed {bad:?}"));
        }
    }
    for f in files {
        let name = f.display().to_string();
        let shown = stdout
            .lines()
            .filter(|l| l.starts_with(&format!("{name}: ")))
            .count()
            + stderr
                .lines()
                .filter(|l| l.starts_with(&format!("error: {name}: ")))
                .count();
        if shown != 1 {
            problems.push(format!("{name} is reported {shown} times"));
        }
    }
    if !problems.is_empty() {
        problems.push(format!(
            "stderr: {}",
            stderr.chars().take(2000).collect::<String>()
        ));
    }
    (problems, elapsed)
}

/// Mutate `seed` `count` times and check every mutant both ways.
fn fuzz(name: &str, kind: Kind, ext: &str, seed: Vec<u8>) {
    let count: usize = env_or("WAVELSTM_FUZZ_MUTANTS", DEFAULT_MUTANTS);
    let base: u64 = env_or("WAVELSTM_FUZZ_SEED", 15);
    let dir = tmpdir(name);
    // The seed itself decodes: the mutants start from a valid file.
    let seed_path = dir.join(format!("seed.{ext}"));
    std::fs::write(&seed_path, &seed).unwrap();
    audio::decode(&seed_path).unwrap_or_else(|e| panic!("seed: {e}"));

    let mut failures = Vec::new();
    let (mut decoded, mut refused) = (0, 0);
    let mut slowest = Duration::ZERO;
    let mut start = 0;
    while start < count {
        let end = (start + BATCH).min(count);
        let mut files = Vec::new();
        for i in start..end {
            let mut rng = SplitMix64::derive(base, i as u64);
            let mut b = seed.clone();
            let mut done = Vec::new();
            for _ in 0..1 + rng.below(2) {
                done.push(mutate(kind, &mut b, &mut rng));
            }
            if kind == Kind::Ogg && rng.below(2) == 0 {
                fix_ogg_crcs(&mut b);
                done.push("CRCs fixed".into());
            }
            let p = dir.join(format!("{name}_{i}.{ext}"));
            std::fs::write(&p, &b).unwrap();
            match check_in_process(&p, b.len(), kind) {
                Ok(true) => decoded += 1,
                Ok(false) => refused += 1,
                Err(problem) => {
                    failures.push(format!("mutant {i} ({}): {problem}", done.join(", ")))
                }
            }
            files.push(p);
        }
        let (problems, t) = check_binary(&files);
        slowest = slowest.max(t);
        if !problems.is_empty() {
            failures.push(format!("mutants {start}..{end}: {}", problems.join("; ")));
        }
        // WAVELSTM_FUZZ_KEEP=1 keeps the mutants, to rerun one by hand.
        if std::env::var_os("WAVELSTM_FUZZ_KEEP").is_none() {
            for f in &files {
                let _ = std::fs::remove_file(f);
            }
        }
        start = end;
    }
    eprintln!(
        "fuzz {name}: {count} mutants (seed {base}): {decoded} decoded, {refused} refused, slowest run of {BATCH} files {slowest:.1?}"
    );
    assert!(
        failures.is_empty(),
        "{} of {count} {name} mutants failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// One test per format, so each fuzzes (and fails) on its own.
macro_rules! fuzz_tests {
    ($($test:ident: $name:literal, $kind:ident, $ext:literal, $seed:expr;)*) => {$(
        #[test]
        fn $test() {
            fuzz($name, Kind::$kind, $ext, $seed);
        }
    )*};
}

fuzz_tests! {
    fuzz_wav_16bit: "wav16", Wav, "wav", wav16();
    fuzz_wav_24bit: "wav24", Wav, "wav", wav24();
    fuzz_wav_32bit_float: "wavf32", Wav, "wav", wav_f32();
    fuzz_mp3: "mp3", Mp3, "mp3", mp3();
    fuzz_flac: "flac", Flac, "flac", seed_file("seed.flac");
    fuzz_ogg_vorbis: "ogg", Ogg, "ogg", seed_file("seed.ogg");
}

/// What the first fuzzing run found: every value of the block-size byte of
/// the Vorbis identification header, CRC fixed. symphonia 0.5.5 panics on
/// some of them; the user must see a one-line error, never panic text.
#[test]
fn every_vorbis_block_size_byte_is_decoded_or_refused_cleanly() {
    let seed = seed_file("seed.ogg");
    // Packet type 1, "vorbis", version (4), channels (1), rate (4), three
    // bitrates (12), then the byte of both block sizes.
    let id = find(&seed, b"\x01vorbis").unwrap();
    let dir = tmpdir("blocksize");
    let mut files = Vec::new();
    for v in 0..=255u8 {
        let mut b = seed.clone();
        b[id + 28] = v;
        fix_ogg_crcs(&mut b);
        let p = dir.join(format!("block_{v:02x}.ogg"));
        std::fs::write(&p, &b).unwrap();
        if let Err(problem) = check_in_process(&p, b.len(), Kind::Ogg) {
            panic!("block-size byte {v:#04x}: {problem}");
        }
        files.push(p);
    }
    let (problems, _) = check_binary(&files);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// An Ogg Vorbis header declaring an absurd rate or channel count is refused
/// with the field named, before anything is sized by it.
#[test]
fn absurd_vorbis_rates_and_channels_are_refused() {
    let seed = seed_file("seed.ogg");
    let id = find(&seed, b"\x01vorbis").unwrap();
    let dir = tmpdir("vorbis-format");
    let cases: [(usize, &[u8], &str); 3] = [
        (12, &1u32.to_le_bytes(), "sample rate of 1 Hz"),
        (12, &u32::MAX.to_le_bytes(), "4294967295 Hz"),
        (11, &[200], "channels"),
    ];
    for (offset, value, words) in cases {
        let mut b = seed.clone();
        b[id + offset..id + offset + value.len()].copy_from_slice(value);
        fix_ogg_crcs(&mut b);
        let p = dir.join("absurd.ogg");
        std::fs::write(&p, &b).unwrap();
        let e = audio::decode(&p).unwrap_err().to_string();
        assert!(e.contains("absurd.ogg") && e.contains(words), "{e}");
    }
}

/// What a long fuzzing run found: a Vorbis comment header that asks for
/// gigabytes, read after a duplicated identification page (so it is not
/// the stream's second packet). It must be refused without the allocation.
#[test]
fn a_comment_length_of_gigabytes_after_a_duplicated_page_is_refused() {
    let seed = seed_file("seed.ogg");
    let pages = ogg_pages(&seed);
    let mut b = seed.clone();
    b.splice(pages[0].end..pages[0].end, seed[pages[0].clone()].to_vec());
    let at = find(&b, b"\x03vorbis").unwrap();
    let vendor = u32::from_le_bytes(b[at + 7..at + 11].try_into().unwrap()) as usize;
    let count = at + 11 + vendor;
    b[count..count + 4].copy_from_slice(&1u32.to_le_bytes());
    b[count + 4..count + 8].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    fix_ogg_crcs(&mut b);
    let dir = tmpdir("comment");
    let p = dir.join("comment.ogg");
    std::fs::write(&p, &b).unwrap();
    assert_eq!(check_in_process(&p, b.len(), Kind::Ogg), Ok(false));
    let e = audio::decode(&p).unwrap_err().to_string();
    assert!(e.contains("Vorbis comment header"), "{e}");
    let (problems, _) = check_binary(&[p]);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
