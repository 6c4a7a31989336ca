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
//!
//! Open files are a budget (see `options::FdBudget`): the store keeps at
//! most so many segment files open, for writing and reading alike, and
//! closes the least recently used when it needs another. A writer or reader
//! that finds its file closed opens it again. Dropping old ranges from the
//! page cache (see `cache_window`) opens a file of its own for a moment,
//! outside the budget: one per producer at most.

use std::io::{self, IoSlice, IoSliceMut};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use crate::fs::{FileSystem, SegmentFile};
use crate::message::MessageId;
use crate::rocks::cache_window::{CacheWindow, Extent, WRITEBACK_BYTES};
use crate::rocks::format::PayloadRef;
use crate::rocks::telemetry;

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
/// Slices per `writev` call (Linux's `IOV_MAX` is 1024).
const MAX_SLICES: usize = 512;

/// `payloads` cut into the runs of one `writev` each: at most
/// [`MAX_SLICES`] payloads, and, if `by_bytes`, about [`WRITEBACK_BYTES`]
/// (a run ends with the payload that reaches it), so that a large batch
/// starts the writeback of what it wrote as it goes, as single calls do.
fn write_chunks<'p, 'a>(
    payloads: &'p [&'a [u8]],
    by_bytes: bool,
) -> impl Iterator<Item = &'p [&'a [u8]]> {
    let mut rest = payloads;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0u64;
        let mut end = rest.len().min(MAX_SLICES);
        if by_bytes
            && let Some(last) = rest[..end].iter().position(|payload| {
                bytes += payload.len() as u64;
                bytes >= WRITEBACK_BYTES
            })
        {
            end = last + 1;
        }
        let (chunk, after) = rest.split_at(end);
        rest = after;
        Some(chunk)
    })
}

/// The segment directory of a store, on its file system, with the segment
/// files it keeps open.
#[derive(Debug)]
pub(crate) struct Segments {
    fs: Arc<dyn FileSystem>,
    store: PathBuf,
    root: PathBuf,
    open: Mutex<OpenFiles>,
    /// The bytes of each topic's segment files, kept as they are written
    /// and deleted (counted from the files when the store opens), so that
    /// no statistic or retention pass walks thousands of directories.
    bytes: Mutex<FxHashMap<u32, u64>>,
    /// What is written and still cached, if `segmentCacheInMB` bounds it.
    cache: Option<Mutex<CacheWindow>>,
    /// Segment files whose writeback failed while their bytes were dropped
    /// from the page cache: the kernel reports such an error once, to the
    /// descriptor that waited for it, so it is kept here for every later
    /// sync of the file to report (a reference must never be made durable
    /// on the strength of a sync that could not see it).
    failed_writebacks: Mutex<FxHashMap<FileKey, (io::ErrorKind, String)>>,
}

/// A segment file: its topic and the first id of its page.
type FileKey = (u32, MessageId);

/// The segment files kept open, least recently used first out, and per
/// topic the first segment still retained: a file opened by a read that
/// raced with its deletion is not kept, so that no fd holds a deleted
/// file's disk.
#[derive(Debug)]
struct OpenFiles {
    files: LruCache<FileKey, Open>,
    retained_from: FxHashMap<u32, MessageId>,
}

/// An open segment file, and whether it was opened for appending.
#[derive(Debug, Clone)]
struct Open {
    file: Arc<dyn SegmentFile>,
    append: bool,
}

impl Segments {
    /// The segments of the store at `store_path`, keeping at most
    /// `open_files` files open and, if `cache_limit` is given, at most so
    /// many of the newest bytes written in the page cache (see
    /// `cache_window`).
    pub(crate) fn new(
        fs: Arc<dyn FileSystem>,
        store_path: &Path,
        open_files: usize,
        cache_limit: Option<u64>,
    ) -> Self {
        let capacity = NonZeroUsize::new(open_files).unwrap_or(NonZeroUsize::MIN);
        Self {
            fs,
            store: store_path.to_path_buf(),
            root: store_path.join("segments"),
            open: Mutex::new(OpenFiles {
                files: LruCache::new(capacity),
                retained_from: FxHashMap::default(),
            }),
            bytes: Mutex::new(FxHashMap::default()),
            cache: cache_limit.map(|limit| Mutex::new(CacheWindow::new(limit))),
            failed_writebacks: Mutex::new(FxHashMap::default()),
        }
    }

    /// The bytes written and recorded as cached (0 without a limit).
    pub(crate) fn cached_bytes(&self) -> u64 {
        self.cache.as_ref().map_or(0, |cache| cache.lock().bytes())
    }

    /// Whether `segmentCacheInMB` bounds what stays cached.
    fn caches(&self) -> bool {
        self.cache.is_some()
    }

    /// Records that bytes `offset..offset + len` of a segment were written
    /// (starting their writeback if `file` is given); their pages are given
    /// back by [`Segments::give_back_pages`] once they are past
    /// `segmentCacheInMB` (see `cache_window`).
    fn written(
        &self,
        topic_id: u32,
        segment: MessageId,
        offset: u64,
        len: u64,
        file: Option<&dyn SegmentFile>,
    ) {
        let Some(cache) = &self.cache else {
            return;
        };
        if let Some(file) = file
            && let Err(error) = file.start_writeback(offset, len)
        {
            tracing::debug!(topic_id, segment, %error, "starting the writeback of segment bytes failed");
        }
        cache.lock().push(Extent {
            topic_id,
            segment,
            offset,
            len,
        });
    }

    /// Gives back the pages of the oldest ranges written past
    /// `segmentCacheInMB`, waiting for their writeback. A producer calls it
    /// after writing payloads to segment files, once it let go of its
    /// topic's lock: the wait is for the disk, and another producer of the
    /// topic copies its payloads meanwhile.
    pub(crate) fn give_back_pages(&self) {
        let Some(cache) = &self.cache else {
            return;
        };
        loop {
            let Some(extent) = cache.lock().pop_over() else {
                return;
            };
            self.drop_extent(&extent);
        }
    }

    /// Waits for the writeback of `extent` and drops its pages, through a
    /// descriptor of its own. A file deleted meanwhile is skipped.
    fn drop_extent(&self, extent: &Extent) {
        let path = self.path(extent.topic_id, extent.segment);
        let result = self
            .fs
            .open_read(&path)
            .and_then(|file| file.drop_cached(extent.offset, extent.len));
        match result {
            Ok(()) => metrics::counter!(telemetry::SEGMENT_DROPPED_BYTES).increment(extent.len),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::error!(
                    topic_id = extent.topic_id,
                    segment = extent.segment,
                    %error,
                    "writing back segment bytes to drop them from the page cache failed; every later sync of the file fails"
                );
                self.failed_writebacks.lock().insert(
                    (extent.topic_id, extent.segment),
                    (error.kind(), error.to_string()),
                );
            }
        }
    }

    /// The error the writeback of a segment file met while its bytes were
    /// dropped from the page cache, if one did.
    fn writeback_error(&self, topic_id: u32, segment: MessageId) -> Option<io::Error> {
        let failed = self.failed_writebacks.lock();
        let (kind, error) = failed.get(&(topic_id, segment))?;
        Some(io::Error::new(
            *kind,
            format!(
                "the writeback of segment {segment} failed when its bytes were dropped from the page cache ({error}): its bytes since the last sync may not be on disk"
            ),
        ))
    }

    /// Counts the bytes of topic `topic_id`'s segment files as they are on
    /// disk now; the store opening does this once per topic directory.
    pub(crate) fn count_files(&self, topic_id: u32) -> io::Result<()> {
        let mut bytes = 0;
        for (_, path) in self.list(topic_id)? {
            bytes += match self.fs.file_len(&path) {
                Err(error) if error.kind() == io::ErrorKind::NotFound => 0,
                other => other?,
            };
        }
        self.bytes.lock().insert(topic_id, bytes);
        Ok(())
    }

    /// Counts `bytes` appended to a segment file of topic `topic_id`.
    fn appended(&self, topic_id: u32, bytes: u64) {
        *self.bytes.lock().entry(topic_id).or_default() += bytes;
    }

    /// The directory of every segment file.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn topic_dir(&self, topic_id: u32) -> PathBuf {
        self.root.join(topic_id.to_string())
    }

    pub(crate) fn path(&self, topic_id: u32, segment: MessageId) -> PathBuf {
        self.topic_dir(topic_id).join(format!("{segment:020}.seg"))
    }

    /// Segment `segment` of topic `topic_id`, open (for appending too if
    /// `append`, creating it then), from the open files or opened now.
    fn file(
        &self,
        topic_id: u32,
        segment: MessageId,
        append: bool,
    ) -> io::Result<Arc<dyn SegmentFile>> {
        let key = (topic_id, segment);
        let mut open = self.open.lock();
        if let Some(found) = open.files.get(&key)
            && (found.append || !append)
        {
            return Ok(Arc::clone(&found.file));
        }
        let path = self.path(topic_id, segment);
        let file = if append {
            self.fs.open_append(&path)?
        } else {
            self.fs.open_read(&path)?
        };
        let retained = open
            .retained_from
            .get(&topic_id)
            .is_none_or(|&first| segment >= first);
        if retained {
            open.files.put(
                key,
                Open {
                    file: Arc::clone(&file),
                    append,
                },
            );
        }
        Ok(file)
    }

    /// Closes the files of topic `topic_id`'s segments before
    /// `first_retained`, which are being deleted, and keeps none of them
    /// open from now on.
    pub(crate) fn forget_before(&self, topic_id: u32, first_retained: MessageId) {
        let mut open = self.open.lock();
        let from = open.retained_from.entry(topic_id).or_default();
        *from = (*from).max(first_retained);
        let gone: Vec<FileKey> = open
            .files
            .iter()
            .filter(|((topic, segment), _)| *topic == topic_id && *segment < first_retained)
            .map(|(key, _)| *key)
            .collect();
        for key in gone {
            open.files.pop(&key);
        }
        drop(open);
        self.failed_writebacks
            .lock()
            .retain(|&(topic, segment), _| topic != topic_id || segment >= first_retained);
    }

    /// Closes every file of topic `topic_id` and keeps none open from now
    /// on: the topic is gone.
    pub(crate) fn close_topic(&self, topic_id: u32) {
        self.forget_before(topic_id, MessageId::MAX);
    }

    /// Closes every open file: the store is closed. A handle kept after
    /// closing (a `Store`, a consumer) then holds no descriptor of a file
    /// that the next open's retention may delete, whose disk would only
    /// come back when the handle goes.
    pub(crate) fn close_all(&self) {
        self.open.lock().files.clear();
    }

    /// How many segment files are open now.
    pub(crate) fn open_files(&self) -> usize {
        self.open.lock().files.len()
    }

    /// Deletes the segment files of pages `[first, …)` that start before
    /// `first_retained`; a missing file is fine.
    pub(crate) fn delete_before(&self, topic_id: u32, first_retained: MessageId) -> io::Result<()> {
        for (segment, path) in self.list(topic_id)? {
            if segment < first_retained {
                self.remove(topic_id, &path)?;
            }
        }
        Ok(())
    }

    /// Deletes segment file `path` of topic `topic_id`; a missing file is
    /// fine.
    pub(crate) fn remove(&self, topic_id: u32, path: &Path) -> io::Result<()> {
        let len = self.fs.file_len(path).unwrap_or(0);
        match self.fs.remove_file(path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => {
                if let Some(bytes) = self.bytes.lock().get_mut(&topic_id) {
                    *bytes = bytes.saturating_sub(len);
                }
                Ok(())
            }
        }
    }

    /// Deletes a topic's segment directory.
    pub(crate) fn delete_topic(&self, topic_id: u32) -> io::Result<()> {
        match self.fs.remove_dir_all(&self.topic_dir(topic_id)) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => {
                self.bytes.lock().remove(&topic_id);
                Ok(())
            }
        }
    }

    /// The segment files of a topic, by segment id.
    pub(crate) fn list(&self, topic_id: u32) -> io::Result<Vec<(MessageId, PathBuf)>> {
        let dir = self.topic_dir(topic_id);
        let names = match self.fs.read_dir(&dir) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            other => other?,
        };
        let mut files: Vec<(MessageId, PathBuf)> = names
            .into_iter()
            .filter_map(|name| {
                let id = name.strip_suffix(".seg")?.parse().ok()?;
                Some((id, dir.join(name)))
            })
            .collect();
        files.sort_unstable();
        Ok(files)
    }

    /// The topic ids that have a segment directory.
    pub(crate) fn topic_ids(&self) -> io::Result<Vec<u32>> {
        match self.fs.read_dir(&self.root) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            other => Ok(other?
                .into_iter()
                .filter_map(|name| name.parse().ok())
                .collect()),
        }
    }

    /// The bytes of a topic's segment files.
    pub(crate) fn topic_bytes(&self, topic_id: u32) -> u64 {
        self.bytes
            .lock()
            .get(&topic_id)
            .copied()
            .unwrap_or_default()
    }

    /// The bytes of every segment file.
    pub(crate) fn total_bytes(&self) -> u64 {
        self.bytes.lock().values().sum()
    }

    /// Reads and checks the payload `reference` points to.
    pub(crate) fn read(
        &self,
        topic_id: u32,
        reference: &PayloadRef,
    ) -> Result<Vec<u8>, PayloadError> {
        self.read_adjacent(topic_id, std::slice::from_ref(reference))
            .map(|mut payloads| payloads.pop().unwrap_or_default())
    }

    /// Reads and checks payloads that lie back to back in one segment
    /// (each starts where the one before ends) with one `preadv`, straight
    /// into the payloads' own buffers: small payloads written in one batch
    /// are read back without a system call or a copy each. Nothing is
    /// allocated before the file is known to hold the bytes.
    pub(crate) fn read_adjacent(
        &self,
        topic_id: u32,
        references: &[PayloadRef],
    ) -> Result<Vec<Vec<u8>>, PayloadError> {
        let Some(first) = references.first() else {
            return Ok(Vec::new());
        };
        if let Some(pair) = references
            .windows(2)
            .find(|pair| !adjacent(&pair[0], &pair[1]))
        {
            return Err(PayloadError::Damaged(format!(
                "payload references at bytes {} and {} of segment {} do not follow each other",
                pair[0].offset, pair[1].offset, pair[0].segment
            )));
        }
        let file = self.file(topic_id, first.segment, false).map_err(|error| {
            if error.kind() == io::ErrorKind::NotFound {
                PayloadError::Gone
            } else {
                PayloadError::Io(error)
            }
        })?;
        read_checked(&*file, references)
    }
}

/// What makes a segment file's bytes durable: syncing the file, and, for
/// a file created since the last sync, the directories its entry (and
/// theirs) live in.
#[derive(Debug, Clone)]
pub(crate) struct SyncJob {
    topic_id: u32,
    pub(crate) segment: MessageId,
    /// The file's length when the job was taken: what it makes durable.
    len: u64,
    dirs: Vec<PathBuf>,
}

impl SyncJob {
    /// Runs `jobs`: syncs each file, then each directory once. A file (or
    /// a topic directory) deleted meanwhile, by retention or a destroy, is
    /// passed over and never created again; returns the segments whose
    /// file was gone, for the caller to tell deleted from lost.
    pub(crate) fn run_all(jobs: &[Self], segments: &Segments) -> io::Result<Vec<MessageId>> {
        let mut gone = Vec::new();
        for job in jobs {
            if let Some(error) = segments.writeback_error(job.topic_id, job.segment) {
                return Err(error);
            }
            // Opened without creating it: a sync of a deleted file must not
            // leave an empty one where its payloads were.
            let file = match segments.file(job.topic_id, job.segment, false) {
                Ok(file) => file,
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    gone.push(job.segment);
                    continue;
                }
                Err(error) => {
                    return Err(io::Error::new(
                        error.kind(),
                        format!("opening segment {} to sync it: {error}", job.segment),
                    ));
                }
            };
            file.sync_data().map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!("syncing segment {}: {error}", job.segment),
                )
            })?;
        }
        let mut dirs: Vec<&PathBuf> = jobs.iter().flat_map(|job| &job.dirs).collect();
        dirs.sort_unstable();
        dirs.dedup();
        for dir in dirs {
            match segments.fs.sync_dir(dir) {
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => {
                    return Err(io::Error::new(
                        error.kind(),
                        format!("syncing directory {}: {error}", dir.display()),
                    ));
                }
                Ok(()) => {}
            }
        }
        Ok(gone)
    }

    /// Whether this job, once run, made durable all that `other` would.
    pub(crate) fn covers(&self, other: &Self) -> bool {
        self.topic_id == other.topic_id && self.segment == other.segment && self.len >= other.len
    }

    /// Fails if a file `run_all` found gone was of a page still retained
    /// (from `first_retained` on): not deleted by the store, but lost.
    pub(crate) fn check_gone(gone: &[MessageId], first_retained: MessageId) -> io::Result<()> {
        match gone.iter().find(|&&segment| segment >= first_retained) {
            Some(segment) => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("segment file {segment} of a retained page is missing"),
            )),
            None => Ok(()),
        }
    }
}

/// The segment file new payloads of a topic go to: its open page's.
///
/// It knows how much of the file is durable, so that a reference is
/// never made more durable than the payload it points to (see
/// `docs/durability.md`). It holds no file open: the store's open files
/// do, within their budget.
#[derive(Debug)]
pub(crate) struct SegmentWriter {
    topic_id: u32,
    pub(crate) segment: MessageId,
    /// The file's length: where the next payload goes.
    len: u64,
    /// How many of its bytes are durable.
    synced: u64,
    /// How many of its bytes are recorded in the store's cache window (see
    /// `cache_window`).
    recorded: u64,
    /// Directories to sync for the file's entry to be durable (empty once
    /// it is).
    dirs: Vec<PathBuf>,
}

impl SegmentWriter {
    /// Opens (creating it and its directory if needed) the segment of the
    /// page that starts at `segment`.
    pub(crate) fn open(segments: &Segments, topic_id: u32, segment: MessageId) -> io::Result<Self> {
        let dir = segments.topic_dir(topic_id);
        let path = segments.path(topic_id, segment);
        let exists = |path: &Path| match segments.fs.file_len(path) {
            Ok(_) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(error),
        };
        // A new entry is durable once its directory is synced: the file's
        // in the topic's directory, a new topic directory's in `segments`,
        // a new `segments`' in the store's directory. A file that is there
        // already was created before this store opened, maybe just before a
        // crash of the process that kept it in the page cache only: its
        // entries are synced too, all of them.
        let mut dirs = Vec::new();
        if exists(&path)? {
            dirs = vec![dir.clone(), segments.root.clone(), segments.store.clone()];
        } else {
            dirs.push(dir.clone());
            if !exists(&dir)? {
                dirs.push(segments.root.clone());
                if !exists(&segments.root)? {
                    dirs.push(segments.store.clone());
                }
            }
        }
        segments.fs.create_dir_all(&dir)?;
        let len = segments.file(topic_id, segment, true)?.size()?;
        // Bytes already in the file may be in the page cache only (a process
        // crash keeps them): the first sync covers them too.
        Ok(Self {
            topic_id,
            segment,
            len,
            synced: 0,
            recorded: len,
            dirs,
        })
    }

    /// Where a payload appended after `pending` more bytes will start.
    pub(crate) fn offset_after(&self, pending: u64) -> u64 {
        self.len + pending
    }

    /// Appends `payloads`, in order, with as few system calls as it can.
    pub(crate) fn append(&mut self, segments: &Segments, payloads: &[&[u8]]) -> io::Result<()> {
        let file = segments.file(self.topic_id, self.segment, true)?;
        for chunk in write_chunks(payloads, segments.caches()) {
            let mut slices: Vec<IoSlice<'_>> =
                chunk.iter().map(|bytes| IoSlice::new(bytes)).collect();
            let mut slices = &mut slices[..];
            while !slices.is_empty() {
                match file.append(slices) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(written) => {
                        self.len += written as u64;
                        segments.appended(self.topic_id, written as u64);
                        IoSlice::advance_slices(&mut slices, written);
                    }
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => {
                        // Whatever was written stays: the next offset must follow it.
                        let len = file.size().unwrap_or(self.len).max(self.len);
                        segments.appended(self.topic_id, len - self.len);
                        self.len = len;
                        return Err(error);
                    }
                }
            }
            if self.len - self.recorded >= WRITEBACK_BYTES {
                self.record(segments, Some(&*file));
            }
        }
        Ok(())
    }

    /// Records the bytes appended since the last record in the store's
    /// cache window, starting their writeback if `file` is given.
    fn record(&mut self, segments: &Segments, file: Option<&dyn SegmentFile>) {
        let len = self.len.saturating_sub(self.recorded);
        segments.written(self.topic_id, self.segment, self.recorded, len, file);
        self.recorded = self.len;
    }

    /// The writer is done with this file (its page closed): what it
    /// appended last is recorded too, to be written back and dropped in
    /// its turn.
    pub(crate) fn finish(&mut self, segments: &Segments) {
        self.record(segments, None);
    }

    /// What is left to sync for every byte appended so far to be durable.
    pub(crate) fn unsynced(&self) -> Option<SyncJob> {
        (self.synced < self.len || !self.dirs.is_empty()).then(|| SyncJob {
            topic_id: self.topic_id,
            segment: self.segment,
            len: self.len,
            dirs: self.dirs.clone(),
        })
    }

    /// Records that `job`, taken from this writer, ran.
    pub(crate) fn synced(&mut self, job: &SyncJob) {
        if job.segment == self.segment {
            self.synced = self.synced.max(job.len);
            self.dirs.clear();
        }
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

impl std::fmt::Display for PayloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Gone => f.write_str("its segment file is missing"),
            Self::Io(error) => write!(f, "reading it: {error}"),
            Self::Damaged(what) => f.write_str(what),
        }
    }
}

/// Reads and checks payloads that lie back to back in `file`, in one
/// `preadv` straight into their buffers, after checking (with checked
/// arithmetic) that the file holds every byte: nothing is allocated for a
/// reference the file cannot satisfy.
pub(crate) fn read_checked(
    file: &dyn SegmentFile,
    references: &[PayloadRef],
) -> Result<Vec<Vec<u8>>, PayloadError> {
    let (Some(first), Some(last)) = (references.first(), references.last()) else {
        return Ok(Vec::new());
    };
    let end = last
        .offset
        .checked_add(u64::from(last.len))
        .ok_or_else(|| {
            PayloadError::Damaged(format!(
                "a payload reference ends past 2^64 bytes ({last:?})"
            ))
        })?;
    let file_len = file.size().map_err(PayloadError::Io)?;
    if end > file_len {
        return Err(PayloadError::Damaged(format!(
            "segment {} ends before byte {end} (it has {file_len} bytes)",
            first.segment
        )));
    }
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
            match file.read_at(slices, offset) {
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
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(PayloadError::Io(error)),
            }
        }
    }
    for (payload, reference) in payloads.iter().zip(references) {
        check(payload, reference)?;
    }
    Ok(payloads)
}

/// Whether `next` starts in the segment of `previous`, right where it ends.
pub(crate) fn adjacent(previous: &PayloadRef, next: &PayloadRef) -> bool {
    next.segment == previous.segment
        && previous.offset.checked_add(u64::from(previous.len)) == Some(next.offset)
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
    fn writes_are_cut_at_the_slice_limit_and_by_writeback_bytes() {
        let big = vec![0u8; 3 << 20];
        let small = [0u8; 10];
        let payloads: Vec<&[u8]> = vec![&big, &big, &big, &small, &big];
        let lens = |by_bytes| -> Vec<usize> {
            write_chunks(&payloads, by_bytes)
                .map(<[&[u8]]>::len)
                .collect()
        };
        // 3 + 3 + 3 MiB reach 8 MiB at the third.
        assert_eq!(lens(true), vec![3, 2]);
        assert_eq!(lens(false), vec![5]);
        let many: Vec<&[u8]> = vec![&small; MAX_SLICES * 2 + 1];
        assert_eq!(
            write_chunks(&many, true)
                .map(<[&[u8]]>::len)
                .collect::<Vec<_>>(),
            vec![MAX_SLICES, MAX_SLICES, 1]
        );
        assert_eq!(write_chunks(&[], true).count(), 0);
    }

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
        let segments = Segments::new(Arc::new(crate::fs::StdFileSystem), dir.path(), 2, None);
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
        writer.append(&segments, &slices).unwrap();
        for (payload, reference) in payloads.iter().zip(&references) {
            assert_eq!(&segments.read(7, reference).unwrap(), payload);
        }
        assert!(
            references
                .windows(2)
                .all(|pair| adjacent(&pair[0], &pair[1]))
        );
        assert_eq!(segments.read_adjacent(7, &references).unwrap(), payloads);
        assert_eq!(
            segments.read_adjacent(7, &references[1..]).unwrap(),
            payloads[1..]
        );
        let mut one_damaged = references.clone();
        one_damaged[2].crc ^= 1;
        assert!(matches!(
            segments.read_adjacent(7, &one_damaged),
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
            segments.read(7, &damaged),
            Err(PayloadError::Damaged(_))
        ));
        let beyond = PayloadRef {
            offset: pending,
            ..references[0]
        };
        assert!(matches!(
            segments.read(7, &beyond),
            Err(PayloadError::Damaged(_))
        ));
        let missing = PayloadRef {
            segment: 5,
            ..references[0]
        };
        assert!(matches!(
            segments.read(7, &missing),
            Err(PayloadError::Gone)
        ));

        assert_eq!(segments.list(7).unwrap().len(), 1);
        assert_eq!(segments.topic_ids().unwrap(), [7]);
        let mut past_end = references.clone();
        past_end[2].len += 1;
        assert!(matches!(
            segments.read_adjacent(7, &past_end),
            Err(PayloadError::Damaged(what)) if what.contains("ends before byte")
        ));
        // At most two files open: opening more closes the oldest.
        for segment in [200, 300, 400] {
            SegmentWriter::open(&segments, 7, segment).unwrap();
        }
        assert_eq!(segments.open_files(), 2);
        assert_eq!(segments.read(7, &references[0]).unwrap(), payloads[0]);
        segments.forget_before(7, 1000);
        assert_eq!(segments.open_files(), 0);
        segments.delete_before(7, 1000).unwrap();
        assert!(segments.list(7).unwrap().is_empty());
        segments.delete_topic(7).unwrap();
        segments.delete_topic(7).unwrap();
        assert!(segments.topic_ids().unwrap().is_empty());
    }
}
