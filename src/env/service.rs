//! Connection service files (libpq's `pg_service.conf`): `PGSERVICE` names a group of
//! `key=value` lines, found as libpq finds it (docs/design.md §13):
//!
//! 1. `PGSERVICEFILE` when set (the file must exist: libpq's `service file "..." not
//!    found`), else `~/.pg_service.conf` (`%APPDATA%\postgresql\.pg_service.conf` on
//!    Windows) when it exists;
//! 2. then, when the group was not in that file, `pg_service.conf` in `PGSYSCONFDIR`
//!    (default: `/etc/postgresql-common`, the directory Debian's and Ubuntu's libpq are
//!    built with) when it exists;
//! 3. else libpq's `definition of service "..." not found`.
//!
//! The format is libpq's `parseServiceFile`: white space trimmed at both ends of a line,
//! `#` comment lines, `[name]` starting a group (anything after the `]` is ignored), the
//! first group of that name wins and ends at the next `[`, `key=value` with nothing
//! trimmed around the `=`, a line of 1023 bytes or more is `line N too long`, a key that
//! is not a libpq connection parameter is a `syntax error`, `service=` inside a group is
//! `nested service specifications not supported`.
//!
//! What a key becomes: a libpq variable pgdap honours (its keyword in the variable table)
//! takes the service's value below the vendor's variables and above the environment
//! ([`Service::overlay`]); `host`, `hostaddr`, `port`, `dbname` and `user` are ignored
//! (the Access Point names them; logged, and shown by `doctor`); `sslpassword` is the
//! client key's passphrase; every other libpq parameter is an error naming the key,
//! because pgdap would silently not do what the file asks.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::variables::{Kind, Variable, ALL, PGSERVICE, PGSERVICEFILE, PGSYSCONFDIR};
use super::Environment;
use crate::error::{Error, Result};
use crate::file::{open_checked, read_wiped};

/// libpq reads a service file with `fgets` into a 1024-byte buffer and refuses a line
/// that fills it (1023 bytes with its newline).
const MAX_LINE: usize = 1023;

/// Service files larger than this are refused unread (libpq has no limit; real ones are
/// a few KB).
const MAX_SIZE: u64 = 4 * 1024 * 1024;

/// The system directory when `PGSYSCONFDIR` is unset: Debian's and Ubuntu's libpq are
/// built with it (`pg_config --sysconfdir`). Other builds use their own; set
/// `PGSYSCONFDIR` there.
pub(crate) const DEFAULT_SYSCONFDIR: &str = "/etc/postgresql-common";

/// The client key's passphrase (libpq's `sslpassword`; no environment variable).
pub(crate) const SSLPASSWORD: &str = "sslpassword";

/// libpq's connection parameters that are no variable of pgdap's table, and why pgdap
/// does not take them from a service file.
const OTHER_LIBPQ_KEYWORDS: &[(&str, &str)] = &[
    (
        "fallback_application_name",
        "set application_name (PGAPPNAME) instead",
    ),
    (
        "keepalives",
        "TCP keepalives are pgdap::ConnectOptions' keepalives fields",
    ),
    (
        "keepalives_idle",
        "TCP keepalives are pgdap::ConnectOptions' keepalives fields",
    ),
    (
        "keepalives_interval",
        "TCP keepalives are pgdap::ConnectOptions' keepalives fields",
    ),
    (
        "keepalives_count",
        "TCP keepalives are pgdap::ConnectOptions' keepalives fields",
    ),
    (
        "tcp_user_timeout",
        "it is pgdap::ConnectOptions::tcp_user_timeout",
    ),
    ("requirepeer", "pgdap connects over TCP only"),
    ("krbsrvname", "pgdap has no GSSAPI"),
    ("gsslib", "pgdap has no GSSAPI"),
    ("gssdelegation", "pgdap has no GSSAPI"),
    ("replication", "pgdap opens no replication connections"),
    ("sslkeylogfile", "pgdap writes no TLS key log"),
    ("scram_client_key", "pgdap authenticates with the password"),
    ("scram_server_key", "pgdap authenticates with the password"),
    ("oauth_issuer", "pgdap has no OAuth"),
    ("oauth_client_id", "pgdap has no OAuth"),
    ("oauth_client_secret", "pgdap has no OAuth"),
    ("oauth_scope", "pgdap has no OAuth"),
    ("servicefile", "name the file with PGSERVICEFILE"),
];

/// What pgdap does with a key of a service group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    /// The value of this libpq variable, below the vendor's variables.
    Variable(&'static Variable),
    /// Ignored: the Access Point names the server, port, database and user.
    AccessPoint,
    /// The client key's passphrase.
    SslPassword,
    /// A libpq parameter pgdap does not take: why.
    Unsupported(&'static str),
}

impl Key {
    /// The meaning of a libpq connection keyword; `None` when libpq has no such
    /// parameter (its `syntax error`).
    pub(crate) fn of(keyword: &str) -> Option<Key> {
        if keyword == SSLPASSWORD {
            return Some(Key::SslPassword);
        }
        if let Some(var) = ALL.iter().find(|v| v.keyword == Some(keyword)) {
            return Some(match var.kind {
                Kind::OverriddenByAccessPoint => Key::AccessPoint,
                Kind::Unsupported => Key::Unsupported(var.doc),
                Kind::Vendor { .. } | Kind::Libpq { .. } => Key::Variable(var),
            });
        }
        OTHER_LIBPQ_KEYWORDS
            .iter()
            .find(|(k, _)| *k == keyword)
            .map(|(_, why)| Key::Unsupported(why))
    }
}

/// One `key=value` line of the service's group.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) key: String,
    /// The value (a password among them: wiped when dropped).
    pub(crate) value: Zeroizing<String>,
    pub(crate) line: usize,
}

/// The service group `PGSERVICE` names, as read from its file.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Service {
    pub(crate) name: String,
    pub(crate) file: PathBuf,
    pub(crate) entries: Vec<Entry>,
}

impl std::fmt::Debug for Service {
    /// Keys only: a group may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.entries.iter().map(|e| e.key.as_str()).collect();
        f.debug_struct("Service")
            .field("name", &self.name)
            .field("file", &self.file)
            .field("keys", &keys)
            .finish()
    }
}

impl Service {
    /// The environment as the service layers it: each variable its group sets takes the
    /// group's value, above what the environment says (libpq reads a service before its
    /// environment variables), except the vendor's variables, which stay on top (a
    /// vendor variable set and non-empty keeps its value).
    pub(crate) fn overlay(&self, env: &Environment) -> Environment {
        let mut layered = env.clone();
        for entry in &self.entries {
            let Some(Key::Variable(var)) = Key::of(&entry.key) else {
                continue;
            };
            if matches!(var.kind, Kind::Vendor { .. }) && var.value(env).is_some() {
                continue;
            }
            layered.set_from_service(var.name, entry.value.as_str());
        }
        layered
    }

    /// The keys the Access Point overrides (`host`, `port`, ...), in file order.
    pub(crate) fn ignored_keys(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter(|e| Key::of(&e.key) == Some(Key::AccessPoint))
            .map(|e| e.key.clone())
            .collect()
    }

    /// The value of `key` in the group, if set.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.value.as_str())
    }
}

/// The connection service in use (`PGSERVICE`).
///
/// ```
/// let dir = std::env::temp_dir().join(format!("pgdap-doc-service-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let file = dir.join("services.conf");
/// std::fs::write(&file, "[sales]\nsslmode=verify-full\nhost=db1\n")?;
/// let env = pgdap::Environment::from_pairs([
///     ("PGSERVICE", "sales"),
///     ("PGSERVICEFILE", file.to_str().unwrap()),
/// ]).with_default_dir(dir.join(".postgresql"));
/// let s = pgdap::Settings::resolve(&env, env.default_dir())?;
/// let service = s.service.as_ref().unwrap();
/// assert_eq!((service.name.as_str(), service.file.as_path()), ("sales", file.as_path()));
/// assert_eq!(service.ignored_keys, ["host"]); // the Access Point names the server
/// assert_eq!(s.mode.value, pgdap::SslMode::VerifyFull);
/// assert_eq!(s.mode.source, pgdap::env::Source::Service);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceInfo {
    /// The service's name (`PGSERVICE`).
    pub name: String,
    /// The file its group was read from.
    pub file: PathBuf,
    /// The keys of the group that the Access Point overrides (`host`, `port`, `dbname`,
    /// `user`, `hostaddr`), in file order: ignored, and logged.
    pub ignored_keys: Vec<String>,
}

/// The files searched for a service, in libpq's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SearchPath {
    /// `PGSERVICEFILE` (true: it must exist) or the per-user file (false: skipped when
    /// absent); `None` when neither is known (no home directory).
    pub(crate) user: Option<(PathBuf, bool)>,
    /// `<PGSYSCONFDIR>/pg_service.conf`; `None` on Windows without PGSYSCONFDIR.
    pub(crate) system: Option<PathBuf>,
}

/// Where libpq would look, from the variables and the per-user directory
/// (`~/.postgresql`, whose parent is the home directory on Unix; on Windows the file sits
/// in that directory itself).
pub(crate) fn search_path(env: &Environment, default_dir: Option<&Path>) -> SearchPath {
    let user = match PGSERVICEFILE.value(env) {
        Some(file) => Some((PathBuf::from(file), true)),
        None => default_dir
            .and_then(|dir| {
                if cfg!(windows) {
                    Some(dir.to_path_buf())
                } else {
                    dir.parent().map(Path::to_path_buf)
                }
            })
            .map(|base| (base.join(".pg_service.conf"), false)),
    };
    let system = match PGSYSCONFDIR.value(env) {
        Some(dir) => Some(Path::new(dir).join("pg_service.conf")),
        None if cfg!(windows) => None,
        None => Some(Path::new(DEFAULT_SYSCONFDIR).join("pg_service.conf")),
    };
    SearchPath { user, system }
}

/// The service `PGSERVICE` names, read as libpq reads it; `None` when PGSERVICE is unset.
pub(crate) fn find(env: &Environment, default_dir: Option<&Path>) -> Result<Option<Service>> {
    let Some(name) = PGSERVICE.value(env) else {
        return Ok(None);
    };
    let search = search_path(env, default_dir);
    let mut searched = Vec::new();
    let candidates = search
        .user
        .into_iter()
        .chain(search.system.map(|p| (p, false)));
    for (file, must_exist) in candidates {
        // libpq: `stat()` decides whether a file is there.
        if std::fs::metadata(&file).is_err() {
            if must_exist {
                return Err(Error::ServiceFile {
                    path: file.clone(),
                    message: format!("service file \"{}\" not found", file.display()),
                    hint: format!(
                        "{} names it; create it or unset {}",
                        PGSERVICEFILE.name, PGSERVICEFILE.name
                    ),
                });
            }
            searched.push(file);
            continue;
        }
        let text = read(&file)?;
        searched.push(file.clone());
        if let Some(entries) = parse(&text, name, &file)? {
            return Ok(Some(Service {
                name: name.to_string(),
                file,
                entries,
            }));
        }
    }
    Err(Error::ServiceNotFound {
        service: name.to_string(),
        searched,
    })
}

fn read(file: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let unreadable = |reason: String| Error::ServiceFile {
        path: file.to_path_buf(),
        message: format!("service file \"{}\" not found", file.display()),
        hint: reason,
    };
    let (handle, meta) = open_checked(file).map_err(|e| unreadable(e.to_string()))?;
    if !meta.is_file() {
        return Err(unreadable("not a regular file".into()));
    }
    let bytes = read_wiped(handle, meta.len(), MAX_SIZE).map_err(|e| unreadable(e.to_string()))?;
    if bytes.len() as u64 > MAX_SIZE {
        return Err(unreadable(format!("larger than {MAX_SIZE} bytes")));
    }
    Ok(bytes)
}

/// The group `name` of a service file's text, as libpq's `parseServiceFile` reads it:
/// `None` when the file has no such group.
pub(crate) fn parse(text: &[u8], name: &str, file: &Path) -> Result<Option<Vec<Entry>>> {
    let error = |line: usize, message: String, hint: &str| Error::ServiceFile {
        path: file.to_path_buf(),
        message: format!(
            "{message} in service file \"{}\", line {line}",
            file.display()
        ),
        hint: hint.to_string(),
    };
    let mut found = false;
    let mut entries = Vec::new();
    let mut rest = text;
    let mut number = 0;
    while !rest.is_empty() {
        number += 1;
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let (raw, tail) = rest.split_at(end);
        rest = tail;
        if raw.len() >= MAX_LINE {
            return Err(Error::ServiceFile {
                path: file.to_path_buf(),
                message: format!(
                    "line {number} too long in service file \"{}\"",
                    file.display()
                ),
                hint: format!("libpq reads lines of at most {} bytes", MAX_LINE - 1),
            });
        }
        let line = raw.trim_ascii();
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        if line[0] == b'[' {
            if found {
                break;
            }
            found =
                line[1..].starts_with(name.as_bytes()) && line.get(1 + name.len()) == Some(&b']');
            continue;
        }
        if !found {
            continue;
        }
        let Ok(line) = std::str::from_utf8(line) else {
            return Err(error(
                number,
                "syntax error".into(),
                "the line is not UTF-8",
            ));
        };
        let Some((key, value)) = line.split_once('=') else {
            return Err(error(
                number,
                "syntax error".into(),
                "a line of a service group is key=value",
            ));
        };
        if key == PGSERVICE.keyword.unwrap_or("service") {
            return Err(error(
                number,
                "nested service specifications not supported".into(),
                "a service group cannot name another service",
            ));
        }
        match Key::of(key) {
            None => {
                let hint = if key != key.trim() {
                    format!(
                        "\"{key}\" is not a connection parameter: libpq trims nothing around \"=\""
                    )
                } else {
                    format!("\"{key}\" is not a libpq connection parameter")
                };
                return Err(error(number, "syntax error".into(), &hint));
            }
            Some(Key::Unsupported(why)) => {
                return Err(error(
                    number,
                    format!("connection parameter \"{key}\" not supported by pgdap"),
                    why,
                ));
            }
            Some(_) => {}
        }
        // libpq: a key given twice keeps its first value.
        if entries.iter().any(|e: &Entry| e.key == key) {
            continue;
        }
        entries.push(Entry {
            key: key.to_string(),
            value: Zeroizing::new(value.to_string()),
            line: number,
        });
    }
    Ok(found.then_some(entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(text: &str, name: &str) -> Result<Option<Vec<(String, String)>>> {
        parse(text.as_bytes(), name, Path::new("/s.conf")).map(|found| {
            found.map(|entries| {
                entries
                    .into_iter()
                    .map(|e| (e.key, e.value.to_string()))
                    .collect()
            })
        })
    }

    fn pairs(list: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn libpqs_format() {
        let text = "# comment\n[a]\napplication_name=fromA\n  sslmode=require  \n[b]\nsslmode=disable\n[a]\napplication_name=second\n[g]ext\napplication_name=g\n[f]\n  application_name=  spaced  \n";
        assert_eq!(
            group(text, "a").unwrap(),
            pairs(&[("application_name", "fromA"), ("sslmode", "require")])
        );
        // Anything after `]` is ignored; values keep their leading spaces.
        assert_eq!(
            group(text, "g").unwrap(),
            pairs(&[("application_name", "g")])
        );
        assert_eq!(
            group(text, "f").unwrap(),
            pairs(&[("application_name", "  spaced")])
        );
        assert_eq!(group(text, "h").unwrap(), None);
        // A prefix of a group's name is not that group.
        assert_eq!(group("[ab]\nsslmode=require\n", "a").unwrap(), None);
    }

    #[test]
    fn libpqs_errors() {
        let err = |text: &str| group(text, "a").unwrap_err().to_string();
        assert!(err("[a]\nsslmode = require\n")
            .starts_with("syntax error in service file \"/s.conf\", line 2"));
        assert!(err("[a]\nfoo=bar\n").contains("\"foo\" is not a libpq connection parameter"));
        assert!(err("[a]\nnovalue\n").starts_with("syntax error"));
        assert!(err("[a]\nservice=b\n")
            .starts_with("nested service specifications not supported in service file"));
        assert!(err("[a]\nkrbsrvname=x\n").contains("not supported by pgdap"));
        assert!(err("[a]\nsslcompression=1\n").contains("not supported by pgdap"));
        // 17 + 1005 + the newline = 1023 bytes: libpq's fgets fills its buffer.
        let long = format!("[a]\napplication_name={}\n", "x".repeat(1005));
        assert!(err(&long).starts_with("line 2 too long in service file"));
        let fits = format!("[a]\napplication_name={}\n", "x".repeat(1004));
        assert!(group(&fits, "a").is_ok());
        // Errors in other groups are not read.
        assert!(group("[b]\nfoo=bar\n[a]\nsslmode=require\n", "a").is_ok());
    }

    #[test]
    fn keys_and_their_meaning() {
        assert!(matches!(Key::of("sslmode"), Some(Key::Variable(v)) if v.name == "PGSSLMODE"));
        assert!(
            matches!(Key::of("client_encoding"), Some(Key::Variable(v)) if v.name == "PGCLIENTENCODING")
        );
        assert_eq!(Key::of("host"), Some(Key::AccessPoint));
        assert_eq!(Key::of("sslpassword"), Some(Key::SslPassword));
        assert_eq!(Key::of("sslmode "), None);
        assert!(matches!(Key::of("keepalives"), Some(Key::Unsupported(_))));
    }

    #[test]
    fn search_order_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let sys = dir.path().join("sys");
        std::fs::create_dir_all(home.join(".postgresql")).unwrap();
        std::fs::create_dir_all(&sys).unwrap();
        std::fs::write(home.join(".pg_service.conf"), "[u]\nsslmode=require\n").unwrap();
        std::fs::write(
            sys.join("pg_service.conf"),
            "[u]\nsslmode=disable\n[s]\nsslmode=verify-ca\n",
        )
        .unwrap();
        let pgdir = home.join(".postgresql");
        let env = |service: &str| {
            Environment::from_pairs([
                ("PGSERVICE", service),
                ("PGSYSCONFDIR", sys.to_str().unwrap()),
            ])
        };
        let found = find(&env("u"), Some(&pgdir)).unwrap().unwrap();
        assert_eq!(found.file, home.join(".pg_service.conf"));
        assert_eq!(found.get("sslmode"), Some("require"));
        let found = find(&env("s"), Some(&pgdir)).unwrap().unwrap();
        assert_eq!(found.file, sys.join("pg_service.conf"));
        let err = find(&env("x"), Some(&pgdir)).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("definition of service \"x\" not found"));
        let err = find(
            &env("x").with("PGSERVICEFILE", "/nonexistent/x"),
            Some(&pgdir),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("service file \"/nonexistent/x\" not found"),
            "{err}"
        );
        assert_eq!(find(&Environment::default(), Some(&pgdir)).unwrap(), None);
        let err = find(&env(""), Some(&pgdir)).unwrap_err().to_string();
        assert!(
            err.starts_with("definition of service \"\" not found"),
            "{err}"
        );
    }
}
