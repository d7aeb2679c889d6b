//! The ledger's identity on disk: the database and `<path>.lock` files the writer holds, checked
//! against what their paths name now, and the restoration of a deleted or replaced database.
//!
//! Both files are held through read-only descriptors with an exclusive `flock`: the lock file
//! (the historical lock) and the database itself, so a second writer is refused even when the
//! lock file was deleted. On Linux `flock` locks are independent of the POSIX `fcntl` locks
//! SQLite takes, so the database lock does not interfere with SQLite. The database descriptor
//! must outlive every connection of the writer on that file: closing a descriptor drops the
//! process's POSIX locks on the file, SQLite's included.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use rusqlite::Connection;

use super::StoreError;

/// (st_dev, st_ino) of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// What `path` names now.
    pub(crate) fn of_path(path: &Path) -> std::io::Result<FileId> {
        std::fs::metadata(path).map(|m| FileId::of(&m))
    }

    fn of(m: &std::fs::Metadata) -> FileId {
        FileId {
            dev: m.dev(),
            ino: m.ino(),
        }
    }
}

/// What a path names compared with the file held open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PathState {
    /// The path names the file held open.
    Same,
    /// Nothing at the path.
    Missing,
    /// Another file sits at the path.
    Other,
}

/// A file held open and flocked exclusively, with its identity.
#[derive(Debug)]
pub(crate) struct Held {
    path: PathBuf,
    lock: Flock<File>,
    id: FileId,
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Held {
    /// Creates `path` if needed (empty) and takes an exclusive `flock` on it through a read-only
    /// descriptor (which does not keep the file system from being remounted read-only).
    pub(crate) fn lock(path: &Path) -> Result<Held, StoreError> {
        // One descriptor on an existing file: closing a second one would drop the process's
        // POSIX locks on it (SQLite's).
        let f = match File::open(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(path)
                    .map_err(io(path))?;
                File::open(path)
            }
            other => other,
        }
        .map_err(io(path))?;
        let id = FileId::of(&f.metadata().map_err(io(path))?);
        let lock = Flock::lock(f, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| match errno {
            nix::errno::Errno::EWOULDBLOCK => StoreError::Locked {
                path: path.to_path_buf(),
            },
            e => StoreError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::from(e),
            },
        })?;
        Ok(Held {
            path: path.to_path_buf(),
            lock,
            id,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Compares the file held open with what its path names now. An error other than "not
    /// found" (a permission problem, an I/O error) is returned: it proves nothing either way.
    pub(crate) fn check(&self) -> std::io::Result<PathState> {
        match std::fs::metadata(&self.path) {
            Ok(m) if FileId::of(&m) == self.id => Ok(PathState::Same),
            Ok(_) => Ok(PathState::Other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PathState::Missing),
            Err(e) => Err(e),
        }
    }

    /// The descriptor held open (the file even when its path is gone).
    pub(crate) fn file(&self) -> &File {
        &self.lock
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// `<path>.replaced-<unix>`, with `.N` appended when that name is taken.
fn aside_name(path: &Path, unix_s: i64) -> PathBuf {
    let base = with_suffix(path, &format!(".replaced-{unix_s}"));
    let mut n = 1;
    let mut p = base.clone();
    while [&p, &with_suffix(&p, ".wal"), &with_suffix(&p, ".shm")]
        .iter()
        .any(|q| q.symlink_metadata().is_ok())
    {
        p = with_suffix(&base, &format!(".{n}"));
        n += 1;
    }
    p
}

/// Renames `from` to `to` when `from` exists; true when it did.
fn move_if_present(from: &Path, to: &Path) -> Result<bool, StoreError> {
    match std::fs::rename(from, to) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io(from)(e)),
    }
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}

/// Writes a complete copy of the committed database held by `db` (through `conn` when the
/// writer still has a connection on it, else byte for byte from the held descriptor: what the
/// last connection checkpointed on closing) to `<path>.restoring`, synced. The caller then calls
/// [`install`] and only then closes `conn`.
pub(crate) fn copy_out(conn: Option<&Connection>, db: &Held) -> Result<PathBuf, StoreError> {
    let tmp = with_suffix(&db.path, ".restoring");
    if let Some(dir) = db.path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?; // the directory may be gone too
    }
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&tmp)(e)),
        _ => {}
    }
    match conn {
        Some(conn) => {
            let target = tmp
                .to_str()
                .ok_or_else(|| StoreError::Invalid(format!("{}: not UTF-8", tmp.display())))?;
            conn.execute("VACUUM INTO ?1", [target])?;
        }
        None => {
            use std::io::{Seek, SeekFrom};
            let mut src = db.file().try_clone().map_err(io(&db.path))?;
            src.seek(SeekFrom::Start(0)).map_err(io(&db.path))?;
            let mut out = File::create(&tmp).map_err(io(&tmp))?;
            std::io::copy(&mut src, &mut out).map_err(io(&tmp))?;
        }
    }
    OpenOptions::new()
        .write(true)
        .open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io(&tmp))?;
    Ok(tmp)
}

/// Puts the copy made by [`copy_out`] at the database path, after the writer's connection on
/// the old file is closed. A file found at the path (not the one held) and any `-wal`/`-shm`
/// left there are moved aside to `<path>.replaced-<unix>[.wal|.shm]`, never deleted and never
/// replayed onto the copy. Returns where the foreign file went, if there was one.
pub(crate) fn install(db: &Held, tmp: &Path, unix_s: i64) -> Result<Option<PathBuf>, StoreError> {
    let path = &db.path;
    let aside = aside_name(path, unix_s);
    let mut moved = None;
    if db.check().map_err(io(path))? != PathState::Same && move_if_present(path, &aside)? {
        moved = Some(aside.clone());
    }
    // Whose they are is unknown: renamed to names SQLite never pairs with a database.
    for (ext, to) in [("-wal", ".wal"), ("-shm", ".shm")] {
        if move_if_present(&with_suffix(path, ext), &with_suffix(&aside, to))? {
            tracing::warn!(
                file = %with_suffix(path, ext).display(),
                moved_to = %with_suffix(&aside, to).display(),
                "ledger: a file left beside the restored database was moved aside"
            );
        }
    }
    std::fs::rename(tmp, path).map_err(io(tmp))?;
    sync_dir(path);
    Ok(moved)
}
