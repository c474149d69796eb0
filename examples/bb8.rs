//! `bb8 --config FILE [--sql SQL] [--cancel-after SECS]`: the `connect` contract
//! (docs/design.md §10, `--help`) through a bb8 pool of pgdap sessions
//! (`pgdap::integrations::bb8::SessionManager`, feature `bb8`): the connection comes
//! from `pool.get()`, opened with libpq's sequence.

#[path = "contract/mod.rs"]
mod contract;

use std::process::ExitCode;

use pgdap::integrations::bb8::SessionManager;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match contract::parse("bb8") {
        Ok(args) => args,
        Err(code) => return code,
    };
    contract::finish("bb8", run(&args).await)
}

async fn run(args: &contract::Args) -> Result<String, pgdap::error::Report> {
    let manager = SessionManager::new(contract::connector(args)?);
    // bb8's get() never returns a connect error (it waits, then times out): build()
    // with one connection opened up front, without bb8's retries, returns pgdap's error.
    let pool = bb8::Pool::builder()
        .max_size(2)
        .min_idle(Some(1))
        .retry_connection(false)
        .error_sink(Box::new(pgdap::integrations::bb8::LogErrors))
        .build(manager)
        .await?;
    let session = pool.get().await?;
    let mut info = pgdap::session_info::SessionInfo::query(&session).await?;
    let result = match &args.sql {
        Some(sql) => {
            let canceller = args
                .cancel_after
                .zip(session.cancel_token())
                .map(|(after, token)| {
                    tokio::spawn(async move {
                        tokio::time::sleep(after).await;
                        token.cancel_query().await
                    })
                });
            let messages = session.client.simple_query(sql).await;
            if let Some(canceller) = canceller {
                if canceller.is_finished() {
                    if let Ok(Err(e)) = canceller.await {
                        return Err(e.into());
                    }
                } else {
                    canceller.abort();
                }
            }
            Some(contract::first_value(&messages?))
        }
        None => None,
    };
    info.notices = session.notices.drain();
    Ok(contract::json(&info, result))
}
