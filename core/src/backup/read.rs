//! File readers: a few threads, each opening, reading, chunking and
//! hashing whole files the walker hands it and sending their new blobs to
//! the pack workers, so one file's system calls and hashing overlap
//! another's. Each result goes back tagged with the file's place in the
//! walk; the walker puts them in order.

use std::fs::File;
use std::io::{Read, Seek};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::chunker::Chunker;
use crate::config::ChunkerParams;
use crate::id::BlobId;
use crate::pack::BlobType;
use crate::{Error, Result};

use super::Progress;
use super::blobs::{Blobs, Tally};

const READ_BLOCK: usize = 1024 * 1024;
/// Room in the read window beyond one maximal chunk. The chunker needs
/// `max_size` bytes ahead of each cut, so the unread tail is moved to the
/// window's front whenever fewer than `READ_BLOCK` bytes are free; with
/// this much room that happens once per ~4 MiB read instead of once per
/// chunk, so each byte is moved at most about once (perf: the moves were
/// ~5 % of an initial backup's CPU at about three copies of every byte,
/// with a window of `max_size + READ_BLOCK`). The window is all touched
/// memory: 12 MiB of room (a third of a copy per byte) cost 8 MiB more
/// peak RSS than this, which kept a 1 % incremental above restic's.
const WINDOW_SLACK: usize = 4 * READ_BLOCK;

/// A file the walker wants read: where, what it was when listed.
pub(super) struct ReadJob {
    /// The file's place among the walk's reads.
    pub(super) seq: u64,
    pub(super) path: PathBuf,
    pub(super) dev: u64,
    pub(super) ino: u64,
    pub(super) len: u64,
}

pub(super) enum FileRead {
    /// The content's blob ids, and the bytes read.
    Read(Vec<BlobId>, u64),
    /// Not readable, for this reason: left out of the snapshot.
    Skip(String),
}

/// The read windows (`max_size + WINDOW_SLACK` bytes each) for files
/// longer than the chunker's minimum, shared by the readers: such a file
/// waits for a free one, so their memory does not grow with the number of
/// readers.
#[derive(Clone)]
pub(super) struct Windows {
    tx: crossbeam_channel::Sender<Vec<u8>>,
    rx: crossbeam_channel::Receiver<Vec<u8>>,
}

impl Windows {
    pub(super) fn new(n: usize) -> Windows {
        let (tx, rx) = crossbeam_channel::bounded(n);
        for _ in 0..n {
            tx.try_send(Vec::new()).expect("room for every window");
        }
        Windows { tx, rx }
    }

    /// Wait for a window; it comes back when the guard is dropped (also
    /// when its reader panics).
    fn take(&self) -> Window<'_> {
        Window {
            buf: self.rx.recv().expect("the windows hold a sender"),
            home: self,
        }
    }
}

struct Window<'a> {
    buf: Vec<u8>,
    home: &'a Windows,
}

impl Drop for Window<'_> {
    fn drop(&mut self) {
        let _ = self.home.tx.try_send(std::mem::take(&mut self.buf));
    }
}

/// Files of at most this many bytes are read whole into a reader's own
/// buffer (each reader its own, so their disk waits overlap); longer ones
/// go through a shared window. The chunker's minimum, but at least 256
/// KiB (many files of a software tree lie between a small minimum and
/// that), and below its maximum (a whole file in a buffer is then cut
/// exactly as a window would cut it).
pub(super) fn small_file(p: ChunkerParams) -> usize {
    (p.min_size as usize)
        .max(256 << 10)
        .min(p.max_size as usize - 1)
}

pub(super) struct FileReader {
    blobs: Arc<Blobs>,
    chunker: Chunker,
    windows: Windows,
    progress: Arc<Progress>,
    /// A small file's bytes (at most [`small_file`] + 1).
    small: Vec<u8>,
    pub(super) tally: Tally,
}

impl FileReader {
    pub(super) fn new(
        blobs: Arc<Blobs>,
        chunker: Chunker,
        windows: Windows,
        progress: Arc<Progress>,
    ) -> FileReader {
        FileReader {
            blobs,
            chunker,
            windows,
            progress,
            small: Vec::new(),
            tally: Tally::default(),
        }
    }

    /// Another reader sharing this one's blobs and windows.
    pub(super) fn fork(&self) -> FileReader {
        FileReader::new(
            self.blobs.clone(),
            self.chunker.clone(),
            self.windows.clone(),
            self.progress.clone(),
        )
    }

    /// Read, chunk and store one file, listed as `dev`/`ino` of `len` bytes.
    pub(super) fn read(&mut self, path: &Path, dev: u64, ino: u64, len: u64) -> Result<FileRead> {
        let mut f = match File::open(path) {
            Ok(f) => f,
            Err(e) => return Ok(FileRead::Skip(e.to_string())),
        };
        // The entry was lstat'ed when its directory was listed; if the name
        // now leads elsewhere (swapped for a symlink or another file since),
        // what was opened is not what was listed: skip it, never store
        // another file's bytes under this name.
        match f.metadata() {
            Ok(m) if (m.dev(), m.ino()) == (dev, ino) => {}
            Ok(_) => {
                return Ok(FileRead::Skip(
                    "replaced while the backup ran (not the file listed)".into(),
                ));
            }
            Err(e) => return Ok(FileRead::Skip(e.to_string())),
        }
        let small = small_file(self.chunker.params());
        if len <= small as u64 {
            if let Some(read) = self.read_small(&mut f, len as usize, small)? {
                return Ok(read);
            }
            // It grew past one chunk since it was listed: read it through
            // the window, from its start.
            if let Err(e) = f.rewind() {
                return Ok(FileRead::Skip(e.to_string()));
            }
        }
        self.read_windowed(&mut f)
    }

    /// A small file (at most `small` bytes, below the chunker's maximum,
    /// so its cuts are those a window would give) read into this reader's
    /// own buffer (the read, the part that waits for the disk, needs no
    /// blob buffer), then cut and stored (each chunk copied into a blob
    /// buffer only when it is new). None: the file is longer than `small`
    /// now.
    fn read_small(&mut self, f: &mut File, len: usize, small: usize) -> Result<Option<FileRead>> {
        let buf = &mut self.small;
        buf.clear();
        // One byte beyond the listed length: an unchanged file is read by
        // one call, and the next finds its end.
        buf.resize(len + 1, 0);
        let mut n = 0;
        loop {
            if n == buf.len() {
                if n > small {
                    return Ok(None);
                }
                let more = (2 * n).min(small + 1);
                buf.resize(more, 0);
            }
            match f.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Ok(Some(FileRead::Skip(e.to_string()))),
            }
        }
        self.progress
            .bytes_read
            .fetch_add(n as u64, Ordering::Relaxed);
        if n == 0 {
            return Ok(Some(FileRead::Read(Vec::new(), 0)));
        }
        let mut ids = Vec::new();
        let mut rest = &self.small[..n];
        while !rest.is_empty() {
            let cut = self.chunker.next_cut(rest);
            ids.push(
                self.blobs
                    .store(BlobType::Data, &rest[..cut], &mut self.tally)?,
            );
            rest = &rest[cut..];
        }
        Ok(Some(FileRead::Read(ids, n as u64)))
    }

    /// A file of any length, read through a window and cut as it streams
    /// by; each chunk is copied once, into its blob's buffer.
    fn read_windowed(&mut self, f: &mut File) -> Result<FileRead> {
        let max = self.chunker.params().max_size as usize;
        let mut window = self.windows.take();
        let buf = &mut window.buf;
        buf.resize(max + WINDOW_SLACK, 0);
        let mut content = Vec::new();
        let (mut start, mut end, mut eof, mut size) = (0usize, 0usize, false, 0u64);
        loop {
            while !eof && end - start < max {
                if buf.len() - end < READ_BLOCK {
                    buf.copy_within(start..end, 0);
                    end -= start;
                    start = 0;
                }
                let want = READ_BLOCK.min(buf.len() - end);
                match f.read(&mut buf[end..end + want]) {
                    Ok(0) => eof = true,
                    Ok(n) => {
                        end += n;
                        self.progress
                            .bytes_read
                            .fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    // The chunks stored so far stay stored (deduplicated
                    // by a later run that reads the file).
                    Err(e) => return Ok(FileRead::Skip(e.to_string())),
                }
            }
            if start == end {
                return Ok(FileRead::Read(content, size));
            }
            let n = self.chunker.next_cut(&buf[start..end]);
            content.push(self.blobs.store(
                BlobType::Data,
                &buf[start..start + n],
                &mut self.tally,
            )?);
            start += n;
            size += n as u64;
        }
    }
}

/// A reader's thread: read each file it is handed, until the walker hangs
/// up; then what it tallied.
pub(super) fn read_files(
    mut reader: FileReader,
    jobs: crossbeam_channel::Receiver<ReadJob>,
    done: crossbeam_channel::Sender<(u64, Result<FileRead>)>,
) -> Tally {
    for job in jobs {
        // A panic becomes this file's error: the walker, waiting for the
        // file's result, must not wait forever.
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            reader.read(&job.path, job.dev, job.ino, job.len)
        }))
        .unwrap_or_else(|_| {
            Err(Error::Task(format!(
                "a file reader panicked reading {}",
                job.path.display()
            )))
        });
        if done.send((job.seq, read)).is_err() {
            break;
        }
    }
    reader.tally
}
