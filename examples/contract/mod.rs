//! The command-line contract shared by `connect` and the adapter examples (docs/design.md §10):
//! `NAME --config FILE [--sql SQL] [--cancel-after SECS]`, the Access Point in FILE and
//! everything else from the process environment, one JSON object as the last line of
//! stdout, exit 0; on failure a non-zero exit and one line on stderr with the whole cause
//! chain; `--help` prints the usage and exits 0, a bad command line exits 2.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The parsed command line.
pub struct Args {
    pub config: PathBuf,
    pub sql: Option<String>,
    pub cancel_after: Option<Duration>,
}

fn usage(name: &str) -> String {
    format!(
        "usage: {name} --config FILE [--sql SQL] [--cancel-after SECS]\n\
         \n\
         Connects with the Access Point in FILE and the PG* variables of the environment\n\
         (PGMODE, PGROOTCA, PGCERT, PGKEY, PGCRL, PGAUTH, PGCLIENTENCODING, ...), runs one\n\
         query (and SQL), and prints one JSON object as the last line of stdout: ssl,\n\
         tls_version, cipher, server_verified, server_version, user, database,\n\
         server_encoding, client_encoding, wire_encoding, application_name, notices\n\
         ([{{severity, message, ...}}]) and, with --sql, result (the first column of the\n\
         first row as text, null when there is no row).\n\
         \n\
         --cancel-after SECS  cancel the SQL after SECS seconds through pgdap's cancel API\n\
         \n\
         Exit status: 0 on success; 1 on failure, with one line on stderr holding the whole\n\
         cause chain (a cancelled query: the server's \"canceling statement due to user\n\
         request\"); 2 for a bad command line."
    )
}

/// Parses the command line; `Err` is the exit code to return (after `--help` or a
/// usage error, both already printed).
pub fn parse(name: &str) -> Result<Args, ExitCode> {
    let mut args = std::env::args().skip(1);
    let (mut config, mut sql, mut cancel_after) = (None, None, None);
    let bad = |why: &str| {
        eprintln!("{name}: {why}\n{}", usage(name));
        Err(ExitCode::from(2))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{}", usage(name));
                return Err(ExitCode::SUCCESS);
            }
            "--config" | "--sql" | "--cancel-after" => {
                let Some(value) = args.next() else {
                    return bad(&format!("{arg} needs a value"));
                };
                match arg.as_str() {
                    "--config" => config = Some(PathBuf::from(value)),
                    "--sql" => sql = Some(value),
                    _ => match value.parse::<f64>() {
                        Ok(secs) if secs.is_finite() && secs >= 0.0 => {
                            cancel_after = Some(Duration::from_secs_f64(secs))
                        }
                        _ => {
                            return bad(&format!(
                                "--cancel-after {value:?}: not a number of seconds"
                            ))
                        }
                    },
                }
            }
            other => return bad(&format!("unexpected argument {other:?}")),
        }
    }
    match config {
        Some(config) => Ok(Args {
            config,
            sql,
            cancel_after,
        }),
        None => bad("--config FILE is required"),
    }
}

/// The connector of the Access Point file and the process environment.
pub fn connector(args: &Args) -> Result<pgdap::Connector, pgdap::Error> {
    let ap = pgdap::AccessPoint::from_file(&args.config)?;
    let env = pgdap::Environment::from_process_env();
    pgdap::Connector::new(pgdap::Config::new(ap, &env)?)
}

/// The JSON line: the session description, plus `result` when SQL was run.
pub fn json(info: &pgdap::session_info::SessionInfo, result: Option<Option<String>>) -> String {
    let mut value = serde_json::to_value(info).unwrap_or_default();
    if let (Some(result), Some(map)) = (result, value.as_object_mut()) {
        map.insert("result".into(), serde_json::json!(result));
    }
    value.to_string()
}

/// Prints the outcome and returns the exit code.
pub fn finish(name: &str, outcome: Result<String, pgdap::error::Report>) -> ExitCode {
    match outcome {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The first column of the first row of a simple query's messages, as text.
pub fn first_value(messages: &[pgdap::tokio_postgres::SimpleQueryMessage]) -> Option<String> {
    messages.iter().find_map(|m| match m {
        pgdap::tokio_postgres::SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_string)),
        _ => None,
    })?
}
