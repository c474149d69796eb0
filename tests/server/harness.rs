//! The test harness itself: /etc/hosts lines are removed at exit and after a killed run;
//! the PostgreSQL version is detected.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, ensure_hosts, ensure_hosts_in, remove_hosts_lines};

/// The child half of the hosts tests, run only by them (ignored otherwise): adds a hosts
/// line, prints "added", then exits normally ("exit") or waits to be killed ("wait").
#[test]
#[ignore = "the child half of the hosts tests: run by them"]
fn hosts_child() {
    let mode = std::env::var("PGDAP_HOSTS_CHILD").expect("run as the hosts tests' child");
    let name = std::env::var("PGDAP_HOSTS_NAME").unwrap();
    ensure_hosts(&name, "127.0.0.140");
    println!("added");
    if mode == "wait" {
        std::thread::sleep(Duration::from_secs(120));
    }
}

fn hosts() -> String {
    std::fs::read_to_string("/etc/hosts").unwrap()
}

fn child(mode: &str, name: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &common::test_name(module_path!(), "hosts_child")])
        .args(["--ignored", "--nocapture", "--test-threads=1"])
        .env("PGDAP_HOSTS_CHILD", mode)
        .env("PGDAP_HOSTS_NAME", name)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for_line(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !hosts().contains(name) {
        assert!(Instant::now() < deadline, "the child never added {name}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn hosts_lines_are_removed_at_exit() {
    let name = format!("exit-{}.pgdap.test", std::process::id());
    let mut c = child("exit", &name);
    let status = c.wait().unwrap();
    assert!(status.success());
    assert!(
        !hosts().contains(&name),
        "a line of a finished test process is left in /etc/hosts"
    );
}

#[test]
fn hosts_lines_of_a_killed_run_are_removed_by_the_next() {
    let name = format!("killed-{}.pgdap.test", std::process::id());
    let mut c = child("wait", &name);
    wait_for_line(&name);
    let pid = c.id();
    assert!(hosts().contains(&format!("{name} # pgdap-tests pid={pid}")));
    // No harness edit meanwhile: another test of this process adding a line would remove
    // the dead child's line first.
    let edits = common::lock_hosts();
    c.kill().unwrap(); // SIGKILL: no exit handler runs
    c.wait().unwrap();
    assert!(
        hosts().contains(&name),
        "the killed process removed its line"
    );
    drop(edits);
    // The next test process's first entry removes it.
    let own = format!("next-{}.pgdap.test", std::process::id());
    ensure_hosts(&own, "127.0.0.141");
    let text = hosts();
    assert!(!text.contains(&name), "stale line left:\n{text}");
    assert!(text.contains(&own));
    // Only this name: the process's other lines are in use by other modules' tests.
    common::remove_own_hosts_line(&own);
    assert!(!hosts().contains(&own));
}

#[test]
fn hosts_edits_keep_other_lines_and_lines_of_live_processes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts");
    // pid 1 always runs; a pid above the kernel's maximum never does.
    std::fs::write(
        &file,
        "127.0.0.1 localhost\n\
         127.0.0.2 live.pgdap.test # pgdap-tests pid=1\n\
         127.0.0.3 dead.pgdap.test # pgdap-tests pid=4294967295\n\
         ::1 ip6-localhost\n",
    )
    .unwrap();
    ensure_hosts_in(&file, "new.pgdap.test", "127.0.0.142");
    ensure_hosts_in(&file, "new.pgdap.test", "127.0.0.142"); // idempotent
    let me = std::process::id();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!(
            "127.0.0.1 localhost\n\
             127.0.0.2 live.pgdap.test # pgdap-tests pid=1\n\
             ::1 ip6-localhost\n\
             127.0.0.142 new.pgdap.test # pgdap-tests pid={me}\n"
        )
    );
    remove_hosts_lines(&file, |p| p == Some(me));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "127.0.0.1 localhost\n127.0.0.2 live.pgdap.test # pgdap-tests pid=1\n::1 ip6-localhost\n"
    );
}

#[test]
fn the_detected_postgresql_is_a_supported_version_with_psql() {
    let major = common::pg_major();
    assert!(common::PG_VERSIONS.contains(&major));
    let out = Command::new(format!("{}/psql", common::PG_BIN))
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("psql (PostgreSQL) {major}.")),
        "psql of another version: {text}"
    );
}
