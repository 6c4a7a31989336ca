//! A small real file system for the disk-full tests: an ext4 file system
//! on a loop device, or a tmpfs, mounted on a temporary directory and
//! unmounted when dropped. Mounting needs root (`CAP_SYS_ADMIN`); where it
//! is not permitted, [`SmallFs::mount`] says why and the tests fall back
//! to the fault-injection file system.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use rocksmq::fs::{FileSystem, StdFileSystem};

/// Which file system to mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// ext4 on a loop device over an image file: what users meet (it
    /// keeps blocks for root, allocates at writeback, has a journal).
    Ext4,
    /// A tmpfs: in memory, no writeback, space counted in pages.
    Tmpfs,
}

/// A mounted file system; unmounted (and its image deleted) on drop.
#[derive(Debug)]
pub struct SmallFs {
    kind: Kind,
    mount_point: tempfile::TempDir,
    /// The image of a loop-mounted ext4.
    _image: Option<tempfile::TempDir>,
}

impl SmallFs {
    /// Mounts a file system of `mib` MiB, or says why it cannot.
    pub fn mount(kind: Kind, mib: u64) -> Result<Self, String> {
        let mount_point = tempfile::tempdir().map_err(|error| error.to_string())?;
        let target = mount_point.path();
        let image = match kind {
            Kind::Tmpfs => {
                run(Command::new("mount")
                    .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
                    .arg(target))?;
                None
            }
            Kind::Ext4 => {
                let dir = tempfile::tempdir().map_err(|error| error.to_string())?;
                let file = dir.path().join("ext4.img");
                std::fs::File::create(&file)
                    .and_then(|image| image.set_len(mib << 20))
                    .map_err(|error| format!("creating the image: {error}"))?;
                run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&file))?;
                run(Command::new("mount")
                    .args(["-o", "loop"])
                    .arg(&file)
                    .arg(target))?;
                Some(dir)
            }
        };
        Ok(Self {
            kind,
            mount_point,
            _image: image,
        })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        self.mount_point.path()
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let target = self.mount_point.path();
        if run(Command::new("umount").arg(target)).is_err() {
            // Busy (a child killed a moment ago): detach it now, it goes
            // when the last file is closed.
            let _ = run(Command::new("umount").arg("-l").arg(target));
        }
    }
}

/// Runs `command`; its failure, with what it said.
fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|error| format!("cannot run {command:?}: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Bytes free on the file system of `path`, as the store measures them.
pub fn free_bytes(path: &Path) -> u64 {
    StdFileSystem.available_bytes(path).expect("statvfs")
}

/// Fills the file system of `dir` with a file `dir/ballast` until a write
/// fails with `ENOSPC`; returns the file's path and its size.
pub fn fill_with_ballast(dir: &Path) -> (PathBuf, u64) {
    let path = dir.join("ballast");
    let mut file = std::fs::File::create(&path).expect("create the ballast");
    for chunk in [1 << 20, 64 << 10, 4 << 10, 512] {
        let bytes = vec![0x5a_u8; chunk];
        loop {
            match file.write_all(&bytes).and_then(|()| file.sync_data()) {
                Ok(()) => {}
                Err(error) if error.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(error) => panic!("writing the ballast: {error}"),
            }
        }
    }
    // A write that failed half-way may have kept some of its bytes.
    let size = file.metadata().expect("ballast size").len();
    (path, size)
}

/// Every file under `dir` (directories by their path), with its size: what
/// an open must leave as it found it.
pub fn listing(dir: &Path) -> BTreeMap<PathBuf, u64> {
    let mut files = BTreeMap::new();
    list_into(dir, dir, &mut files);
    files
}

fn list_into(root: &Path, dir: &Path, files: &mut BTreeMap<PathBuf, u64>) {
    for entry in std::fs::read_dir(dir).expect("read a directory").flatten() {
        let meta = entry.metadata().expect("metadata");
        let path = entry.path();
        let name = path
            .strip_prefix(root)
            .expect("under the root")
            .to_path_buf();
        if meta.is_dir() {
            files.insert(name, 0);
            list_into(root, &path, files);
        } else {
            files.insert(name, meta.len());
        }
    }
}
