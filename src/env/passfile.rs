//! The password file (`PGPASSFILE`, `~/.pgpass`, `%APPDATA%\postgresql\pgpass.conf`) with
//! libpq's rules (`passwordFromFile` in `fe-connect.c`): lines
//! `host:port:database:username:password`, `*` matches a whole field, `\:` and `\\`
//! escape, `#` starts a comment line, the first matching line wins, and the password
//! ends at the first unescaped `:`. On Unix a file that is not a plain file, or that is
//! readable by group or others, is ignored with libpq's warning.
//!
//! Hand-written: the format is a dozen lines of libpq, and the crates that parse it
//! (sqlx's `pgpass.rs` is inside sqlx) differ from libpq in the escapes and the
//! permission check.

use std::path::{Path, PathBuf};

use tracing::warn;
use zeroize::Zeroizing;

use crate::access_point::{AccessPoint, Host, DEFAULT_SOCKET_DIR, PORT};
use crate::env::{AuthMethod, Settings, Source};
use crate::secret::Password;

/// The password to send for an Access Point's first `dbserver` member, and where it came
/// from (docs/design.md §9): the Access Point's own when non-empty, else PGPASSWORD, else
/// the password file; never one under `PGAUTH=cert`. [`password_for_host`] for another
/// member.
pub fn password_for(ap: &AccessPoint, settings: &Settings) -> Option<(Password, Source)> {
    let first = ap.hosts().into_iter().next()?;
    password_for_host(ap, &first, settings)
}

/// The host field a member of `dbserver` matches in the password file, as libpq's
/// `passwordFromFile`: a name or address as written; libpq's default socket directory as
/// `localhost`; any other socket directory as its path.
pub(crate) fn passfile_host(host: &Host) -> std::borrow::Cow<'_, str> {
    match host {
        Host::Socket(dir) if dir.as_os_str() == DEFAULT_SOCKET_DIR => "localhost".into(),
        other => other.as_str(),
    }
}

/// [`password_for`] for the member `host` of `dbserver` (the password file's line is
/// chosen per host, as libpq does).
pub(crate) fn password_for_host(
    ap: &AccessPoint,
    host: &Host,
    settings: &Settings,
) -> Option<(Password, Source)> {
    if settings.auth.value == AuthMethod::Cert {
        return None;
    }
    if !ap.password().is_empty() {
        return Some((ap.password().clone(), Source::AccessPoint));
    }
    if let Some(p) = &settings.password {
        return Some((p.value.clone(), p.source));
    }
    let file = settings.passfile.as_ref()?;
    match lookup(
        &file.value,
        &passfile_host(host),
        PORT,
        ap.dbname(),
        ap.username(),
    ) {
        Lookup::Found { password, .. } if !password.is_empty() => {
            Some((password, Source::PasswordFile))
        }
        _ => None,
    }
}

/// What looking a password up in the file found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lookup {
    /// A line matched (1-based line number); the password is the one to send.
    Found {
        /// The password.
        password: Password,
        /// The matching line.
        line: usize,
    },
    /// No line matched, or the file does not exist.
    NotFound,
    /// The file was ignored; the warning says why, in libpq's words.
    Ignored(String),
}

/// Looks the password up for one connection (libpq reads the file on every connection).
///
/// As libpq does, the file is opened first and the checks (a plain file; on Unix, no
/// group or world access) are made on the open file, which is then read: a file that
/// cannot be opened is ignored silently. Its bytes, and the copies made while looking
/// the password up, are wiped when dropped.
pub fn lookup(path: &Path, host: &str, port: u16, dbname: &str, user: &str) -> Lookup {
    let Ok((file, meta)) = crate::file::open_checked(path) else {
        return Lookup::NotFound;
    };
    if !meta.is_file() {
        return ignored(path, "is not a plain file");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return ignored(
                path,
                "has group or world access; permissions should be u=rw (0600) or less",
            );
        }
    }
    let Ok(bytes) = crate::file::read_wiped(file, meta.len(), u64::MAX) else {
        return Lookup::NotFound;
    };
    match find(&bytes[..], host, &port.to_string(), dbname, user) {
        Some((password, line)) => Lookup::Found { password, line },
        None => Lookup::NotFound,
    }
}

fn ignored(path: &Path, why: &str) -> Lookup {
    let message = format!("WARNING: password file \"{}\" {why}", path.display());
    warn!("{message}");
    Lookup::Ignored(message)
}

/// The first line matching the four fields: its password and 1-based line number.
///
/// The text is taken as bytes, as libpq does; a password that is not UTF-8 has its
/// invalid sequences replaced by U+FFFD. The unescaped password is built in a buffer
/// wiped when dropped and moved, not copied, into the [`Password`].
pub fn find(
    text: impl AsRef<[u8]>,
    host: &str,
    port: &str,
    dbname: &str,
    user: &str,
) -> Option<(Password, usize)> {
    for (i, raw) in text.as_ref().split(|b| *b == b'\n').enumerate() {
        let line = trim_line_end(raw);
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        let rest = [host, port, dbname, user]
            .into_iter()
            .try_fold(line, |rest, token| field_matches(rest, token.as_bytes()));
        if let Some(rest) = rest {
            return Some((unescape_password(rest), i + 1));
        }
    }
    None
}

/// The line without its trailing carriage returns and newlines (libpq's `pg_strip_crlf`).
fn trim_line_end(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r' | b'\n'] = line {
        line = rest;
    }
    line
}

/// libpq's `pwdfMatchesString`: whether the field at the start of `buf` matches `token`;
/// returns the rest of the line after the field's `:`.
fn field_matches<'a>(buf: &'a [u8], token: &[u8]) -> Option<&'a [u8]> {
    if let Some(rest) = buf.strip_prefix(b"*:") {
        return Some(rest);
    }
    let (mut i, mut t) = (0, 0);
    while i < buf.len() {
        let mut escaped = false;
        if buf[i] == b'\\' {
            i += 1;
            escaped = true;
            if i >= buf.len() {
                return None;
            }
        }
        if buf[i] == b':' && t == token.len() && !escaped {
            return buf.get(i + 1..);
        }
        if t == token.len() || buf[i] != token[t] {
            return None;
        }
        i += 1;
        t += 1;
    }
    None
}

/// The password: up to the first unescaped `:`, a backslash escaping the next byte. Built
/// in a buffer of the input's size (never reallocated), wiped when dropped unless moved
/// into the [`Password`].
fn unescape_password(rest: &[u8]) -> Password {
    let mut out = Zeroizing::new(Vec::with_capacity(rest.len()));
    let mut bytes = rest.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b':' => break,
            b'\\' => out.push(bytes.next().copied().unwrap_or(b'\\')),
            b => out.push(b),
        }
    }
    Password::from_wiped_bytes(out)
}

/// The default password file: `<home>/.pgpass` on Unix, `%APPDATA%\postgresql\pgpass.conf`
/// on Windows, given the per-user PostgreSQL directory (`~/.postgresql`,
/// `%APPDATA%\postgresql`).
pub fn default_path(default_dir: &Path, windows: bool) -> Option<PathBuf> {
    if windows {
        Some(default_dir.join("pgpass.conf"))
    } else {
        default_dir.parent().map(|home| home.join(".pgpass"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_socket_matches_localhost_only_in_the_default_directory() {
        use crate::access_point::Host;
        assert_eq!(passfile_host(&Host::parse("db1")), "db1");
        assert_eq!(
            passfile_host(&Host::parse("/var/run/postgresql")),
            "localhost"
        );
        assert_eq!(passfile_host(&Host::parse("")), "localhost");
        assert_eq!(passfile_host(&Host::parse("/tmp")), "/tmp");
    }

    use super::*;

    #[test]
    fn libpq_rules() {
        let f = |text: &str| {
            find(text, "db.example", "5432", "app", "svc").map(|(p, _)| p.expose().to_string())
        };
        assert_eq!(f("db.example:5432:app:svc:pw"), Some("pw".into()));
        assert_eq!(f("*:*:*:*:pw"), Some("pw".into()));
        assert_eq!(f("*:5432:*:svc:pw\r\n"), Some("pw".into()));
        // First match wins, even a wrong password.
        assert_eq!(
            f("*:*:*:*:first\ndb.example:5432:app:svc:second"),
            Some("first".into())
        );
        // Comments and blank lines.
        assert_eq!(f("# *:*:*:*:no\n\n*:*:app:*:yes"), Some("yes".into()));
        // The password ends at the first unescaped ':'; escapes in it.
        assert_eq!(f("*:*:*:*:a\\:b\\\\c:d"), Some("a:b\\c".into()));
        // A field must match as a whole; `*` only as the whole field.
        assert_eq!(f("db:5432:app:svc:pw"), None);
        assert_eq!(f("db*:5432:app:svc:pw"), None);
        assert_eq!(f("db.example:5432:app:sv:pw"), None);
        // Escaped ':' in a field.
        assert_eq!(
            find("h\\:1:5432:d:u:pw", "h:1", "5432", "d", "u").map(|x| x.0),
            Some(Password::new("pw"))
        );
        // Too few fields.
        assert_eq!(f("db.example:5432:app:svc"), None);
        // An empty password field.
        assert_eq!(f("*:*:*:*:"), Some(String::new()));
        assert_eq!(
            find("x\n*:*:*:*:p", "h", "1", "d", "u").map(|x| x.1),
            Some(2)
        );
    }

    #[test]
    fn bytes_that_are_not_utf8() {
        // Fields compare as bytes; a password that is not UTF-8 is decoded lossily.
        let (p, line) = find(
            &b"h\xe9:*:*:*:a\xffb\\\xfe\r\n"[..],
            "h\u{e9}",
            "1",
            "d",
            "u",
        )
        .map_or((None, 0), |(p, l)| (Some(p), l));
        assert!(
            p.is_none() && line == 0,
            "h\\xe9 is not the UTF-8 of h\u{e9}"
        );
        let (p, line) = find(&b"x\n*:*:*:*:a\xffb\\\xfe\r\n"[..], "h", "1", "d", "u").unwrap();
        assert_eq!((p.expose(), line), ("a\u{fffd}b\u{fffd}", 2));
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_ignored_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pgpass");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        assert!(
            matches!(lookup(&fifo, "h", 5432, "d", "u"), Lookup::Ignored(ref w) if w.contains("not a plain file"))
        );
    }

    #[cfg(unix)]
    #[test]
    fn permissions_as_libpq() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(&file, "*:*:*:*:pw\n").unwrap();
        for (mode, found) in [
            (0o600, true),
            (0o700, true),
            (0o400, true),
            (0o640, false),
            (0o644, false),
            (0o604, false),
        ] {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            let r = lookup(&file, "h", 5432, "d", "u");
            assert_eq!(matches!(r, Lookup::Found { .. }), found, "{mode:o}");
            if !found {
                assert!(
                    matches!(r, Lookup::Ignored(ref w) if w.contains("has group or world access"))
                );
            }
        }
        assert_eq!(
            lookup(&dir.path().join("none"), "h", 5432, "d", "u"),
            Lookup::NotFound
        );
        assert!(
            matches!(lookup(dir.path(), "h", 5432, "d", "u"), Lookup::Ignored(ref w) if w.contains("not a plain file"))
        );
    }
}

/// The examples that were doc tests while this module was public.
#[cfg(test)]
mod examples {
    #[test]
    fn example_1() -> Result<(), Box<dyn std::error::Error>> {
        let ap = crate::AccessPoint::parse(
            "dbengine=postgre\ndbserver=db1\ndbname=d\nusername=u\npassword=\n",
        )?;
        let env = crate::Environment::from_pairs([("PGPASSWORD", "from-env")])
            .with_default_dir("/nonexistent/.postgresql");
        let settings = crate::Settings::resolve(&env, env.default_dir())?;
        let (password, source) = crate::env::passfile::password_for(&ap, &settings).unwrap();
        assert_eq!(
            (password.expose(), source),
            ("from-env", crate::Source::Env)
        );
        Ok(())
    }

    #[test]
    fn example_2() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("pgdap-doc-pgpass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pgpass");
        std::fs::write(&file, "db1:5432:app:svc:s3cret\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let found = crate::env::passfile::lookup(&file, "db1", 5432, "app", "svc");
        assert!(matches!(
            found,
            crate::env::passfile::Lookup::Found { line: 1, .. }
        ));
        Ok(())
    }

    #[test]
    fn example_3() -> Result<(), Box<dyn std::error::Error>> {
        let text = "# comment\nh:*:d:u:pw\\:1:rest\n";
        let (password, line) = crate::env::passfile::find(text, "h", "5432", "d", "u").unwrap();
        assert_eq!((password.expose(), line), ("pw:1", 2));
        Ok(())
    }

    #[test]
    fn example_4() -> Result<(), Box<dyn std::error::Error>> {
        use std::path::Path;
        assert_eq!(
            crate::env::passfile::default_path(Path::new("/home/a/.postgresql"), false),
            Some(Path::new("/home/a/.pgpass").to_path_buf())
        );
        Ok(())
    }
}
