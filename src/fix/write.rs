//! Writing a patched file back, for `fix --apply`. The file is one of a repository racecheck
//! did not write, so a link, a read-only bit or a planted name must not turn the write into one
//! somewhere else. The new text goes to a temporary file created exclusively (`O_CREAT |
//! O_EXCL | O_NOFOLLOW`, an unpredictable name) in the real file's own folder, takes the old
//! file's mode, owner and group, and is renamed over it, so a failure leaves the old file whole.
//!
//! What is refused, naming the file: a path that resolves (through links) outside its project,
//! anything but a regular file, a read-only file (no write bit, even for root), a file with
//! other hard links (the others would keep the old text), one whose owner or group cannot be
//! kept, and one whose text changed since the edits were made. A link to a file inside the
//! project is written through: the file it points at gets the fix and the link stays a link.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::apply::{Entry, Outcome};

/// Why a patched file was not written. Each names the file as the report shows it.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("`{path}` changed since it was read; not written")]
    Changed { path: String },
    #[error(
        "`{path}` resolves to `{target}`, outside the project `{project}` (through a symbolic \
         link); not written"
    )]
    Outside {
        path: String,
        target: PathBuf,
        project: PathBuf,
    },
    #[error("`{path}` is not a regular file; not written")]
    NotRegular { path: String },
    #[error("`{path}` is read-only; not written (make it writable to apply its fixes)")]
    ReadOnly { path: String },
    #[error(
        "`{path}` has {links} hard links; replacing it would leave the others with the old \
         text, so it was not written"
    )]
    HardLinks { path: String, links: u64 },
    #[error("cannot keep the owner and group of `{path}` ({source}); not written")]
    Owner { path: String, source: io::Error },
    #[error("cannot write `{path}`: {source}")]
    Io { path: String, source: io::Error },
}

/// The project a file of the analysis belongs to, as discovery saw it: the project of the
/// folder given that holds it, or of the file's own folder when the file was given.
pub fn project_for(file: &str, inputs: &[PathBuf]) -> PathBuf {
    let path = Path::new(file);
    let folder = |p: &Path| match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let root = inputs
        .iter()
        .find(|i| i.as_path() != path && i.is_dir() && path.starts_with(i))
        .cloned()
        .unwrap_or_else(|| folder(path));
    crate::project_of(&root)
}

/// Write `after` over `path`, which must still hold `before`; links are followed only inside
/// `project`.
pub fn write(path: &Path, before: &str, after: &str, project: &Path) -> Result<(), WriteError> {
    let shown = path.display().to_string();
    let io = |source| WriteError::Io {
        path: shown.clone(),
        source,
    };
    let target = std::fs::canonicalize(path).map_err(io)?;
    let project = std::fs::canonicalize(project).unwrap_or_else(|_| project.to_path_buf());
    if !target.starts_with(&project) {
        return Err(WriteError::Outside {
            path: shown,
            target,
            project,
        });
    }
    // Looked at before opening: opening a FIFO for writing can wait for a reader.
    if !std::fs::symlink_metadata(&target).map_err(io)?.is_file() {
        return Err(WriteError::NotRegular { path: shown });
    }
    let mut old = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&target)
        .map_err(io)?;
    let meta = old.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(WriteError::NotRegular { path: shown });
    }
    if meta.permissions().readonly() || !writable(&target) {
        return Err(WriteError::ReadOnly { path: shown });
    }
    if meta.nlink() > 1 {
        return Err(WriteError::HardLinks {
            path: shown,
            links: meta.nlink(),
        });
    }
    if !holds(&mut old, before).map_err(io)? {
        return Err(WriteError::Changed { path: shown });
    }
    let dir = target.parent().unwrap_or(Path::new("/"));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (tmp_path, mut tmp) = create_temp(dir, &name).map_err(io)?;
    let result = (|| {
        tmp.write_all(after.as_bytes()).map_err(io)?;
        let mine = tmp.metadata().map_err(io)?;
        if (mine.uid(), mine.gid()) != (meta.uid(), meta.gid()) {
            std::os::unix::fs::fchown(&tmp, Some(meta.uid()), Some(meta.gid())).map_err(
                |source| WriteError::Owner {
                    path: shown.clone(),
                    source,
                },
            )?;
        }
        // After the owner: changing it clears set-id bits.
        tmp.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(io)?;
        tmp.sync_all().map_err(io)?;
        // Once more just before the rename: an editor may have saved since.
        if !holds(&mut old, before).map_err(io)? {
            return Err(WriteError::Changed {
                path: shown.clone(),
            });
        }
        std::fs::rename(&tmp_path, &target).map_err(io)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp_path);
    }
    result
}

/// Whether the caller may write the file (its effective ids; root passes this check, which is
/// why the mode's write bits are looked at too).
fn writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a NUL-terminated path that outlives the call.
    unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::W_OK, libc::AT_EACCESS) == 0 }
}

/// Whether `file` holds exactly `text`; reads at most one byte more than `text` has.
fn holds(file: &mut File, text: &str) -> io::Result<bool> {
    file.rewind()?;
    let mut now = Vec::with_capacity(text.len() + 1);
    file.take(text.len() as u64 + 1).read_to_end(&mut now)?;
    Ok(now == text.as_bytes())
}

/// A new file beside the target, made by this call alone: never an existing file or a link
/// planted under a name racecheck would pick.
fn create_temp(dir: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    let mut last = None;
    for _ in 0..16 {
        let path = dir.join(format!(".{name}.{:016x}.racecheck-fix.tmp", random()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

/// 64 bits no one outside the process can predict: SipHash under the process's random keys.
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNT.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

/// Write every patched file of `outcome`. The fixes of a file that was not written move to the
/// skipped ones, with why; returns whether any file was not written.
pub fn write_all(outcome: &mut Outcome, inputs: &[PathBuf]) -> bool {
    let mut failed = false;
    for f in &outcome.files {
        let project = project_for(&f.path, inputs);
        let Err(why) = write(Path::new(&f.path), &f.before, &f.after, &project) else {
            continue;
        };
        failed = true;
        let why = why.to_string();
        let (gone, kept): (Vec<Entry>, Vec<Entry>) = std::mem::take(&mut outcome.applied)
            .into_iter()
            .partition(|x| x.file == f.path);
        outcome.applied = kept;
        outcome.skipped.extend(gone.into_iter().map(|x| Entry {
            what: why.clone(),
            ..x
        }));
    }
    failed
}
