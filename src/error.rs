//! One error type for the whole crate.
//!
//! Every error that reaches the user is one line that names the file (when
//! there is one) and the problem; the CLI prints it and exits non-zero.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum Error {
    /// A problem with a named file: unreadable, not audio, corrupt, too short...
    File { path: PathBuf, problem: String },
    /// A problem with the arguments or the configuration.
    Config(String),
    /// Anything else (I/O without a path, internal inconsistencies surfaced as errors).
    Other(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn file(path: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        Error::File {
            path: path.as_ref().to_path_buf(),
            problem: problem.into(),
        }
    }
    pub fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::File { path, problem } => write!(f, "{}: {}", path.display(), problem),
            Error::Config(msg) => write!(f, "{msg}"),
            Error::Other(msg) => write!(f, "{msg}"),
        }
    }
}

impl std::error::Error for Error {}
