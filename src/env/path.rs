//! File paths in PGROOTCA, PGCERT, PGKEY and PGCRL: which are absolute (PostgreSQL's
//! `is_absolute_path`) and how the others join the per-user default directory.
//!
//! Every rule takes `windows: bool` instead of looking at the build target, so the Windows
//! rules are unit-tested on Linux too. The path is kept exactly as the operator wrote it
//! (no normalisation of `/` and `\`, no drive added), so errors name the file as written.
//!
//! Hand-written because `std::path` applies the rules of the platform it was built for and
//! has a different notion of "absolute" on Windows: `Path::new(r"\tmp\ca.crt").is_absolute()`
//! is false there, and `join` puts such a path on the drive of the default directory
//! (`C:\tmp\ca.crt`), while PostgreSQL counts it as absolute and opens it on the current
//! drive.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// A directory separator: `/` everywhere, also `\` on Windows (PostgreSQL's `IS_DIR_SEP`).
fn is_dir_sep(c: u8, windows: bool) -> bool {
    c == b'/' || (windows && c == b'\\')
}

/// PostgreSQL's `is_absolute_path` (src/include/port.h): on Unix a path starting with `/`;
/// on Windows also one starting with `\` (rooted on the current drive, or a UNC path
/// `\\server\share\...`) and a drive letter followed by a separator (`D:\`, `D:/`).
/// A drive-relative path such as `D:cert.crt` is not absolute.
pub fn is_absolute(path: &str, windows: bool) -> bool {
    let b = path.as_bytes();
    match b {
        [first, ..] if is_dir_sep(*first, windows) => true,
        [drive, b':', sep, ..] if windows => {
            drive.is_ascii_alphabetic() && is_dir_sep(*sep, windows)
        }
        _ => false,
    }
}

/// A drive letter without a separator after it (`D:cert.crt`, `D:`): relative to the
/// current directory of that drive, which has no meaning under the default directory.
pub fn is_drive_relative(path: &str, windows: bool) -> bool {
    match path.as_bytes() {
        [drive, b':'] => windows && drive.is_ascii_alphabetic(),
        [drive, b':', next, ..] => {
            windows && drive.is_ascii_alphabetic() && !is_dir_sep(*next, windows)
        }
        _ => false,
    }
}

/// Why a path value cannot be resolved (see [`resolve`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathProblem {
    /// `D:cert.crt`: a drive letter without a separator.
    DriveRelative,
}

impl PathProblem {
    /// The reason, as the end of "PGROOTCA is not a usable path: ...".
    pub fn reason(self) -> &'static str {
        match self {
            PathProblem::DriveRelative => {
                r"it names a drive without a separator after the colon (D:file is relative to the current directory of drive D:); write D:\file, or a path relative to %APPDATA%\postgresql"
            }
        }
    }
}

/// Where a path value names a file: an absolute path (see [`is_absolute`]) as written; a
/// relative one under `dir` (docs/design.md §2: relative to the per-user directory,
/// unlike libpq, where it is relative to the working directory), joined with the
/// platform's separator (`\` on Windows) and otherwise as written.
pub fn resolve(
    value: &str,
    dir: Option<&Path>,
    windows: bool,
) -> Result<Option<PathBuf>, PathProblem> {
    if is_absolute(value, windows) {
        return Ok(Some(PathBuf::from(value)));
    }
    if is_drive_relative(value, windows) {
        return Err(PathProblem::DriveRelative);
    }
    Ok(dir.map(|dir| join(dir, value, windows)))
}

/// `dir` + separator + `relative`, the separator only when `dir` does not end with one
/// (what `Path::join` does for a relative path on the given platform).
fn join(dir: &Path, relative: &str, windows: bool) -> PathBuf {
    let mut joined: OsString = dir.as_os_str().to_owned();
    let ends_with_sep = dir
        .as_os_str()
        .to_string_lossy()
        .as_bytes()
        .last()
        .is_some_and(|c| is_dir_sep(*c, windows));
    if !ends_with_sep && !dir.as_os_str().is_empty() {
        joined.push(if windows { "\\" } else { "/" });
    }
    joined.push(relative);
    PathBuf::from(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_absolute_is_a_leading_slash_only() {
        assert!(is_absolute("/", false));
        assert!(is_absolute("/etc/root.crt", false));
        assert!(is_absolute("//server/share", false));
        for relative in [
            "",
            "root.crt",
            "./root.crt",
            "../root.crt",
            r"\tmp\root.crt",
            r"C:\tmp\root.crt",
            "C:/tmp/root.crt",
        ] {
            assert!(!is_absolute(relative, false), "{relative}");
        }
    }

    #[test]
    fn windows_absolute_is_postgresqls_is_absolute_path() {
        for absolute in [
            "/tmp/root.crt",
            r"\tmp\root.crt",
            r"\\server\share\root.crt",
            "//server/share/root.crt",
            r"C:\tmp\root.crt",
            "c:/tmp/root.crt",
            r"D:\MFWK\cert\cert_authority.crt",
            r"Z:\",
            r"z:/",
        ] {
            assert!(is_absolute(absolute, true), "{absolute}");
        }
        for relative in [
            "",
            "root.crt",
            r"sub\root.crt",
            r".\root.crt",
            r"..\root.crt",
            "C:root.crt",
            "C:",
            r"1:\root.crt",
            r"é:\root.crt",
            r"CC:\root.crt",
        ] {
            assert!(!is_absolute(relative, true), "{relative}");
        }
    }

    #[test]
    fn drive_relative_paths_are_refused_on_windows_only() {
        for value in ["C:root.crt", "C:", "d:sub\\x.crt"] {
            assert!(is_drive_relative(value, true), "{value}");
            assert_eq!(
                resolve(value, Some(Path::new(r"C:\x")), true),
                Err(PathProblem::DriveRelative)
            );
            assert!(!is_drive_relative(value, false), "{value}");
            assert!(resolve(value, Some(Path::new("/home/op")), false).is_ok());
        }
        for value in [r"C:\root.crt", "C:/root.crt", "root.crt", r"1:root.crt"] {
            assert!(!is_drive_relative(value, true), "{value}");
        }
    }

    #[test]
    fn windows_paths_are_kept_as_written() {
        let appdata = Path::new(r"C:\users\op\AppData\Roaming\postgresql");
        let cases = [
            // Drive letters, either separator, as written.
            (r"Z:\tmp\pki\ca.crt", r"Z:\tmp\pki\ca.crt"),
            ("Z:/tmp/pki/ca.crt", "Z:/tmp/pki/ca.crt"),
            (
                r"d:\MFWK\cert\cert_authority.crt",
                r"d:\MFWK\cert\cert_authority.crt",
            ),
            // Rooted without a drive letter: the current drive (not the %APPDATA% drive).
            (r"\tmp\pki\ca.crt", r"\tmp\pki\ca.crt"),
            ("/tmp/pki/ca.crt", "/tmp/pki/ca.crt"),
            (r"\\server\share\ca.crt", r"\\server\share\ca.crt"),
            // Relative: under %APPDATA%\postgresql with a backslash.
            ("ca.crt", r"C:\users\op\AppData\Roaming\postgresql\ca.crt"),
            (
                r"sub\ca.crt",
                r"C:\users\op\AppData\Roaming\postgresql\sub\ca.crt",
            ),
            (
                "sub/ca.crt",
                r"C:\users\op\AppData\Roaming\postgresql\sub/ca.crt",
            ),
            (
                r"..\shared\ca.crt",
                r"C:\users\op\AppData\Roaming\postgresql\..\shared\ca.crt",
            ),
        ];
        for (value, expected) in cases {
            let resolved = resolve(value, Some(appdata), true).unwrap().unwrap();
            assert_eq!(resolved.as_os_str(), expected, "{value}");
        }
    }

    #[test]
    fn unix_paths_resolve_as_before() {
        let home = Path::new("/home/op/.postgresql");
        let cases = [
            ("/etc/keys/me.key", "/etc/keys/me.key"),
            ("ca.pem", "/home/op/.postgresql/ca.pem"),
            ("sub/me.crt", "/home/op/.postgresql/sub/me.crt"),
            ("../shared.crl", "/home/op/.postgresql/../shared.crl"),
            // A backslash is an ordinary character on Unix.
            (r"\tmp\ca.crt", r"/home/op/.postgresql/\tmp\ca.crt"),
            (r"C:\ca.crt", r"/home/op/.postgresql/C:\ca.crt"),
        ];
        for (value, expected) in cases {
            let resolved = resolve(value, Some(home), false).unwrap().unwrap();
            assert_eq!(resolved.as_os_str(), expected, "{value}");
            assert_eq!(resolved, home.join(value), "same as Path::join on Unix");
        }
        let with_sep = Path::new("/home/op/.postgresql/");
        assert_eq!(
            resolve("ca.pem", Some(with_sep), false).unwrap().unwrap(),
            Path::new("/home/op/.postgresql/ca.pem")
        );
        assert_eq!(
            resolve("ca.pem", Some(Path::new(r"C:\pg\")), true)
                .unwrap()
                .unwrap()
                .as_os_str(),
            r"C:\pg\ca.pem"
        );
    }

    #[test]
    fn relative_without_a_default_directory_is_none() {
        assert_eq!(resolve("ca.crt", None, true), Ok(None));
        assert_eq!(
            resolve(r"\ca.crt", None, true),
            Ok(Some(PathBuf::from(r"\ca.crt")))
        );
    }
}

/// The examples that were doc tests while this module was public.
#[cfg(test)]
mod examples {
    #[test]
    fn example_1() -> Result<(), Box<dyn std::error::Error>> {
        use crate::env::path::is_absolute;
        assert!(is_absolute("/etc/ssl/root.crt", false));
        assert!(!is_absolute(r"D:\MFWK\cert\cert_authority.crt", false));
        assert!(is_absolute(r"D:\MFWK\cert\cert_authority.crt", true));
        assert!(is_absolute(r"\MFWK\cert\cert_authority.crt", true));
        assert!(!is_absolute("D:cert_authority.crt", true));
        Ok(())
    }

    #[test]
    fn example_2() -> Result<(), Box<dyn std::error::Error>> {
        use crate::env::path::is_drive_relative;
        assert!(is_drive_relative("D:cert.crt", true));
        assert!(!is_drive_relative(r"D:\cert.crt", true));
        assert!(!is_drive_relative("D:cert.crt", false)); // an ordinary file name on Unix
        Ok(())
    }

    #[test]
    fn example_3() -> Result<(), Box<dyn std::error::Error>> {
        use crate::env::path::{resolve, PathProblem};
        assert_eq!(
            resolve("D:ca.crt", None, true),
            Err(PathProblem::DriveRelative)
        );
        Ok(())
    }

    #[test]
    fn example_4() -> Result<(), Box<dyn std::error::Error>> {
        use crate::env::path::PathProblem;
        assert!(PathProblem::DriveRelative.reason().contains(r"D:\"));
        Ok(())
    }

    #[test]
    fn example_5() -> Result<(), Box<dyn std::error::Error>> {
        use crate::env::path::resolve;
        use std::path::Path;
        let appdata = Path::new(r"C:\Users\op\AppData\Roaming\postgresql");
        assert_eq!(
            resolve(r"\tmp\ca.crt", Some(appdata), true)
                .unwrap()
                .unwrap(),
            Path::new(r"\tmp\ca.crt")
        );
        assert_eq!(
            resolve(r"sub\ca.crt", Some(appdata), true)
                .unwrap()
                .unwrap(),
            Path::new(r"C:\Users\op\AppData\Roaming\postgresql\sub\ca.crt")
        );
        let home = Path::new("/home/op/.postgresql");
        assert_eq!(
            resolve("ca.crt", Some(home), false).unwrap().unwrap(),
            Path::new("/home/op/.postgresql/ca.crt")
        );
        assert_eq!(resolve("ca.crt", None, false).unwrap(), None); // no default directory
        Ok(())
    }
}
