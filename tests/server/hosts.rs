//! Host lists in `dbserver` (issue 24), in libpq's syntax (`host=a,b,c`: host names, IP
//! literals and Unix-socket directories, every member on port 5432), compared case by case
//! with psql 15 (libpq 15) and, for PGLOADBALANCEHOSTS (libpq 16) and the question which
//! failures move on to the next host, with libpq 18 (ctypes, `tools/libpq_oracle.py`).
//!
//! What a case compares: which server served the session (`inet_server_addr()`, `socket`
//! for a Unix socket) and whether it is encrypted, or that both fail, pgdap's message
//! naming the same hosts as libpq's, one line each. psql's outcome is also checked
//! against what is written in the case: these are the specification of the feature.
//!
//! Addresses: a replication cluster (primary 127.0.0.220, hot standbys .221 and .222,
//! a standby with `hot_standby = off` on .226: 57P03), .223 nothing listens, .224 a
//! [`SilentPeer`] (hangs), .225 a server whose certificate does not name it, .227 a server
//! where `scram_user` has another password, .228 a server with a second socket in libpq's
//! default socket directory, .229 a server with `ssl = off`. Failover and pools:
//! [`failover`] (.230-.239).

mod failover;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::{
    self, access_point, failure_hosts, libpq18_served, pgdap_served, psql_served, served,
    ClientHome, Cluster, Served, Server, ServerSpec, SilentPeer,
};

const PRIMARY: &str = "127.0.0.220";
const STANDBY1: &str = "127.0.0.221";
const STANDBY2: &str = "127.0.0.222";
const DOWN: &str = "127.0.0.223";
const HUNG: &str = "127.0.0.224";
const MISMATCH: &str = "127.0.0.225";
const NOT_ACCEPTING: &str = "127.0.0.226";
const OTHER_PASSWORD: &str = "127.0.0.227";
const DEFAULT_SOCKET_SERVER: &str = "127.0.0.228";
const NO_SSL: &str = "127.0.0.229";
/// A second silent peer, for the staggered attempt (tests run in parallel).
const HUNG_FOR_STAGGER: &str = "127.0.0.238";

/// libpq's compiled-in default socket directory (Debian's build of psql 15).
const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// The module's cluster: primary, two hot standbys, and the standby with
/// `hot_standby = off` (connections fail with 57P03 "the database system is not
/// accepting connections"). `None` in Docker mode.
fn cluster() -> Option<&'static Cluster> {
    static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| {
            let mut cluster = Cluster::start(PRIMARY, &[STANDBY1, STANDBY2])?;
            cluster.add_standby(NOT_ACCEPTING, "hot_standby = off\n");
            Some(cluster)
        })
        .as_ref()
}

fn socket_of(addr: &str) -> String {
    let c = cluster().unwrap();
    let node = std::iter::once(&c.primary)
        .chain(&c.standbys)
        .find(|n| n.addr == addr)
        .unwrap();
    node.socket_dir.display().to_string()
}

/// A socket directory where no server listens (in the PKI directory, which is removed
/// at exit).
fn no_socket() -> String {
    let dir = common::pki().dir.join("no-server");
    std::fs::create_dir_all(&dir).unwrap();
    dir.display().to_string()
}

/// Starts a server of the module once (`how` adjusts its spec, `then` runs after start).
fn module_server(
    cell: &'static OnceLock<Server>,
    addr: &'static str,
    cert: Option<&'static str>,
    how: impl FnOnce(&mut ServerSpec),
    then: impl FnOnce(&Server),
) -> &'static Server {
    cell.get_or_init(|| {
        let mut spec = ServerSpec::new(addr, cert);
        how(&mut spec);
        let server = Server::start(spec);
        then(&server);
        server
    })
}

/// .225: SSL with `server.crt` (localhost, ssl.pgdap.test, 127.0.0.2): verify-full fails.
fn mismatch_server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    module_server(&S, MISMATCH, Some("server"), |_| {}, |_| {})
}

/// .227: `scram_user`'s password is `other-pw` there: password authentication fails.
fn other_password_server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    module_server(
        &S,
        OTHER_PASSWORD,
        Some("server-cluster"),
        |_| {},
        |s| {
            s.psql("postgres", "alter role scram_user password 'other-pw'");
        },
    )
}

/// .229: `ssl = off`.
fn no_ssl_server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    module_server(&S, NO_SSL, None, |_| {}, |_| {})
}

/// .228: its sockets in its own directory and in [`DEFAULT_SOCKET_DIR`]; `scram_user`
/// needs its password over the socket.
fn default_socket_server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    module_server(
        &S,
        DEFAULT_SOCKET_SERVER,
        None,
        |spec| {
            std::fs::create_dir_all(DEFAULT_SOCKET_DIR).unwrap();
            common::chown_postgres(Path::new(DEFAULT_SOCKET_DIR));
            let own = PathBuf::from("/tmp/pgdap-tests")
                .join(format!("{}-{DEFAULT_SOCKET_SERVER}", std::process::id()))
                .join("sock");
            spec.hba = common::cluster_hba();
            spec.conf = format!(
                "unix_socket_directories = '{}, {DEFAULT_SOCKET_DIR}'\n",
                own.display()
            );
        },
        |_| {},
    )
}

// ----- cases ---------------------------------------------------------------------------

/// One connection case: a `dbserver` list, a user, and the PG* variables (`PGMODE=prefer`
/// unless the case sets it).
struct Case {
    name: String,
    server: String,
    user: &'static str,
    password: &'static str,
    home: ClientHome,
}

fn case(name: &str, hosts: &[&str]) -> Case {
    Case {
        name: name.to_string(),
        server: hosts.join(","),
        user: "scram_user",
        password: "scram-pw",
        home: ClientHome::new().var("PGMODE", "prefer"),
    }
}

impl Case {
    fn var(mut self, name: &str, value: &str) -> Case {
        self.home.set(name, value);
        self
    }

    fn user(mut self, user: &'static str, password: &'static str) -> Case {
        self.user = user;
        self.password = password;
        self
    }

    /// verify-full with the test CA as `~/.postgresql/root.crt`.
    fn verify_full(self) -> Case {
        self.home.put("ca.crt", "root.crt");
        self.var("PGMODE", "verify-full")
    }

    fn ap(&self) -> pgdap::AccessPoint {
        access_point(&self.server, "appdb", self.user, self.password)
    }

    fn psql(&self) -> Result<Served, String> {
        psql_served(&self.ap(), &self.home.env(), self.home.home())
    }

    fn libpq18(&self) -> Result<Served, String> {
        libpq18_served(&self.ap(), &self.home.env(), self.home.home())
    }

    async fn pgdap(&self) -> Result<Served, String> {
        pgdap_served(&self.ap(), &self.home.env()).await
    }
}

/// What psql 15 does in a case: serves from a server (SSL or not), or fails with a message
/// holding every one of the fragments.
#[derive(Debug)]
enum Want {
    Serves(Served),
    Fails(Vec<String>),
}

fn serves(server: &str, ssl: bool) -> Want {
    Want::Serves(served(server, ssl))
}

fn fails(fragments: &[&str]) -> Want {
    Want::Fails(fragments.iter().map(|f| f.to_string()).collect())
}

/// The outcomes of one case.
struct Ran {
    psql: Result<Served, String>,
    libpq18: Option<Result<Served, String>>,
    pgdap: Result<Served, String>,
}

fn show(r: &Result<Served, String>) -> String {
    match r {
        Ok(s) => format!("{} {}", s.server, if s.ssl { "ssl" } else { "plain" }),
        Err(e) => format!("FAIL {e:?}"),
    }
}

/// Whether libpq's outcome is `want`.
fn is_wanted(want: &Want, got: &Result<Served, String>) -> bool {
    match (want, got) {
        (Want::Serves(w), Ok(g)) => w == g,
        (Want::Fails(fragments), Err(e)) => fragments.iter().all(|f| e.contains(f.as_str())),
        _ => false,
    }
}

/// Asserts that pgdap did what the libpq `oracle` did: the same server and encryption, or
/// both failing with messages that name the same hosts (each on a line of its own).
fn assert_same(
    name: &str,
    oracle: &str,
    theirs: &Result<Served, String>,
    ours: &Result<Served, String>,
) {
    match (theirs, ours) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{name}: {oracle} {a:?}, pgdap {b:?}"),
        (Err(a), Err(b)) => {
            let libpq: BTreeSet<String> = failure_hosts(a).into_iter().collect();
            let pgdap: BTreeSet<String> = failure_hosts(b).into_iter().collect();
            assert!(!libpq.is_empty(), "{name}: {oracle} names no host: {a}");
            assert_eq!(
                libpq, pgdap,
                "{name}: the hosts named differ\n{oracle}:\n{a}\npgdap:\n{b}"
            );
        }
        _ => panic!("{name}: {oracle} {}, pgdap {}", show(theirs), show(ours)),
    }
}

/// Runs every case through psql 15 (and libpq 18 when `with_libpq18`) and pgdap, prints
/// the outcomes, then asserts: first that psql did what the case says (the
/// specification), then that libpq 18 did the same, then that pgdap did what psql did.
async fn check(cases: Vec<(Case, Want)>, with_libpq18: bool) {
    let mut ran = Vec::new();
    for (c, _) in &cases {
        let start = Instant::now();
        let psql = c.psql();
        let psql_took = start.elapsed();
        let libpq18 = with_libpq18.then(|| c.libpq18());
        let start = Instant::now();
        let pgdap = c.pgdap().await;
        let pgdap_took = start.elapsed();
        eprintln!(
            "{} [{}] {:?}\n  psql 15 ({:.2} s): {}\n{}  pgdap   ({:.2} s): {}",
            c.name,
            c.server,
            c.home.vars(),
            psql_took.as_secs_f64(),
            show(&psql),
            libpq18
                .as_ref()
                .map(|r| format!("  libpq 18: {}\n", show(r)))
                .unwrap_or_default(),
            pgdap_took.as_secs_f64(),
            show(&pgdap)
        );
        ran.push(Ran {
            psql,
            libpq18,
            pgdap,
        });
    }
    for ((c, want), r) in cases.iter().zip(&ran) {
        assert!(
            is_wanted(want, &r.psql),
            "{}: psql 15 {} but the case says {want:?}",
            c.name,
            show(&r.psql)
        );
    }
    for ((c, _), r) in cases.iter().zip(&ran) {
        if let Some(l18) = &r.libpq18 {
            assert_eq!(
                l18.as_ref().map_err(|e| failure_hosts(e)),
                r.psql.as_ref().map_err(|e| failure_hosts(e)),
                "{}: libpq 18 {} vs psql 15 {}",
                c.name,
                show(l18),
                show(&r.psql)
            );
        }
    }
    for ((c, _), r) in cases.iter().zip(&ran) {
        assert_same(&c.name, "psql 15", &r.psql, &r.pgdap);
    }
}

// ----- tests -----------------------------------------------------------------------------

/// The basic orders: the first member down (refused, not resolvable, no socket), a
/// standby first, and every member failing (one line per host in the message).
#[tokio::test]
async fn members_are_tried_in_order_and_every_failure_is_reported() {
    let Some(_) = cluster() else { return };
    let none = no_socket();
    check(
        vec![
            (case("first down", &[DOWN, PRIMARY]), serves(PRIMARY, true)),
            (
                case("first not resolvable", &["nosuch.pgdap.test", PRIMARY]),
                serves(PRIMARY, true),
            ),
            (
                case("first no socket", &[&none, PRIMARY]),
                serves(PRIMARY, true),
            ),
            (
                case("standby first", &[STANDBY1, PRIMARY]),
                serves(STANDBY1, true),
            ),
            (
                case("disable over a list", &[DOWN, STANDBY2]).var("PGMODE", "disable"),
                serves(STANDBY2, false),
            ),
            (
                case("allow over a list", &[DOWN, STANDBY2]).var("PGMODE", "allow"),
                serves(STANDBY2, false),
            ),
            (
                case("all failing", &["nosuch.pgdap.test", DOWN, &none]),
                fails(&[
                    "could not translate host name \"nosuch.pgdap.test\" to address",
                    "connection to server at \"127.0.0.223\", port 5432 failed: Connection refused",
                    &format!(
                        "connection to server on socket \"{none}/.s.PGSQL.5432\" failed: \
                         No such file or directory"
                    ),
                ]),
            ),
        ],
        false,
    )
    .await;
}

/// Each PGTARGETSESSIONATTRS value over [standby, primary, standby], [primary, standby]
/// and [standby, standby] (none matching read-write and primary).
#[tokio::test]
async fn target_session_attrs_over_lists() {
    let Some(_) = cluster() else { return };
    let lists: [(&str, &[&str]); 3] = [
        ("[s1, p, s2]", &[STANDBY1, PRIMARY, STANDBY2]),
        ("[p, s1]", &[PRIMARY, STANDBY1]),
        ("[s1, s2]", &[STANDBY1, STANDBY2]),
    ];
    // The server each value picks per list; `None`: every member is refused with the
    // reason.
    let table: [(&str, [Result<&str, &str>; 3]); 6] = [
        ("any", [Ok(STANDBY1), Ok(PRIMARY), Ok(STANDBY1)]),
        (
            "read-write",
            [Ok(PRIMARY), Ok(PRIMARY), Err("session is read-only")],
        ),
        ("read-only", [Ok(STANDBY1), Ok(STANDBY1), Ok(STANDBY1)]),
        (
            "primary",
            [
                Ok(PRIMARY),
                Ok(PRIMARY),
                Err("server is in hot standby mode"),
            ],
        ),
        ("standby", [Ok(STANDBY1), Ok(STANDBY1), Ok(STANDBY1)]),
        ("prefer-standby", [Ok(STANDBY1), Ok(STANDBY1), Ok(STANDBY1)]),
    ];
    let mut cases = Vec::new();
    for (attrs, picks) in table {
        for ((list_name, list), pick) in lists.iter().zip(picks) {
            let c =
                case(&format!("{attrs} over {list_name}"), list).var("PGTARGETSESSIONATTRS", attrs);
            let want = match pick {
                Ok(server) => serves(server, true),
                Err(reason) => fails(&[
                    &format!("connection to server at \"{STANDBY1}\", port 5432 failed: {reason}"),
                    &format!("connection to server at \"{STANDBY2}\", port 5432 failed: {reason}"),
                ]),
            };
            cases.push((c, want));
        }
    }
    // prefer-standby's second pass: no standby in the list, or none up.
    cases.push((
        case("prefer-standby over [p]", &[PRIMARY]).var("PGTARGETSESSIONATTRS", "prefer-standby"),
        serves(PRIMARY, true),
    ));
    cases.push((
        case("prefer-standby over [down, p]", &[DOWN, PRIMARY])
            .var("PGTARGETSESSIONATTRS", "prefer-standby"),
        serves(PRIMARY, true),
    ));
    cases.push((
        case("standby over [p]", &[PRIMARY]).var("PGTARGETSESSIONATTRS", "standby"),
        fails(&[&format!(
            "connection to server at \"{PRIMARY}\", port 5432 failed: server is not in hot standby mode"
        )]),
    ));
    cases.push((
        case("read-only over [p]", &[PRIMARY]).var("PGTARGETSESSIONATTRS", "read-only"),
        fails(&[&format!(
            "connection to server at \"{PRIMARY}\", port 5432 failed: session is not read-only"
        )]),
    ));
    check(cases, false).await;
}

/// Which failures make libpq move on to the next member and which stop it, with psql 15
/// and libpq 18 (they agree).
#[tokio::test]
async fn which_failures_move_on_to_the_next_host() {
    let Some(c) = cluster() else { return };
    mismatch_server();
    other_password_server();
    no_ssl_server();
    let primary_socket = c.primary.socket_dir.display().to_string();
    check(
        vec![
            // Moves on.
            (case("refused", &[DOWN, PRIMARY]), serves(PRIMARY, true)),
            (
                case("57P03 not accepting connections", &[NOT_ACCEPTING, PRIMARY]),
                serves(PRIMARY, true),
            ),
            (
                case("57P03 alone", &[NOT_ACCEPTING]),
                fails(&[
                    "connection to server at \"127.0.0.226\", port 5432 failed: FATAL:  the database system is not accepting connections",
                ]),
            ),
            (
                case("target mismatch", &[STANDBY1, PRIMARY])
                    .var("PGTARGETSESSIONATTRS", "read-write"),
                serves(PRIMARY, true),
            ),
            // Stops.
            (
                case("password authentication failed", &[OTHER_PASSWORD, PRIMARY]),
                fails(&[
                    "connection to server at \"127.0.0.227\", port 5432 failed: FATAL:  password authentication failed for user \"scram_user\"",
                ]),
            ),
            (
                case("verify-full certificate mismatch", &[MISMATCH, PRIMARY]).verify_full(),
                fails(&[
                    "connection to server at \"127.0.0.225\", port 5432 failed: server certificate for \"localhost\" (and 2 other names) does not match host name \"127.0.0.225\"",
                ]),
            ),
            (
                case("require, server without SSL", &[NO_SSL, PRIMARY]).var("PGMODE", "require"),
                fails(&[
                    "connection to server at \"127.0.0.229\", port 5432 failed: server does not support SSL, but SSL was required",
                ]),
            ),
            (
                case("requirepeer mismatch", &[&primary_socket, PRIMARY])
                    .var("PGREQUIREPEER", "nobody"),
                fails(&[
                    "requirepeer specifies \"nobody\", but actual peer user name is \"postgres\"",
                ]),
            ),
        ],
        true,
    )
    .await;
}

/// A hung first member (accepts, never answers): PGCONNECT_TIMEOUT=2 bounds the attempt on
/// it (one attempt: no retry without SSL after a timeout), then the next member serves;
/// pgdap moves on in about the same time as psql. Two hung/down members: both reported.
#[tokio::test]
async fn a_hung_host_times_out_and_the_next_one_serves() {
    let Some(_) = cluster() else { return };
    static PEER: OnceLock<SilentPeer> = OnceLock::new();
    let peer = PEER.get_or_init(|| SilentPeer::start(HUNG));
    let c = case("first hung", &[HUNG, PRIMARY]).var("PGCONNECT_TIMEOUT", "2");
    let both = case("hung and down", &[HUNG, DOWN]).var("PGCONNECT_TIMEOUT", "2");
    // psql first (the specification), then pgdap.
    let mark = peer.mark();
    let start = Instant::now();
    let psql = c.psql();
    let psql_took = start.elapsed();
    let psql_attempts = peer.attempts_since(mark).await;
    let start = Instant::now();
    let psql_both = both.psql();
    let psql_both_took = start.elapsed();
    eprintln!(
        "first hung: psql 15 {} in {:.2} s ({psql_attempts} attempts on the hung host); \
         hung and down: psql 15 {} in {:.2} s",
        show(&psql),
        psql_took.as_secs_f64(),
        show(&psql_both),
        psql_both_took.as_secs_f64()
    );
    assert_eq!(psql, Ok(served(PRIMARY, true)));
    assert_eq!(psql_attempts, 1);
    for took in [psql_took, psql_both_took] {
        assert!(
            took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
            "psql took {took:?}"
        );
    }
    let want = fails(&[
        "connection to server at \"127.0.0.224\", port 5432 failed: timeout expired",
        "connection to server at \"127.0.0.223\", port 5432 failed: Connection refused",
    ]);
    assert!(is_wanted(&want, &psql_both), "{}", show(&psql_both));

    let mark = peer.mark();
    let start = Instant::now();
    let pgdap = c.pgdap().await;
    let pgdap_took = start.elapsed();
    let pgdap_attempts = peer.attempts_since(mark).await;
    let start = Instant::now();
    let pgdap_both = both.pgdap().await;
    let pgdap_both_took = start.elapsed();
    eprintln!(
        "first hung: pgdap {} in {:.2} s ({pgdap_attempts} attempts); hung and down: pgdap \
         {} in {:.2} s",
        show(&pgdap),
        pgdap_took.as_secs_f64(),
        show(&pgdap_both),
        pgdap_both_took.as_secs_f64()
    );
    assert_same("first hung", "psql 15", &psql, &pgdap);
    assert_eq!(pgdap_attempts, psql_attempts, "attempts on the hung host");
    assert_same("hung and down", "psql 15", &psql_both, &pgdap_both);
    for (ours, theirs) in [(pgdap_took, psql_took), (pgdap_both_took, psql_both_took)] {
        assert!(
            ours >= Duration::from_millis(1900) && ours < theirs + Duration::from_secs(1),
            "pgdap took {ours:?}, psql {theirs:?}"
        );
    }
}

/// Beyond libpq, opt-in: `ConnectOptions::host_stagger` starts the next member alongside
/// a silent first one, so the hung host costs the delay instead of PGCONNECT_TIMEOUT, and
/// the member libpq would have reached serves.
#[tokio::test]
async fn host_stagger_skips_a_hung_host_after_its_delay() {
    let Some(_) = cluster() else { return };
    static PEER: OnceLock<SilentPeer> = OnceLock::new();
    // The hung test's peer lives in that test; this one takes the next address.
    let _peer = PEER.get_or_init(|| SilentPeer::start(HUNG_FOR_STAGGER));
    let c =
        case("first hung, staggered", &[HUNG_FOR_STAGGER, PRIMARY]).var("PGCONNECT_TIMEOUT", "2");
    let stagger = Duration::from_millis(200);
    let config = pgdap::Config::new(c.ap(), &c.home.env())
        .unwrap()
        .with_options(pgdap::ConnectOptions {
            host_stagger: Some(stagger),
            ..Default::default()
        });
    let connector = pgdap::Connector::new(config).unwrap();
    let start = Instant::now();
    let session = connector.connect_spawned().await.unwrap();
    let took = start.elapsed();
    let row: String = session
        .client
        .query_one(common::SERVED_QUERY, &[])
        .await
        .unwrap()
        .get(0);
    eprintln!(
        "first hung, host_stagger 200 ms: {row} in {:.3} s",
        took.as_secs_f64()
    );
    assert_eq!(Served::parse(&row), Ok(served(PRIMARY, true)));
    assert_eq!(session.host().to_string(), PRIMARY);
    assert!(
        took >= stagger && took < Duration::from_millis(1500),
        "took {took:?}"
    );
}

/// `doctor` over a list: each member alone with its addresses, outcome and role, a
/// warning for the member that takes no session, and the member the session went to.
#[tokio::test]
async fn doctor_shows_each_member_and_its_role() {
    let Some(_) = cluster() else { return };
    let c = case("doctor", &[DOWN, PRIMARY, STANDBY1]);
    let report = pgdap::doctor::diagnose(&c.ap(), &c.home.env(), &Default::default()).await;
    let text = report.to_string();
    eprintln!("{text}");
    assert_eq!(report.connection.host.as_deref(), Some(PRIMARY));
    let hosts: Vec<(String, Vec<String>, bool, Option<String>)> = report
        .hosts
        .iter()
        .map(|h| {
            (
                h.host.clone(),
                h.addresses.clone(),
                h.connected,
                h.role.clone(),
            )
        })
        .collect();
    assert_eq!(
        hosts,
        [
            (DOWN.to_string(), vec![DOWN.to_string()], false, None),
            (
                PRIMARY.to_string(),
                vec![PRIMARY.to_string()],
                true,
                Some("primary".to_string())
            ),
            (
                STANDBY1.to_string(),
                vec![STANDBY1.to_string()],
                true,
                Some("standby".to_string())
            ),
        ]
    );
    assert!(
        report.hosts[0].outcome.contains("Connection refused"),
        "{text}"
    );
    assert!(report.hosts[1].outcome.starts_with("SSL TLSv1."), "{text}");
    assert!(
        report
            .checks
            .iter()
            .any(|ch| ch.status == pgdap::doctor::Status::Warn
                && ch.item == format!("dbserver member \"{DOWN}\"")),
        "{text}"
    );
    assert!(
        text.contains(&format!("  {STANDBY1} [{STANDBY1}]: SSL TLSv1.")),
        "{text}"
    );
}

/// The blocking adapter (`postgres` crate) walks a list as the async connect does, with
/// psql 15's outcome.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blocking_adapter_walks_the_list_as_libpq() {
    let Some(_) = cluster() else { return };
    let cases = [
        case(
            "down, standby, primary: read-write",
            &[DOWN, STANDBY1, PRIMARY],
        )
        .var("PGTARGETSESSIONATTRS", "read-write"),
        case("primary, standby: standby", &[PRIMARY, STANDBY2])
            .var("PGTARGETSESSIONATTRS", "standby"),
        case("prefer-standby over the primary alone", &[DOWN, PRIMARY])
            .var("PGTARGETSESSIONATTRS", "prefer-standby"),
        case("none fits", &[DOWN, STANDBY1]).var("PGTARGETSESSIONATTRS", "read-write"),
    ];
    for c in cases {
        let psql = c.psql();
        let (ap, env) = (c.ap(), c.home.env());
        let blocking = tokio::task::spawn_blocking(move || {
            let connector = pgdap::Connector::new(pgdap::Config::new(ap, &env).unwrap()).unwrap();
            let mut session =
                pgdap::integrations::blocking::connect(&connector).map_err(|e| e.to_string())?;
            let row: String = session
                .client
                .query_one(common::SERVED_QUERY, &[])
                .map_err(|e| e.to_string())?
                .get(0);
            Served::parse(&row)
        })
        .await
        .unwrap();
        eprintln!(
            "{}: psql 15 {} | blocking {}",
            c.name,
            show(&psql),
            show(&blocking)
        );
        assert_same(&c.name, "psql 15", &psql, &blocking);
    }
}

/// Unix-socket members: never SSL, whatever PGMODE says (libpq's rule), SCRAM and peer
/// authentication, and mixed socket/TCP lists.
#[tokio::test]
async fn socket_members() {
    let Some(c) = cluster() else { return };
    let primary_socket = c.primary.socket_dir.display().to_string();
    let standby_socket = socket_of(STANDBY1);
    let none = no_socket();
    check(
        vec![
            (
                case("socket alone", &[&primary_socket]),
                serves("socket", false),
            ),
            (
                case("socket, require", &[&primary_socket]).var("PGMODE", "require"),
                serves("socket", false),
            ),
            (
                case("socket, verify-full", &[&primary_socket]).verify_full(),
                serves("socket", false),
            ),
            (
                case("socket, peer", &[&primary_socket]).user("alice", ""),
                serves("socket", false),
            ),
            (
                case("socket, wrong password", &[&primary_socket]).user("scram_user", "wrong"),
                fails(&[&format!(
                    "connection to server on socket \"{primary_socket}/.s.PGSQL.5432\" failed: \
                     FATAL:  password authentication failed for user \"scram_user\""
                )]),
            ),
            (
                case("down, then socket", &[DOWN, &primary_socket]),
                serves("socket", false),
            ),
            (
                case("no socket, then TCP", &[&none, PRIMARY]),
                serves(PRIMARY, true),
            ),
            (
                case(
                    "standby socket, TCP primary; read-write",
                    &[&standby_socket, PRIMARY],
                )
                .var("PGTARGETSESSIONATTRS", "read-write"),
                serves(PRIMARY, true),
            ),
            (
                case(
                    "TCP standby, primary socket; read-write",
                    &[STANDBY1, &primary_socket],
                )
                .var("PGTARGETSESSIONATTRS", "read-write"),
                serves("socket", false),
            ),
            (
                case("socket then TCP, verify-full", &[&standby_socket, PRIMARY]).verify_full(),
                serves("socket", false),
            ),
        ],
        false,
    )
    .await;
}

/// PGREQUIREPEER: checked on Unix sockets only (the server runs as `postgres`).
#[tokio::test]
async fn requirepeer_over_a_socket() {
    let Some(c) = cluster() else { return };
    let socket = c.primary.socket_dir.display().to_string();
    check(
        vec![
            (
                case("requirepeer postgres", &[&socket]).var("PGREQUIREPEER", "postgres"),
                serves("socket", false),
            ),
            (
                case("requirepeer nobody", &[&socket]).var("PGREQUIREPEER", "nobody"),
                fails(&[&format!(
                    "connection to server on socket \"{socket}/.s.PGSQL.5432\" failed: \
                     requirepeer specifies \"nobody\", but actual peer user name is \"postgres\""
                )]),
            ),
            (
                case("requirepeer over TCP", &[PRIMARY]).var("PGREQUIREPEER", "nobody"),
                serves(PRIMARY, true),
            ),
        ],
        false,
    )
    .await;
}

/// The password file over a socket: libpq matches a socket connection against a line
/// with host `localhost` only when the socket directory is its compiled-in default
/// (`DEFAULT_PGSOCKET_DIR`, /var/run/postgresql on Debian); for another directory the
/// line's host must be the directory itself.
#[tokio::test]
async fn password_file_localhost_rule_over_a_socket() {
    let Some(_) = cluster() else { return };
    let server = default_socket_server();
    let own = server.socket_dir.display().to_string();
    let with_pgpass = |name: &str, dir: &str, host: &str| {
        let c = case(name, &[dir]).user("scram_user", "");
        let path = c.home.home().join(".pgpass");
        std::fs::write(&path, format!("{host}:5432:appdb:scram_user:scram-pw\n")).unwrap();
        common::set_mode(&path, 0o600);
        c
    };
    check(
        vec![
            (
                with_pgpass(
                    "default dir, localhost line",
                    DEFAULT_SOCKET_DIR,
                    "localhost",
                ),
                serves("socket", false),
            ),
            (
                with_pgpass("own dir, localhost line", &own, "localhost"),
                fails(&["fe_sendauth: no password supplied"]),
            ),
            (
                with_pgpass("own dir, line naming the dir", &own, &own),
                serves("socket", false),
            ),
            (
                with_pgpass("TCP, localhost line", DEFAULT_SOCKET_SERVER, "localhost"),
                fails(&["fe_sendauth: no password supplied"]),
            ),
        ],
        false,
    )
    .await;
}

/// verify-full over a list: every member's certificate is checked against its own name
/// or address.
#[tokio::test]
async fn verify_full_over_a_list() {
    let Some(_) = cluster() else { return };
    mismatch_server();
    common::ensure_hosts("s2.pgdap.test", STANDBY2);
    check(
        vec![
            (
                case("verify-full [p, s1]", &[PRIMARY, STANDBY1]).verify_full(),
                serves(PRIMARY, true),
            ),
            (
                case("verify-full [down, s1]", &[DOWN, STANDBY1]).verify_full(),
                serves(STANDBY1, true),
            ),
            (
                case("verify-full by name", &["nosuch.pgdap.test", "s2.pgdap.test"]).verify_full(),
                serves(STANDBY2, true),
            ),
            (
                case("verify-full [mismatch, p]", &[MISMATCH, PRIMARY]).verify_full(),
                fails(&[
                    "server certificate for \"localhost\" (and 2 other names) does not match host name \"127.0.0.225\"",
                ]),
            ),
            (
                case("verify-full [p, mismatch]", &[PRIMARY, MISMATCH]).verify_full(),
                serves(PRIMARY, true),
            ),
            (
                case("verify-full [s1, mismatch]; read-write", &[STANDBY1, MISMATCH])
                    .verify_full()
                    .var("PGTARGETSESSIONATTRS", "read-write"),
                fails(&[
                    "connection to server at \"127.0.0.221\", port 5432 failed: session is read-only",
                    "server certificate for \"localhost\" (and 2 other names) does not match host name \"127.0.0.225\"",
                ]),
            ),
        ],
        false,
    )
    .await;
}

/// A host name resolving to two addresses (two /etc/hosts lines, tried in their order):
/// a refused address moves on to the next address of the name; a target mismatch or
/// 57P03 moves on to the next *host*, skipping the name's other addresses.
#[tokio::test]
async fn a_host_name_with_two_addresses() {
    let Some(_) = cluster() else { return };
    for (name, addrs) in [
        ("pair-down.pgdap.test", [DOWN, PRIMARY]),
        ("pair-standby.pgdap.test", [STANDBY1, PRIMARY]),
        ("pair-57p03.pgdap.test", [NOT_ACCEPTING, PRIMARY]),
    ] {
        for addr in addrs {
            common::ensure_hosts(name, addr);
        }
    }
    check(
        vec![
            (
                case("down address, then the primary", &["pair-down.pgdap.test"]),
                serves(PRIMARY, true),
            ),
            (
                case("standby address first", &["pair-standby.pgdap.test"]),
                serves(STANDBY1, true),
            ),
            (
                case("standby address, read-write", &["pair-standby.pgdap.test"])
                    .var("PGTARGETSESSIONATTRS", "read-write"),
                fails(&[
                    "connection to server at \"pair-standby.pgdap.test\" (127.0.0.221), port 5432 failed: session is read-only",
                ]),
            ),
            (
                case("standby address, read-write, then s2", &["pair-standby.pgdap.test", STANDBY2])
                    .var("PGTARGETSESSIONATTRS", "read-write"),
                fails(&[
                    "connection to server at \"pair-standby.pgdap.test\" (127.0.0.221), port 5432 failed: session is read-only",
                    "connection to server at \"127.0.0.222\", port 5432 failed: session is read-only",
                ]),
            ),
            (
                case("57P03 address, then the primary's", &["pair-57p03.pgdap.test"]),
                fails(&["the database system is not accepting connections"]),
            ),
            (
                case("down address, verify-full", &["pair-down.pgdap.test"]).verify_full(),
                serves(PRIMARY, true),
            ),
        ],
        true,
    )
    .await;
}

/// PGLOADBALANCEHOSTS=disable: always the first member (pgdap and libpq 18; psql 15's
/// libpq predates the variable).
#[tokio::test]
async fn load_balance_disable_keeps_the_order() {
    let Some(_) = cluster() else { return };
    let c = case("disable", &[PRIMARY, STANDBY1, STANDBY2]).var("PGLOADBALANCEHOSTS", "disable");
    for _ in 0..10 {
        assert_eq!(c.libpq18(), Ok(served(PRIMARY, true)));
        assert_eq!(c.pgdap().await, Ok(served(PRIMARY, true)));
    }
}

/// PGLOADBALANCEHOSTS=random: over 60 connections pgdap and libpq 18 both reach every
/// member. Not a distribution test: the shuffle is random per connection, so any exact
/// count can fail by chance; reaching all three of 3 members in 60 uniform draws fails
/// with probability about 3 * (2/3)^60 < 1e-10, and a shuffle that never moves the first
/// member (or a fixed order) fails at once.
#[tokio::test]
async fn load_balance_random_reaches_every_host() {
    let Some(_) = cluster() else { return };
    let c = case("random", &[PRIMARY, STANDBY1, STANDBY2]).var("PGLOADBALANCEHOSTS", "random");
    let mut libpq = std::collections::BTreeMap::new();
    let mut ours = std::collections::BTreeMap::new();
    for _ in 0..60 {
        let l = c.libpq18().expect("libpq 18 connects");
        *libpq.entry(l.server).or_insert(0) += 1;
        let p = c.pgdap().await;
        *ours
            .entry(p.map(|s| s.server).unwrap_or_else(|e| e))
            .or_insert(0) += 1;
    }
    eprintln!("random over 60 connections: libpq 18 {libpq:?}, pgdap {ours:?}");
    let every: BTreeSet<String> = [PRIMARY, STANDBY1, STANDBY2]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(libpq.keys().cloned().collect::<BTreeSet<_>>(), every);
    assert_eq!(
        ours.keys().cloned().collect::<BTreeSet<_>>(),
        every,
        "{ours:?}"
    );
    // With a member down, every connection still succeeds (random order, then failover
    // within the shuffled list).
    let c = case("random, one down", &[DOWN, PRIMARY]).var("PGLOADBALANCEHOSTS", "random");
    for _ in 0..10 {
        assert_eq!(c.libpq18(), Ok(served(PRIMARY, true)));
        assert_eq!(c.pgdap().await, Ok(served(PRIMARY, true)));
    }
    // psql 15 ignores the variable: the first member.
    let c =
        case("random, psql 15", &[PRIMARY, STANDBY1, STANDBY2]).var("PGLOADBALANCEHOSTS", "random");
    for _ in 0..5 {
        assert_eq!(c.psql(), Ok(served(PRIMARY, true)));
    }
}
