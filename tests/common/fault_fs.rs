//! A file system for segment files that fails on purpose and remembers what
//! was made durable, for the fault-injection and power-loss tests.
//!
//! Every call is numbered. [`FaultFs::fail_at`] makes call number `n` (and,
//! with `sticky`, every later call of the same kind) fail with a fault fit
//! for it: `ENOSPC` or `EIO` for a write, a short write, `EIO` for a sync,
//! `EMFILE` for an open. [`FaultFs::power_loss`] then takes away, on disk,
//! what a machine crash would: every byte appended after a file's last
//! successful sync, and every file or directory whose entry was not synced
//! into its parent directory. [`FaultFs::gate`] holds the next call of a
//! kind on one path, from whatever thread makes it, until the test lets it
//! go: the races the tests replay happen in the order they choose.
//!
//! [`FaultFs::with_capacity`] makes it a small disk for segment files:
//! appends past the capacity fail with `ENOSPC` (keeping what fitted, as a
//! real file system does), deleting files gives their bytes back, and
//! [`FileSystem::available_bytes`] says what is left.
//! [`FaultFs::report_available`] makes it say something else.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, IoSlice, IoSliceMut};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use rocksmq::fs::{FileSystem, SegmentFile, StdFileSystem};

/// What kind of call a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Call {
    CreateDir,
    OpenAppend,
    OpenRead,
    RemoveFile,
    RemoveDir,
    ReadDir,
    SyncDir,
    FileLen,
    Append,
    ReadAt,
    SyncData,
    Size,
    StartWriteback,
    DropCached,
}

/// A fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `ENOSPC`: the disk is full.
    NoSpace,
    /// `EIO`.
    Io,
    /// `EMFILE`: too many open files.
    TooManyFiles,
    /// An append writes half of what it was given, then the next one fails
    /// with `ENOSPC`.
    ShortWrite,
}

impl Fault {
    /// The faults that make sense for `call`.
    pub fn for_call(call: Call) -> &'static [Fault] {
        match call {
            Call::Append => &[Fault::NoSpace, Fault::Io, Fault::ShortWrite],
            Call::OpenAppend | Call::OpenRead => &[Fault::TooManyFiles, Fault::Io],
            Call::CreateDir => &[Fault::NoSpace, Fault::Io],
            _ => &[Fault::Io],
        }
    }

    fn error(self) -> io::Error {
        match self {
            Fault::NoSpace | Fault::ShortWrite => io::Error::from_raw_os_error(libc::ENOSPC),
            Fault::Io => io::Error::from_raw_os_error(libc::EIO),
            Fault::TooManyFiles => io::Error::from_raw_os_error(libc::EMFILE),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// The thread whose calls are numbered and failed.
    thread: Option<std::thread::ThreadId>,
    calls: u64,
    log: Vec<Call>,
    /// Fail call number `.0` with `.1`; with `.2`, every later call of the
    /// same kind too.
    fail: Option<(u64, Fault, bool)>,
    failing: Option<(Call, Fault)>,
    /// Fail the next call of this kind, whatever its number.
    fail_next: Option<(Call, Fault)>,
    short_write_pending: bool,
    /// The simulated disk's size, if there is one.
    capacity: Option<u64>,
    /// The bytes of the segment files on it.
    used: u64,
    /// What `available_bytes` says instead of measuring, if set.
    reported: Option<u64>,
    /// Bytes of each file known durable.
    synced: BTreeMap<PathBuf, u64>,
    /// Entries (files and directories) created and not yet synced into
    /// their parent directory.
    pending_entries: BTreeSet<PathBuf>,
    injected: u64,
    /// Gates not yet reached.
    gates: Vec<Arc<Gate>>,
    /// Set by [`FaultFs::cut_power`]: syncs no longer count.
    power_cut: bool,
}

/// Holds one call until the test releases it (see [`FaultFs::gate`]).
#[derive(Debug)]
pub struct Gate {
    call: Call,
    path: PathBuf,
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    reached: bool,
    released: bool,
}

impl Gate {
    /// Waits until a call reaches the gate; panics after `timeout`.
    pub fn wait_reached(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock();
        while !state.reached {
            assert!(
                !self.changed.wait_until(&mut state, deadline).timed_out(),
                "no {:?} of {} reached the gate in {timeout:?}",
                self.call,
                self.path.display()
            );
        }
    }

    /// Whether a call reached the gate.
    pub fn is_reached(&self) -> bool {
        self.state.lock().reached
    }

    /// Lets the held call (and any later one) go on.
    pub fn release(&self) {
        self.state.lock().released = true;
        self.changed.notify_all();
    }

    /// Called by the gated call: says it is here and waits to be let go.
    fn pass(&self) {
        let mut state = self.state.lock();
        state.reached = true;
        self.changed.notify_all();
        while !state.released {
            self.changed.wait(&mut state);
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.state.get_mut().released = true;
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct FaultFs {
    std: StdFileSystem,
    state: Arc<Mutex<State>>,
}

impl FaultFs {
    /// Numbers and fails only the calls of the thread that creates it (the
    /// test's), so that a run is the same whenever the store's background
    /// thread happens to sync; the background's calls are still tracked
    /// for power loss.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            std: StdFileSystem,
            state: Arc::new(Mutex::new(State {
                thread: Some(std::thread::current().id()),
                ..State::default()
            })),
        })
    }

    /// A file system of `capacity` bytes for the segment files of the store
    /// at `store` (see the module documentation); the segment files already
    /// there count.
    pub fn with_capacity(store: &Path, capacity: u64) -> Arc<Self> {
        let fs = Self::new();
        {
            let mut state = fs.state.lock();
            state.capacity = Some(capacity);
            state.used = tree_bytes(&store.join("segments"));
        }
        fs
    }

    /// Makes `available_bytes` say `bytes` (or measure again, with `None`),
    /// whatever is free.
    pub fn report_available(&self, bytes: Option<u64>) {
        self.state.lock().reported = bytes;
    }

    /// The bytes of the segment files on the simulated disk.
    pub fn used(&self) -> u64 {
        self.state.lock().used
    }

    /// Makes call number `call` fail with `fault`; with `sticky`, every
    /// later call of the same kind fails too.
    pub fn fail_at(&self, call: u64, fault: Fault, sticky: bool) {
        let mut state = self.state.lock();
        state.fail = Some((call, fault, sticky));
        state.failing = None;
    }

    /// Makes the next call of kind `call` (of the test's thread) fail
    /// with `fault`.
    pub fn fail_next(&self, call: Call, fault: Fault) {
        self.state.lock().fail_next = Some((call, fault));
    }

    /// Stops failing.
    pub fn heal(&self) {
        let mut state = self.state.lock();
        state.fail = None;
        state.failing = None;
        state.fail_next = None;
        state.short_write_pending = false;
    }

    /// Holds the next `call` on `path`, made by any thread, until the
    /// returned gate is released.
    pub fn gate(&self, call: Call, path: &Path) -> Arc<Gate> {
        let gate = Arc::new(Gate {
            call,
            path: path.to_path_buf(),
            state: Mutex::new(GateState::default()),
            changed: Condvar::new(),
        });
        self.state.lock().gates.push(Arc::clone(&gate));
        gate
    }

    /// Lets every gate go (a test that fails must not leave threads held).
    pub fn release_gates(&self) {
        for gate in std::mem::take(&mut self.state.lock().gates) {
            gate.release();
        }
    }

    /// Waits at the gate set for `call` on `path`, if any.
    fn at_gate(state: &Mutex<State>, call: Call, path: &Path) {
        let gate = {
            let mut state = state.lock();
            let index = state
                .gates
                .iter()
                .position(|gate| gate.call == call && gate.path == path);
            index.map(|index| state.gates.remove(index))
        };
        if let Some(gate) = gate {
            gate.pass();
        }
    }

    /// The kinds of the calls made so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().log.clone()
    }

    /// How many faults were injected.
    pub fn injected(&self) -> u64 {
        self.state.lock().injected
    }

    /// Bytes appended to segment files and not yet synced: what a power
    /// loss now would take away from the files (entries aside).
    pub fn unsynced_bytes(&self) -> u64 {
        let state = self.state.lock();
        state
            .synced
            .iter()
            .filter_map(|(path, synced)| {
                let len = std::fs::metadata(path).ok()?.len();
                Some(len.saturating_sub(*synced))
            })
            .sum()
    }

    /// Files and directories created and not yet synced into their
    /// parent directory: what a power loss now would take away.
    pub fn unsynced_entries(&self) -> usize {
        self.state.lock().pending_entries.len()
    }

    /// The machine loses power now: what is synced from here on does not
    /// count ([`FaultFs::power_loss`] takes it away), so that the store
    /// can be stopped (its threads joined) after the moment of the crash.
    pub fn cut_power(&self) {
        self.state.lock().power_cut = true;
    }

    /// Takes away what a machine crash would: bytes after each file's last
    /// sync, entries never synced into their directory. Call it after the
    /// store is closed (or its crash simulated).
    pub fn power_loss(&self) {
        let state = self.state.lock();
        let mut lost_entries: Vec<&PathBuf> = state.pending_entries.iter().collect();
        // Parents first, so that a lost directory takes its files with it.
        lost_entries.sort_by_key(|path| path.components().count());
        for entry in lost_entries {
            if entry.is_dir() {
                let _ = std::fs::remove_dir_all(entry);
            } else {
                let _ = std::fs::remove_file(entry);
            }
        }
        for (path, synced) in &state.synced {
            if path.exists() {
                let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
                let len = file.metadata().unwrap().len();
                if len > *synced {
                    file.set_len(*synced).unwrap();
                }
            }
        }
    }

    /// Holds a call at its gate, if one is set; counts it; fails it if it
    /// is the one to fail.
    fn call(state: &Mutex<State>, call: Call, path: &Path) -> io::Result<()> {
        Self::at_gate(state, call, path);
        let mut state = state.lock();
        if state.thread != Some(std::thread::current().id()) {
            return Ok(());
        }
        let number = state.calls;
        state.calls += 1;
        state.log.push(call);
        if let Some((next_call, fault)) = state.fail_next
            && next_call == call
        {
            state.fail_next = None;
            state.injected += 1;
            return Err(fault.error());
        }
        if let Some((failing_call, fault)) = state.failing
            && failing_call == call
        {
            state.injected += 1;
            return Err(fault.error());
        }
        if let Some((at, fault, sticky)) = state.fail
            && at == number
        {
            state.fail = None;
            if sticky {
                state.failing = Some((call, fault));
            }
            if fault == Fault::ShortWrite && call == Call::Append {
                state.short_write_pending = true;
                return Ok(());
            }
            state.injected += 1;
            return Err(fault.error());
        }
        Ok(())
    }

    fn created(&self, path: &Path) {
        let mut state = self.state.lock();
        state.pending_entries.insert(path.to_path_buf());
        state.synced.entry(path.to_path_buf()).or_insert(0);
    }
}

impl FileSystem for FaultFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        Self::call(&self.state, Call::CreateDir, path)?;
        let mut missing = Vec::new();
        let mut at = path;
        while !at.exists() {
            missing.push(at.to_path_buf());
            match at.parent() {
                Some(parent) => at = parent,
                None => break,
            }
        }
        self.std.create_dir_all(path)?;
        let mut state = self.state.lock();
        for dir in missing {
            state.pending_entries.insert(dir);
        }
        Ok(())
    }

    fn open_append(&self, path: &Path) -> io::Result<Arc<dyn SegmentFile>> {
        Self::call(&self.state, Call::OpenAppend, path)?;
        let existed = path.exists();
        let file = self.std.open_append(path)?;
        if !existed {
            self.created(path);
        }
        Ok(Arc::new(FaultFile {
            file,
            path: path.to_path_buf(),
            state: Arc::clone(&self.state),
        }))
    }

    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn SegmentFile>> {
        Self::call(&self.state, Call::OpenRead, path)?;
        let file = self.std.open_read(path)?;
        Ok(Arc::new(FaultFile {
            file,
            path: path.to_path_buf(),
            state: Arc::clone(&self.state),
        }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        Self::call(&self.state, Call::RemoveFile, path)?;
        let bytes = tree_bytes(path);
        self.std.remove_file(path)?;
        let mut state = self.state.lock();
        state.used = state.used.saturating_sub(bytes);
        Ok(())
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        Self::call(&self.state, Call::RemoveDir, path)?;
        let bytes = tree_bytes(path);
        self.std.remove_dir_all(path)?;
        let mut state = self.state.lock();
        state.used = state.used.saturating_sub(bytes);
        Ok(())
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        Self::call(&self.state, Call::ReadDir, path)?;
        self.std.read_dir(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        Self::call(&self.state, Call::SyncDir, path)?;
        self.std.sync_dir(path)?;
        let mut state = self.state.lock();
        if !state.power_cut {
            state
                .pending_entries
                .retain(|entry| entry.parent() != Some(path));
        }
        Ok(())
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        Self::call(&self.state, Call::FileLen, path)?;
        self.std.file_len(path)
    }

    fn available_bytes(&self, path: &Path) -> io::Result<u64> {
        let state = self.state.lock();
        match (state.reported, state.capacity) {
            (Some(reported), _) => Ok(reported),
            (None, Some(capacity)) => Ok(capacity.saturating_sub(state.used)),
            (None, None) => self.std.available_bytes(path),
        }
    }
}

/// The bytes of file `path`, or of every file under directory `path`; 0 if
/// there is none.
fn tree_bytes(path: &Path) -> u64 {
    let Ok(meta) = std::fs::metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| tree_bytes(&entry.path()))
        .sum()
}

#[derive(Debug)]
struct FaultFile {
    file: Arc<dyn SegmentFile>,
    path: PathBuf,
    state: Arc<Mutex<State>>,
}

impl SegmentFile for FaultFile {
    fn append(&self, buffers: &[IoSlice<'_>]) -> io::Result<usize> {
        FaultFs::call(&self.state, Call::Append, &self.path)?;
        let room = {
            let state = self.state.lock();
            state
                .capacity
                .map(|capacity| capacity.saturating_sub(state.used))
        };
        if let Some(room) = room {
            let wanted: usize = buffers.iter().map(|buffer| buffer.len()).sum();
            let written = if wanted as u64 <= room {
                self.file.append(buffers)?
            } else if room == 0 {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            } else {
                // What fits, as a full disk's write does.
                let mut fitting = Vec::with_capacity(room as usize);
                for buffer in buffers {
                    let take = (room as usize - fitting.len()).min(buffer.len());
                    fitting.extend_from_slice(&buffer[..take]);
                }
                self.file.append(&[IoSlice::new(&fitting)])?
            };
            self.state.lock().used += written as u64;
            return Ok(written);
        }
        let short = std::mem::take(&mut self.state.lock().short_write_pending);
        if short {
            // Half of the first buffer, then ENOSPC on the next call.
            let first = buffers.iter().find(|buffer| !buffer.is_empty());
            let Some(first) = first else {
                return self.file.append(buffers);
            };
            let half = (first.len() / 2).max(1);
            let written = self.file.append(&[IoSlice::new(&first[..half])])?;
            let mut state = self.state.lock();
            state.fail = Some((state.calls, Fault::NoSpace, false));
            return Ok(written);
        }
        self.file.append(buffers)
    }

    fn read_at(&self, buffers: &mut [IoSliceMut<'_>], offset: u64) -> io::Result<usize> {
        FaultFs::call(&self.state, Call::ReadAt, &self.path)?;
        self.file.read_at(buffers, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        FaultFs::call(&self.state, Call::SyncData, &self.path)?;
        let len = self.file.size()?;
        self.file.sync_data()?;
        let mut state = self.state.lock();
        if state.power_cut {
            return Ok(());
        }
        let synced = state.synced.entry(self.path.clone()).or_insert(0);
        *synced = (*synced).max(len);
        Ok(())
    }

    fn size(&self) -> io::Result<u64> {
        FaultFs::call(&self.state, Call::Size, &self.path)?;
        self.file.size()
    }

    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        FaultFs::call(&self.state, Call::StartWriteback, &self.path)?;
        self.file.start_writeback(offset, len)
    }

    fn drop_cached(&self, offset: u64, len: u64) -> io::Result<()> {
        FaultFs::call(&self.state, Call::DropCached, &self.path)?;
        self.file.drop_cached(offset, len)
    }
}
