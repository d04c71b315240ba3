//! Write exactly the samples `wavelstm eval` scores, as 16-bit WAV, for
//! outside coders to be measured on (`benches/codecs.sh`).
//!
//! ```text
//! cargo run --release --example scored_samples -- MODEL OUT_DIR SONG...
//! ```
//! For each song: decoded at the model's rate and channel layout (as `eval`
//! hears it), the targets of the scored part (the last `valid_fraction` of
//! the model, as `eval` scores by default), each sample rounded to the
//! 16-bit grid by `codelength::to_16bit` (no dither): the integers whose
//! bits `eval` counts. Prints `OUT_FILE SAMPLES` per song.

use std::path::{Path, PathBuf};
use wavelstm::codelength::to_16bit;
use wavelstm::eval::{self, Scope};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: scored_samples MODEL OUT_DIR SONG...");
        std::process::exit(2);
    }
    let ck = wavelstm::checkpoint::load(Path::new(&args[0])).unwrap_or_else(|e| fail(e));
    let cfg = &ck.config;
    let out_dir = PathBuf::from(&args[1]);
    std::fs::create_dir_all(&out_dir).unwrap_or_else(|e| fail(e));
    let scope = match cfg.data.valid_fraction {
        f if f > 0.0 => Scope::Last(f),
        _ => Scope::Whole,
    };
    for song in &args[2..] {
        let song = Path::new(song);
        let input = eval::load_song(song, cfg).unwrap_or_else(|e| fail(e));
        let c = input.channels;
        let pos = eval::positions(input.frames(), cfg.model.frame, scope);
        let scored = &input.samples[(pos.start + 1) * c..(pos.end + 1) * c];
        let stem = song
            .file_stem()
            .map_or("song".into(), |s| s.to_string_lossy());
        let out = out_dir.join(format!("{stem}.wav"));
        let spec = hound::WavSpec {
            channels: c as u16,
            sample_rate: cfg.sample_rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&out, spec).unwrap_or_else(|e| fail(e));
        for &v in scored {
            w.write_sample(to_16bit(v as f64) as i16)
                .unwrap_or_else(|e| fail(e));
        }
        w.finalize().unwrap_or_else(|e| fail(e));
        println!("{} {}", out.display(), scored.len());
    }
}

fn fail(e: impl std::fmt::Display) -> ! {
    eprintln!("error: {e}");
    std::process::exit(1)
}
