//! `segmentCacheInMB`: the segment bytes a store wrote stay in the page
//! cache only up to the limit, and every byte dropped from it reads back.
//!
//! Residency is asked of the kernel with `mincore` over a mapping of each
//! segment file. The stores live under Cargo's target directory (a disk,
//! where pages can be dropped); on a file system that keeps every page
//! (tmpfs), found by a probe, the tests say so and check nothing.

use std::fs::File;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use rocksmq::fs::{FileSystem, SegmentFile, StdFileSystem};
use rocksmq::{Config, Environment, Message, Position, Store};

const MIB: usize = 1 << 20;
const MESSAGES: usize = 64;

fn store_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a directory for the store")
}

fn open(dir: &Path, cache_mb: i64) -> Store {
    Store::open(
        Config::builder()
            .path(dir)
            .page_size_bytes(16 << 20)
            .segment_cache_mb(cache_mb)
            .build(),
    )
    .expect("open the store")
}

/// Message `i`: 1 MiB that says which message it is.
fn payload(i: usize) -> Vec<u8> {
    let mut bytes = vec![u8::try_from(i % 251).unwrap(); MIB];
    bytes[..8].copy_from_slice(&(i as u64).to_le_bytes());
    bytes
}

fn produce_all(store: &Store) {
    store.create_topic("t").unwrap();
    for i in 0..MESSAGES {
        store.produce("t", &[Message::new(payload(i))]).unwrap();
    }
}

fn read_all(store: &Store) {
    let mut reader = store.reader("t", Position::Earliest).unwrap();
    let mut seen = 0;
    while seen < MESSAGES {
        let messages = reader.read(8).unwrap();
        assert!(!messages.is_empty(), "message {seen} is missing");
        for message in messages {
            assert_eq!(&*message.payload, &payload(seen)[..], "message {seen}");
            seen += 1;
        }
    }
}

/// The segment files of the store at `dir`, oldest first.
fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for topic in std::fs::read_dir(dir.join("segments")).unwrap() {
        for file in std::fs::read_dir(topic.unwrap().path()).unwrap() {
            files.push(file.unwrap().path());
        }
    }
    files.sort();
    files
}

/// How many bytes of file `path` are in the page cache.
fn resident_bytes(path: &Path) -> usize {
    let file = File::open(path).unwrap();
    let len = usize::try_from(file.metadata().unwrap().len()).unwrap();
    if len == 0 {
        return 0;
    }
    // SAFETY: sysconf has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap();
    // SAFETY: a fresh read-only shared mapping of an open file, of its
    // length; it is only given to mincore, never read, and unmapped below.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    assert_ne!(map, libc::MAP_FAILED, "mmap {}", path.display());
    let mut pages = vec![0u8; len.div_ceil(page)];
    // SAFETY: `pages` has one byte per page of the mapping.
    let result = unsafe { libc::mincore(map, len, pages.as_mut_ptr()) };
    // SAFETY: the mapping made above, of `len` bytes.
    unsafe { libc::munmap(map, len) };
    assert_eq!(result, 0, "mincore {}", path.display());
    pages.iter().filter(|&&flags| flags & 1 == 1).count() * page
}

fn resident_total(dir: &Path) -> usize {
    segment_files(dir)
        .iter()
        .map(|path| resident_bytes(path))
        .sum()
}

/// Whether the file system under `dir` drops the clean pages it is told
/// to (tmpfs, for one, never does): a probe file written, synced, dropped.
fn drops_pages(dir: &Path) -> bool {
    let path = dir.join("probe");
    std::fs::write(&path, vec![1u8; 1 << 20]).unwrap();
    let file = File::open(&path).unwrap();
    file.sync_all().unwrap();
    // SAFETY: posix_fadvise reads no memory of ours.
    let error = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    let dropped = error == 0 && resident_bytes(&path) == 0;
    std::fs::remove_file(&path).unwrap();
    dropped
}

/// A store directory where pages can be dropped, or `None` (and why, said).
fn droppable_dir() -> Option<tempfile::TempDir> {
    let dir = store_dir();
    if drops_pages(dir.path()) {
        Some(dir)
    } else {
        eprintln!(
            "skipped: the file system of {} keeps pages it is told to drop (tmpfs?)",
            dir.path().display()
        );
        None
    }
}

#[test]
fn written_segment_bytes_past_the_limit_leave_the_page_cache_and_read_back() {
    let Some(dir) = droppable_dir() else {
        return;
    };
    let store = open(dir.path(), 8);
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    metrics::with_local_recorder(&recorder, || produce_all(&store));
    let dropped = metrics
        .render()
        .lines()
        .find_map(|line| line.strip_prefix("rocksmq_segment_dropped_bytes_total "))
        .map(|value| value.trim().parse::<f64>().unwrap())
        .expect("the dropped bytes are counted");
    assert!(
        dropped >= (40 * MIB) as f64,
        "{dropped} bytes counted as dropped"
    );
    // The producer dropped what is past 8 MiB as it wrote.
    let bound = 8 * MIB + 2 * 8 * MIB;
    let deadline = Instant::now() + Duration::from_secs(30);
    while resident_total(dir.path()) > bound {
        assert!(
            Instant::now() < deadline,
            "{} of the {} MiB written are still cached after 30 s; the limit is 8 MiB",
            resident_total(dir.path()),
            MESSAGES
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let files = segment_files(dir.path());
    assert!(files.len() >= 4, "64 MiB in pages of 16 MiB: {files:?}");
    assert_eq!(resident_bytes(&files[0]), 0, "the oldest file is dropped");
    // Read back while open: the dropped bytes come from the disk.
    read_all(&store);
    store.close().unwrap();
    let store = open(dir.path(), 8);
    read_all(&store);
    store.close().unwrap();
}

#[test]
fn the_limit_keeps_the_newest_bytes_and_minus_one_leaves_them_all() {
    for (cache_mb, at_least) in [(40, 32 * MIB), (-1, 56 * MIB)] {
        let Some(dir) = droppable_dir() else {
            return;
        };
        let store = open(dir.path(), cache_mb);
        produce_all(&store);
        // The producer dropped as it wrote; closing syncs the rest.
        store.close().unwrap();
        let resident = resident_total(dir.path());
        assert!(
            resident >= at_least,
            "segmentCacheInMB {cache_mb}: only {resident} bytes of 64 MiB are cached"
        );
        if cache_mb >= 0 {
            let limit = usize::try_from(cache_mb).unwrap() * MIB + 8 * MIB;
            assert!(
                resident <= limit,
                "segmentCacheInMB {cache_mb}: {resident} bytes are cached"
            );
            let files = segment_files(dir.path());
            assert_eq!(resident_bytes(&files[0]), 0, "the oldest file is dropped");
            let newest = files.last().unwrap();
            let len = usize::try_from(std::fs::metadata(newest).unwrap().len()).unwrap();
            assert!(
                resident_bytes(newest) + 4096 >= len,
                "the newest file stays cached"
            );
        }
        let store = open(dir.path(), cache_mb);
        read_all(&store);
        store.close().unwrap();
    }
}

/// Segment files on the OS's file system, except that giving back a range's
/// pages (`drop_cached`) says so on `entered` and then waits until `open`
/// is set: a disk slow to write back.
#[derive(Debug)]
struct SlowDropFs {
    entered: Mutex<mpsc::Sender<()>>,
    open: Arc<(Mutex<bool>, Condvar)>,
}

#[derive(Debug)]
struct SlowDropFile {
    file: Arc<dyn SegmentFile>,
    entered: mpsc::Sender<()>,
    open: Arc<(Mutex<bool>, Condvar)>,
}

impl FileSystem for SlowDropFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFileSystem.create_dir_all(path)
    }
    fn open_append(&self, path: &Path) -> io::Result<Arc<dyn SegmentFile>> {
        StdFileSystem.open_append(path)
    }
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn SegmentFile>> {
        Ok(Arc::new(SlowDropFile {
            file: StdFileSystem.open_read(path)?,
            entered: self.entered.lock().unwrap().clone(),
            open: Arc::clone(&self.open),
        }))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        StdFileSystem.remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFileSystem.remove_dir_all(path)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        StdFileSystem.read_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        StdFileSystem.sync_dir(path)
    }
    fn file_len(&self, path: &Path) -> io::Result<u64> {
        StdFileSystem.file_len(path)
    }
}

impl SegmentFile for SlowDropFile {
    fn append(&self, buffers: &[IoSlice<'_>]) -> io::Result<usize> {
        self.file.append(buffers)
    }
    fn read_at(&self, buffers: &mut [IoSliceMut<'_>], offset: u64) -> io::Result<usize> {
        self.file.read_at(buffers, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn size(&self) -> io::Result<u64> {
        self.file.size()
    }
    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        self.file.start_writeback(offset, len)
    }
    fn drop_cached(&self, offset: u64, len: u64) -> io::Result<()> {
        let _ = self.entered.send(());
        let (open, opened) = &*self.open;
        let mut open = open.lock().unwrap();
        while !*open {
            open = opened.wait(open).unwrap();
        }
        self.file.drop_cached(offset, len)
    }
}

#[test]
fn a_producer_waiting_for_the_disk_to_give_pages_back_does_not_hold_up_its_topic() {
    let dir = store_dir();
    let (entered_tx, entered) = mpsc::channel();
    let open = Arc::new((Mutex::new(false), Condvar::new()));
    let fs = Arc::new(SlowDropFs {
        entered: Mutex::new(entered_tx),
        open: Arc::clone(&open),
    });
    let release = || {
        *open.0.lock().unwrap() = true;
        open.1.notify_all();
    };
    // Nothing stays cached: the first 8 MiB written are given back at once.
    let config = Config::builder()
        .path(dir.path())
        .page_size_bytes(64 << 20)
        .segment_cache_mb(0)
        .build();
    let store = Store::open_with(config, Environment::default().file_system(fs)).unwrap();
    store.create_topic("t").unwrap();
    let large = {
        let store = store.clone();
        std::thread::spawn(move || {
            let batch: Vec<Message> = (0..8).map(|i| Message::new(payload(i))).collect();
            store.produce("t", &batch)
        })
    };
    if entered.recv_timeout(Duration::from_secs(30)).is_err() {
        release();
        panic!("8 MiB written with segmentCacheInMB 0 and no range given back");
    }
    // The large call is written and waits for the disk: another producer of
    // the topic goes on meanwhile.
    let (done_tx, done) = mpsc::channel();
    let small = {
        let store = store.clone();
        std::thread::spawn(move || {
            let produced = store.produce("t", &[Message::new(b"small".to_vec())]);
            let _ = done_tx.send(());
            produced
        })
    };
    let went_on = done.recv_timeout(Duration::from_secs(10)).is_ok();
    release();
    let small = small.join().unwrap().unwrap();
    let large = large.join().unwrap().unwrap();
    assert!(
        went_on,
        "a small produce to the topic waited for another producer's pages to be written back"
    );
    assert_eq!(large.end - large.start, 8);
    assert_eq!(
        small.start, large.end,
        "the small message follows the batch"
    );
    let mut reader = store.reader("t", Position::Earliest).unwrap();
    let mut read = Vec::new();
    while read.len() < 9 {
        let messages = reader.read(16).unwrap();
        assert!(!messages.is_empty(), "message {} is missing", read.len());
        read.extend(messages);
    }
    for (i, message) in read.iter().take(8).enumerate() {
        assert_eq!(&*message.payload, &payload(i)[..], "message {i}");
    }
    assert_eq!(&*read[8].payload, b"small");
    store.close().unwrap();
}
