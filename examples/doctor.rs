//! `doctor --config FILE [--json] [--expiry-days N]`: the diagnostic report for an Access
//! Point and the PG* variables of the process environment: resolved settings and their
//! sources (password masked), certificate files, the connection, the server settings the
//! vendor's applications expect, each flagged OK/WARN/FAIL with the fix.
//!
//! Exit status: 0 when nothing failed (warnings allowed), 1 when a check failed, 2 on a
//! usage error.

use std::process::ExitCode;

const HELP: &str = "\
usage: doctor --config FILE [--json] [--expiry-days N]

The diagnostic report for the Access Point in FILE and the PG* variables of the process
environment: resolved settings and their sources (password masked), certificate files,
the connection, the server settings the vendor's applications expect and the encodings,
each OK/WARN/FAIL with the fix. (`pgdap doctor`, feature `cli`, is the same report.)

  --config FILE      the Access Point file (dbengine=postgre, dbserver, dbname, username,
                     password)
  --json             one JSON object instead of text
  --expiry-days N    warn about certificates expiring within N days (default 30)
  -h, --help         this help

Environment: PGMODE (disable|allow|prefer|require|verify-ca|verify-full, default prefer),
PGROOTCA, PGCERT, PGKEY, PGCRL (files; default ~/.postgresql/root.crt, postgresql.crt,
postgresql.key, postgresql.crl), PGAUTH (password|cert), PGCLIENTENCODING.

Exit status: 0 when nothing failed (warnings allowed), 1 when a check failed, 2 on a usage
error.";

fn usage() -> ExitCode {
    eprintln!("{HELP}");
    ExitCode::from(2)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut config, mut json, mut opts) = (None, false, pgdap::doctor::DoctorOptions::default());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => config = args.next(),
            "--json" => json = true,
            "-h" | "--help" => {
                println!("{HELP}");
                return ExitCode::SUCCESS;
            }
            "--expiry-days" => match args.next().and_then(|d| d.parse().ok()) {
                Some(days) => opts.expiry_warning_days = days,
                None => return usage(),
            },
            _ => return usage(),
        }
    }
    let Some(config) = config else {
        return usage();
    };
    let ap = match pgdap::AccessPoint::from_file(&config) {
        Ok(ap) => ap,
        Err(e) => {
            eprintln!("doctor: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = pgdap::doctor::diagnose(&ap, &pgdap::Environment::from_process_env(), &opts).await;
    if json {
        println!(
            "{}",
            serde_json::to_string(&report)
                .expect("the report holds only strings, numbers and booleans")
        );
    } else {
        print!("{report}");
    }
    if report.status() == pgdap::doctor::Status::Fail {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
