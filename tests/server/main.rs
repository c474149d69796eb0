//! The integration tests against real servers, in one test binary: each module was a test
//! binary of its own (`tests/<module>.rs`) and is named as before, so `cargo test --test
//! server sslmode::` runs what `cargo test --test sslmode` ran. One binary links pgdap and
//! its dependencies once instead of once per file, and its modules share one process: one
//! test PKI, one template cluster, one [`common::ssl_server`] and [`common::plain_server`]
//! (issue 23). `tests/process_wide` holds the tests that measure the process as a whole.
//!
//! What the modules' tests may assume, running in parallel threads of one process with
//! every other module's tests:
//! - Servers, proxies and fakes of a module listen on the module's own addresses
//!   (tests/common/mod.rs has the map): two of this process on one address would stop
//!   each other (the harness stops a server its own process left at an address it claims).
//! - The shared servers ([`common::ssl_server`], [`common::plain_server`]) are never
//!   stopped, restarted or reconfigured, and nothing counts what every module may add to
//!   them or to the process (sockets to 127.0.0.2, descriptors, memory, log lines of other
//!   users): a test that must count uses a server of its module's own.
//! - /etc/hosts lines carry this process's pid and are shared: a test removes only the
//!   names it added.
//! - A test that runs this binary as a child selects the child's test by its full name,
//!   module path included ([`common::test_name`]).
//! - Process-wide settings stay untouched: no environment variable is set, no global
//!   tracing subscriber (a test takes a scoped one), no current directory or umask change.

#[path = "../common/mod.rs"]
mod common;

#[cfg(feature = "cli")]
mod cli;
mod client_cert;
mod connect;
mod credentials;
mod direct_tls;
mod ecosystem;
mod encoding;
mod harness;
mod hosts;
mod libpq_env;
mod operations;
mod pgbouncer;
mod pool;
mod reliability;
mod rotation;
mod security;
mod services;
mod sslmode;
mod windows;
