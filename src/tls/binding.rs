//! SCRAM channel binding (`tls-server-end-point`, RFC 5929 §4.1), as libpq computes it
//! (`pgtls_get_peer_certificate_hash` in `fe-secure-openssl.c`), and the guard that stops
//! a SCRAM exchange without channel binding when the server offers it.
//!
//! The hash of the server certificate is taken with the digest of the certificate's
//! signature algorithm (for RSA-PSS: the hash named in its parameters, SHA-1 by default),
//! SHA-256 when that digest is MD5 or SHA-1. Signature algorithms without a digest
//! (Ed25519, Ed448) define no `tls-server-end-point` value: libpq then fails the SCRAM
//! exchange ("could not find digest for NID UNDEF") rather than authenticate unbound.
//!
//! tokio-postgres picks the SASL mechanism from [`ChannelBinding`]: with no binding data
//! it answers an offer of SCRAM-SHA-256-PLUS with plain SCRAM-SHA-256 and the gs2 header
//! `n,,`, which a man in the middle holding such a certificate could use to relay the
//! authentication unbound. So pgdap never hands it "no binding" for a TLS session:
//! [`OfferGuard`] fails the connection when the server's SASL offer includes
//! SCRAM-SHA-256-PLUS and no hash is defined (libpq's outcome, before anything of the
//! SCRAM exchange is sent), and otherwise the placeholder binding makes tokio-postgres send
//! the gs2 header `y,,` ("client supports binding, server did not offer it"), as libpq does
//! over SSL, which a server that does offer binding refuses as a downgrade.

use std::io;

use openssl::asn1::Asn1Object;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::x509::X509Ref;
use tokio_postgres::tls::ChannelBinding;
use x509_cert::der::{asn1::ContextSpecific, Decode, Reader, SliceReader, TagNumber};
use x509_cert::spki::AlgorithmIdentifierOwned;

/// The SASL mechanism with channel binding.
const SCRAM_PLUS: &[u8] = b"SCRAM-SHA-256-PLUS";

/// Why a certificate has no `tls-server-end-point` hash (libpq's wording).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoEndPointHash {
    /// libpq's message, e.g. `could not find digest for NID UNDEF`.
    pub libpq_message: String,
    /// The certificate's signature algorithm, e.g. `ED25519`.
    pub signature_algorithm: String,
}

/// The `tls-server-end-point` channel-binding data of a server certificate, computed as
/// libpq computes it.
///
/// ```
/// use openssl::{hash::MessageDigest, pkey::PKey, ec::{EcGroup, EcKey}, nid::Nid, x509::X509};
/// let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
/// let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
/// let mut b = X509::builder()?;
/// b.set_pubkey(&key)?;
/// b.sign(&key, MessageDigest::sha384())?;
/// let cert = b.build();
/// let hash = pgdap::tls::binding::server_end_point(&cert).unwrap();
/// assert_eq!(hash, cert.digest(MessageDigest::sha384())?.to_vec());
/// # Ok::<(), openssl::error::ErrorStack>(())
/// ```
pub fn server_end_point(cert: &X509Ref) -> Result<Vec<u8>, NoEndPointHash> {
    let signature = cert.signature_algorithm().object().nid();
    let name = signature.short_name().unwrap_or("UNDEF").to_string();
    let digest = if signature == Nid::RSASSAPSS {
        // OpenSSL's `X509_get_signature_info` (which libpq uses) reads the hash from the
        // RSASSA-PSS parameters; the Rust bindings do not expose it, so the parameters
        // are decoded here.
        pss_hash(cert).ok_or_else(|| NoEndPointHash {
            libpq_message: "could not determine server certificate signature algorithm".into(),
            signature_algorithm: name.clone(),
        })?
    } else {
        signature
            .signature_algorithms()
            .ok_or_else(|| NoEndPointHash {
                libpq_message: "could not determine server certificate signature algorithm".into(),
                signature_algorithm: name.clone(),
            })?
            .digest
    };
    let md = match digest {
        Nid::MD5 | Nid::SHA1 => Some(MessageDigest::sha256()),
        nid => MessageDigest::from_nid(nid),
    };
    let unknown = || NoEndPointHash {
        libpq_message: format!(
            "could not find digest for NID {}",
            digest.short_name().unwrap_or("UNDEF")
        ),
        signature_algorithm: name.clone(),
    };
    let md = md.ok_or_else(unknown)?;
    cert.digest(md).map(|h| h.to_vec()).map_err(|_| unknown())
}

/// The hash algorithm of an RSASSA-PSS signature (`RSASSA-PSS-params.hashAlgorithm`,
/// SHA-1 when absent), as an OpenSSL NID.
fn pss_hash(cert: &X509Ref) -> Option<Nid> {
    let der = cert.to_der().ok()?;
    let parsed =
        x509_cert::certificate::CertificateInner::<x509_cert::certificate::Raw>::from_der(&der)
            .ok()?;
    let params = parsed.signature_algorithm.parameters?;
    let bytes = x509_cert::der::Encode::to_der(&params).ok()?;
    let mut reader = SliceReader::new(&bytes).ok()?;
    let hash = reader
        .sequence(|seq| {
            let field =
                ContextSpecific::<AlgorithmIdentifierOwned>::decode_explicit(seq, TagNumber::N0)?;
            // The other fields (mask generation, salt length, trailer) do not matter.
            seq.read_slice(seq.remaining_len())?;
            Ok(field)
        })
        .ok()?;
    let oid = match hash {
        Some(field) => field.value.oid.to_string(),
        None => return Some(Nid::SHA1),
    };
    Asn1Object::from_str(&oid).ok().map(|o| o.nid())
}

/// The binding handed to tokio-postgres: the hash, or, when the certificate defines none,
/// a placeholder that is never accepted by a server checking the binding (see the module
/// documentation: "no binding" is never handed over for a TLS session).
pub(crate) fn channel_binding(hash: &Result<Vec<u8>, NoEndPointHash>) -> ChannelBinding {
    match hash {
        Ok(hash) => ChannelBinding::tls_server_end_point(hash.clone()),
        Err(_) => ChannelBinding::tls_server_end_point(Vec::new()),
    }
}

/// The server offered SCRAM-SHA-256-PLUS, and the server certificate defines no
/// `tls-server-end-point` hash: authentication stops, as libpq's does.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} (the server certificate is signed with {}, for which tls-server-end-point channel binding defines no hash; the server offers SCRAM-SHA-256-PLUS, and authenticating without channel binding would let a man in the middle relay the login, so pgdap refuses as libpq does; use a server certificate signed with ECDSA or RSA)", .0.libpq_message, .0.signature_algorithm)]
pub struct ChannelBindingUnavailable(pub NoEndPointHash);

/// Watches the server's first authentication request on a TLS session whose certificate
/// has no `tls-server-end-point` hash, and fails the read that completes an offer of
/// SCRAM-SHA-256-PLUS, before tokio-postgres can answer it.
#[derive(Debug)]
pub(crate) struct OfferGuard {
    state: Option<Watch>,
}

#[derive(Debug)]
struct Watch {
    reason: NoEndPointHash,
    /// Backend bytes seen so far (until the first authentication request is complete).
    seen: Vec<u8>,
}

/// Bytes watched at most; past that the guard stands down (the placeholder binding still
/// makes the exchange fail at a server that checks binding).
const WATCH_LIMIT: usize = 64 * 1024;

impl OfferGuard {
    /// A guard that watches nothing (the certificate has a hash, or no TLS).
    pub(crate) fn off() -> OfferGuard {
        OfferGuard { state: None }
    }

    /// A guard for a session whose certificate defines no hash.
    pub(crate) fn watching(reason: NoEndPointHash) -> OfferGuard {
        OfferGuard {
            state: Some(Watch {
                reason,
                seen: Vec::new(),
            }),
        }
    }

    /// Feeds bytes just read from the server; an error when they complete an
    /// authentication request offering SCRAM-SHA-256-PLUS.
    pub(crate) fn inspect(&mut self, bytes: &[u8]) -> io::Result<()> {
        let Some(watch) = &mut self.state else {
            return Ok(());
        };
        if bytes.is_empty() {
            return Ok(());
        }
        watch.seen.extend_from_slice(bytes);
        let mut at = 0usize;
        loop {
            let rest = &watch.seen[at..];
            let Some(header) = rest.get(..5) else { break };
            let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
            let Some(message) = rest.get(..len.saturating_add(1)) else {
                break;
            };
            if message[0] == b'R' {
                // The first authentication request decides.
                let offers_plus = message.get(5..9) == Some(&10u32.to_be_bytes()[..])
                    && message[9..].split(|b| *b == 0).any(|m| m == SCRAM_PLUS);
                let reason = watch.reason.clone();
                self.state = None;
                if offers_plus {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        ChannelBindingUnavailable(reason),
                    ));
                }
                return Ok(());
            }
            at += message.len();
        }
        if watch.seen.len() > WATCH_LIMIT {
            self.state = None;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::pkey::PKey;
    use openssl::x509::X509;

    fn sasl_offer(mechanisms: &[&str]) -> Vec<u8> {
        let mut body = 10u32.to_be_bytes().to_vec();
        for m in mechanisms {
            body.extend_from_slice(m.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut msg = vec![b'R'];
        msg.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        msg.extend_from_slice(&body);
        msg
    }

    fn reason() -> NoEndPointHash {
        NoEndPointHash {
            libpq_message: "could not find digest for NID UNDEF".into(),
            signature_algorithm: "ED25519".into(),
        }
    }

    #[test]
    fn guard_fails_an_offer_of_scram_plus_even_split_across_reads() {
        let offer = sasl_offer(&["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]);
        for split in 0..offer.len() {
            let mut guard = OfferGuard::watching(reason());
            guard.inspect(&offer[..split]).unwrap();
            let err = guard.inspect(&offer[split..]).unwrap_err();
            assert!(err
                .to_string()
                .starts_with("could not find digest for NID UNDEF"));
            // Once decided, the guard stands down.
            guard.inspect(b"anything").unwrap();
        }
    }

    #[test]
    fn guard_lets_other_first_messages_through() {
        for first in [
            sasl_offer(&["SCRAM-SHA-256"]),
            // AuthenticationMD5Password, AuthenticationOk.
            [b'R', 0, 0, 0, 12, 0, 0, 0, 5, 1, 2, 3, 4].to_vec(),
            [b'R', 0, 0, 0, 8, 0, 0, 0, 0].to_vec(),
        ] {
            let mut guard = OfferGuard::watching(reason());
            guard.inspect(&first).unwrap();
            guard.inspect(&sasl_offer(&["SCRAM-SHA-256-PLUS"])).unwrap();
        }
        let mut off = OfferGuard::off();
        off.inspect(&sasl_offer(&["SCRAM-SHA-256-PLUS"])).unwrap();
    }

    #[test]
    fn guard_skips_messages_before_the_authentication_request() {
        let mut stream = vec![b'v', 0, 0, 0, 8, 0, 0, 0, 0];
        stream.extend(sasl_offer(&["SCRAM-SHA-256-PLUS"]));
        let mut guard = OfferGuard::watching(reason());
        assert!(guard.inspect(&stream).is_err());
    }

    fn self_signed(key: &PKey<openssl::pkey::Private>, md: MessageDigest) -> X509 {
        let mut b = X509::builder().unwrap();
        b.set_pubkey(key).unwrap();
        b.sign(key, md).unwrap();
        b.build()
    }

    #[test]
    fn hash_follows_the_signature_digest_with_sha256_for_md5_and_sha1() {
        let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        for (md, expect) in [
            (MessageDigest::sha1(), MessageDigest::sha256()),
            (MessageDigest::md5(), MessageDigest::sha256()),
            (MessageDigest::sha224(), MessageDigest::sha224()),
            (MessageDigest::sha256(), MessageDigest::sha256()),
            (MessageDigest::sha384(), MessageDigest::sha384()),
            (MessageDigest::sha512(), MessageDigest::sha512()),
        ] {
            let cert = self_signed(&rsa, md);
            assert_eq!(
                server_end_point(&cert).unwrap(),
                cert.digest(expect).unwrap().to_vec()
            );
        }
    }

    #[test]
    fn ed25519_and_ed448_have_no_hash_with_libpqs_message() {
        for key in [
            PKey::generate_ed25519().unwrap(),
            PKey::generate_ed448().unwrap(),
        ] {
            let cert = self_signed(&key, MessageDigest::null());
            let err = server_end_point(&cert).unwrap_err();
            assert_eq!(err.libpq_message, "could not find digest for NID UNDEF");
        }
    }
}
