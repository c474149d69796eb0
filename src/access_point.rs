//! The Database Access Point: a small `key=value` document naming the server.
//!
//! ```text
//! dbengine=postgre
//! dbserver=db.example.com
//! dbname=sales
//! username=app
//! password=...
//! ```
//!
//! Blank lines and `#` comments are ignored, whitespace around keys and values is trimmed
//! and keys are case-insensitive. The port is always 5432.

use std::fmt;
use std::path::{Path, PathBuf};

use tracing::warn;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::secret::Password;

/// The port of every Access Point: the vendor makes the default port mandatory.
pub const PORT: u16 = 5432;
// `error::At` writes libpq's prefix with this port as text.
const _: () = assert!(PORT == 5432);

/// The socket directory of an empty `dbserver` list member, as Debian's libpq (the `psql`
/// pgdap is compared with) was built: `DEFAULT_PGSOCKET_DIR`.
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// One member of `dbserver`'s list ([`AccessPoint::hosts`]).
///
/// ```
/// use pgdap::access_point::Host;
/// assert_eq!(Host::parse("/tmp").socket_path(), Some("/tmp/.s.PGSQL.5432".into()));
/// assert_eq!(Host::parse("db1").to_string(), "db1");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// A host name or IP address: TCP to port 5432 of each address it resolves to.
    Tcp(String),
    /// A Unix-domain socket directory (a member starting with `/`, as libpq's
    /// `is_unixsock_path`): the socket `.s.PGSQL.5432` in it. Never SSL (libpq's rule:
    /// the socket's file permissions and PGREQUIREPEER are its protection).
    Socket(PathBuf),
}

impl Host {
    /// libpq's reading of one member: a path when it starts with `/`, libpq's default
    /// socket directory when it is empty, else a host name or address.
    pub fn parse(member: &str) -> Host {
        if member.is_empty() {
            Host::Socket(PathBuf::from(DEFAULT_SOCKET_DIR))
        } else if member.starts_with('/') {
            Host::Socket(PathBuf::from(member))
        } else {
            Host::Tcp(member.to_string())
        }
    }

    /// The socket file of a socket directory (`DIR/.s.PGSQL.5432`), `None` for TCP.
    pub fn socket_path(&self) -> Option<PathBuf> {
        match self {
            Host::Socket(dir) => Some(dir.join(format!(".s.PGSQL.{PORT}"))),
            Host::Tcp(_) => None,
        }
    }

    /// The member as written (a socket directory as its path).
    pub fn as_str(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Host::Tcp(name) => std::borrow::Cow::Borrowed(name),
            Host::Socket(dir) => dir.to_string_lossy(),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

/// Access Point files larger than this are refused before parsing (a real one is a few
/// hundred bytes; the cap keeps a wrong path from loading a huge file into memory).
pub const MAX_FILE_SIZE: u64 = 64 * 1024;

/// A parsed Database Access Point. `Debug` masks the password.
///
/// ```
/// let ap = pgdap::AccessPoint::parse(
///     "dbengine=postgre\ndbserver=db1\ndbname=sales\nusername=app\npassword=s3cret\n",
/// )?;
/// assert_eq!(ap.server(), "db1");
/// assert_eq!(ap.port(), 5432);
/// assert!(!format!("{ap:?}").contains("s3cret"));
/// # Ok::<(), pgdap::Error>(())
/// ```
#[derive(Clone)]
pub struct AccessPoint {
    server: String,
    dbname: String,
    username: String,
    password: Password,
    /// Set by [`AccessPoint::from_file`]: the file holds a password others can read.
    readable_by_others: Option<ReadableByOthers>,
    /// Set by [`AccessPoint::from_file`]: the file it was read from.
    file: Option<std::path::PathBuf>,
}

/// Two Access Points are equal when they name the same server, database, user and
/// password, wherever they were read from.
impl PartialEq for AccessPoint {
    fn eq(&self, other: &AccessPoint) -> bool {
        self.server == other.server
            && self.dbname == other.dbname
            && self.username == other.username
            && self.password == other.password
    }
}

impl Eq for AccessPoint {}

/// An Access Point file that holds a password and is readable by its group or by others
/// (Unix permission bits `0o044`). [`AccessPoint::from_file`] logs it as a `tracing`
/// warning and keeps it for `doctor` ([`AccessPoint::readable_by_others`]); the file is
/// not refused, since the vendor's files live on many systems with many conventions.
///
/// ```
/// let exposed = pgdap::access_point::ReadableByOthers {
///     path: "/etc/app/dap.cfg".into(),
///     mode: 0o644,
/// };
/// assert_eq!(
///     exposed.to_string(),
///     "Access Point file \"/etc/app/dap.cfg\" holds a password and is readable by group or others (mode 0644); permissions should be u=rw (0600) or less"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadableByOthers {
    /// The file.
    pub path: PathBuf,
    /// Its permission bits (`st_mode & 0o7777`).
    pub mode: u32,
}

impl fmt::Display for ReadableByOthers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Access Point file \"{}\" holds a password and is readable by group or others (mode {:04o}); permissions should be u=rw (0600) or less",
            self.path.display(),
            self.mode
        )
    }
}

const KEYS: [&str; 5] = ["dbengine", "dbserver", "dbname", "username", "password"];

impl AccessPoint {
    /// Builds an Access Point from its parts (for services that hold them elsewhere).
    ///
    /// ```
    /// let ap = pgdap::AccessPoint::new("db1", "sales", "app", pgdap::Password::new(""));
    /// assert_eq!(ap.username(), "app");
    /// ```
    pub fn new(
        server: impl Into<String>,
        dbname: impl Into<String>,
        username: impl Into<String>,
        password: Password,
    ) -> AccessPoint {
        AccessPoint {
            server: server.into(),
            dbname: dbname.into(),
            username: username.into(),
            password,
            readable_by_others: None,
            file: None,
        }
    }

    /// Parses the document text.
    ///
    /// ```
    /// let err = pgdap::AccessPoint::parse("dbengine=postgre\ndbserver=h\nusername=u\n").unwrap_err();
    /// assert_eq!(err.to_string(), "Access Point: required key \"dbname\" is missing");
    /// ```
    pub fn parse(text: &str) -> Result<AccessPoint> {
        // Values are wiped when dropped: the password's among them, on every error path.
        let mut found: [Option<(Zeroizing<String>, usize)>; 5] = Default::default();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let (key, value) = trimmed
                .split_once('=')
                .ok_or(Error::AccessPointSyntax { line })?;
            let key = key.trim();
            let lower = key.to_ascii_lowercase();
            let slot = KEYS
                .iter()
                .position(|k| *k == lower)
                .ok_or_else(|| unknown_key(key, line))?;
            if let Some((_, first_line)) = &found[slot] {
                return Err(Error::DuplicateKey {
                    key: lower,
                    line,
                    first_line: *first_line,
                });
            }
            found[slot] = Some((Zeroizing::new(value.trim().to_string()), line));
        }
        let [engine, server, dbname, username, password] = found;
        match engine {
            Some((engine, _)) if engine.as_str() == "postgre" => {}
            Some((engine, line)) if !engine.is_empty() => {
                return Err(Error::UnsupportedEngine {
                    engine: engine.to_string(),
                    line,
                })
            }
            other => return Err(missing("dbengine", other)),
        }
        Ok(AccessPoint {
            server: required("dbserver", server)?,
            dbname: required("dbname", dbname)?,
            username: required("username", username)?,
            // Moved out, not copied: the emptied Zeroizing shell is all that is dropped.
            password: Password::new(
                password
                    .map(|(mut p, _)| std::mem::take(&mut *p))
                    .unwrap_or_default(),
            ),
            readable_by_others: None,
            file: None,
        })
    }

    /// Parses raw bytes, refusing text that is not UTF-8 with the line number.
    ///
    /// ```
    /// let err = pgdap::AccessPoint::parse_bytes(b"dbengine=postgre\ndbname=caf\xe9\n").unwrap_err();
    /// assert!(err.to_string().contains("line 2"));
    /// ```
    pub fn parse_bytes(bytes: &[u8]) -> Result<AccessPoint> {
        match std::str::from_utf8(bytes) {
            Ok(text) => AccessPoint::parse(text),
            Err(e) => {
                let line = 1 + bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count();
                Err(Error::AccessPointNotUtf8 { line })
            }
        }
    }

    /// Reads and parses an Access Point file (at most [`MAX_FILE_SIZE`] bytes). Its bytes
    /// are wiped once parsed.
    ///
    /// On Unix, a file that holds a non-empty password and is readable by its group or by
    /// others is used all the same, with a `tracing` warning naming the file and its mode;
    /// [`readable_by_others`](AccessPoint::readable_by_others) keeps it for `doctor`.
    ///
    /// ```no_run
    /// let ap = pgdap::AccessPoint::from_file("/etc/app/dap.cfg")?;
    /// if let Some(exposed) = ap.readable_by_others() {
    ///     eprintln!("{exposed}");
    /// }
    /// # Ok::<(), pgdap::Error>(())
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<AccessPoint> {
        let path = path.as_ref();
        let read_err = |source| Error::AccessPointRead {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_err)?;
        // The permission bits of the file read (fstat), not of the path.
        let meta = file.metadata().ok();
        let size = meta.as_ref().map_or(0, |m| m.len());
        let bytes = crate::file::read_wiped(&file, size, MAX_FILE_SIZE).map_err(read_err)?;
        if bytes.len() as u64 > MAX_FILE_SIZE {
            return Err(Error::AccessPointTooLarge {
                path: path.to_path_buf(),
                limit: MAX_FILE_SIZE,
            });
        }
        let mut ap = AccessPoint::parse_bytes(&bytes)?;
        ap.file = Some(path.to_path_buf());
        if !ap.password.is_empty() {
            ap.readable_by_others = meta.as_ref().and_then(|m| readable_by_others(path, m));
            if let Some(exposed) = &ap.readable_by_others {
                warn!(path = %path.display(), mode = format_args!("{:04o}", exposed.mode), "{exposed}");
            }
        }
        Ok(ap)
    }

    /// Set when [`from_file`](AccessPoint::from_file) read a password from a file that
    /// its group or others can read (Unix); `doctor` reports it.
    ///
    /// ```
    /// let ap = pgdap::AccessPoint::parse("dbengine=postgre\ndbserver=h\ndbname=d\nusername=u\npassword=p\n")?;
    /// assert!(ap.readable_by_others().is_none()); // not read from a file
    /// # Ok::<(), pgdap::Error>(())
    /// ```
    pub fn readable_by_others(&self) -> Option<&ReadableByOthers> {
        self.readable_by_others.as_ref()
    }

    /// The file [`from_file`](AccessPoint::from_file) read it from: a
    /// [`Connector`](crate::Connector) reads that file again for new connections when it
    /// changes (docs/design.md §12). `None` for an Access Point built in code.
    ///
    /// ```
    /// let ap = pgdap::AccessPoint::parse("dbengine=postgre\ndbserver=h\ndbname=d\nusername=u\n")?;
    /// assert!(ap.file().is_none());
    /// # Ok::<(), pgdap::Error>(())
    /// ```
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// `dbserver` as written: a host name, an IP address, a Unix-socket directory, or a
    /// comma-separated list of them ([`AccessPoint::hosts`]).
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The members of `dbserver`, in order: libpq's `host=a,b,c` syntax (split at every
    /// comma, nothing trimmed; an empty member is libpq's default, the socket directory
    /// [`DEFAULT_SOCKET_DIR`]). Every member is on port 5432.
    ///
    /// ```
    /// use pgdap::access_point::Host;
    /// let ap = pgdap::AccessPoint::new("db1,10.0.0.2,/run/postgresql", "d", "u", pgdap::Password::new(""));
    /// assert_eq!(
    ///     ap.hosts(),
    ///     vec![
    ///         Host::Tcp("db1".into()),
    ///         Host::Tcp("10.0.0.2".into()),
    ///         Host::Socket("/run/postgresql".into()),
    ///     ]
    /// );
    /// ```
    pub fn hosts(&self) -> Vec<Host> {
        self.server.split(',').map(Host::parse).collect()
    }

    /// `dbname`.
    pub fn dbname(&self) -> &str {
        &self.dbname
    }

    /// `username`.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// `password` (empty when absent).
    pub fn password(&self) -> &Password {
        &self.password
    }

    /// Always 5432.
    pub fn port(&self) -> u16 {
        PORT
    }
}

/// libpq's connection parameter names: an operator may well write one of these into an
/// Access Point, and naming it in the error helps.
const LIBPQ_KEYWORDS: [&str; 40] = [
    "host",
    "hostaddr",
    "port",
    "user",
    "dbname",
    "password",
    "passfile",
    "channel_binding",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "replication",
    "gssencmode",
    "sslmode",
    "requiressl",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcertmode",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "krbsrvname",
    "gsslib",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
    "require_auth",
];

/// The error for a line whose key is not an Access Point key. The left side of a line
/// may be part of a secret (a password continued on the next line, a pasted
/// `user:password`), so it is named only when it looks like a key: letters, digits and
/// `_`, starting with a letter, at most 32 characters, and either a libpq parameter name
/// or within two edits of a valid key (`pasword`, `dbserv`). Anything else is
/// "line N is not a recognised key=value line", without its content.
fn unknown_key(key: &str, line: usize) -> Error {
    let lower = key.to_ascii_lowercase();
    let shaped = key.len() <= 32
        && key.starts_with(|c: char| c.is_ascii_alphabetic())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let near = LIBPQ_KEYWORDS.contains(&lower.as_str())
        || KEYS
            .iter()
            .any(|k| strsim::damerau_levenshtein(k, &lower) <= 2);
    if shaped && near {
        Error::UnknownKey {
            key: key.to_string(),
            line,
        }
    } else {
        Error::AccessPointUnrecognisedLine { line }
    }
}

/// The group- or world-readable permission bits of an opened file, on Unix.
#[cfg(unix)]
fn readable_by_others(path: &Path, meta: &std::fs::Metadata) -> Option<ReadableByOthers> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    (meta.is_file() && mode & 0o044 != 0).then(|| ReadableByOthers {
        path: path.to_path_buf(),
        mode,
    })
}

/// Windows has no Unix permission bits (libpq checks none there either).
#[cfg(not(unix))]
fn readable_by_others(_path: &Path, _meta: &std::fs::Metadata) -> Option<ReadableByOthers> {
    None
}

fn missing(key: &'static str, slot: Option<(Zeroizing<String>, usize)>) -> Error {
    Error::MissingKey {
        key,
        line: slot.map(|(_, line)| line),
    }
}

fn required(key: &'static str, slot: Option<(Zeroizing<String>, usize)>) -> Result<String> {
    match slot {
        Some((value, _)) if !value.is_empty() => Ok(value.to_string()),
        other => Err(missing(key, other)),
    }
}

impl fmt::Debug for AccessPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessPoint")
            .field("dbengine", &"postgre")
            .field("dbserver", &self.server)
            .field("port", &PORT)
            .field("dbname", &self.dbname)
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

impl fmt::Display for AccessPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "postgre://{}@{}:{}/{}",
            self.username, self.server, PORT, self.dbname
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str =
        "dbengine=postgre\ndbserver=db1\ndbname=sales\nusername=app\npassword=Pa55=word#1\n";

    #[test]
    fn parses_a_complete_document() {
        let ap = AccessPoint::parse(GOOD).unwrap();
        assert_eq!(ap.server(), "db1");
        assert_eq!(ap.dbname(), "sales");
        assert_eq!(ap.username(), "app");
        assert_eq!(ap.password().expose(), "Pa55=word#1");
        assert_eq!(ap.port(), 5432);
    }

    #[test]
    fn comments_blank_lines_whitespace_and_key_case() {
        let ap = AccessPoint::parse(
            "# header\n\n  DBEngine = postgre \r\n\tDBSERVER=  10.0.0.5\n  # x=y\nDbName=db\nUserName = u\n",
        )
        .unwrap();
        assert_eq!(ap.server(), "10.0.0.5");
        assert_eq!(ap.dbname(), "db");
        assert_eq!(ap.username(), "u");
        assert!(ap.password().is_empty());
    }

    #[test]
    fn password_may_be_empty() {
        let ap =
            AccessPoint::parse("dbengine=postgre\ndbserver=h\ndbname=d\nusername=u\npassword=\n")
                .unwrap();
        assert!(ap.password().is_empty());
    }

    #[test]
    fn unsupported_engine_names_it() {
        for engine in ["mssql", "oracle", "db2", "postgres", "Postgre"] {
            let err = AccessPoint::parse(&format!("dbserver=h\ndbengine={engine}\n")).unwrap_err();
            match &err {
                Error::UnsupportedEngine { engine: e, line } => {
                    assert_eq!(e, engine);
                    assert_eq!(*line, 2);
                }
                other => panic!("{other:?}"),
            }
            assert!(err.to_string().contains(engine), "{err}");
        }
    }

    #[test]
    fn missing_keys_are_named() {
        for key in ["dbengine", "dbserver", "dbname", "username"] {
            let text: String = GOOD
                .lines()
                .filter(|l| !l.starts_with(key))
                .map(|l| format!("{l}\n"))
                .collect();
            let err = AccessPoint::parse(&text).unwrap_err();
            assert!(
                matches!(&err, Error::MissingKey { key: k, line: None } if *k == key),
                "{err:?}"
            );
            assert!(err.to_string().contains(key));
        }
        let err =
            AccessPoint::parse("dbengine=postgre\ndbserver=\ndbname=d\nusername=u").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Access Point: required key \"dbserver\" is missing (empty at line 2)"
        );
    }

    #[test]
    fn duplicate_key_names_key_and_lines() {
        let err = AccessPoint::parse(&format!("{GOOD}DBNAME=other\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Access Point line 6: duplicate key \"dbname\" (first given at line 3)"
        );
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = AccessPoint::parse(&format!("{GOOD}port=5433\n")).unwrap_err();
        assert!(matches!(&err, Error::UnknownKey { key, line: 6 } if key == "port"));
        assert!(err.to_string().contains("\"port\""));
    }

    #[test]
    fn only_key_like_keys_are_named() {
        for (line, key) in [
            ("pasword=x", "pasword"),
            ("DBSERV=h", "DBSERV"),
            ("sslmode=require", "sslmode"),
            ("Port = 5433", "Port"),
        ] {
            let err = AccessPoint::parse(&format!("{GOOD}{line}\n")).unwrap_err();
            assert!(
                matches!(&err, Error::UnknownKey { key: k, line: 6 } if k == key),
                "{err:?}"
            );
        }
        for line in [
            "pasword : hunter2 = x",
            "S3cr=tPart2",
            "hunter2=x",
            "user:hunter2=x",
            "_x=1",
            "abcdefghijklmnopqrstuvwxyzabcdefghijklmnop=1",
            "pässword=1",
        ] {
            let err = AccessPoint::parse(&format!("{GOOD}{line}\n")).unwrap_err();
            assert!(
                matches!(err, Error::AccessPointUnrecognisedLine { line: 6 }),
                "{line}: {err:?}"
            );
            assert_eq!(
                err.to_string(),
                "Access Point line 6 is not a recognised key=value line (valid keys: dbengine, dbserver, dbname, username, password)"
            );
        }
    }

    #[test]
    fn secret_looking_lines_never_reach_display_or_debug() {
        for (text, secrets) in [
            ("pasword : hunter2 = x\n", &["hunter2", "pasword"][..]),
            ("S3cr=tPart2\n", &["S3cr", "tPart2"][..]),
        ] {
            let err = AccessPoint::parse(&format!("{GOOD}{text}")).unwrap_err();
            for secret in secrets {
                assert!(!err.to_string().contains(secret), "{err}");
                assert!(!format!("{err:?}").contains(secret), "{err:?}");
                assert!(!format!("{err:#?}").contains(secret), "{err:#?}");
            }
        }
    }

    #[test]
    fn line_without_equals_is_a_syntax_error() {
        let err = AccessPoint::parse("dbengine=postgre\njunk\n").unwrap_err();
        assert!(matches!(err, Error::AccessPointSyntax { line: 2 }));
    }

    #[test]
    fn non_utf8_names_the_line() {
        let err = AccessPoint::parse_bytes(b"dbengine=postgre\n\xff\xfe\n").unwrap_err();
        assert!(matches!(err, Error::AccessPointNotUtf8 { line: 2 }));
    }

    #[test]
    fn password_never_in_debug_display_or_errors() {
        let secret = "Sup3rS3cret!";
        let ap = AccessPoint::parse(&format!(
            "dbengine=postgre\ndbserver=h\ndbname=d\nusername=u\npassword={secret}\n"
        ))
        .unwrap();
        assert!(!format!("{ap:?}").contains(secret));
        assert!(!format!("{ap:#?}").contains(secret));
        assert!(!format!("{ap}").contains(secret));
        // Errors raised after the password line never echo it.
        for tail in ["password=again\n", "bogus\n", "x=1\n"] {
            let err = AccessPoint::parse(&format!("password={secret}\ndbengine=postgre\n{tail}"))
                .unwrap_err();
            assert!(!err.to_string().contains(secret), "{err}");
            assert!(!format!("{err:?}").contains(secret), "{err:?}");
        }
    }

    #[test]
    fn file_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.cfg");
        let err = AccessPoint::from_file(&missing).unwrap_err();
        assert!(err.to_string().contains("none.cfg"));
        let big = dir.path().join("big.cfg");
        std::fs::write(&big, vec![b'#'; (MAX_FILE_SIZE + 10) as usize]).unwrap();
        assert!(matches!(
            AccessPoint::from_file(&big).unwrap_err(),
            Error::AccessPointTooLarge { .. }
        ));
        let good = dir.path().join("good.cfg");
        std::fs::write(&good, GOOD).unwrap();
        assert_eq!(AccessPoint::from_file(&good).unwrap().dbname(), "sales");
        let err = AccessPoint::from_file(dir.path()).unwrap_err();
        assert!(matches!(err, Error::AccessPointRead { .. }), "{err:?}");
    }

    /// Collects what is logged while a test runs.
    #[derive(Clone, Default)]
    struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_password_file_readable_by_others_is_reported_not_refused() {
        use std::os::unix::fs::PermissionsExt;
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        // A callsite first hit by another test thread while no subscriber was interested may
        // have cached "never" (tracing#2874): recompute with this one in place.
        tracing::callsite::rebuild_interest_cache();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dap.cfg");
        let no_password = "dbengine=postgre\ndbserver=db1\ndbname=sales\nusername=app\n";
        for (text, mode, reported) in [
            (GOOD, 0o644, true),
            (GOOD, 0o640, true),
            (GOOD, 0o604, true),
            (GOOD, 0o600, false),
            (GOOD, 0o620, false),
            (GOOD, 0o400, false),
            (no_password, 0o644, false),
        ] {
            std::fs::write(&file, text).unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            let ap = AccessPoint::from_file(&file).expect("never refused");
            assert_eq!(ap.dbname(), "sales");
            match ap.readable_by_others() {
                Some(exposed) => {
                    assert!(reported, "{mode:o}");
                    assert_eq!(
                        (exposed.path.as_path(), exposed.mode),
                        (file.as_path(), mode)
                    );
                }
                None => assert!(!reported, "{mode:o} not reported"),
            }
        }
        let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        let warnings: Vec<&str> = logs.lines().filter(|l| l.contains("WARN")).collect();
        assert_eq!(warnings.len(), 3, "{logs}");
        assert!(
            warnings[0].contains("dap.cfg") && warnings[0].contains("mode 0644"),
            "{logs}"
        );
        assert!(!logs.contains("Pa55=word"), "{logs}");
        // Equality ignores where an Access Point was read from.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&file, GOOD).unwrap();
        assert_eq!(
            AccessPoint::from_file(&file).unwrap(),
            AccessPoint::parse(GOOD).unwrap()
        );
    }
}
