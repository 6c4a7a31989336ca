//! `scripts/deps.sh`'s check that bindgen can use libclang, on the states a
//! machine can be in: no libclang; the library without the compiler's
//! headers (Debian's `libclang1-N` without `libclang-common-N-dev`, where
//! bindgen fails with "'stddef.h' file not found"); the library with its
//! headers. The check runs the real libclang of this machine (the build
//! needs one, with its headers); for the second state the headers are
//! hidden from it in a private mount namespace (`unshare`), which changes
//! nothing for the rest of the machine. (Debian's libclang looks for them
//! at a fixed path, `/usr/include/clang/<version>/include`, and relative
//! to the current directory, not relative to itself: a copy of the library
//! elsewhere still finds the machine's headers.)

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where a machine's clang resource headers are installed: each holds
/// `<version>/include/stddef.h`.
const RESOURCE_DIRS: [&str; 5] = [
    "/usr/include/clang",
    "/usr/lib/clang",
    "/usr/lib64/clang",
    "/usr/local/lib/clang",
    "/usr/lib/llvm-*/lib/clang",
];

/// The existing directories of [`RESOURCE_DIRS`].
fn resource_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for pattern in RESOURCE_DIRS {
        match pattern.split_once('*') {
            None => dirs.push(PathBuf::from(pattern)),
            Some((before, after)) => {
                let (parent, prefix) = before.rsplit_once('/').expect("an absolute pattern");
                for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if name.starts_with(prefix) {
                        dirs.push(entry.path().join(after.trim_start_matches('/')));
                    }
                }
            }
        }
    }
    dirs.retain(|dir| dir.is_dir());
    dirs
}

/// How the check ran: its exit status and what it printed.
#[derive(Debug)]
struct Checked {
    status: Option<i32>,
    output: String,
}

/// Runs `deps.sh --check-libclang` with `LIBCLANG_PATH` set to `libclang`
/// (if any); with `hide_headers`, in a mount namespace where every clang
/// resource directory of the machine is an empty file system. `None` if
/// this machine cannot make a mount namespace (not root, no user
/// namespaces).
fn check(libclang: Option<&Path>, hide_headers: bool) -> Option<Checked> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/deps.sh");
    let mut command = if hide_headers {
        let mut hide = String::new();
        for dir in resource_dirs() {
            hide += &format!("mount -t tmpfs none '{}' && ", dir.display());
        }
        let mut command = Command::new("unshare");
        if !is_root() {
            command.arg("--map-root-user");
        }
        command.args(["--mount", "--propagation", "private", "sh", "-c"]);
        command.arg(format!("{hide}exec sh \"$0\" --check-libclang"));
        command.arg(&script);
        command
    } else {
        let mut command = Command::new("sh");
        command.arg(&script).arg("--check-libclang");
        command
    };
    command.env_remove("LIBCLANG_PATH");
    if let Some(libclang) = libclang {
        command.env("LIBCLANG_PATH", libclang);
    }
    let output = command.output().expect("run sh");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if hide_headers && !stdout.contains("libclang") && !stdout.contains("no libclang") {
        eprintln!(
            "no mount namespace here ({stderr}): the states with hidden headers are not checked"
        );
        return None;
    }
    Some(Checked {
        status: output.status.code(),
        output: stdout + &stderr,
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

/// The library the check loads on this machine as it is.
fn machine_libclang() -> PathBuf {
    let checked = check(None, false).expect("a plain run");
    assert_eq!(
        checked.status,
        Some(0),
        "this machine builds RocksDB's bindings, so bindgen can use its libclang: {checked:?}"
    );
    let line = checked
        .output
        .lines()
        .find_map(|line| line.strip_prefix("libclang: "))
        .expect("the check names the library");
    PathBuf::from(line)
}

#[test]
fn the_libclang_check_finds_no_libclang_where_there_is_none() {
    let empty = tempfile::tempdir().unwrap();
    let checked = check(Some(empty.path()), false).unwrap();
    assert_eq!(checked.status, Some(2), "{checked:?}");
    assert!(checked.output.contains("no libclang found"), "{checked:?}");
}

/// The state of the issue: Debian's libclang1-14 (the library) without
/// libclang-common-14-dev (its headers). Looking for the library passed;
/// the check now fails, saying what bindgen would.
#[test]
fn the_libclang_check_fails_on_the_library_without_its_headers() {
    let library = machine_libclang();
    if let Some(checked) = check(None, true) {
        assert_eq!(checked.status, Some(1), "{checked:?}");
        assert!(
            checked.output.contains("'stddef.h' file not found"),
            "{checked:?}"
        );
    }
    // The library alone in a directory of its own, as LIBCLANG_PATH names it.
    let alone = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&library, alone.path().join("libclang.so.1")).unwrap();
    if let Some(checked) = check(Some(alone.path()), true) {
        assert_eq!(checked.status, Some(1), "{checked:?}");
        assert!(
            checked.output.contains(&format!(
                "libclang: {}/libclang.so.1",
                alone.path().display()
            )),
            "{checked:?}"
        );
        assert!(
            checked.output.contains("'stddef.h' file not found"),
            "{checked:?}"
        );
    }
}

/// The library with its headers: this machine as it is (it builds
/// RocksDB's bindings), found where bindgen finds it, or named by
/// `LIBCLANG_PATH`.
#[test]
fn the_libclang_check_passes_on_the_library_with_its_headers() {
    let library = machine_libclang();
    let named = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&library, named.path().join("libclang.so.1")).unwrap();
    let checked = check(Some(named.path()), false).unwrap();
    assert_eq!(checked.status, Some(0), "{checked:?}");
    assert!(
        checked.output.contains("it parses #include <stddef.h>"),
        "{checked:?}"
    );
}
