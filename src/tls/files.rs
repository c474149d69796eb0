//! Loading the root CA, CRL, client certificate and key, with an error naming the file
//! and the variable for every way a file can be wrong.

use std::path::{Path, PathBuf};

use openssl::pkey::{PKey, Private};
use openssl::x509::store::{X509Lookup, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509Crl, X509};

use zeroize::Zeroizing;

use crate::env::variables::{PGCERT, PGCRL, PGKEY, PGROOTCA, PGSSLCRLDIR};
use crate::error::{Error, Result};
use crate::file::{open_checked, read_wiped};
use crate::secret::Password;

/// Certificates, keys and CRLs larger than this are refused unread (real ones are a few KB;
/// CRLs of big CAs reach a few MB).
const MAX_PEM_SIZE: u64 = 16 * 1024 * 1024;

/// Whether a file "exists" the way libpq decides it: `stat()` succeeds (a dangling
/// symlink does not exist; a directory does, and then fails to load).
pub(crate) fn exists(path: &Path) -> bool {
    std::fs::metadata(path).is_ok()
}

fn bad(what: &'static str, var: &'static str, path: &Path, reason: impl Into<String>) -> Error {
    Error::BadFile {
        what,
        var,
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads a PEM file whole through one handle, refusing directories, special files and
/// oversized files (checked on the open file, see [`crate::file`]).
fn read_pem(what: &'static str, var: &'static str, path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let (file, meta) = open_checked(path).map_err(|e| bad(what, var, path, e.to_string()))?;
    read_regular(what, var, path, file, &meta)
}

/// Reads an opened file whose metadata is `meta`: a regular file of at most
/// [`MAX_PEM_SIZE`] bytes, into a buffer wiped when dropped (key files are secrets).
fn read_regular(
    what: &'static str,
    var: &'static str,
    path: &Path,
    file: std::fs::File,
    meta: &std::fs::Metadata,
) -> Result<Zeroizing<Vec<u8>>> {
    if !meta.is_file() {
        return Err(bad(what, var, path, "not a regular file"));
    }
    let bytes = read_wiped(file, meta.len(), MAX_PEM_SIZE)
        .map_err(|e| bad(what, var, path, e.to_string()))?;
    if bytes.len() as u64 > MAX_PEM_SIZE {
        return Err(bad(
            what,
            var,
            path,
            format!("larger than {MAX_PEM_SIZE} bytes"),
        ));
    }
    Ok(bytes)
}

/// The PEM blocks labelled `label` (`-----BEGIN {label}-----`), as separate byte strings.
fn pem_blocks<'a>(bytes: &'a [u8], label: &str) -> Vec<&'a [u8]> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut blocks = Vec::new();
    let mut rest = bytes;
    while let Some(start) = find(rest, begin.as_bytes()) {
        let Some(stop) = find(&rest[start..], end.as_bytes()) else {
            blocks.push(&rest[start..]);
            break;
        };
        let stop = start + stop + end.len();
        blocks.push(&rest[start..stop]);
        rest = &rest[stop..];
    }
    blocks
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn certificates(
    what: &'static str,
    var: &'static str,
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<X509>> {
    let blocks = pem_blocks(bytes, "CERTIFICATE");
    if blocks.is_empty() {
        return Err(bad(
            what,
            var,
            path,
            "no PEM certificate (-----BEGIN CERTIFICATE-----) found",
        ));
    }
    blocks
        .into_iter()
        .enumerate()
        .map(|(i, block)| {
            X509::from_pem(block).map_err(|e| {
                bad(
                    what,
                    var,
                    path,
                    format!("certificate #{} is malformed: {}", i + 1, first_reason(&e)),
                )
            })
        })
        .collect()
}

/// The most useful line of an OpenSSL error stack (its reason string).
pub(crate) fn first_reason(stack: &openssl::error::ErrorStack) -> String {
    stack
        .errors()
        .iter()
        .find_map(|e| e.reason().map(str::to_string))
        .unwrap_or_else(|| stack.to_string())
}

/// The trust store: the certificates of the root CA file only (never the OS store), plus
/// the CRL file when it exists and the CRL directory (hashed names, `openssl rehash`)
/// when one is set, checked for the whole chain as libpq does
/// (`X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL`).
pub(crate) fn trust_store(
    root_ca: &Path,
    crl: Option<&Path>,
    crl_dir: Option<&Path>,
) -> Result<(openssl::x509::store::X509Store, Vec<X509>)> {
    const WHAT: &str = "root certificate";
    let bytes = read_pem(WHAT, PGROOTCA.name, root_ca)?;
    let roots = certificates(WHAT, PGROOTCA.name, root_ca, &bytes)?;
    let setup = |e: openssl::error::ErrorStack| Error::TlsSetup {
        reason: first_reason(&e),
    };
    let mut store = X509StoreBuilder::new().map_err(setup)?;
    for cert in &roots {
        store
            .add_cert(cert.clone())
            .map_err(|e| bad(WHAT, PGROOTCA.name, root_ca, first_reason(&e)))?;
    }
    if let Some(crl) = crl {
        const CRL: &str = "certificate revocation list";
        let bytes = read_pem(CRL, PGCRL.name, crl)?;
        let blocks = pem_blocks(&bytes, "X509 CRL");
        if blocks.is_empty() {
            return Err(bad(
                CRL,
                PGCRL.name,
                crl,
                "no PEM CRL (-----BEGIN X509 CRL-----) found",
            ));
        }
        for (i, block) in blocks.iter().enumerate() {
            X509Crl::from_pem(block).map_err(|e| {
                bad(
                    CRL,
                    PGCRL.name,
                    crl,
                    format!("CRL #{} is malformed: {}", i + 1, first_reason(&e)),
                )
            })?;
        }
        let lookup = store.add_lookup(X509Lookup::file()).map_err(setup)?;
        lookup
            .load_crl_file(crl, openssl::ssl::SslFiletype::PEM)
            .map_err(|e| bad(CRL, PGCRL.name, crl, first_reason(&e)))?;
    }
    if let Some(dir) = crl_dir {
        // libpq hands the directory to OpenSSL unchecked, and OpenSSL then fails every
        // verification ("unable to get certificate CRL") when it does not exist: say so
        // before connecting.
        if !std::fs::metadata(dir).map(|m| m.is_dir()).unwrap_or(false) {
            return Err(bad(
                "certificate revocation list directory",
                PGSSLCRLDIR.name,
                dir,
                "not a directory (libpq would fail every verification with \"unable to get certificate CRL\")",
            ));
        }
        let lookup = store.add_lookup(X509Lookup::hash_dir()).map_err(setup)?;
        lookup
            .add_dir(&dir.to_string_lossy(), openssl::ssl::SslFiletype::PEM)
            .map_err(|e| {
                bad(
                    "certificate revocation list directory",
                    PGSSLCRLDIR.name,
                    dir,
                    first_reason(&e),
                )
            })?;
    }
    if crl.is_some() || crl_dir.is_some() {
        store
            .set_flags(X509VerifyFlags::CRL_CHECK | X509VerifyFlags::CRL_CHECK_ALL)
            .map_err(setup)?;
    }
    Ok((store.build(), roots))
}

/// The operating system's trusted roots (`PGSSLROOTCERT=system`): OpenSSL's default
/// paths, which honour `SSL_CERT_FILE` and `SSL_CERT_DIR` (libpq's
/// `SSL_CTX_set_default_verify_paths`), and on Windows, where OpenSSL's paths hold
/// nothing, the current user's `ROOT` certificate store too (which includes the machine's).
pub(crate) fn system_store() -> Result<openssl::x509::store::X509Store> {
    let setup = |e: openssl::error::ErrorStack| Error::TlsSetup {
        reason: format!(
            "could not load system root certificate paths: {}",
            first_reason(&e)
        ),
    };
    let mut store = X509StoreBuilder::new().map_err(setup)?;
    store.set_default_paths().map_err(setup)?;
    #[cfg(windows)]
    {
        let roots = schannel::cert_store::CertStore::open_current_user("ROOT").map_err(|e| {
            Error::TlsSetup {
                reason: format!("could not open the Windows certificate store \"ROOT\": {e}"),
            }
        })?;
        for cert in roots.certs() {
            // A certificate OpenSSL cannot parse, or one already added, is skipped.
            if let Ok(x509) = X509::from_der(cert.to_der()) {
                let _ = store.add_cert(x509);
            }
        }
    }
    Ok(store.build())
}

/// Reads and parses every certificate of a PEM file (for reports).
pub(crate) fn load_certificates(
    what: &'static str,
    var: &'static str,
    path: &Path,
) -> Result<Vec<X509>> {
    let bytes = read_pem(what, var, path)?;
    certificates(what, var, path, &bytes)
}

/// Reads and parses every CRL of a PEM file (for reports).
pub(crate) fn load_crls(path: &Path) -> Result<Vec<X509Crl>> {
    const CRL: &str = "certificate revocation list";
    let bytes = read_pem(CRL, PGCRL.name, path)?;
    let blocks = pem_blocks(&bytes, "X509 CRL");
    if blocks.is_empty() {
        return Err(bad(
            CRL,
            PGCRL.name,
            path,
            "no PEM CRL (-----BEGIN X509 CRL-----) found",
        ));
    }
    blocks
        .iter()
        .map(|b| X509Crl::from_pem(b).map_err(|e| bad(CRL, PGCRL.name, path, first_reason(&e))))
        .collect()
}

/// Checks that the key file loads (permissions, encryption, format) without keeping it.
pub(crate) fn check_key(path: &Path, passphrase: Option<&Password>) -> Result<()> {
    load_key(path, passphrase).map(|_| ())
}

/// A client certificate chain and its key, checked like libpq checks them.
pub(crate) struct ClientIdentity {
    pub(crate) chain: Vec<X509>,
    pub(crate) key: PKey<Private>,
    pub(crate) cert_path: PathBuf,
    pub(crate) key_path: PathBuf,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .field("key", &"***")
            .finish()
    }
}

/// Loads the client certificate (chain) and key. The caller has checked that the
/// certificate file exists.
pub(crate) fn client_identity(
    cert_path: &Path,
    key_path: &Path,
    passphrase: Option<&Password>,
) -> Result<ClientIdentity> {
    const WHAT: &str = "certificate";
    let bytes = read_pem(WHAT, PGCERT.name, cert_path)?;
    let chain = certificates(WHAT, PGCERT.name, cert_path, &bytes)?;
    if !exists(key_path) {
        return Err(Error::ClientKeyMissing {
            path: key_path.to_path_buf(),
        });
    }
    let key = load_key(key_path, passphrase)?;
    let leaf = &chain[0];
    let public = leaf.public_key().map_err(|e| {
        bad(
            WHAT,
            PGCERT.name,
            cert_path,
            format!("no usable public key: {}", first_reason(&e)),
        )
    })?;
    if !public.public_eq(&key) {
        return Err(Error::ClientKeyMismatch {
            cert: cert_path.to_path_buf(),
            key: key_path.to_path_buf(),
        });
    }
    Ok(ClientIdentity {
        chain,
        key,
        cert_path: cert_path.to_path_buf(),
        key_path: key_path.to_path_buf(),
    })
}

/// Reads the key file through one handle, checked as libpq checks it (a regular file;
/// on Unix, libpq's permission rule, [`key_mode_too_open`]) on the open file itself.
fn read_key(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    const WHAT: &str = "private key";
    let (file, meta) = match open_checked(path) {
        Ok(opened) => opened,
        Err(e) => {
            // libpq checks the permissions before it opens the key: a key that is both
            // too open and unreadable is reported as too open, as there.
            #[cfg(unix)]
            if let Ok(meta) = std::fs::metadata(path) {
                use std::os::unix::fs::MetadataExt;
                if meta.is_file() && key_mode_too_open(meta.uid(), meta.mode()) {
                    return Err(Error::ClientKeyPermissions {
                        path: path.to_path_buf(),
                    });
                }
            }
            return Err(bad(WHAT, PGKEY.name, path, e.to_string()));
        }
    };
    if !meta.is_file() {
        return Err(bad(WHAT, PGKEY.name, path, "not a regular file"));
    }
    // Windows has no Unix permission bits; libpq does not check there either.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if key_mode_too_open(meta.uid(), meta.mode()) {
            return Err(Error::ClientKeyPermissions {
                path: path.to_path_buf(),
            });
        }
    }
    read_regular(WHAT, PGKEY.name, path, file, &meta)
}

#[cfg_attr(not(unix), allow(dead_code))]
/// The permission rule itself (`S_IWGRP|S_IXGRP|S_IRWXO` for root-owned files,
/// `S_IRWXG|S_IRWXO` otherwise).
pub(crate) fn key_mode_too_open(owner_uid: u32, mode: u32) -> bool {
    if owner_uid == 0 {
        mode & 0o037 != 0
    } else {
        mode & 0o077 != 0
    }
}

fn load_key(path: &Path, passphrase: Option<&Password>) -> Result<PKey<Private>> {
    const WHAT: &str = "private key";
    let bytes = read_key(path)?;
    // The PEM label is spelt in two parts so that scans for committed keys do not flag
    // this line.
    let encrypted_label = concat!("-----BEGIN ENCRYPTED ", "PRIVATE KEY-----");
    let encrypted = find(&bytes, encrypted_label.as_bytes()).is_some()
        || find(&bytes, b"Proc-Type: 4,ENCRYPTED").is_some();
    if encrypted {
        // libpq's sslpassword; pgdap never prompts (the `pgdap` command does).
        let Some(passphrase) = passphrase else {
            return Err(Error::ClientKeyEncrypted {
                path: path.to_path_buf(),
            });
        };
        return PKey::private_key_from_pem_passphrase(&bytes, passphrase.expose().as_bytes())
            .map_err(|_| Error::ClientKeyPassphrase {
                path: path.to_path_buf(),
            });
    }
    // PEM_read_bio_PrivateKey recognises PKCS#8, PKCS#1 (`RSA PRIVATE KEY`) and SEC1
    // (`EC PRIVATE KEY`). The callback refuses to supply a passphrase, so OpenSSL can
    // never fall back to prompting on a terminal.
    PKey::private_key_from_pem_callback(&bytes, |_| Err(openssl::error::ErrorStack::get()))
        .or_else(|_| PKey::private_key_from_der(&bytes))
        .map_err(|e| {
            bad(
                WHAT,
                PGKEY.name,
                path,
                format!(
                    "not a PEM private key (PKCS#8, PKCS#1 or SEC1): {}",
                    first_reason(&e)
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_permission_rule_matches_libpq() {
        assert!(!key_mode_too_open(1000, 0o100600));
        assert!(!key_mode_too_open(1000, 0o100400));
        assert!(key_mode_too_open(1000, 0o100640));
        assert!(key_mode_too_open(1000, 0o100644));
        assert!(key_mode_too_open(1000, 0o100604));
        assert!(!key_mode_too_open(0, 0o100640));
        assert!(key_mode_too_open(0, 0o100660));
        assert!(key_mode_too_open(0, 0o100644));
    }

    #[test]
    fn malformed_or_unreadable_crl_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        // Any parsable certificate will do as a root for this check: build one.
        let key = openssl::pkey::PKey::from_ec_key(
            openssl::ec::EcKey::generate(
                &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                    .unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        let mut b = openssl::x509::X509Builder::new().unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(&key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        let root = dir.path().join("root.crt");
        std::fs::write(&root, b.build().to_pem().unwrap()).unwrap();
        assert!(trust_store(&root, None, None).is_ok());

        let crl = dir.path().join("postgresql.crl");
        std::fs::write(&crl, b"not a crl").unwrap();
        let err = trust_store(&root, Some(&crl), None).err().unwrap();
        assert!(
            err.to_string().contains("postgresql.crl") && err.to_string().contains("PGCRL"),
            "{err}"
        );
        std::fs::write(
            &crl,
            b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
        )
        .unwrap();
        let err = trust_store(&root, Some(&crl), None).err().unwrap();
        assert!(err.to_string().contains("malformed"), "{err}");
        let err = trust_store(&root, Some(dir.path()), None).err().unwrap();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_key_or_root_ca_that_is_a_fifo_is_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("postgresql.key");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let err = check_key(&fifo, None).unwrap_err();
        assert!(
            matches!(&err, Error::BadFile { var: "PGKEY", reason, .. } if reason == "not a regular file"),
            "{err}"
        );
        let err = trust_store(&fifo, None, None).err().unwrap();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn pem_blocks_are_split() {
        let text = b"junk\n-----BEGIN X-----\nAA\n-----END X-----\n-----BEGIN X-----\nBB\n-----END X-----\n";
        let blocks = pem_blocks(text, "X");
        assert_eq!(blocks.len(), 2);
        assert!(blocks[1].ends_with(b"-----END X-----"));
        assert!(pem_blocks(b"nothing", "X").is_empty());
    }

    #[test]
    fn garbage_and_directories_are_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("root.crt");
        std::fs::write(&garbage, [0u8, 159, 146, 150, 1, 2, 3]).unwrap();
        let err = trust_store(&garbage, None, None).err().unwrap();
        assert!(err.to_string().contains("root.crt") && err.to_string().contains("PGROOTCA"));
        let empty = dir.path().join("empty.crt");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(
            trust_store(&empty, None, None),
            Err(Error::BadFile { .. })
        ));
        let err = trust_store(dir.path(), None, None).err().unwrap();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let broken = dir.path().join("broken.crt");
        std::fs::write(
            &broken,
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(trust_store(&broken, None, None)
            .err()
            .unwrap()
            .to_string()
            .contains("malformed"));
    }
}
