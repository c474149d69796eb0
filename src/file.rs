//! Opening the files pgdap checks before it trusts them (password file, client key,
//! root CA, CRL, client certificate): the checks (regular file, permission bits, owner)
//! apply to the open file (`fstat`, as libpq does for the password file), which is then
//! read through the same handle, so a rename between the check and the read cannot
//! swap in another file. Secrets are read into buffers wiped when dropped.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::Path;
use std::time::SystemTime;

use zeroize::Zeroizing;

/// Opens `path` for reading and returns the file with its own metadata (`fstat` of the
/// open file, not `stat` of the path).
///
/// On Unix the file is opened non-blocking and without becoming a controlling terminal,
/// so that a FIFO or a device at the path is opened without waiting (and then refused by
/// the caller, who sees that it is not a regular file) instead of hanging the caller.
pub(crate) fn open_checked(path: &Path) -> io::Result<(File, Metadata)> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    Ok((file, meta))
}

/// Reads `reader` to its end into a buffer that is wiped when dropped, at most `limit`
/// bytes plus one (so the caller can tell a larger file). The buffer is sized from
/// `size_hint` (the file's length); should the file be longer, the buffer grows by moving
/// into a larger wiped buffer: a `Vec`'s own reallocation would free the old copy without
/// wiping it.
pub(crate) fn read_wiped(
    mut reader: impl Read,
    size_hint: u64,
    limit: u64,
) -> io::Result<Zeroizing<Vec<u8>>> {
    let stop = limit.saturating_add(1);
    let first = usize::try_from(size_hint.min(limit).saturating_add(1))
        .unwrap_or(usize::MAX)
        .max(64);
    let mut buf = Zeroizing::new(vec![0u8; first]);
    let mut len = 0usize;
    while (len as u64) < stop {
        if len == buf.len() {
            let mut bigger = Zeroizing::new(vec![0u8; len.saturating_mul(2)]);
            bigger[..len].copy_from_slice(&buf[..len]);
            buf = bigger;
        }
        let room = (buf.len() - len).min(usize::try_from(stop - len as u64).unwrap_or(usize::MAX));
        match reader.read(&mut buf[len..len + room]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader handing out at most `chunk` bytes per call.
    struct Trickle<'a> {
        data: &'a [u8],
        chunk: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.data.len().min(self.chunk).min(out.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn reads_everything_whatever_the_hint_and_stops_one_past_the_limit() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        for (hint, chunk) in [(1000, 7), (0, 1000), (10, 3), (5000, 64)] {
            let got = read_wiped(Trickle { data: &data, chunk }, hint, 4096).unwrap();
            assert_eq!(&got[..], &data[..], "hint {hint}, chunk {chunk}");
        }
        let got = read_wiped(
            Trickle {
                data: &data,
                chunk: 9,
            },
            0,
            100,
        )
        .unwrap();
        assert_eq!(
            got.len(),
            101,
            "limit + 1: the caller sees the file is larger"
        );
        assert!(read_wiped(&b""[..], 0, 10).unwrap().is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_opened_without_waiting_and_seen_for_what_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let (_, meta) = open_checked(&fifo).unwrap();
        assert!(!meta.is_file());
    }
}

/// A cheap fingerprint of a file, to notice a change without reading it: size,
/// modification and status-change times, inode, owner and mode (an atomic rename, an
/// in-place rewrite and a `chmod` all change it). Certificate rotation and the Access
/// Point file's re-read compare it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    /// Status-change time (`st_ctime`, nanoseconds): moves on chmod/chown too.
    changed: (i64, i64),
    inode: (u64, u64),
    owner: u32,
    mode: u32,
}

impl FileStamp {
    /// The stamp of the file at `path` (`stat`, following symlinks); `None` when there
    /// is none.
    pub(crate) fn of(path: &Path) -> Option<FileStamp> {
        std::fs::metadata(path)
            .ok()
            .map(|m| FileStamp::from_metadata(&m))
    }

    #[cfg(unix)]
    fn from_metadata(m: &Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            len: m.len(),
            modified: m.modified().ok(),
            changed: (m.ctime(), m.ctime_nsec()),
            inode: (m.dev(), m.ino()),
            owner: m.uid(),
            mode: m.mode(),
        }
    }

    #[cfg(not(unix))]
    fn from_metadata(m: &Metadata) -> FileStamp {
        FileStamp {
            len: m.len(),
            modified: m.modified().ok(),
            changed: (0, 0),
            inode: (0, 0),
            owner: 0,
            mode: u32::from(m.permissions().readonly()),
        }
    }
}
