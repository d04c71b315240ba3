//! A WAV file written frame by frame, so a long output never has to be
//! held in memory, and still replaced atomically (see `atomic`): the frames
//! go to a hidden temporary file beside the target, which is renamed over
//! it by [`WavStream::finish`]. A stream dropped unfinished (an error, a
//! panic) removes its temporary file and leaves the target untouched.

use crate::atomic::{create_temp, sync_dir};
use crate::audio::{clip, to_i16, SampleFormat};
use crate::error::{Error, Result};
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// Most sample bytes a WAV file can hold: its sizes are 32-bit, less room
/// for the header.
pub const MAX_DATA_BYTES: u64 = u32::MAX as u64 - 1024;

pub struct WavStream {
    path: PathBuf,
    tmp: PathBuf,
    format: SampleFormat,
    channels: usize,
    /// Sample bytes written so far.
    bytes: u64,
    /// None once finished.
    wav: Option<hound::WavWriter<BufWriter<File>>>,
}

impl WavStream {
    pub fn create(
        path: &Path,
        channels: usize,
        sample_rate: u32,
        format: SampleFormat,
    ) -> Result<WavStream> {
        let problem = |p: String| Error::file(path, format!("cannot write: {p}"));
        let channels16 = u16::try_from(channels)
            .ok()
            .filter(|&c| c > 0)
            .ok_or_else(|| problem(format!("{channels} channels")))?;
        let name = path
            .file_name()
            .ok_or_else(|| Error::file(path, "cannot write: the path does not name a file"))?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let (tmp, file) = create_temp(&dir, &name.to_string_lossy()).map_err(|e| {
            problem(format!(
                "cannot create a temporary file in {}: {e}",
                dir.display()
            ))
        })?;
        let spec = hound::WavSpec {
            channels: channels16,
            sample_rate,
            bits_per_sample: match format {
                SampleFormat::Int16 => 16,
                SampleFormat::Float32 => 32,
            },
            sample_format: match format {
                SampleFormat::Int16 => hound::SampleFormat::Int,
                SampleFormat::Float32 => hound::SampleFormat::Float,
            },
        };
        let mut stream = WavStream {
            path: path.to_path_buf(),
            tmp,
            format,
            channels,
            bytes: 0,
            wav: None,
        };
        stream.wav = Some(
            hound::WavWriter::new(BufWriter::new(file), spec)
                .map_err(|e| problem(e.to_string()))?,
        );
        Ok(stream)
    }

    /// Append one frame (`channels` samples, full scale ±1, clipped).
    pub fn write_frame(&mut self, frame: &[f32]) -> Result<()> {
        assert_eq!(frame.len(), self.channels, "WavStream: frame size");
        let wav = self.wav.as_mut().expect("not finished");
        let frame_bytes = (frame.len()
            * match self.format {
                SampleFormat::Int16 => 2,
                SampleFormat::Float32 => 4,
            }) as u64;
        if self.bytes + frame_bytes > MAX_DATA_BYTES {
            return Err(Error::file(
                &self.path,
                "cannot write: more samples than a WAV file can hold (4 GiB)",
            ));
        }
        self.bytes += frame_bytes;
        for &x in frame {
            match self.format {
                SampleFormat::Int16 => wav.write_sample(to_i16(x)),
                SampleFormat::Float32 => wav.write_sample(clip(x)),
            }
            .map_err(|e| Error::file(&self.path, format!("cannot write: {e}")))?;
        }
        Ok(())
    }

    /// Complete the header, push the bytes to the disk and put the file in place.
    pub fn finish(mut self) -> Result<()> {
        let problem = |p: String| Error::file(&self.path, format!("cannot write: {p}"));
        let wav = self.wav.take().expect("not finished");
        wav.finalize().map_err(|e| problem(e.to_string()))?;
        // The writer closed its handle; any handle's fsync flushes the file.
        File::open(&self.tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| problem(format!("cannot sync to disk: {e}")))?;
        fs::rename(&self.tmp, &self.path)
            .map_err(|e| Error::file(&self.path, format!("cannot replace the file: {e}")))?;
        if let Some(dir) = self.path.parent() {
            sync_dir(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            });
        }
        self.tmp = PathBuf::new();
        Ok(())
    }
}

impl Drop for WavStream {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            drop(self.wav.take());
            let _ = fs::remove_file(&self.tmp);
        }
    }
}
