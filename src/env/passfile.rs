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

use crate::access_point::{AccessPoint, PORT};
use crate::env::{AuthMethod, Settings, Source};
use crate::secret::Password;

/// The password to send for an Access Point, and where it came from (SPEC §9): the
/// Access Point's own when non-empty, else PGPASSWORD, else the password file; never one
/// under `PGAUTH=cert`.
///
/// ```
/// let ap = pgdap::AccessPoint::parse("dbengine=postgre\ndbserver=db1\ndbname=d\nusername=u\npassword=\n")?;
/// let env = pgdap::Environment::from_pairs([("PGPASSWORD", "from-env")]).with_default_dir("/nonexistent/.postgresql");
/// let settings = pgdap::Settings::resolve(&env, env.default_dir())?;
/// let (password, source) = pgdap::env::passfile::password_for(&ap, &settings).unwrap();
/// assert_eq!((password.expose(), source), ("from-env", pgdap::Source::Env));
/// # Ok::<(), pgdap::Error>(())
/// ```
pub fn password_for(ap: &AccessPoint, settings: &Settings) -> Option<(Password, Source)> {
    if settings.auth.value == AuthMethod::Cert {
        return None;
    }
    if !ap.password().is_empty() {
        return Some((ap.password().clone(), Source::AccessPoint));
    }
    if let Some(p) = &settings.password {
        return Some((p.value.clone(), Source::Env));
    }
    let file = settings.passfile.as_ref()?;
    match lookup(&file.value, ap.server(), PORT, ap.dbname(), ap.username()) {
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
/// ```
/// let dir = std::env::temp_dir().join(format!("pgdap-doc-pgpass-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let file = dir.join("pgpass");
/// std::fs::write(&file, "db1:5432:app:svc:s3cret\n").unwrap();
/// # #[cfg(unix)] { use std::os::unix::fs::PermissionsExt;
/// std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap(); }
/// let found = pgdap::env::passfile::lookup(&file, "db1", 5432, "app", "svc");
/// assert!(matches!(found, pgdap::env::passfile::Lookup::Found { line: 1, .. }));
/// ```
pub fn lookup(path: &Path, host: &str, port: u16, dbname: &str, user: &str) -> Lookup {
    let Ok(meta) = std::fs::metadata(path) else {
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
    let Ok(bytes) = std::fs::read(path) else {
        return Lookup::NotFound;
    };
    let text = String::from_utf8_lossy(&bytes);
    match find(&text, host, &port.to_string(), dbname, user) {
        Some((password, line)) => Lookup::Found {
            password: Password::new(password),
            line,
        },
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
/// ```
/// let text = "# comment\nh:*:d:u:pw\\:1:rest\n";
/// assert_eq!(pgdap::env::passfile::find(text, "h", "5432", "d", "u"), Some(("pw:1".to_string(), 2)));
/// ```
pub fn find(
    text: &str,
    host: &str,
    port: &str,
    dbname: &str,
    user: &str,
) -> Option<(String, usize)> {
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.trim_end_matches(['\r', '\n']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let rest = [host, port, dbname, user]
            .into_iter()
            .try_fold(line, |rest, token| field_matches(rest, token));
        if let Some(rest) = rest {
            return Some((unescape_password(rest), i + 1));
        }
    }
    None
}

/// libpq's `pwdfMatchesString`: whether the field at the start of `buf` matches `token`;
/// returns the rest of the line after the field's `:`.
fn field_matches<'a>(buf: &'a str, token: &str) -> Option<&'a str> {
    if let Some(rest) = buf.strip_prefix("*:") {
        return Some(rest);
    }
    let bytes = buf.as_bytes();
    let token = token.as_bytes();
    let (mut i, mut t) = (0, 0);
    while i < bytes.len() {
        let mut escaped = false;
        if bytes[i] == b'\\' {
            i += 1;
            escaped = true;
            if i >= bytes.len() {
                return None;
            }
        }
        if bytes[i] == b':' && t == token.len() && !escaped {
            return buf.get(i + 1..);
        }
        if t == token.len() || bytes[i] != token[t] {
            return None;
        }
        i += 1;
        t += 1;
    }
    None
}

/// The password: up to the first unescaped `:`, a backslash escaping the next character.
fn unescape_password(rest: &str) -> String {
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            ':' => break,
            '\\' => match chars.next() {
                Some(next) => out.push(next),
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

/// The default password file: `<home>/.pgpass` on Unix, `%APPDATA%\postgresql\pgpass.conf`
/// on Windows, given the per-user PostgreSQL directory (`~/.postgresql`,
/// `%APPDATA%\postgresql`).
///
/// ```
/// use std::path::Path;
/// assert_eq!(pgdap::env::passfile::default_path(Path::new("/home/a/.postgresql"), false),
///            Some(Path::new("/home/a/.pgpass").to_path_buf()));
/// ```
pub fn default_path(default_dir: &Path, windows: bool) -> Option<PathBuf> {
    if windows {
        Some(default_dir.join("pgpass.conf"))
    } else {
        default_dir.parent().map(|home| home.join(".pgpass"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_rules() {
        let f = |text: &str| find(text, "db.example", "5432", "app", "svc").map(|(p, _)| p);
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
            Some("pw".into())
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
