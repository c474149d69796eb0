//! SCRAM channel binding (`tls-server-end-point`, RFC 5929 §4.1), as libpq computes it
//! (`pgtls_get_peer_certificate_hash` in `fe-secure-openssl.c`), and the rule that stops
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
//! authentication unbound. So pgdap never hands it "no binding" for a TLS session: the
//! connection's start-up watch (`startup/watch.rs`; a [`TlsStream`](super::TlsStream)
//! under a bare [`MakeTls`](super::MakeTls) gets one of its own for this) fails the
//! connection when the server's SASL offer includes SCRAM-SHA-256-PLUS and no hash is
//! defined (libpq's outcome, before anything of the SCRAM exchange is sent), and otherwise
//! the placeholder binding makes tokio-postgres send the gs2 header `y,,` ("client
//! supports binding, server did not offer it"), as libpq does
//! over SSL, which a server that does offer binding refuses as a downgrade.

use openssl::asn1::Asn1Object;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::x509::X509Ref;
use tokio_postgres::tls::ChannelBinding;
use x509_cert::der::{asn1::ContextSpecific, Decode, Reader, SliceReader, TagNumber};
use x509_cert::spki::AlgorithmIdentifierOwned;

pub use crate::startup::{ChannelBindingUnavailable, NoEndPointHash};

/// The `tls-server-end-point` channel-binding data of a server certificate (DER), computed
/// as libpq computes it. A certificate that does not parse is libpq's "could not get
/// server certificate".
///
/// ```
/// use openssl::{asn1::Asn1Time, hash::MessageDigest, pkey::PKey, ec::{EcGroup, EcKey}, nid::Nid};
/// use openssl::x509::{X509, X509Name};
/// let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
/// let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
/// let mut name = X509Name::builder()?;
/// name.append_entry_by_text("CN", "db1")?;
/// let name = name.build();
/// let mut b = X509::builder()?;
/// b.set_version(2)?;
/// b.set_subject_name(&name)?;
/// b.set_issuer_name(&name)?;
/// b.set_not_before(&*Asn1Time::days_from_now(0)?)?;
/// b.set_not_after(&*Asn1Time::days_from_now(1)?)?;
/// b.set_pubkey(&key)?;
/// b.sign(&key, MessageDigest::sha384())?;
/// let cert = b.build();
/// let hash = pgdap::tls::binding::server_end_point(&cert.to_der()?).unwrap();
/// assert_eq!(hash, cert.digest(MessageDigest::sha384())?.to_vec());
/// assert!(pgdap::tls::binding::server_end_point(b"not DER").is_err());
/// # Ok::<(), openssl::error::ErrorStack>(())
/// ```
pub fn server_end_point(der: &[u8]) -> Result<Vec<u8>, NoEndPointHash> {
    match openssl::x509::X509::from_der(der) {
        Ok(cert) => end_point_of(&cert),
        Err(_) => Err(no_certificate()),
    }
}

/// libpq's error when the certificate cannot be had.
fn no_certificate() -> NoEndPointHash {
    NoEndPointHash {
        libpq_message: "could not get server certificate".into(),
        signature_algorithm: "(no certificate)".into(),
    }
}

/// [`server_end_point`] of a parsed certificate.
fn end_point_of(cert: &X509Ref) -> Result<Vec<u8>, NoEndPointHash> {
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

/// [`server_end_point`] of the session's peer certificate, libpq's "could not get server
/// certificate" when there is none.
pub(crate) fn server_end_point_of(peer: Option<&X509Ref>) -> Result<Vec<u8>, NoEndPointHash> {
    match peer {
        Some(cert) => end_point_of(cert),
        None => Err(no_certificate()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::pkey::PKey;
    use openssl::x509::X509;

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
                end_point_of(&cert).unwrap(),
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
            let err = end_point_of(&cert).unwrap_err();
            assert_eq!(err.libpq_message, "could not find digest for NID UNDEF");
        }
    }
}
