//! The harness's Docker mode: with `PGDAP_TEST_DOCKER=IMAGE` (scripts/docker.sh sets it),
//! every [`Server`] runs in a container of IMAGE started by the Docker engine, and the
//! template cluster is made by the image's `initdb`. Nothing else changes: the test's
//! directory (data directory with its certificates, `pg_hba.conf`, `pg_ident.conf` and
//! `postgresql.auto.conf`, unix socket directory, log) is prepared on this machine as
//! without Docker and bind-mounted at the same path; the container runs
//! `postgres -D DATA -c listen_addresses=ADDR` with host networking (the test's
//! `127.0.0.x:5432`, never a bridge network) as the uid that owns the data directory (the
//! host's `postgres` when root, as without Docker; `initdb`, which wants a passwd entry for
//! it, gets one through the image's nss_wrapper, as the official entrypoint does); the log
//! goes to the same file `pg_ctl -l` writes. Containers share the host's PID namespace, so
//! the harness's `pg_ctl stop` (and its clean-up of killed runs) signals the container's
//! postmaster as it would a local one; the container ends with it (`--rm`).
//!
//! Each server started prints `docker: container NAME serving PostgreSQL VERSION on
//! ADDR:5432` on stderr (past libtest's capture). Containers are removed when their
//! [`Server`] is dropped, at process exit, and by the next run when the process was killed
//! (label `pgdap-test.pid`); `PGDAP_TEST_DOCKER_LABEL=KEY=VALUE` adds a label (the script's
//! trap removes by it).

use super::*;
use std::io::Write;

/// The image of Docker mode, or `None` (servers run as local processes).
pub fn image() -> Option<&'static str> {
    static IMAGE: OnceLock<Option<String>> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            std::env::var("PGDAP_TEST_DOCKER")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .as_deref()
}

/// A test server's container, removed on drop.
pub struct Container {
    pub name: String,
}

impl Drop for Container {
    fn drop(&mut self) {
        remove(&self.name);
    }
}

fn docker() -> Command {
    Command::new("docker")
}

/// `uid:gid` of the owner of `path` (what the server runs as).
fn owner(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    format!("{}:{}", m.uid(), m.gid())
}

/// The options every container of this process gets: labels, `network` (`host`, or `none`
/// for the template), the host's PID namespace, the owner of `dir`, `dir` mounted at its
/// own path.
fn run_args(dir: &Path, network: &str) -> Vec<String> {
    let mut args = vec![
        "run".to_string(),
        "--rm".into(),
        "--label".into(),
        format!("pgdap-test.pid={}", std::process::id()),
    ];
    if let Ok(label) = std::env::var("PGDAP_TEST_DOCKER_LABEL") {
        if !label.is_empty() {
            args.extend(["--label".into(), label]);
        }
    }
    args.extend([
        "--network".into(),
        network.into(),
        "--pid".into(),
        "host".into(),
        "--user".into(),
        owner(dir),
        "--volume".into(),
        format!("{0}:{0}", dir.display()),
        "--entrypoint".into(),
        "/bin/sh".into(),
    ]);
    args
}

/// Removes the container `name` (if it exists) and waits until it is gone.
pub fn remove(name: &str) {
    let _ = docker().args(["rm", "-f", "-v", name]).output();
    for _ in 0..200 {
        let gone = docker()
            .args(["container", "inspect", name])
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true);
        if gone {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Removes the containers of this process (at exit), or of test processes that no longer
/// run (`stale`).
pub fn remove_all(stale: bool) {
    let filter = if stale {
        "label=pgdap-test.pid".to_string()
    } else {
        format!("label=pgdap-test.pid={}", std::process::id())
    };
    let Ok(out) = docker()
        .args(["ps", "-a", "--filter", &filter])
        .args(["--format", "{{.Names}} {{.Label \"pgdap-test.pid\"}}"])
        .output()
    else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut parts = line.split_whitespace();
        let (Some(name), pid) = (parts.next(), parts.next().unwrap_or("")) else {
            continue;
        };
        if !stale || !Path::new("/proc").join(pid).exists() || pid.is_empty() {
            let _ = docker().args(["rm", "-f", "-v", name]).output();
        }
    }
}

/// The template cluster, made in a container of the image: `initdb` (as the owner of
/// `dir`, through nss_wrapper when the image has no passwd entry for it), started on a
/// unix socket only, `setup` run through the image's psql, stopped.
pub fn initdb_template(image: &str, dir: &Path, initdb_args: &[&str], setup: &[&str]) {
    let data = dir.join("data");
    let sock = dir.join("sock");
    std::fs::create_dir_all(&sock).unwrap();
    chown_postgres(&sock);
    let script = r#"set -e
dir=$1; shift
if ! getent passwd "$(id -u)" >/dev/null; then
  for wrapper in /usr/lib/*/libnss_wrapper.so /usr/lib/libnss_wrapper.so /lib/*/libnss_wrapper.so; do
    [ -s "$wrapper" ] || continue
    printf 'postgres:x:%s:%s:PostgreSQL:%s:/bin/false\n' "$(id -u)" "$(id -g)" "$dir" > "$dir/passwd"
    printf 'postgres:x:%s:\n' "$(id -g)" > "$dir/group"
    export LD_PRELOAD=$wrapper NSS_WRAPPER_PASSWD=$dir/passwd NSS_WRAPPER_GROUP=$dir/group
    break
  done
fi
initdb -D "$dir/data" "$@" >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log"; exit 1; }
unset LD_PRELOAD NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
pg_ctl -D "$dir/data" -o "-c listen_addresses='' -c unix_socket_directories='$dir/sock' -c fsync=off" -w -l "$dir/log" start >/dev/null
psql -h "$dir/sock" -U postgres -d postgres -v ON_ERROR_STOP=1 -q -f "$dir/setup.sql"
pg_ctl -D "$dir/data" -m fast -w stop >/dev/null
rm -f "$dir/passwd" "$dir/group"
"#;
    std::fs::write(dir.join("setup.sql"), setup.join(";\n") + ";\n").unwrap();
    chown_postgres(dir);
    let name = format!("pgdap-test-{}-template", std::process::id());
    let mut args = run_args(dir, "none");
    args.extend([
        "--name".into(),
        name,
        image.into(),
        "-c".into(),
        script.into(),
    ]);
    args.push("sh".into());
    args.push(dir.display().to_string());
    args.extend(initdb_args.iter().map(|a| a.to_string()));
    run(
        {
            let mut c = docker();
            c.args(&args);
            c
        },
        &format!("initdb in a container of {image}"),
    );
    assert!(
        data.join("PG_VERSION").is_file(),
        "no cluster in {}",
        data.display()
    );
}

/// Starts the server of `dir` (`data`, `sock`, `server.log`) in a container on `addr`
/// (replacing a container of that name), waits until it accepts connections on its unix
/// socket, prints what serves there; returns the container's name.
pub fn start(image: &str, addr: &str, dir: &Path) -> String {
    let name = format!("pgdap-test-{}-{}", std::process::id(), addr);
    remove(&name);
    let data = dir.join("data");
    let log = dir.join("server.log");
    let mut args = run_args(dir, "host");
    args.extend([
        "--detach".into(),
        "--name".into(),
        name.clone(),
        image.into(),
        "-c".into(),
        r#"exec postgres -D "$0" -c listen_addresses="$1" >>"$2" 2>&1"#.into(),
        data.display().to_string(),
        addr.into(),
        log.display().to_string(),
    ]);
    run(
        {
            let mut c = docker();
            c.args(&args);
            c
        },
        &format!("docker run {image} on {addr}"),
    );
    let version = wait_ready(&name, &dir.join("sock"), &log);
    let _ = writeln!(
        std::io::stderr(),
        "docker: container {name} serving PostgreSQL {version} on {addr}:5432"
    );
    name
}

/// Polls the server over its unix socket (60 s at most); returns its `server_version`.
fn wait_ready(name: &str, sock: &Path, log: &Path) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let out = Command::new(format!("{PG_BIN}/psql"))
            .arg("-h")
            .arg(sock)
            .args(["-U", "postgres", "-d", "postgres", "-X", "-A", "-t", "-q"])
            .args(["-c", "show server_version"])
            .output()
            .unwrap();
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        let running = docker()
            .args(["container", "inspect", "-f", "{{.State.Running}}", name])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "true")
            .unwrap_or(false);
        assert!(
            running && std::time::Instant::now() < deadline,
            "container {name} did not start a server (running: {running}); its log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
