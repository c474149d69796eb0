//! Whether the server asked for a client certificate during the handshake, for libpq's
//! `sslcertmode=require` (PGSSLCERTMODE, libpq 16): libpq records it in OpenSSL's
//! certificate callback (`SSL_CTX_set_cert_cb`), which the `openssl` crate does not
//! wrap, so the callback is registered here through the C function itself. The callback
//! only sets a flag kept in the connection's ex-data; it never touches certificates.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use openssl::ex_data::Index;
use openssl::ssl::{Ssl, SslContextBuilder, SslRef};

extern "C" {
    fn SSL_CTX_set_cert_cb(
        ctx: *mut openssl_sys::SSL_CTX,
        cb: Option<unsafe extern "C" fn(*mut openssl_sys::SSL, *mut c_void) -> c_int>,
        arg: *mut c_void,
    );
}

/// The ex-data slot of the flag (one per process).
fn index() -> Option<Index<Ssl, AtomicBool>> {
    static INDEX: OnceLock<Option<Index<Ssl, AtomicBool>>> = OnceLock::new();
    *INDEX.get_or_init(|| Ssl::new_ex_index().ok())
}

/// Called by OpenSSL when the server sends a CertificateRequest.
unsafe extern "C" fn cert_requested(ssl: *mut openssl_sys::SSL, _arg: *mut c_void) -> c_int {
    if let Some(index) = index() {
        // SAFETY: the slot holds a Box<AtomicBool> set by `watch` before the handshake
        // (rust-openssl's set_ex_data), alive as long as the Ssl.
        let flag = openssl_sys::SSL_get_ex_data(ssl, index.as_raw()) as *const AtomicBool;
        if let Some(flag) = flag.as_ref() {
            flag.store(true, Ordering::Relaxed);
        }
    }
    1 // go on with the handshake (the certificate, if any, is already set)
}

/// Registers the callback on a context.
pub(crate) fn install(builder: &mut SslContextBuilder) {
    // SAFETY: `builder.as_ptr()` is a live SSL_CTX; the callback has the C signature
    // OpenSSL expects and ignores its (null) argument.
    unsafe { SSL_CTX_set_cert_cb(builder.as_ptr(), Some(cert_requested), std::ptr::null_mut()) }
}

/// Gives a connection its flag (before the handshake).
pub(crate) fn watch(ssl: &mut SslRef) {
    if let Some(index) = index() {
        ssl.set_ex_data(index, AtomicBool::new(false));
    }
}

/// Whether the server asked for a certificate (after the handshake).
pub(crate) fn requested(ssl: &SslRef) -> bool {
    index()
        .and_then(|index| ssl.ex_data(index))
        .is_some_and(|flag| flag.load(Ordering::Relaxed))
}
