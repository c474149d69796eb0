//! Host names of the tests in /etc/hosts, marked with the test process's pid.

use super::*;

pub(crate) const HOSTS: &str = "/etc/hosts";
pub(crate) const HOSTS_MARK: &str = "# pgdap-tests";

/// Makes `name` resolve to `addr` through /etc/hosts, in a line marked
/// `# pgdap-tests pid=<this process>`. The process removes its lines at exit; lines of
/// test processes that no longer run (killed runs) are removed first.
pub fn ensure_hosts(name: &str, addr: &str) {
    ensure_hosts_in(Path::new(HOSTS), name, addr);
    // Registered once, after the first line exists (the servers' handler may not run in a
    // process that starts none).
    static AT_EXIT: std::sync::Once = std::sync::Once::new();
    AT_EXIT.call_once(|| unsafe {
        libc::atexit(remove_own_hosts_at_exit);
    });
}

extern "C" fn remove_own_hosts_at_exit() {
    remove_hosts_lines(Path::new(HOSTS), |pid| pid == Some(std::process::id()));
}

/// [`ensure_hosts`] on any hosts file (tests of the harness use a copy).
pub fn ensure_hosts_in(hosts: &Path, name: &str, addr: &str) {
    let line = format!("{addr} {name} {HOSTS_MARK} pid={}", std::process::id());
    edit_hosts(hosts, |lines| {
        lines.retain(|l| !is_stale_hosts_line(l));
        if !lines.contains(&line) {
            lines.push(line.clone());
        }
    });
}

/// Removes the marked lines whose owner (`Some(pid)`, or `None` for lines of older
/// harness versions, which carried no pid) `remove` selects.
pub fn remove_hosts_lines(hosts: &Path, remove: impl Fn(Option<u32>) -> bool) {
    edit_hosts(hosts, |lines| {
        lines.retain(|l| hosts_line_owner(l).is_none_or(|owner| !remove(owner)));
    });
}

/// Removes this process's line for `name` from /etc/hosts, and no other: the other names
/// of the process are in use by its other tests.
pub fn remove_own_hosts_line(name: &str) {
    let me = std::process::id();
    edit_hosts(Path::new(HOSTS), |lines| {
        lines.retain(|l| {
            hosts_line_owner(l) != Some(Some(me)) || l.split_whitespace().nth(1) != Some(name)
        });
    });
}

/// `None`: not a harness line; `Some(None)`: a harness line without pid (older harness);
/// `Some(Some(pid))`: the line of test process `pid`.
pub(crate) fn hosts_line_owner(line: &str) -> Option<Option<u32>> {
    let (_, mark) = line.split_once(HOSTS_MARK)?;
    let mark = mark.trim();
    if mark.is_empty() {
        return Some(None);
    }
    Some(mark.strip_prefix("pid=").and_then(|p| p.parse().ok()))
}

/// A harness line of a process that no longer runs. Lines without pid (older harness
/// versions) are stale only when no other test process runs (one might still use them).
pub(crate) fn is_stale_hosts_line(line: &str) -> bool {
    match hosts_line_owner(line) {
        None => false,
        Some(Some(pid)) => !Path::new("/proc").join(pid.to_string()).exists(),
        Some(None) => !other_test_process_runs(),
    }
}

/// Whether another live process has a template, PKI or server directory under the
/// harness root.
pub(crate) fn other_test_process_runs() -> bool {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir(ROOT) else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name().to_string_lossy().to_string();
        let pid = name
            .strip_prefix("template-")
            .or_else(|| name.strip_prefix("pki-"))
            .or_else(|| name.split('-').next());
        pid.is_some_and(|p| {
            p != me && p.parse::<u32>().is_ok() && Path::new("/proc").join(p).exists()
        })
    })
}

/// The exclusive lock on harness edits of the hosts file, held until the returned file
/// is dropped (closed); `None` when the lock file cannot be opened. Other threads of this
/// process wait for it too (an `flock` per open file).
pub fn lock_hosts() -> Option<std::fs::File> {
    use std::os::unix::io::AsRawFd;
    let _ = std::fs::create_dir_all(ROOT);
    let lock_path = PathBuf::from(ROOT).join("hosts.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .ok()?;
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(&lock_path, std::fs::Permissions::from_mode(0o666));
    unsafe {
        libc::flock(lock.as_raw_fd(), libc::LOCK_EX);
    }
    Some(lock)
}

/// Read-modify-write of the hosts file under an exclusive lock (test processes run in
/// parallel). Written in place, not renamed: /etc/hosts is a bind mount in containers.
pub(crate) fn edit_hosts(hosts: &Path, edit: impl FnOnce(&mut Vec<String>)) {
    let _lock = lock_hosts();
    let text = std::fs::read_to_string(hosts).unwrap_or_default();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let before = lines.clone();
    edit(&mut lines);
    if lines != before {
        let mut out = lines.join("\n");
        out.push('\n');
        std::fs::write(hosts, out).unwrap_or_else(|e| {
            panic!("tests need /etc/hosts entries for *.pgdap.test (run as root): {e}")
        });
    }
    // The lock is released when `_lock` is dropped (closed).
}
