//! Tests that run a child process and kill it: the child is the test
//! binary itself, running one of its `#[ignore]`d entry points with
//! [`DIR_VAR`] set to the store's directory; it reports by printing lines
//! that start with [`MARK`], which [`spawn_child`] hands to the parent.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;

/// The variable that gives the child its store's directory.
pub const DIR_VAR: &str = "ROCKSMQ_CRASH_DIR";
/// The start of a child's protocol lines (libtest prints around them).
pub const MARK: &str = "@@ ";

/// Starts this binary as the child `entry`, on the store in `dir`, with
/// variable `flag` set if given; returns the child and a channel of its
/// protocol lines, without their mark.
pub fn spawn_child(entry: &str, dir: &Path, flag: Option<&str>) -> (Child, mpsc::Receiver<String>) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    if let Some(flag) = flag {
        command.env(flag, "1");
    }
    let mut child = command
        .args([
            entry,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_VAR, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (send, receive) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Some((_, message)) = line.split_once(MARK) else {
                continue;
            };
            if send.send(message.to_owned()).is_err() {
                break;
            }
        }
    });
    (child, receive)
}

/// A child aborts on any panic, so that the parent sees it exit early
/// instead of a thread dying quietly.
pub fn abort_on_panic() {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("{info}");
        std::process::abort();
    }));
}
