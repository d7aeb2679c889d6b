//! Reading the files an operator points to (config, inventory, geo CSV, web config,
//! certificates) without trusting them: only regular files, bounded in size, and read whole
//! without a half-written state. A FIFO would block `check` and a reload forever, `/dev/zero`
//! would never end, and an inventory rewritten in place during a reload could be read as a mix of
//! old and new rows, or cut short where the writer paused.

use std::fs::{Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Largest config or web config file accepted.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;
/// Largest inventory CSV accepted: a million endpoints at ~100 bytes a row fit.
pub const MAX_INVENTORY_BYTES: u64 = 256 << 20;
/// Largest PEM file (certificate chain, key, CA bundle) accepted.
pub const MAX_PEM_BYTES: u64 = 4 << 20;

/// Attempts to get a read that no writer disturbed.
const STABLE_ATTEMPTS: usize = 3;

/// How long a file must have been left alone before it is trusted whole. A writer that rewrites
/// in place (`cat > inventory.csv`, a script writing row by row) leaves a file that looks
/// complete between two of its writes; one modified this recently is read again once it has
/// been quiet this long.
const QUIET: Duration = Duration::from_millis(500);

/// Reads a regular file of at most `limit` bytes. Refuses FIFOs, devices, sockets and
/// directories, opens without blocking (a FIFO open would wait for a writer), and reads again
/// when the file changed while being read (size, modification time or inode differ before and
/// after), failing after a few attempts instead of returning a torn copy.
pub fn read_regular(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    for _ in 0..STABLE_ATTEMPTS {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)?;
        let before = file.metadata()?;
        if !before.file_type().is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "is not a regular file (it is a {}); point to a regular file",
                    kind(&before)
                ),
            ));
        }
        if before.len() > limit {
            return Err(too_large(before.len(), limit));
        }
        let mut bytes = Vec::with_capacity(before.len() as usize);
        file.take(limit + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > limit {
            return Err(too_large(bytes.len() as u64, limit));
        }
        let after = std::fs::metadata(path)?;
        if same_version(&before, &after) && bytes.len() as u64 == after.len() {
            let Some(wait) = still_settling(&after) else {
                return Ok(bytes);
            };
            std::thread::sleep(wait);
            if same_version(&after, &std::fs::metadata(path)?) {
                return Ok(bytes);
            }
            continue;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(io::Error::other(
        "kept changing while being read; write it to a temporary file and rename it into place",
    ))
}

/// How much longer to wait before a file modified less than [`QUIET`] ago can be trusted whole.
/// A modification time in the future (clock skew, `touch -d`) cannot be judged: no wait.
fn still_settling(m: &Metadata) -> Option<Duration> {
    let age = SystemTime::now().duration_since(m.modified().ok()?).ok()?;
    QUIET.checked_sub(age).filter(|w| !w.is_zero())
}

/// Like [`read_regular`], as UTF-8 text.
pub fn read_regular_text(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read_regular(path, limit)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "is not valid UTF-8"))
}

fn same_version(a: &Metadata, b: &Metadata) -> bool {
    (a.dev(), a.ino(), a.len(), a.mtime(), a.mtime_nsec()) == (b.dev(), b.ino(), b.len(), b.mtime(), b.mtime_nsec())
}

fn too_large(len: u64, limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("is larger than {limit} bytes ({len} or more); is it the right file?"),
    )
}

fn kind(m: &Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifos_devices_and_directories_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let e = read_regular(&fifo, 100).unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
        let e = read_regular(Path::new("/dev/zero"), 100).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        let e = read_regular(dir.path(), 100).unwrap_err();
        assert!(e.to_string().contains("directory"), "{e}");
    }

    /// A writer that pauses in the middle of rewriting a file in place: the read waits for it
    /// and returns the whole new file, never the first half (which ends in a valid but wrong
    /// address). Before the quiet period this returned the half.
    #[test]
    fn a_file_rewritten_in_place_is_not_read_half_written() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("inventory.csv");
        let whole = b"id,address\nA,10.1.2.34\nB,10.1.2.35\n";
        let half = &whole[..21]; // "id,address\nA,10.1.2.3": a valid address, the wrong one
        let mut w = std::fs::File::create(&f).unwrap();
        w.write_all(half).unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            w.write_all(&whole[21..]).unwrap();
        });
        let read = read_regular(&f, 1000).unwrap();
        writer.join().unwrap();
        assert_eq!(String::from_utf8_lossy(&read), String::from_utf8_lossy(whole));
    }

    #[test]
    fn a_settled_file_is_read_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"old").unwrap();
        let old = SystemTime::now() - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(still_settling(&std::fs::metadata(&f).unwrap()).is_none());
        let future = SystemTime::now() + Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(future)
            .unwrap();
        assert!(still_settling(&std::fs::metadata(&f).unwrap()).is_none());
        std::fs::write(&f, b"new").unwrap();
        assert!(still_settling(&std::fs::metadata(&f).unwrap()).is_some());
    }

    #[test]
    fn size_is_bounded_and_small_files_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"abcdef").unwrap();
        assert_eq!(read_regular(&f, 6).unwrap(), b"abcdef");
        let e = read_regular(&f, 5).unwrap_err();
        assert!(e.to_string().contains("larger than 5 bytes"), "{e}");
    }
}
