//! Crash-safe file replacement.
//!
//! A file is never written in place: the bytes go to a hidden temporary file
//! in the same directory, which is flushed, synced to disk and then renamed
//! over the target. A rename within one directory is atomic, so a reader (or
//! a crash) sees either the old file or the complete new one, never half of
//! each. The temporary file lives next to the target rather than in `/tmp`
//! because a rename cannot cross file systems.
//!
//! A process killed mid-write (kill -9, a power cut) leaves its temporary
//! file behind. Temporary names hold the writer's process id, so the next
//! write in the same folder removes every temporary file of our naming whose
//! process is gone (see [`remove_stale_temps`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

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
    let dir = folder_of(path);
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

/// Check, before any work, that `path` can be written: it is not a
/// directory and its folder exists and accepts new files. A run that would
/// only fail when it writes its result is refused at the start.
pub fn check_output(path: &Path) -> Result<()> {
    let bad = |p: String| Error::file(path, format!("cannot write here: {p}"));
    if path.file_name().is_none() {
        return Err(bad("the path does not name a file".into()));
    }
    if path.is_dir() {
        return Err(bad("it is a directory".into()));
    }
    let dir = folder_of(path);
    match fs::metadata(&dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(bad(format!("the folder {} does not exist", dir.display())))
        }
        Err(e) => return Err(bad(format!("the folder {}: {e}", dir.display()))),
        Ok(m) if !m.is_dir() => return Err(bad(format!("{} is not a folder", dir.display()))),
        Ok(_) => {}
    }
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let (tmp, file) = create_temp(&dir, &name)
        .map_err(|e| bad(format!("cannot create a file in {}: {e}", dir.display())))?;
    drop(file);
    let _ = fs::remove_file(tmp);
    Ok(())
}

/// The folder a file of `path` lives in (`.` for a bare name).
fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The process id in a temporary file name of ours, `.{name}.{pid}.{n}.tmp`.
fn temp_owner(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let mut parts = rest.rsplitn(3, '.');
    let n = parts.next()?;
    let pid = parts.next()?;
    let name = parts.next()?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if name.is_empty() || !digits(n) || !digits(pid) {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` still runs. Where that cannot be known (no
/// `/proc`), every process counts as running: a temporary file is removed
/// only when its writer is certainly gone.
fn is_running(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc = Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

/// Remove the temporary files of our naming in `dir` whose writing process
/// no longer runs (left by a crash or a kill), once per folder and process.
/// Returns how many were removed; failures are ignored (it is tidying).
pub fn remove_stale_temps(dir: &Path) -> usize {
    static DONE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let key = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    {
        let mut done = DONE.lock().unwrap_or_else(|p| p.into_inner());
        if done.contains(&key) {
            return 0;
        }
        done.push(key);
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = temp_owner(&name.to_string_lossy()) else {
            continue;
        };
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && !is_running(pid) && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Create a fresh hidden file `.{name}.{pid}.{n}.tmp` in `dir`, after
/// removing the stale ones a killed run left there.
///
/// The pid keeps concurrent processes apart and the counter keeps threads of
/// one process apart; `create_new` guarantees we never adopt a file that
/// someone else (or a crashed earlier run with a recycled pid) left behind.
pub(crate) fn create_temp(dir: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    remove_stale_temps(dir);
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
