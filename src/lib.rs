//! racecheck finds, proves and fixes race conditions in Axum services backed by DynamoDB.
//!
//! The engine (`source`, `fix`, `rules`) returns [`model::Report`]s and knows nothing of its
//! callers; `cli` and `mcp` parse arguments, call it, and render with `report`.

pub mod audit;
pub mod cli;
pub mod config;
pub mod fix;
pub mod mcp;
pub mod model;
pub mod probe;
pub mod report;
pub mod rules;
pub mod source;
pub mod spec;

/// Run `f`, turning a panic (a bug in racecheck, never the input's fault) into an error
/// message, so one odd function or document cannot take the whole analysis, or the MCP server,
/// down.
pub(crate) fn isolate<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into())
    })
}

/// A request to stop long work early, shared between the caller (an MCP call that was
/// cancelled, or whose client went away) and the analysis, which checks it between files and
/// between functions and then returns what it has.
#[derive(Clone, Debug, Default)]
pub struct Cancel(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Read a file of at most `max` bytes. Only regular files are read (a device, FIFO or socket
/// could stream forever), and the size is checked while reading, so a file that grows after
/// it was measured cannot exhaust memory either. The errors say which limit was hit.
pub(crate) fn read_limited(path: &std::path::Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind, Read};
    let not_regular = || {
        Error::new(
            ErrorKind::InvalidInput,
            "not a regular file (a directory, device, FIFO or socket); only regular files are read",
        )
    };
    // Looked at before opening: opening a FIFO waits for a writer.
    if !std::fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        // And opened without waiting, should it have become one since.
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    let too_large = |size: u64| {
        Error::new(
            ErrorKind::FileTooLarge,
            format!("{size} bytes, over the {max} byte limit for one file"),
        )
    };
    if meta.len() > max {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The project a file belongs to: the nearest folder at or above `dir` that holds `.git`, else
/// `dir` itself. A `$ref` or a symlinked module can name any file in it, and none outside.
pub fn project_of(dir: &std::path::Path) -> std::path::PathBuf {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| normal(dir));
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .unwrap_or(&dir)
        .to_path_buf()
}

/// `a/./b/../c` as `a/c`, for paths that do not exist (so cannot be canonicalised).
pub(crate) fn normal(p: &std::path::Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}
