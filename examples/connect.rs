//! `connect --config FILE`: connects with the Access Point in FILE and the PG* variables of
//! the process environment, runs one query, and prints one JSON object as the last line
//! of stdout:
//!
//! ```text
//! {"ssl":true,"tls_version":"TLSv1.3","cipher":"TLS_AES_256_GCM_SHA384","server_version":"15.18",
//!  "user":"app","database":"sales","server_encoding":"UTF8","client_encoding":"UTF8",...}
//! ```
//!
//! On failure: exit status 1 and one line on stderr with the whole cause chain.

use std::error::Error as _;
use std::path::PathBuf;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: connect --config FILE");
    ExitCode::from(2)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match args.as_slice() {
        [flag, file] if flag == "--config" => PathBuf::from(file),
        _ => return usage(),
    };
    match run(config).await {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("connect: {}", chain(&e));
            ExitCode::FAILURE
        }
    }
}

async fn run(config: PathBuf) -> Result<String, pgdap::Error> {
    let ap = pgdap::AccessPoint::from_file(&config)?;
    let env = pgdap::Environment::from_process_env();
    let config = pgdap::Config::new(ap, &env)?;
    let connector = pgdap::Connector::new(config)?;
    let session = connector.connect_spawned().await?;
    let info = pgdap::report::SessionInfo::query(&session).await?;
    Ok(serde_json::to_string(&info).expect("SessionInfo holds only strings and booleans"))
}

/// The error and every source below it, on one line.
fn chain(e: &pgdap::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text.replace('\n', " ")
}
