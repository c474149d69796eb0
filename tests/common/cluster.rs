//! A streaming replication cluster: a primary started by [`Server::start`] and hot
//! standbys copied from it with `pg_basebackup -R`, each on its own loopback address at
//! port 5432 with its own Unix socket directory, SSL on with `server-cluster.crt` (valid
//! for every address of the area 127.0.0.220-239 but .225, and for `*.pgdap.test`).
//! Operations for failover tests: [`Node::kill`], [`Node::start`], [`Node::promote`].

use super::*;

use std::time::{Duration, Instant};

/// The pg_hba.conf of cluster nodes: replication trusted over the socket and loopback;
/// over the socket `scram_user` needs its password (password file tests) and `alice`
/// logs in by peer authentication from any OS user (pg_ident map `osmap`); then
/// [`STANDARD_HBA`] (`local all all trust` for the harness's superuser psql, ...).
pub fn cluster_hba() -> String {
    format!(
        "local replication all trust\nhost replication all 127.0.0.0/8 trust\n\
         local all scram_user scram-sha-256\nlocal all alice peer map=osmap\n{STANDARD_HBA}"
    )
}

/// postgresql.conf lines of a primary that standbys stream from.
pub const PRIMARY_CONF: &str = "wal_level = replica\nmax_wal_senders = 10\n\
    wal_keep_size = 128MB\nhot_standby = on\n";

/// One server of a [`Cluster`] (the primary or a standby), by address.
pub struct Node {
    pub addr: String,
    pub data: PathBuf,
    pub socket_dir: PathBuf,
    pub log: PathBuf,
}

/// A primary and its standbys. Servers are stopped at process exit like every
/// [`Server`] (their data directories are in the harness's list of running servers).
pub struct Cluster {
    pub primary: Node,
    pub standbys: Vec<Node>,
    // Keeps the primary's `Server` (in Docker mode its container) alive.
    _server: Server,
}

impl Cluster {
    /// Starts a primary on `primary` and a streaming hot standby on each of `standbys`,
    /// and waits until every standby streams. `None` in Docker mode (`PGDAP_TEST_DOCKER`):
    /// standbys made by `pg_basebackup` are not supported there (a reason is printed).
    pub fn start(primary: &'static str, standbys: &[&'static str]) -> Option<Cluster> {
        if docker::image().is_some() {
            eprintln!(
                "skipped: replication clusters run in the normal mode only, not with \
                 PGDAP_TEST_DOCKER (pg_basebackup standbys in containers are not supported)"
            );
            return None;
        }
        let mut spec = ServerSpec::new(primary, Some("server-cluster"));
        spec.hba = cluster_hba();
        spec.ident = format!("{STANDARD_IDENT}osmap /^.*$ alice\n");
        spec.conf = PRIMARY_CONF.to_string();
        let server = Server::start(spec);
        let mut cluster = Cluster {
            primary: Node {
                addr: server.addr.clone(),
                data: server.data.clone(),
                socket_dir: server.socket_dir.clone(),
                log: server.log.clone(),
            },
            standbys: Vec::new(),
            _server: server,
        };
        for addr in standbys {
            cluster.add_standby(addr, "");
            cluster.standbys.last().unwrap().wait_streaming();
        }
        Some(cluster)
    }

    /// Copies the primary with `pg_basebackup -R` (streaming from the primary's socket)
    /// into a standby on `addr` with `conf` as extra postgresql.conf lines, and starts it
    /// (without waiting for it to stream: with `hot_standby = off` it accepts no
    /// connections, see [`Node::wait_streaming`]).
    pub fn add_standby(&mut self, addr: &'static str, conf: &str) -> &Node {
        claim_address(addr);
        let dir = PathBuf::from(ROOT).join(format!("{}-{addr}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let socket_dir = dir.join("sock");
        std::fs::create_dir_all(&socket_dir).unwrap();
        chown_postgres(&dir);
        let data = dir.join("data");
        let mut basebackup = pg_cmd("pg_basebackup");
        basebackup
            .arg("-h")
            .arg(&self.primary.socket_dir)
            .args(["-p", "5432", "-U", "postgres", "-R", "-X", "stream"])
            .args(["-c", "fast", "--no-sync", "-D"])
            .arg(&data);
        run(basebackup, &format!("pg_basebackup for {addr}"));
        // The copy's postgresql.auto.conf is the primary's as Server::start wrote it, then
        // the primary_conninfo that -R appended. Later lines win: this node's own address
        // and socket directory go after both.
        let auto = data.join("postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&auto).unwrap();
        text.push_str(&format!(
            "listen_addresses = '{addr}'\nunix_socket_directories = '{}'\n\
             cluster_name = 'node-{addr}'\n{conf}",
            socket_dir.display()
        ));
        std::fs::write(&auto, text).unwrap();
        chown_postgres(&dir);
        RUNNING.lock().unwrap().push(data.clone());
        let node = Node {
            addr: addr.to_string(),
            data,
            socket_dir,
            log: dir.join("server.log"),
        };
        node.start();
        self.standbys.push(node);
        self.standbys.last().unwrap()
    }

    /// Waits until every standby has replayed the primary's WAL as of now (e.g. a table
    /// just created is visible there). Every standby must be running and accept
    /// connections (`hot_standby = on`).
    pub fn sync(&self) {
        let lsn = self.primary.psql("postgres", "select pg_current_wal_lsn()");
        for s in &self.standbys {
            wait_for(
                &format!("{} replays up to {lsn}", s.addr),
                Duration::from_secs(30),
                || {
                    s.try_psql(
                        "postgres",
                        &format!("select pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"),
                    )
                    .as_deref()
                        == Ok("t")
                },
            );
        }
    }
}

/// Polls `done` every 50 ms until it holds; panics naming `what` after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "waited {limit:?} for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Node {
    /// SQL as superuser over the node's socket (stdout, unaligned, tuples only); panics
    /// when it fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.try_psql(db, sql)
            .unwrap_or_else(|e| panic!("psql on {}: {sql}: {e}", self.addr))
    }

    /// [`Node::psql`], or psql's error.
    pub fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(format!("{PG_BIN}/psql"))
            .arg("-h")
            .arg(&self.socket_dir)
            .args(["-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1"])
            .args(["-X", "-q", "-A", "-t", "-c", sql])
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim_end().to_string())
        }
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`): as a crash, its address
    /// then refuses connections.
    pub fn kill(&self) {
        let mut c = pg_cmd("pg_ctl");
        c.arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"]);
        run(c, &format!("pg_ctl stop -m immediate {}", self.addr));
    }

    /// Starts the (stopped) server and waits until it accepts connections (a standby:
    /// until it is consistent, or ready as far as `hot_standby = off` allows).
    pub fn start(&self) {
        let mut c = pg_cmd("pg_ctl");
        c.arg("-D")
            .arg(&self.data)
            .args(["-w", "-t", "60", "-l"])
            .arg(&self.log)
            .arg("start");
        run(c, &format!("pg_ctl start {}", self.addr));
    }

    /// Whether the server is a standby (`pg_is_in_recovery()`).
    pub fn in_recovery(&self) -> bool {
        self.psql("postgres", "select pg_is_in_recovery()") == "t"
    }

    /// Promotes the standby (`pg_ctl promote -w`) and waits until `pg_is_in_recovery()`
    /// is false: from then on it accepts writes.
    pub fn promote(&self) {
        let mut c = pg_cmd("pg_ctl");
        c.arg("-D")
            .arg(&self.data)
            .args(["-w", "-t", "60", "promote"]);
        run(c, &format!("pg_ctl promote {}", self.addr));
        wait_for(
            &format!("{} leaves recovery", self.addr),
            Duration::from_secs(30),
            || !self.in_recovery(),
        );
    }

    /// Waits until the standby's WAL receiver streams (`pg_stat_wal_receiver`).
    pub fn wait_streaming(&self) {
        wait_for(
            &format!("{} streams", self.addr),
            Duration::from_secs(60),
            || {
                self.try_psql("postgres", "select status from pg_stat_wal_receiver")
                    .as_deref()
                    == Ok("streaming")
            },
        );
    }
}
