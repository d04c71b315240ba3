//! `wavelstm info`: codec, rate, channels, length and levels of audio files.

use crate::audio;
use crate::error::{Error, Result};
use std::path::PathBuf;

pub(super) fn run(files: &[PathBuf]) -> Result<()> {
    let mut failed = 0;
    for f in files {
        match audio::info(f) {
            Ok(i) => {
                let levels = |v: &[f64]| {
                    v.iter()
                        .map(|x| format!("{x:.2}"))
                        .collect::<Vec<_>>()
                        .join(" / ")
                };
                println!(
                    "{}: {}, {} Hz, {} ch, {} frames, {:.3} s, peak {} dBFS, RMS {} dBFS",
                    f.display(),
                    i.codec,
                    i.sample_rate,
                    i.channels,
                    i.frames,
                    i.duration_secs,
                    levels(&i.peak_dbfs),
                    levels(&i.rms_dbfs)
                );
                for w in &i.warnings {
                    eprintln!("warning: {}: {w}", f.display());
                }
            }
            Err(e) => {
                // Report every bad file, then fail once for all of them.
                eprintln!("error: {e}");
                failed += 1;
            }
        }
    }
    if failed == 0 {
        Ok(())
    } else {
        Err(Error::Other(format!(
            "{failed} of {} files could not be read",
            files.len()
        )))
    }
}
