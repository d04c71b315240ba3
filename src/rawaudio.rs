//! Samples as raw numbers for other tools: little-endian f32, or NumPy's
//! `.npy` (format version 1.0: a magic string, a Python-literal header
//! giving dtype `<f4` and shape `(frames, channels)`, then the data).

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// The `.npy` header of an `[frames, channels]` little-endian f32 array,
/// padded so the data starts on a 64-byte boundary, as NumPy writes it.
fn npy_header(frames: usize, channels: usize) -> Vec<u8> {
    let dict =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({frames}, {channels}), }}");
    // magic (6) + version (2) + header length (2) + dict + padding + '\n'
    let unpadded = 10 + dict.len() + 1;
    let len = unpadded.div_ceil(64) * 64;
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    h.extend_from_slice(&((len - 10) as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.resize(len - 1, b' ');
    h.push(b'\n');
    h
}

/// Write `samples` (`[frames, channels]` interleaved) to `path`: `.npy` by
/// its extension, otherwise raw little-endian f32. Atomic.
pub fn write(path: &Path, samples: &[f32], channels: usize) -> Result<()> {
    assert!(channels > 0 && samples.len().is_multiple_of(channels));
    let npy = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    write_atomic(path, |w| {
        let io = |e: std::io::Error| Error::file(path, format!("cannot write: {e}"));
        if npy {
            w.write_all(&npy_header(samples.len() / channels, channels))
                .map_err(io)?;
        }
        for x in samples {
            w.write_all(&x.to_le_bytes()).map_err(io)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::npy_header;

    #[test]
    fn npy_header_is_padded_to_64_bytes_and_ends_in_a_newline() {
        for (f, c) in [(0, 1), (7, 2), (123_456_789, 2)] {
            let h = npy_header(f, c);
            assert_eq!(h.len() % 64, 0);
            assert_eq!(*h.last().unwrap(), b'\n');
            assert_eq!(u16::from_le_bytes([h[8], h[9]]) as usize, h.len() - 10);
            let text = std::str::from_utf8(&h[10..]).unwrap();
            assert!(text.contains(&format!("'shape': ({f}, {c})")), "{text}");
        }
    }
}
