//! Segment files: large payloads, and the payloads of large batches, stored
//! beside RocksDB, written once.
//!
//! A payload of [`EXTERNAL_MIN_BYTES`] or more, and in a batch of
//! [`BATCH_EXTERNAL_MIN_BYTES`] or more every payload of
//! [`BATCH_PAYLOAD_MIN_BYTES`] or more (see [`goes_external`]), is not put in
//! the RocksDB write batch: it is appended to the segment file of its page,
//! and the batch holds a small reference (segment, offset, length, CRC-32)
//! instead. RocksDB would write such a payload twice (its write-ahead log,
//! then a table file when the memtable is flushed, and again at each
//! compaction); a segment file writes it once, with one `writev` for the
//! batch. Payloads of one batch lie back to back in the file, and readers
//! read such runs with one read. Each page has at most one segment file,
//! `segments/<topic id>/<first id of the page>.seg`, so retention deletes a
//! page's payloads by deleting one file, and destroying a topic deletes its
//! directory.
//!
//! Ordering gives crash safety: the payloads are written (and, with
//! `syncWrites`, synced) before the batch that references them. A crash
//! between the two leaves bytes in a segment that nothing references, which
//! are harmless and go with the file. Files that belong to no page (left
//! by a crash between a retention batch or a topic destruction and the
//! deletion of the files) are deleted when the store opens.

use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice, IoSliceMut, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use crate::MessageId;
use crate::record::PayloadRef;

/// Payloads of this many bytes or more go to segment files.
pub(crate) const EXTERNAL_MIN_BYTES: usize = 16 << 10;
/// In a batch whose payloads add up to this many bytes or more...
pub(crate) const BATCH_EXTERNAL_MIN_BYTES: usize = 64 << 10;
/// ...payloads of this many bytes or more go to segment files as well.
pub(crate) const BATCH_PAYLOAD_MIN_BYTES: usize = 512;

/// Whether a payload of `len` bytes, in a batch whose payloads add up to
/// `batch_bytes`, goes to a segment file. A lone small message stays in
/// RocksDB (one write instead of a `writev` and a write); a large payload
/// and the payloads of a large batch of small ones are written once, to the
/// segment file, instead of RocksDB's log, table files and compactions.
pub(crate) fn goes_external(len: usize, batch_bytes: usize) -> bool {
    len >= EXTERNAL_MIN_BYTES
        || (batch_bytes >= BATCH_EXTERNAL_MIN_BYTES && len >= BATCH_PAYLOAD_MIN_BYTES)
}
/// Open segment files kept for reading, per topic.
const READ_FILES_KEPT: usize = 32;
/// Slices per `writev` call (Linux's `IOV_MAX` is 1024).
const MAX_SLICES: usize = 512;

/// The segment directory of a store.
#[derive(Debug, Clone)]
pub(crate) struct Segments {
    root: PathBuf,
}

impl Segments {
    pub(crate) fn new(store_path: &Path) -> Self {
        Self {
            root: store_path.join("segments"),
        }
    }

    pub(crate) fn topic_dir(&self, topic_id: u32) -> PathBuf {
        self.root.join(topic_id.to_string())
    }

    pub(crate) fn path(&self, topic_id: u32, segment: MessageId) -> PathBuf {
        self.topic_dir(topic_id).join(format!("{segment:020}.seg"))
    }

    /// Deletes the segment files of pages `[first, …)` that start before
    /// `first_retained`; a missing file is fine.
    pub(crate) fn delete_before(&self, topic_id: u32, first_retained: MessageId) -> io::Result<()> {
        for (segment, path) in self.list(topic_id)? {
            if segment < first_retained {
                remove(&path)?;
            }
        }
        Ok(())
    }

    /// Deletes a topic's segment directory.
    pub(crate) fn delete_topic(&self, topic_id: u32) -> io::Result<()> {
        match fs::remove_dir_all(self.topic_dir(topic_id)) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }

    /// The segment files of a topic, by segment id.
    pub(crate) fn list(&self, topic_id: u32) -> io::Result<Vec<(MessageId, PathBuf)>> {
        let entries = match fs::read_dir(self.topic_dir(topic_id)) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            other => other?,
        };
        let mut files = Vec::new();
        for entry in entries {
            let path = entry?.path();
            let id = path
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.strip_suffix(".seg"))
                .and_then(|id| id.parse().ok());
            if let Some(id) = id {
                files.push((id, path));
            }
        }
        files.sort_unstable();
        Ok(files)
    }

    /// The topic ids that have a segment directory.
    pub(crate) fn topic_ids(&self) -> io::Result<Vec<u32>> {
        let entries = match fs::read_dir(&self.root) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            other => other?,
        };
        let mut ids = Vec::new();
        for entry in entries {
            if let Some(id) = entry?
                .file_name()
                .to_str()
                .and_then(|name| name.parse().ok())
            {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// The bytes of a topic's segment files.
    pub(crate) fn topic_bytes(&self, topic_id: u32) -> u64 {
        self.list(topic_id).map_or(0, |files| {
            files
                .iter()
                .filter_map(|(_, path)| fs::metadata(path).ok())
                .map(|meta| meta.len())
                .sum()
        })
    }
}

fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// The segment file new payloads of a topic go to: its open page's.
#[derive(Debug)]
pub(crate) struct SegmentWriter {
    pub(crate) segment: MessageId,
    file: File,
    /// The file's length: where the next payload goes.
    len: u64,
}

impl SegmentWriter {
    /// Opens (creating it and its directory if needed) the segment of the
    /// page that starts at `segment`.
    pub(crate) fn open(segments: &Segments, topic_id: u32, segment: MessageId) -> io::Result<Self> {
        fs::create_dir_all(segments.topic_dir(topic_id))?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segments.path(topic_id, segment))?;
        let len = file.metadata()?.len();
        Ok(Self { segment, file, len })
    }

    /// Where a payload appended after `pending` more bytes will start.
    pub(crate) fn offset_after(&self, pending: u64) -> u64 {
        self.len + pending
    }

    /// Appends `payloads`, in order, with as few system calls as it can.
    pub(crate) fn append(&mut self, payloads: &[&[u8]]) -> io::Result<()> {
        for chunk in payloads.chunks(MAX_SLICES) {
            let mut slices: Vec<IoSlice<'_>> =
                chunk.iter().map(|bytes| IoSlice::new(bytes)).collect();
            let mut slices = &mut slices[..];
            while !slices.is_empty() {
                match self.file.write_vectored(slices) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(written) => {
                        self.len += written as u64;
                        IoSlice::advance_slices(&mut slices, written);
                    }
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => {
                        // Whatever was written stays: the next offset must follow it.
                        self.len = self.file.metadata().map_or(self.len, |meta| meta.len());
                        return Err(error);
                    }
                }
            }
        }
        Ok(())
    }

    /// Syncs the file's data to disk (for `syncWrites`).
    pub(crate) fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// Why a payload could not be read.
#[derive(Debug)]
pub(crate) enum PayloadError {
    /// The segment file is gone: retention deleted the page meanwhile.
    Gone,
    /// The file could not be read.
    Io(io::Error),
    /// The bytes are not what was written (a machine crash without
    /// `syncWrites` can lose the newest payloads).
    Damaged(String),
}

/// Open segment files of one topic, for reading.
#[derive(Debug, Default)]
pub(crate) struct SegmentReaders {
    files: Mutex<OpenFiles>,
}

/// The files a topic's readers keep open, and the first segment still
/// retained: a file opened by a read that raced with its deletion is not
/// kept, so that no fd holds a deleted file's disk.
#[derive(Debug, Default)]
struct OpenFiles {
    by_segment: FxHashMap<MessageId, Arc<File>>,
    first_retained: MessageId,
}

impl SegmentReaders {
    /// Reads and checks the payload `reference` points to.
    pub(crate) fn read(
        &self,
        segments: &Segments,
        topic_id: u32,
        reference: &PayloadRef,
    ) -> Result<Vec<u8>, PayloadError> {
        let file = self.file(segments, topic_id, reference.segment)?;
        let mut payload = vec![0; reference.len as usize];
        read_at(&file, &mut payload, reference)?;
        check(&payload, reference)?;
        Ok(payload)
    }

    /// Reads and checks payloads that lie back to back in one segment
    /// (each starts where the one before ends) with one `preadv`, straight
    /// into the payloads' own buffers: small payloads written in one batch
    /// are read back without a system call or a copy each.
    pub(crate) fn read_adjacent(
        &self,
        segments: &Segments,
        topic_id: u32,
        references: &[PayloadRef],
    ) -> Result<Vec<Vec<u8>>, PayloadError> {
        let (Some(first), Some(last)) = (references.first(), references.last()) else {
            return Ok(Vec::new());
        };
        debug_assert!(
            references
                .windows(2)
                .all(|pair| adjacent(&pair[0], &pair[1]))
        );
        let file = self.file(segments, topic_id, first.segment)?;
        let end = last.offset + u64::from(last.len);
        let mut payloads: Vec<Vec<u8>> = references
            .iter()
            .map(|reference| vec![0; reference.len as usize])
            .collect();
        let mut offset = first.offset;
        for chunk in payloads.chunks_mut(MAX_SLICES) {
            let mut slices: Vec<IoSliceMut<'_>> = chunk
                .iter_mut()
                .filter(|payload| !payload.is_empty())
                .map(|payload| IoSliceMut::new(payload))
                .collect();
            let mut slices = &mut slices[..];
            while !slices.is_empty() {
                match rustix::io::preadv(&*file, slices, offset) {
                    Ok(0) => {
                        return Err(PayloadError::Damaged(format!(
                            "segment {} ends before byte {end}",
                            first.segment
                        )));
                    }
                    Ok(read) => {
                        offset += read as u64;
                        IoSliceMut::advance_slices(&mut slices, read);
                    }
                    Err(rustix::io::Errno::INTR) => {}
                    Err(error) => return Err(PayloadError::Io(error.into())),
                }
            }
        }
        for (payload, reference) in payloads.iter().zip(references) {
            check(payload, reference)?;
        }
        Ok(payloads)
    }

    fn file(
        &self,
        segments: &Segments,
        topic_id: u32,
        segment: MessageId,
    ) -> Result<Arc<File>, PayloadError> {
        let mut files = self.files.lock();
        if let Some(file) = files.by_segment.get(&segment) {
            return Ok(Arc::clone(file));
        }
        let file = File::open(segments.path(topic_id, segment)).map_err(|error| {
            if error.kind() == io::ErrorKind::NotFound {
                PayloadError::Gone
            } else {
                PayloadError::Io(error)
            }
        })?;
        let file = Arc::new(file);
        if segment >= files.first_retained {
            if files.by_segment.len() >= READ_FILES_KEPT {
                files.by_segment.clear();
            }
            files.by_segment.insert(segment, Arc::clone(&file));
        }
        Ok(file)
    }

    /// Closes the files of segments before `first_retained`, which are
    /// being deleted, and keeps none of them open from now on.
    pub(crate) fn forget_before(&self, first_retained: MessageId) {
        let mut files = self.files.lock();
        files.first_retained = files.first_retained.max(first_retained);
        files
            .by_segment
            .retain(|&segment, _| segment >= first_retained);
    }

    /// Closes every file and keeps none open from now on: the topic is gone.
    pub(crate) fn close_all(&self) {
        self.forget_before(MessageId::MAX);
    }
}

/// Whether `next` starts in the segment of `previous`, right where it ends.
pub(crate) fn adjacent(previous: &PayloadRef, next: &PayloadRef) -> bool {
    next.segment == previous.segment && next.offset == previous.offset + u64::from(previous.len)
}

fn read_at(file: &File, buffer: &mut [u8], span: &PayloadRef) -> Result<(), PayloadError> {
    file.read_exact_at(buffer, span.offset)
        .map_err(|error| match error.kind() {
            io::ErrorKind::UnexpectedEof => PayloadError::Damaged(format!(
                "segment {} ends before byte {}",
                span.segment,
                span.offset + u64::from(span.len)
            )),
            _ => PayloadError::Io(error),
        })
}

fn check(payload: &[u8], reference: &PayloadRef) -> Result<(), PayloadError> {
    if crc32fast::hash(payload) == reference.crc {
        Ok(())
    } else {
        Err(PayloadError::Damaged(format!(
            "the payload at byte {} of segment {} fails its CRC",
            reference.offset, reference.segment
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_payloads_and_large_batches_go_external() {
        assert!(!goes_external(1 << 10, 1 << 10), "a lone small message");
        assert!(goes_external(EXTERNAL_MIN_BYTES, EXTERNAL_MIN_BYTES));
        assert!(!goes_external(128, 100 * 128), "a batch under the size");
        assert!(goes_external(1 << 10, 100 << 10), "a large batch");
        assert!(!goes_external(100, 1 << 20), "tiny payloads stay inline");
    }

    #[test]
    fn payloads_are_appended_and_read_back_checked() {
        let dir = tempfile::tempdir().unwrap();
        let segments = Segments::new(dir.path());
        let mut writer = SegmentWriter::open(&segments, 7, 100).unwrap();
        let payloads: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 20_000 + usize::from(i)]).collect();
        let mut references = Vec::new();
        let mut pending = 0;
        for payload in &payloads {
            references.push(PayloadRef {
                segment: 100,
                offset: writer.offset_after(pending),
                len: payload.len() as u32,
                crc: crc32fast::hash(payload),
            });
            pending += payload.len() as u64;
        }
        let slices: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        writer.append(&slices).unwrap();
        let readers = SegmentReaders::default();
        for (payload, reference) in payloads.iter().zip(&references) {
            assert_eq!(&readers.read(&segments, 7, reference).unwrap(), payload);
        }
        assert!(
            references
                .windows(2)
                .all(|pair| adjacent(&pair[0], &pair[1]))
        );
        assert_eq!(
            readers.read_adjacent(&segments, 7, &references).unwrap(),
            payloads
        );
        assert_eq!(
            readers
                .read_adjacent(&segments, 7, &references[1..])
                .unwrap(),
            payloads[1..]
        );
        let mut one_damaged = references.clone();
        one_damaged[2].crc ^= 1;
        assert!(matches!(
            readers.read_adjacent(&segments, 7, &one_damaged),
            Err(PayloadError::Damaged(what)) if what.contains("fails its CRC")
        ));
        // Reopening appends after what is there.
        let writer = SegmentWriter::open(&segments, 7, 100).unwrap();
        assert_eq!(writer.offset_after(0), pending);

        let damaged = PayloadRef {
            crc: 0,
            ..references[1]
        };
        assert!(matches!(
            readers.read(&segments, 7, &damaged),
            Err(PayloadError::Damaged(_))
        ));
        let beyond = PayloadRef {
            offset: pending,
            ..references[0]
        };
        assert!(matches!(
            readers.read(&segments, 7, &beyond),
            Err(PayloadError::Damaged(_))
        ));
        let missing = PayloadRef {
            segment: 5,
            ..references[0]
        };
        assert!(matches!(
            readers.read(&segments, 7, &missing),
            Err(PayloadError::Gone)
        ));

        assert_eq!(segments.list(7).unwrap().len(), 1);
        assert_eq!(segments.topic_ids().unwrap(), [7]);
        let mut past_end = references.clone();
        past_end[2].len += 1;
        assert!(matches!(
            readers.read_adjacent(&segments, 7, &past_end),
            Err(PayloadError::Damaged(what)) if what.contains("ends before byte")
        ));
        segments.delete_before(7, 101).unwrap();
        assert!(segments.list(7).unwrap().is_empty());
        segments.delete_topic(7).unwrap();
        segments.delete_topic(7).unwrap();
        assert!(segments.topic_ids().unwrap().is_empty());
    }
}
