//! The self-test servers of the `bench` and `roundtrips` examples: their server
//! certificate ([`issue_server`]) and connection cases, a directory per case with the
//! Access Point, pgdap's environment and libpq's.

use std::path::Path;

use openssl::pkey::PKey;
use openssl::x509::X509;

/// One case of the self-test server: a directory with the Access Point and both
/// environments.
pub struct Case {
    pub name: &'static str,
    pub mode: &'static str,
    pub db: &'static str,
    pub user: &'static str,
    pub password: &'static str,
    pub root_ca: bool,
    pub client_cert: bool,
    /// `PGSSLNEGOTIATION=direct` (libpq 17+, PostgreSQL 17+ servers).
    pub direct: bool,
}

pub const CASES: [Case; 4] = [
    Case {
        name: "disable",
        mode: "disable",
        db: "appdb",
        user: "scram_user",
        password: "scram-pw",
        root_ca: false,
        client_cert: false,
        direct: false,
    },
    Case {
        name: "require",
        mode: "require",
        db: "appdb",
        user: "scram_user",
        password: "scram-pw",
        root_ca: false,
        client_cert: false,
        direct: false,
    },
    Case {
        name: "verify-full",
        mode: "verify-full",
        db: "appdb",
        user: "scram_user",
        password: "scram-pw",
        root_ca: true,
        client_cert: false,
        direct: false,
    },
    Case {
        name: "cert",
        mode: "verify-full",
        db: "certdb",
        user: "alice",
        password: "",
        root_ca: true,
        client_cert: true,
        direct: false,
    },
];

/// The cases against PostgreSQL 18 (`roundtrips --pg18`): TLS after an SSLRequest, and
/// direct TLS.
pub const PG18_CASES: [Case; 2] = [
    Case {
        name: "require",
        mode: "require",
        db: "appdb",
        user: "scram_user",
        password: "scram-pw",
        root_ca: false,
        client_cert: false,
        direct: false,
    },
    Case {
        name: "direct",
        mode: "require",
        db: "appdb",
        user: "scram_user",
        password: "scram-pw",
        root_ca: false,
        client_cert: false,
        direct: true,
    },
];

pub fn write_case(dir: &Path, addr: &str, case: &Case) -> std::io::Result<()> {
    let pki = super::pki();
    let d = dir.join(case.name);
    std::fs::create_dir_all(&d)?;
    let (root, cert, key, crl) = (
        d.join("root.crt"),
        d.join("postgresql.crt"),
        d.join("postgresql.key"),
        d.join("postgresql.crl"),
    );
    if case.root_ca {
        std::fs::copy(pki.path("ca.crt"), &root)?;
    }
    if case.client_cert {
        std::fs::copy(pki.path("alice.crt"), &cert)?;
        super::write_key(&key, &std::fs::read(pki.path("alice.key"))?);
    }
    std::fs::write(
        d.join("dap.cfg"),
        format!(
            "dbengine=postgre\ndbserver={addr}\ndbname={}\nusername={}\npassword={}\n",
            case.db, case.user, case.password
        ),
    )?;
    let mut pgdap_env = format!(
        "export PGMODE={}\nexport PGROOTCA={}\nexport PGCERT={}\nexport PGKEY={}\nexport PGCRL={}\n",
        case.mode,
        root.display(),
        cert.display(),
        key.display(),
        crl.display()
    );
    if case.client_cert {
        pgdap_env.push_str("export PGAUTH=cert\n");
    }
    if case.direct {
        pgdap_env.push_str("export PGSSLNEGOTIATION=direct\n");
    }
    std::fs::write(d.join("pgdap.env"), pgdap_env)?;
    let mut libpq_env = format!(
        "export PGHOST={addr}\nexport PGPORT=5432\nexport PGUSER={}\nexport PGDATABASE={}\n\
         export PGSSLMODE={}\nexport PGSSLROOTCERT={}\nexport PGSSLCERT={}\nexport PGSSLKEY={}\n\
         export PGSSLCRL={}\nexport PGGSSENCMODE=disable\nexport PGCONNECT_TIMEOUT=10\n",
        case.user,
        case.db,
        case.mode,
        root.display(),
        cert.display(),
        key.display(),
        crl.display()
    );
    if case.direct {
        libpq_env.push_str("export PGSSLNEGOTIATION=direct\n");
    }
    if !case.password.is_empty() {
        libpq_env.push_str(&format!("export PGPASSWORD={}\n", case.password));
    }
    std::fs::write(d.join("libpq.env"), libpq_env)?;
    Ok(())
}

/// Writes `<name>.crt` and `<name>.key` into the test PKI: a server certificate from the
/// test CA whose IP SANs are `ips` (so verify-full by address holds), for the self-test
/// servers of the `bench` and `roundtrips` examples.
pub fn issue_server(name: &str, ips: &[&str]) {
    let pki = super::pki();
    let read = |file: &str| std::fs::read(pki.path(file)).expect(file);
    let ca = super::Issued {
        cert: X509::from_pem(&read("ca.crt")).expect("ca.crt"),
        key: PKey::private_key_from_pem(&read("ca.key")).expect("ca.key"),
    };
    let sans: Vec<super::San> = ips.iter().map(|ip| super::San::Ip(ip)).collect();
    let cert = super::issue(name, super::ec_key(), Some(&ca), &sans, false, false);
    std::fs::write(
        pki.path(&format!("{name}.crt")),
        cert.cert.to_pem().expect("PEM"),
    )
    .expect("writing the server certificate");
    super::write_key(
        &pki.path(&format!("{name}.key")),
        &cert.key.private_key_to_pem_pkcs8().expect("PEM"),
    );
}
