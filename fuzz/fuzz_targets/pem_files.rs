//! Certificate, key and CRL loading on arbitrary file contents, through the public path
//! (`TlsContext::build` reading `PGROOTCA`, `PGCRL`, `PGCERT`, `PGKEY`), plus the
//! doctor's certificate summary: never panics, and every refusal names the file at fault.
//!
//! Input: `[role, style, payload...]`.
//! - role % 4: 0 root CA (`PGROOTCA`), 1 CRL (`PGCRL`), 2 client certificate (`PGCERT`),
//!   3 client key (`PGKEY`); the other files are valid.
//! - style % 3: 0 the payload is the file; 1 the payload patches a valid file of that
//!   role (triples: offset high, offset low, byte); 2 a valid file cut at the offset in
//!   the first two payload bytes, followed by the rest of the payload.
//! - style / 3 picks the PGMODE and the kind of valid client key (EC PKCS#8, EC SEC1,
//!   RSA PKCS#1), so that patches start from every format without committing keys.
//!
//! The valid files are generated at start-up (keys never enter the corpus); the CRL is a
//! public fixture (`fuzz/fixtures/public.crl`).

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509Builder, X509NameBuilder, X509};
use pgdap::{Environment, Error, Settings};

const CRL: &[u8] = include_bytes!("../fixtures/public.crl");

struct Fixtures {
    dir: PathBuf,
    root: Vec<u8>,
    /// (certificate PEM, key PEM) for EC PKCS#8, EC SEC1, RSA PKCS#1.
    clients: Vec<(Vec<u8>, Vec<u8>)>,
}

fn cert(cn: &str, key: &PKey<Private>, issuer: Option<(&X509, &PKey<Private>)>) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(issuer.map(|(c, _)| c.subject_name()).unwrap_or(&name))
        .unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.sign(
        issuer.map(|(_, k)| k).unwrap_or(key),
        MessageDigest::sha256(),
    )
    .unwrap();
    b.build()
}

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        let ec = || {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
            PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
        };
        let ca_key = ec();
        let ca = cert("fuzz CA", &ca_key, None);
        let issuer = Some((&ca, &ca_key));
        let k1 = ec();
        let k2 = ec();
        let k3 = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let clients = vec![
            (
                cert("alice", &k1, issuer).to_pem().unwrap(),
                k1.private_key_to_pem_pkcs8().unwrap(),
            ),
            (
                cert("alice", &k2, issuer).to_pem().unwrap(),
                k2.ec_key().unwrap().private_key_to_pem().unwrap(),
            ),
            (
                cert("alice", &k3, issuer).to_pem().unwrap(),
                k3.rsa().unwrap().private_key_to_pem().unwrap(),
            ),
        ];
        let dir = std::env::temp_dir().join(format!("pgdap-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Fixtures {
            dir,
            root: ca.to_pem().unwrap(),
            clients,
        }
    })
}

fn write(path: &Path, bytes: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

const ROLES: [(&str, &str); 4] = [
    ("PGROOTCA", "root.crt"),
    ("PGCRL", "postgresql.crl"),
    ("PGCERT", "postgresql.crt"),
    ("PGKEY", "postgresql.key"),
];
const MODES: [&str; 4] = ["require", "verify-ca", "verify-full", "prefer"];

fuzz_target!(|data: &[u8]| {
    let [role, style, payload @ ..] = data else {
        return;
    };
    let f = fixtures();
    let role = usize::from(role % 4);
    let (client_cert, client_key) = &f.clients[usize::from(style / 3) % 3];
    let valid: [&[u8]; 4] = [&f.root, CRL, client_cert, client_key];
    let base = valid[role];
    let content: Vec<u8> = match style % 3 {
        0 => payload.to_vec(),
        1 => {
            let mut file = base.to_vec();
            for patch in payload.chunks_exact(3) {
                let offset = usize::from(u16::from_be_bytes([patch[0], patch[1]]));
                let len = file.len();
                file[offset % len] = patch[2];
            }
            file
        }
        _ => {
            let (cut, rest) = match payload {
                [hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
                _ => (0, payload),
            };
            let mut file = base[..cut % (base.len() + 1)].to_vec();
            file.extend_from_slice(rest);
            file
        }
    };
    for (i, (_, name)) in ROLES.iter().enumerate() {
        let bytes = if i == role { &content[..] } else { valid[i] };
        write(&f.dir.join(name), bytes, 0o600);
    }
    let mode = MODES[usize::from(style / 9) % MODES.len()];
    let env = Environment::from_pairs([("PGMODE", mode)]).with_default_dir(&f.dir);
    let settings = Settings::resolve(&env, env.default_dir()).unwrap();
    let fuzzed = f.dir.join(ROLES[role].1);
    let var = ROLES[role].0;
    match pgdap::tls::TlsContext::build(&settings) {
        Ok(ctx) => {
            let ctx = ctx.expect("an SSL mode builds a context");
            assert!(ctx.policy().root_ca.is_some());
            assert!(ctx.policy().client_cert.is_some());
            for root in ctx.roots() {
                let _ = pgdap::doctor::summarize(root);
            }
        }
        Err(e) => {
            let text = e.to_string();
            let _ = format!("{e:?}");
            let named = text.contains(var) || text.contains(&*fuzzed.to_string_lossy());
            assert!(
                named,
                "role {var}: error names neither {var} nor the file: {text}"
            );
            if let Error::BadFile { var: v, path, .. } = &e {
                assert_eq!((*v, path), (var, &fuzzed), "{text}");
            }
        }
    }
    // The doctor's summary of whatever certificates the bytes hold.
    if let Ok(certs) = X509::stack_from_pem(&content) {
        for c in &certs {
            let _ = pgdap::doctor::summarize(c);
        }
    }
    if let Ok(c) = X509::from_der(&content) {
        let _ = pgdap::doctor::summarize(&c);
    }
});
