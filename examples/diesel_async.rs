//! `diesel_async --config FILE [--sql SQL] [--cancel-after SECS]`: the `connect`
//! contract (docs/design.md §10, `--help`) with diesel-async (feature `diesel-async`): an
//! `AsyncPgConnection` from diesel-async's own bb8 pool, whose `custom_setup` opens it
//! through pgdap (`pgdap::integrations::diesel_async::manager`). Notices come through
//! the connector's callback; TLS details, encoding and the cancel token from `Sessions`.
//!
//! `--sql` runs through diesel's `sql_query` as
//! `select (select x::text from (SQL) as q(x) limit 1) as result`, so SQL must be a
//! query returning rows (the first column is taken).

#[path = "contract/mod.rs"]
mod contract;

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use diesel::sql_types::{Nullable, Text};
use diesel_async::pooled_connection::bb8::Pool;
use diesel_async::RunQueryDsl;
use pgdap::integrations::diesel_async::{manager, Sessions};

#[derive(diesel::QueryableByName)]
struct Info {
    #[diesel(sql_type = Text)]
    server_version: String,
    #[diesel(sql_type = Text)]
    session_user: String,
    #[diesel(sql_type = Text)]
    current_database: String,
    #[diesel(sql_type = Text)]
    server_encoding: String,
    #[diesel(sql_type = Text)]
    client_encoding: String,
    #[diesel(sql_type = Text)]
    application_name: String,
}

#[derive(diesel::QueryableByName)]
struct Value {
    #[diesel(sql_type = Nullable<Text>)]
    result: Option<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match contract::parse("diesel_async") {
        Ok(args) => args,
        Err(code) => return code,
    };
    contract::finish("diesel_async", run(&args).await)
}

async fn run(args: &contract::Args) -> Result<String, pgdap::error::Report> {
    // Notices through the connector's callback (they also stay in the session's queue).
    let notices = Arc::new(Mutex::new(Vec::new()));
    let sink = notices.clone();
    let connector = contract::connector(args)?.with_notice_callback(move |n| {
        if let Ok(mut list) = sink.lock() {
            list.push(n.clone());
        }
    });
    let sessions = Sessions::new();
    // bb8's get() never returns a connect error (it waits, then times out): build()
    // with one connection opened up front, without bb8's retries, returns pgdap's error.
    let pool = Pool::builder()
        .max_size(2)
        .min_idle(Some(1))
        .retry_connection(false)
        .build(manager(connector, &sessions))
        .await?;
    let mut conn = pool.get().await?;
    let info: Info = diesel::sql_query(pgdap::session_info::SessionInfo::QUERY)
        .get_result(&mut *conn)
        .await?;
    let parts = sessions
        .for_connection(&mut conn)
        .await?
        .ok_or_else(|| std::io::Error::other("the pooled connection was not opened by pgdap"))?;
    let mut report = pgdap::session_info::SessionInfo::from_values(
        parts.tls.as_ref(),
        &parts.encoding,
        [
            info.server_version,
            info.session_user,
            info.current_database,
            info.server_encoding,
            info.client_encoding,
            info.application_name,
        ],
    );
    report.host = parts.host.to_string();
    let result = match &args.sql {
        Some(sql) => {
            let canceller = args.cancel_after.zip(parts.cancel).map(|(after, token)| {
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    token.cancel_query().await
                })
            });
            let wrapped = format!("select (select x::text from ({sql}) as q(x) limit 1) as result");
            let value = diesel::sql_query(wrapped)
                .get_result::<Value>(&mut *conn)
                .await;
            if let Some(canceller) = canceller {
                if canceller.is_finished() {
                    if let Ok(Err(e)) = canceller.await {
                        return Err(e.into());
                    }
                } else {
                    canceller.abort();
                }
            }
            Some(value?.result)
        }
        None => None,
    };
    report.notices = notices.lock().map(|l| l.clone()).unwrap_or_default();
    Ok(contract::json(&report, result))
}
