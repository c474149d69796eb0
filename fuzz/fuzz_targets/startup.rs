//! The start-up watch, which parses what a server sends before it is ready for queries
//! (authentication requests, the cancel key) and faces the network before the server is
//! authenticated: never panics, keeps at most libpq's 2000 bytes of a message, never
//! records a request its rules refuse, and reaches the same result whether the bytes
//! arrive at once or in reads of any size (`pgdap::connect::fuzz_startup` says how the
//! input is read).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pgdap::connect::fuzz_startup(data);
});
