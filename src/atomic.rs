//! Crash-safe file replacement.
//!
//! A file is never written in place: the bytes go to a hidden temporary file
//! in the same directory, which is flushed, synced to disk and then renamed
//! over the target. A rename within one directory is atomic, so a reader (or
//! a crash) sees either the old file or the complete new one, never half of
//! each. The temporary file lives next to the target rather than in `/tmp`
//! because a rename cannot cross file systems.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Write `path` atomically: `write` fills a buffered temporary file, which
/// replaces `path` only once everything has reached the disk.
///
/// On any failure (including one returned by `write`) the temporary file is
/// removed and an existing `path` is left exactly as it was. Errors name
/// `path`, not the temporary file, because that is the name the user gave.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::file(path, "cannot write: the path does not name a file"))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (tmp_path, file) = create_temp(&dir, &name.to_string_lossy()).map_err(|e| {
        Error::file(
            path,
            format!("cannot create a temporary file in {}: {e}", dir.display()),
        )
    })?;

    let result = fill_and_sync(path, file, write).and_then(|()| {
        fs::rename(&tmp_path, path)
            .map_err(|e| Error::file(path, format!("cannot replace the file: {e}")))
    });
    match result {
        Ok(()) => {
            sync_dir(&dir);
            Ok(())
        }
        Err(e) => {
            // Best effort: the original error is the one worth reporting.
            let _ = fs::remove_file(&tmp_path);
            Err(e)
        }
    }
}

/// Run the caller's writer, then push the bytes through every buffer down to the disk.
fn fill_and_sync(
    path: &Path,
    file: File,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    let mut out = BufWriter::new(file);
    write(&mut out)?;
    out.flush()
        .map_err(|e| Error::file(path, format!("cannot write: {e}")))?;
    let file = out
        .into_inner()
        .map_err(|e| Error::file(path, format!("cannot write: {}", e.error())))?;
    file.sync_all()
        .map_err(|e| Error::file(path, format!("cannot sync to disk: {e}")))
}

/// Create a fresh hidden file `.{name}.{pid}.{n}.tmp` in `dir`.
///
/// The pid keeps concurrent processes apart and the counter keeps threads of
/// one process apart; `create_new` guarantees we never adopt a file that
/// someone else (or a crashed earlier run with a recycled pid) left behind.
pub(crate) fn create_temp(dir: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let pid = std::process::id();
    let mut last_err = None;
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{pid}.{n}.tmp"));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

/// Make the rename itself durable. Not every file system supports syncing a
/// directory, and the data is already safe either way, so failures are ignored.
pub(crate) fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}
