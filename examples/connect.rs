//! `connect --config FILE [--sql SQL] [--cancel-after SECS]`: connects with the Access
//! Point in FILE and the PG* variables of the process environment through
//! `Connector::connect_spawned`, runs one query (and SQL), and prints one JSON object as
//! the last line of stdout (docs/design.md §10):
//!
//! ```text
//! {"ssl":true,"tls_version":"TLSv1.3","cipher":"TLS_AES_256_GCM_SHA384","server_verified":true,
//!  "server_version":"15.18","user":"app","database":"sales","server_encoding":"UTF8",
//!  "client_encoding":"UTF8","wire_encoding":"UTF8","application_name":"",
//!  "notices":[{"severity":"WARNING","code":"01000","message":"...","detail":null,"hint":null}],
//!  "result":"1"}
//! ```
//!
//! On failure: exit status 1 and one line on stderr with the whole cause chain
//! (`pgdap::error::Chain`). `--help` for the rest.

#[path = "contract/mod.rs"]
mod contract;

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match contract::parse("connect") {
        Ok(args) => args,
        Err(code) => return code,
    };
    contract::finish("connect", run(&args).await)
}

async fn run(args: &contract::Args) -> Result<String, pgdap::error::Report> {
    let connector = contract::connector(args)?;
    let session = connector.connect_spawned().await?;
    let mut info = pgdap::session_info::SessionInfo::query(&session).await?;
    let result = match &args.sql {
        Some(sql) => {
            let host = connector.config().access_point().server();
            Some(run_sql(&session, host, sql, args.cancel_after).await?)
        }
        None => None,
    };
    info.notices = session.notices.drain();
    Ok(contract::json(&info, result))
}

/// Runs SQL; with `cancel_after`, a task cancels it through pgdap's cancel API.
async fn run_sql(
    session: &pgdap::Session,
    host: &str,
    sql: &str,
    cancel_after: Option<std::time::Duration>,
) -> Result<Option<String>, pgdap::Error> {
    let canceller = match cancel_after {
        Some(after) => {
            let token = session.cancel_token().ok_or_else(|| pgdap::Error::Cancel {
                host: host.to_string(),
                reason: "the server sent no cancel key".into(),
            })?;
            Some(tokio::spawn(async move {
                tokio::time::sleep(after).await;
                token.cancel_query().await
            }))
        }
        None => None,
    };
    let messages = session.client.simple_query(sql).await;
    if let Some(canceller) = canceller {
        if canceller.is_finished() {
            // A cancel that could not be sent is the failure to report.
            if let Ok(Err(e)) = canceller.await {
                return Err(e);
            }
        } else {
            canceller.abort();
        }
    }
    Ok(contract::first_value(&messages?))
}
