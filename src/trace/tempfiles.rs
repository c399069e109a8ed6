//! Temp files of a trace directory: one naming scheme (`<prefix>.tmp-<pid>-<seq>`) for
//! the files a writer fills before renaming them into place, and the clean-up of those a
//! killed writer left behind.
//!
//! The pid in the name tells whose file it is: a file of a process that no longer runs
//! can never be finished, so it is removed when the directory is next opened for
//! recording. Files of live processes (a second recorder, this process) are left alone.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh temp file name in `dir`: `<prefix>.tmp-<pid>-<seq>`.
pub(crate) fn temp_path(dir: &Path, prefix: &str) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    dir.join(format!(
        "{prefix}.tmp-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ))
}

/// The pid a temp file name of `prefix` carries, or None for any other name.
pub(crate) fn temp_owner(name: &str, prefix: &str) -> Option<u32> {
    let rest = name.strip_prefix(prefix)?.strip_prefix(".tmp-")?;
    let (pid, seq) = rest.split_once('-')?;
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// What [`remove_stale`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    pub files: usize,
    pub bytes: u64,
}

/// Removes the temp files (and temp directories) of `prefix` in `dir` whose writer
/// process is gone.
pub(crate) fn remove_stale(dir: &Path, prefix: &str) -> io::Result<Removed> {
    remove_stale_with(dir, prefix, process_is_gone)
}

/// [`remove_stale`] with the liveness check as a parameter, so tests need no dead pid.
pub(crate) fn remove_stale_with(
    dir: &Path,
    prefix: &str,
    gone: impl Fn(u32) -> bool,
) -> io::Result<Removed> {
    let mut removed = Removed::default();
    let me = std::process::id();
    for item in fs::read_dir(dir)? {
        let item = item?;
        let name = item.file_name();
        let Some(pid) = name.to_str().and_then(|n| temp_owner(n, prefix)) else {
            continue;
        };
        if pid == me || !gone(pid) {
            continue;
        }
        let meta = item.metadata()?;
        // A directory is a whole temp store (see `spill`); its size is not counted.
        let result = if meta.is_dir() {
            fs::remove_dir_all(item.path())
        } else {
            fs::remove_file(item.path())
        };
        match result {
            Ok(()) => {
                removed.files += 1;
                removed.bytes += if meta.is_file() { meta.len() } else { 0 };
            }
            // Another recorder may have cleaned it first.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

/// True when no process with this pid exists (signal 0 only checks).
fn process_is_gone(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    if pid <= 0 {
        return true;
    }
    // SAFETY: kill(2) with signal 0 sends nothing; it only reports whether the pid exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::TempDir;

    #[test]
    fn owner_is_read_from_the_name() {
        let cases: &[(&str, &str, Option<u32>)] = &[
            ("", ".tmp-123-0", Some(123)),
            ("", ".tmp-123-45", Some(123)),
            (".trace.har", ".trace.har.tmp-9-1", Some(9)),
            ("", ".trace.har.tmp-9-1", None),
            ("", ".tmp-123-", None),
            ("", ".tmp-abc-1", None),
            ("", ".tmp-123-1x", None),
            ("", "0123abcd", None),
            (".trace.har", "trace.har", None),
        ];
        for &(prefix, name, want) in cases {
            assert_eq!(temp_owner(name, prefix), want, "{prefix:?} {name:?}");
        }
        let dir = TempDir::new("tempfiles-name");
        let p = temp_path(dir.path(), ".x");
        let name = p.file_name().and_then(|n| n.to_str()).expect("name");
        assert_eq!(temp_owner(name, ".x"), Some(std::process::id()));
    }

    #[test]
    fn only_files_of_dead_writers_are_removed() {
        let dir = TempDir::new("tempfiles-stale");
        let me = std::process::id();
        for (name, len) in [
            (".tmp-4000001-0", 10usize),
            (".tmp-4000001-1", 5),
            (".tmp-4000002-0", 7),
            ("0123abcd", 3),
            (".trace.har.tmp-4000001-0", 4),
        ] {
            fs::write(dir.path().join(name), vec![b'x'; len]).expect("write");
        }
        fs::write(dir.path().join(format!(".tmp-{me}-0")), b"mine").expect("write");
        // 4000001 is "dead", 4000002 is "alive".
        let removed = remove_stale_with(dir.path(), "", |pid| pid == 4_000_001).expect("clean");
        assert_eq!(
            removed,
            Removed {
                files: 2,
                bytes: 15
            }
        );
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut want = vec![
            ".tmp-4000002-0".to_string(),
            "0123abcd".to_string(),
            ".trace.har.tmp-4000001-0".to_string(),
            format!(".tmp-{me}-0"),
        ];
        want.sort();
        assert_eq!(left, want);
    }

    #[test]
    fn liveness_check_knows_this_process_and_a_finished_child() {
        assert!(!process_is_gone(std::process::id()));
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        child.wait().expect("wait");
        assert!(process_is_gone(pid));
    }
}
