//! `blocking --config FILE [--sql SQL] [--cancel-after SECS]`: the `connect` contract
//! (docs/design.md §10, `--help`) with the synchronous `postgres` crate
//! (`pgdap::integrations::blocking::connect`, feature `postgres`): no async code, libpq's
//! sequence run attempt by attempt.

#[path = "contract/mod.rs"]
mod contract;

use std::process::ExitCode;
use std::sync::mpsc;

fn main() -> ExitCode {
    let args = match contract::parse("blocking") {
        Ok(args) => args,
        Err(code) => return code,
    };
    contract::finish("blocking", run(&args))
}

fn run(args: &contract::Args) -> Result<String, pgdap::error::Report> {
    let connector = contract::connector(args)?;
    let mut session = pgdap::integrations::blocking::connect(&connector)?;
    let row = session
        .client
        .query_one(pgdap::session_info::SessionInfo::QUERY, &[])?;
    let values = [0, 1, 2, 3, 4, 5].map(|i| row.get::<_, String>(i));
    let mut info = pgdap::session_info::SessionInfo::from_values(
        session.tls.as_ref(),
        &session.encoding,
        values,
    );
    info.host = session.host().to_string();
    let result = match &args.sql {
        Some(sql) => {
            // The canceller thread waits for the query to end, or cancels it after SECS.
            let (done, wait) = mpsc::channel::<()>();
            let canceller = args
                .cancel_after
                .zip(session.cancel_token())
                .map(|(after, token)| {
                    std::thread::spawn(move || match wait.recv_timeout(after) {
                        Err(mpsc::RecvTimeoutError::Timeout) => token.cancel_query_blocking(),
                        _ => Ok(()),
                    })
                });
            let messages = session.client.simple_query(sql);
            let _ = done.send(());
            if let Some(Ok(Err(e))) = canceller.map(|c| c.join()) {
                return Err(e.into());
            }
            Some(contract::first_value(&messages?))
        }
        None => None,
    };
    info.notices = session.notices.drain();
    Ok(contract::json(&info, result))
}
