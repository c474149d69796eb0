//! PGCLIENTENCODING against a real PostgreSQL 15 server (docs/design.md §6, issue 6).
//!
//! * Differential: pgdap's codecs against the server's own `convert_from()` and
//!   `convert_to()` in a UTF8 database, text for text and error message for error
//!   message. Every single-byte encoding: all 256 byte values. GBK, SJIS, UHC, JOHAB: all
//!   1- and 2-byte inputs (and JOHAB's 3-byte 0x8f sequences). GBK, SJIS, UHC, JOHAB,
//!   WIN1258 and UTF8 (and the others too): a deterministic spread of ~12,000 code points
//!   over all of Unicode plus every third character the encoding can decode, converted
//!   with `convert_to()` and back with `convert_from()`; and random multi-character
//!   inputs, where the position and kind of the first error matter.
//! * End to end through pgdap connections: PGCLIENTENCODING=Win1252 in a WIN1252 database
//!   and in a SQL_ASCII database holding WIN1252 bytes; a LATIN1 client on a UTF8
//!   database; the error when the database cannot represent a character.
//!
//! Each conversion batch is one SQL call (a plpgsql function that returns the result or
//! the error of every input), so the whole file runs in seconds.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use crate::common::{self, ClientHome, Server, ServerSpec};
use pgdap::encoding::{
    check_representable, prepare_session, ClientEncoding, EncodingErrorKind, RawText,
    SessionEncoding, SessionEncodingError,
};
use tokio_postgres::Client;

// ---------------------------------------------------------------------------------------
// Server and connections
// ---------------------------------------------------------------------------------------

const ADDR: &str = "127.0.0.40";
const USER: &str = "scram_user";
const PASSWORD: &str = "scram-pw";

/// The encoding tests' server: appdb (UTF8, from the harness template) plus databases in
/// WIN1252, SQL_ASCII and KOI8R (an encoding pgdap has no table of), owned by scram_user.
fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let server = Server::start(ServerSpec::new(ADDR, None));
        for (db, enc) in [
            ("win1252db", "WIN1252"),
            ("sqlasciidb", "SQL_ASCII"),
            ("koi8rdb", "KOI8R"),
        ] {
            server.psql(
                "postgres",
                &format!(
                    "CREATE DATABASE {db} OWNER {USER} ENCODING '{enc}' \
                     LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
                ),
            );
        }
        server
    })
}

/// A pgdap session with `PGCLIENTENCODING` set (or not), after [`prepare_session`].
struct Conn {
    session: pgdap::Session,
    encoding: SessionEncoding,
    _home: ClientHome,
}

impl Conn {
    fn client(&self) -> &Client {
        &self.session.client
    }
}

async fn connect(db: &str, client_encoding: Option<&str>) -> Conn {
    server();
    let mut home = ClientHome::new().var("PGMODE", "disable");
    if let Some(name) = client_encoding {
        home.set("PGCLIENTENCODING", name);
    }
    let ap = common::access_point(ADDR, db, USER, PASSWORD);
    let config = pgdap::Config::new(ap, &home.env()).expect("configuration");
    let wanted = config.settings().encoding.value;
    let session = pgdap::Connector::new(config)
        .expect("connector")
        .connect_spawned()
        .await
        .expect("connect");
    let encoding = prepare_session(&session.client, wanted)
        .await
        .expect("prepare_session");
    Conn {
        session,
        encoding,
        _home: home,
    }
}

/// Session-local helpers that convert a whole batch in one call, returning each input's
/// result or the server's error message.
const HELPERS: &str = "
CREATE FUNCTION pg_temp.conv_from(inputs bytea[], enc name)
RETURNS TABLE(ok text, err text) LANGUAGE plpgsql AS $$
DECLARE b bytea;
BEGIN
    FOREACH b IN ARRAY inputs LOOP
        BEGIN
            ok := convert_from(b, enc); err := NULL;
        EXCEPTION WHEN OTHERS THEN
            ok := NULL; err := SQLERRM;
        END;
        RETURN NEXT;
    END LOOP;
END $$;
CREATE FUNCTION pg_temp.conv_to(inputs text[], enc name)
RETURNS TABLE(ok bytea, err text) LANGUAGE plpgsql AS $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY inputs LOOP
        BEGIN
            ok := convert_to(t, enc); err := NULL;
        EXCEPTION WHEN OTHERS THEN
            ok := NULL; err := SQLERRM;
        END;
        RETURN NEXT;
    END LOOP;
END $$;
";

/// A connection to the UTF8 database with the helpers installed.
async fn reference() -> Conn {
    let conn = connect("appdb", None).await;
    conn.client().batch_execute(HELPERS).await.expect("helpers");
    conn
}

type Outcome<T> = Result<T, String>;

async fn server_decode(client: &Client, enc: &str, inputs: &[Vec<u8>]) -> Vec<Outcome<String>> {
    let rows = client
        .query(
            "SELECT ok, err FROM pg_temp.conv_from($1, $2::text::name) \
             WITH ORDINALITY AS t(ok, err, n) ORDER BY n",
            &[&inputs, &enc],
        )
        .await
        .expect("conv_from");
    assert_eq!(rows.len(), inputs.len());
    rows.iter()
        .map(|r| match r.get::<_, Option<String>>(0) {
            Some(text) => Ok(text),
            None => Err(r.get(1)),
        })
        .collect()
}

async fn server_encode(client: &Client, enc: &str, inputs: &[String]) -> Vec<Outcome<Vec<u8>>> {
    let rows = client
        .query(
            "SELECT ok, err FROM pg_temp.conv_to($1, $2::text::name) \
             WITH ORDINALITY AS t(ok, err, n) ORDER BY n",
            &[&inputs, &enc],
        )
        .await
        .expect("conv_to");
    assert_eq!(rows.len(), inputs.len());
    rows.iter()
        .map(|r| match r.get::<_, Option<Vec<u8>>>(0) {
            Some(bytes) => Ok(bytes),
            None => Err(r.get(1)),
        })
        .collect()
}

fn pgdap_decode(enc: ClientEncoding, input: &[u8]) -> Outcome<String> {
    enc.decode(input).map_err(|e| e.pg_message())
}

fn pgdap_encode(enc: ClientEncoding, input: &str) -> Outcome<Vec<u8>> {
    enc.encode(input).map_err(|e| e.pg_message())
}

/// Compares pgdap with the server on every decode input; returns the decoded texts.
async fn compare_decode(client: &Client, enc: ClientEncoding, inputs: &[Vec<u8>]) -> Vec<String> {
    let expected = server_decode(client, enc.name(), inputs).await;
    let mut mismatches = Vec::new();
    let mut decoded = Vec::new();
    for (input, want) in inputs.iter().zip(&expected) {
        let got = pgdap_decode(enc, input);
        if &got != want {
            mismatches.push(format!("{input:02x?}: server {want:?}, pgdap {got:?}"));
        }
        if let Ok(text) = want {
            decoded.push(text.clone());
        }
    }
    assert!(
        mismatches.is_empty(),
        "{}: {} of {} decodes differ from convert_from(), e.g.\n{}",
        enc.name(),
        mismatches.len(),
        inputs.len(),
        mismatches[..mismatches.len().min(20)].join("\n")
    );
    decoded
}

/// Compares pgdap with the server on every encode input; returns the encoded bytes.
async fn compare_encode(client: &Client, enc: ClientEncoding, inputs: &[String]) -> Vec<Vec<u8>> {
    let expected = server_encode(client, enc.name(), inputs).await;
    let mut mismatches = Vec::new();
    let mut encoded = Vec::new();
    for (input, want) in inputs.iter().zip(&expected) {
        let got = pgdap_encode(enc, input);
        if &got != want {
            mismatches.push(format!("{input:?}: server {want:02x?}, pgdap {got:02x?}"));
        }
        if let Ok(bytes) = want {
            encoded.push(bytes.clone());
        }
    }
    assert!(
        mismatches.is_empty(),
        "{}: {} of {} encodes differ from convert_to(), e.g.\n{}",
        enc.name(),
        mismatches.len(),
        inputs.len(),
        mismatches[..mismatches.len().min(20)].join("\n")
    );
    encoded
}

// ---------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const SINGLE_BYTE: &[ClientEncoding] = &[
    ClientEncoding::Iso8859_5,
    ClientEncoding::Iso8859_6,
    ClientEncoding::Iso8859_7,
    ClientEncoding::Iso8859_8,
    ClientEncoding::Latin1,
    ClientEncoding::Latin2,
    ClientEncoding::Latin3,
    ClientEncoding::Latin4,
    ClientEncoding::Latin5,
    ClientEncoding::Latin6,
    ClientEncoding::Latin7,
    ClientEncoding::Latin8,
    ClientEncoding::Latin9,
    ClientEncoding::Latin10,
    ClientEncoding::Win866,
    ClientEncoding::Win874,
    ClientEncoding::Win1250,
    ClientEncoding::Win1251,
    ClientEncoding::Win1252,
    ClientEncoding::Win1256,
    ClientEncoding::Win1258,
];

const MULTI_BYTE: &[ClientEncoding] = &[
    ClientEncoding::Gbk,
    ClientEncoding::Sjis,
    ClientEncoding::Uhc,
    ClientEncoding::Johab,
];

fn all_single_bytes() -> Vec<Vec<u8>> {
    (0..=255u8).map(|b| vec![b]).collect()
}

/// Every 2-byte input with a high first byte, and JOHAB's 3-byte 0x8f sequences.
fn all_multibyte_sequences(enc: ClientEncoding) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = (0x80..=0xffu8)
        .flat_map(|lead| (0..=0xffu8).map(move |trail| vec![lead, trail]))
        .collect();
    if enc == ClientEncoding::Johab {
        for b2 in 0xa1..=0xfeu8 {
            for b3 in 0xa1..=0xfeu8 {
                out.push(vec![0x8f, b2, b3]);
            }
        }
    }
    out
}

/// A deterministic spread over all of Unicode (a different offset per encoding), NUL and
/// the surrogates excluded.
fn spread_of_code_points(enc: ClientEncoding) -> Vec<char> {
    let offset = enc.name().bytes().map(u32::from).sum::<u32>() % 97;
    (0..0x11_0000u32)
        .skip(offset as usize)
        .step_by(97)
        .filter_map(char::from_u32)
        .filter(|&c| c != '\0')
        .collect()
}

/// Random byte strings of 1..8 bytes over an alphabet that makes the encoding's verifier
/// and map work: ASCII, NUL (rarely), lead and trail bytes of every kind.
fn random_byte_strings(enc: ClientEncoding, n: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(u64::from(enc.name().len() as u32) << 32 | 0x5eed);
    (0..n)
        .map(|_| {
            let len = 1 + rng.below(8);
            (0..len)
                .map(|_| match rng.below(20) {
                    0 => 0,
                    1..=4 => b'a' + rng.below(26) as u8,
                    5 => 0x20,
                    6 => 0x8d,
                    7 => 0x8f,
                    8 => 0x40 + rng.below(0x40) as u8,
                    _ => 0x80 + rng.below(0x80) as u8,
                })
                .collect()
        })
        .collect()
}

/// Random strings of 1..6 characters drawn from `pool`.
fn random_texts(pool: &[char], seed: u64, n: usize) -> Vec<String> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let len = 1 + rng.below(6);
            (0..len).map(|_| pool[rng.below(pool.len())]).collect()
        })
        .collect()
}

/// Every `step`-th character of the given decoded texts (single characters).
fn every_nth_char(texts: &[String], step: usize) -> Vec<char> {
    let set: BTreeSet<char> = texts
        .iter()
        .filter(|t| t.chars().count() == 1)
        .filter_map(|t| t.chars().next())
        .collect();
    set.into_iter().step_by(step).collect()
}

/// Encode `chars` one by one with pgdap and the server, then decode the successful
/// results both ways again: the round trip in both directions.
async fn round_trip(client: &Client, enc: ClientEncoding, chars: &[char]) -> usize {
    let inputs: Vec<String> = chars.iter().map(|c| c.to_string()).collect();
    let encoded = compare_encode(client, enc, &inputs).await;
    compare_decode(client, enc, &encoded).await;
    encoded.len()
}

// ---------------------------------------------------------------------------------------
// Differential tests
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn names_resolve_as_pg_char_to_encoding() {
    let conn = reference().await;
    let mut names: Vec<String> = Vec::new();
    for name in [
        "GBK",
        "WIN936",
        "Windows936",
        "ISO_8859_5",
        "ISO_8859_6",
        "ISO_8859_7",
        "ISO_8859_8",
        "JOHAB",
        "LATIN1",
        "ISO88591",
        "LATIN2",
        "ISO88592",
        "LATIN3",
        "ISO88593",
        "LATIN4",
        "ISO88594",
        "LATIN5",
        "ISO88599",
        "LATIN6",
        "ISO885910",
        "LATIN7",
        "ISO885913",
        "LATIN8",
        "ISO885914",
        "LATIN9",
        "ISO885915",
        "LATIN10",
        "ISO885916",
        "SJIS",
        "Mskanji",
        "ShiftJIS",
        "WIN932",
        "Windows932",
        "SQL_ASCII",
        "UHC",
        "WIN949",
        "Windows949",
        "UTF8",
        "Unicode",
        "WIN866",
        "ALT",
        "WIN874",
        "WIN1250",
        "WIN1251",
        "WIN",
        "WIN1252",
        "WIN1256",
        "WIN1258",
        "ABC",
        "TCVN",
        "TCVN5712",
        "VSCII",
        // spellings
        "Win1252",
        "win-1252",
        "WIN_1252",
        "Windows-1252",
        "ISO-8859-1",
        "iso_8859-9",
        "Shift_JIS",
        "utf-8",
        " u t f 8 ",
        "sql ascii",
        "windows-866",
        "windows874",
        "latin-10",
        "utf8é",
        "wïn1252",
        // unknown to PostgreSQL, or outside the vendor's table
        "",
        "-",
        "utf16",
        "latin11",
        "cp1252",
        "EUC_JP",
        "BIG5",
        "KOI8R",
        "WIN1253",
        "GB18030",
        "MULE_INTERNAL",
        "windows-1253",
        "iso-8859-11",
    ] {
        names.push(name.to_string());
    }
    // The SQL function takes a `name`, truncated to 63 bytes as the server truncates a
    // client_encoding value; pgdap truncates the same way.
    names.push(format!("utf8{}", "-".repeat(59)));
    names.push(format!("utf8{}", "-".repeat(60)));
    names.push(format!("win125{}2", "-".repeat(57)));
    let rows = conn
        .client()
        .query(
            "SELECT pg_encoding_to_char(pg_char_to_encoding(n))::text \
             FROM unnest($1::text[]) WITH ORDINALITY AS t(n, i) ORDER BY i",
            &[&names],
        )
        .await
        .unwrap();
    for (name, row) in names.iter().zip(rows) {
        let pg: String = row.get(0);
        let want = ClientEncoding::NAMES.iter().find(|n| **n == pg).copied();
        assert_eq!(
            ClientEncoding::from_name(name).map(ClientEncoding::name),
            want,
            "{name:?}: PostgreSQL says {pg:?}"
        );
    }
}

#[tokio::test]
async fn every_byte_of_every_single_byte_encoding() {
    let conn = reference().await;
    let inputs = all_single_bytes();
    for &enc in SINGLE_BYTE
        .iter()
        .chain(MULTI_BYTE)
        .chain(&[ClientEncoding::Utf8, ClientEncoding::SqlAscii])
    {
        compare_decode(conn.client(), enc, &inputs).await;
    }
}

#[tokio::test]
async fn every_short_sequence_of_the_multibyte_encodings() {
    let conn = reference().await;
    for &enc in MULTI_BYTE {
        let decoded = compare_decode(conn.client(), enc, &all_multibyte_sequences(enc)).await;
        assert!(
            decoded.len() > 7000,
            "{}: only {} decoded",
            enc.name(),
            decoded.len()
        );
    }
}

#[tokio::test]
async fn code_points_round_trip_both_ways() {
    let conn = reference().await;
    for &enc in MULTI_BYTE
        .iter()
        .chain(&[ClientEncoding::Win1258, ClientEncoding::Utf8])
        .chain(SINGLE_BYTE)
        .chain(&[ClientEncoding::SqlAscii])
    {
        // A spread over all of Unicode: mostly unmappable outside UTF8.
        let mut chars = spread_of_code_points(enc);
        // And characters the encoding has: every third one it decodes to.
        let sources = if MULTI_BYTE.contains(&enc) {
            all_multibyte_sequences(enc)
        } else {
            all_single_bytes()
        };
        let decodable: Vec<String> = sources.iter().filter_map(|s| enc.decode(s).ok()).collect();
        let step = if MULTI_BYTE.contains(&enc) { 3 } else { 1 };
        chars.extend(every_nth_char(&decodable, step));
        let converted = round_trip(conn.client(), enc, &chars).await;
        assert!(
            converted > 100,
            "{}: only {converted} converted",
            enc.name()
        );
    }
}

/// Every code point of Unicode in every encoding: about 30 million conversions, a couple
/// of minutes, so not part of the default run (`cargo test --test server -- --ignored
/// encoding::`, which scripts/test.sh runs). This is how the tables were checked after
/// generation.
#[tokio::test]
#[ignore = "exhaustive: 30 million conversions, minutes"]
async fn every_code_point_in_every_encoding() {
    let conn = reference().await;
    let all: Vec<char> = (1..0x11_0000u32).filter_map(char::from_u32).collect();
    for &enc in ClientEncoding::ALL {
        for chunk in all.chunks(100_000) {
            round_trip(conn.client(), enc, chunk).await;
        }
    }
}

#[tokio::test]
async fn random_inputs_fail_where_postgres_fails() {
    let conn = reference().await;
    for &enc in ClientEncoding::ALL {
        // Decode: random byte strings (the first error's position and kind matter).
        compare_decode(conn.client(), enc, &random_byte_strings(enc, 1500)).await;
        // Encode: random texts of mappable and unmappable characters.
        let mut pool: Vec<char> = all_single_bytes()
            .iter()
            .chain(
                &all_multibyte_sequences(enc)[..if MULTI_BYTE.contains(&enc) { 32768 } else { 0 }],
            )
            .filter_map(|s| enc.decode(s).ok())
            .filter_map(|t| t.chars().next())
            .collect::<BTreeSet<char>>()
            .into_iter()
            .step_by(7)
            .collect();
        pool.extend(['€', 'Ж', '日', '😀', 'ế', '\u{301}', 'é', 'x', ' ']);
        let texts = random_texts(&pool, enc.name().len() as u64, 1500);
        let encoded = compare_encode(conn.client(), enc, &texts).await;
        compare_decode(conn.client(), enc, &encoded).await;
    }
}

#[tokio::test]
async fn utf8_validation_matches_postgres() {
    let conn = reference().await;
    let mut inputs: Vec<Vec<u8>> = [
        &b"caf\xc3\xa9"[..],
        b"\xe2\x82\xac",
        b"\xf0\x9f\x98\x80",
        b"\xc0\x80",
        b"\xc1\xbf",
        b"\xe0\x80\x80",
        b"\xe0\x9f\xbf",
        b"\xed\xa0\x80",
        b"\xed\xbf\xbf",
        b"\xef\xbf\xbf",
        b"\xf0\x8f\xbf\xbf",
        b"\xf4\x90\x80\x80",
        b"\xf5\x80\x80\x80",
        b"\xf8\x88\x80\x80\x80",
        b"\xfe",
        b"\xff",
        b"\x80",
        b"\xbf",
        b"ab\xe2\x82",
        b"ab\xe2",
        b"\xe2\x28\xa1",
        b"caf\xe9\x20\x80",
        b"\xc3",
        b"a\x00b",
        b"\xff\x00",
        b"\xe9 \x00",
    ]
    .iter()
    .map(|s| s.to_vec())
    .collect();
    // Every 1- and 2-byte input, and a spread of 3- and 4-byte inputs.
    inputs.extend(all_single_bytes());
    inputs.extend(all_multibyte_sequences(ClientEncoding::Utf8));
    let mut rng = Rng::new(8);
    for _ in 0..4000 {
        let len = 3 + rng.below(2);
        let lead = [0xe0u8, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xc2, 0xe1][rng.below(8)];
        let mut s = vec![lead];
        s.extend(
            (1..len).map(|_| [0x7fu8, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0][rng.below(8)]),
        );
        inputs.push(s);
    }
    for enc in [ClientEncoding::Utf8, ClientEncoding::SqlAscii] {
        compare_decode(conn.client(), enc, &inputs).await;
    }
}

// ---------------------------------------------------------------------------------------
// End to end
// ---------------------------------------------------------------------------------------

/// `café déjà vu €` in WIN1252.
const CAFE_WIN1252: &[u8] = b"caf\xe9 d\xe9j\xe0 vu \x80";
const CAFE: &str = "café déjà vu €";

#[tokio::test]
async fn win1252_client_in_a_win1252_database() {
    let conn = connect("win1252db", Some("Win1252")).await;
    let enc = &conn.encoding;
    assert_eq!(enc.client_encoding(), ClientEncoding::Win1252);
    assert_eq!(enc.server_encoding(), "WIN1252");
    assert_eq!(enc.wire_encoding(), ClientEncoding::Utf8);
    assert!(!enc.is_sql_ascii());
    let wire: String = conn
        .client()
        .query_one("SELECT current_setting('client_encoding')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(wire, "UTF8");

    let c = conn.client();
    c.batch_execute("CREATE TEMP TABLE notes (id int, body text)")
        .await
        .unwrap();
    // The application's local WIN1252 bytes → text → the server converts to WIN1252.
    let text = enc.decode(CAFE_WIN1252).unwrap();
    assert_eq!(text, CAFE);
    c.execute("INSERT INTO notes VALUES (1, $1)", &[&text])
        .await
        .unwrap();
    // The same through RawText.
    let raw = enc.text_to_db(CAFE).unwrap();
    c.execute("INSERT INTO notes VALUES (2, $1)", &[&raw])
        .await
        .unwrap();

    for row in c
        .query(
            "SELECT body, convert_to(body, 'WIN1252') FROM notes ORDER BY id",
            &[],
        )
        .await
        .unwrap()
    {
        // What the database stores is exactly the WIN1252 bytes.
        let stored: Vec<u8> = row.get(1);
        assert_eq!(stored, CAFE_WIN1252);
        // Read as text, back to local WIN1252 bytes.
        let body: String = row.get(0);
        assert_eq!(body, CAFE);
        assert_eq!(enc.encode(&body).unwrap(), CAFE_WIN1252);
        let raw: RawText = row.get(0);
        assert_eq!(enc.text_from_db(&raw).unwrap(), CAFE);
    }
}

#[tokio::test]
async fn win1252_client_in_a_sql_ascii_database() {
    let conn = connect("sqlasciidb", Some("Win1252")).await;
    let enc = &conn.encoding;
    assert_eq!(enc.server_encoding(), "SQL_ASCII");
    assert!(enc.is_sql_ascii());
    assert_eq!(enc.wire_encoding(), ClientEncoding::SqlAscii);
    let c = conn.client();
    let wire: String = c
        .query_one("SELECT current_setting('client_encoding')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(wire, "SQL_ASCII");

    c.batch_execute("DROP TABLE IF EXISTS notes; CREATE TABLE notes (id int, body text)")
        .await
        .unwrap();
    // Bytes written by another program (psql; a SQL_ASCII database converts nothing).
    server().psql(
        "sqlasciidb",
        &format!(
            "INSERT INTO notes VALUES (1, convert_from('\\x{}'::bytea, 'SQL_ASCII'))",
            hex(CAFE_WIN1252)
        ),
    );
    // Written by pgdap: the local bytes as they are, and text encoded to WIN1252.
    c.execute(
        "INSERT INTO notes VALUES (2, $1)",
        &[&RawText(CAFE_WIN1252.to_vec())],
    )
    .await
    .unwrap();
    let raw = enc.text_to_db(CAFE).unwrap();
    assert_eq!(raw.as_bytes(), CAFE_WIN1252);
    c.execute("INSERT INTO notes VALUES (3, $1)", &[&raw])
        .await
        .unwrap();

    // The database holds the WIN1252 bytes, byte for byte.
    let stored = server().psql(
        "sqlasciidb",
        "SELECT string_agg(encode(convert_to(body, 'SQL_ASCII'), 'hex'), ',' ORDER BY id) FROM notes",
    );
    assert_eq!(stored, vec![hex(CAFE_WIN1252); 3].join(","));

    // Read back: the same bytes, decoded with the client encoding.
    let rows = c
        .query("SELECT id, body FROM notes ORDER BY id", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    for row in &rows {
        let body: RawText = row.get(1);
        assert_eq!(body.as_bytes(), CAFE_WIN1252);
        assert_eq!(body.decode(ClientEncoding::Win1252).unwrap(), CAFE);
        assert_eq!(enc.text_from_db(&body).unwrap(), CAFE);
    }
    // A String cannot carry these bytes: tokio-postgres refuses, no mojibake.
    assert!(rows[1].try_get::<_, String>(1).is_err());
    // A character WIN1252 lacks is refused before anything is sent.
    let err = enc.text_to_db("Жук").unwrap_err();
    assert_eq!(err.character(), Some('Ж'));
    assert_eq!(err.encoding(), ClientEncoding::Win1252);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn sql_ascii_database_needs_sql_ascii_client_encoding() {
    // What prepare_session is for: with the client_encoding tokio-postgres asks for
    // (UTF8), a SQL_ASCII database validates text as UTF8 in both directions.
    let conn = connect("sqlasciidb", Some("WIN1252")).await;
    let c = conn.client();
    c.batch_execute("SET client_encoding TO 'UTF8'")
        .await
        .unwrap();
    let err = c
        .query_one("SELECT $1::text", &[&RawText(CAFE_WIN1252.to_vec())])
        .await
        .unwrap_err();
    let db = err.as_db_error().expect("a server error");
    assert_eq!(
        db.message(),
        "invalid byte sequence for encoding \"UTF8\": 0xe9 0x20 0x64"
    );
    let err = c
        .query_one(
            "SELECT convert_from('\\x636166e9'::bytea, 'SQL_ASCII')",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.as_db_error().expect("a server error").message(),
        "invalid byte sequence for encoding \"UTF8\": 0xe9"
    );
    // prepare_session puts it right again.
    let again = prepare_session(c, ClientEncoding::Win1252).await.unwrap();
    assert!(again.is_sql_ascii());
    let row = c
        .query_one("SELECT $1::text", &[&RawText(CAFE_WIN1252.to_vec())])
        .await
        .unwrap();
    assert_eq!(row.get::<_, RawText>(0).as_bytes(), CAFE_WIN1252);
}

#[tokio::test]
async fn latin1_client_on_a_utf8_database() {
    let conn = connect("appdb", Some("ISO-8859-1")).await;
    let enc = &conn.encoding;
    assert_eq!(enc.client_encoding(), ClientEncoding::Latin1);
    assert_eq!(enc.server_encoding(), "UTF8");
    assert_eq!(enc.wire_encoding(), ClientEncoding::Utf8);
    let c = conn.client();
    c.batch_execute("CREATE TEMP TABLE notes (id int, body text)")
        .await
        .unwrap();

    let local: &[u8] = b"d\xe9j\xe0 vu, na\xefve \xa3\xff";
    let text = enc.decode(local).unwrap();
    assert_eq!(text, "déjà vu, naïve £ÿ");
    c.execute("INSERT INTO notes VALUES (1, $1)", &[&text])
        .await
        .unwrap();
    // Another client stores characters LATIN1 lacks.
    c.execute("INSERT INTO notes VALUES (2, $1)", &[&"prix: 5 €"])
        .await
        .unwrap();

    let rows = c
        .query(
            "SELECT body, convert_to(body, 'UTF8') FROM notes ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let stored: Vec<u8> = rows[0].get(1);
    assert_eq!(stored, text.as_bytes(), "a UTF8 database stores UTF-8");
    let body: String = rows[0].get(0);
    assert_eq!(enc.encode(&body).unwrap(), local);
    // Reading what LATIN1 cannot represent is an error naming it, never a '?'.
    let body: String = rows[1].get(0);
    let err = enc.encode(&body).unwrap_err();
    assert_eq!(err.kind(), EncodingErrorKind::NoEquivalentInEncoding);
    assert_eq!(err.character(), Some('€'));
    assert_eq!(err.offset(), 8);
    let message = err.to_string();
    assert!(
        message.contains("\"LATIN1\"") && message.contains("U+20AC"),
        "{message}"
    );
    // It is the server's own verdict, word for word.
    let server_says = c
        .query_one("SELECT convert_to($1, 'LATIN1')", &[&body])
        .await
        .unwrap_err();
    assert_eq!(
        server_says.as_db_error().unwrap().message(),
        err.pg_message()
    );
}

#[tokio::test]
async fn database_that_cannot_represent_a_character() {
    let conn = connect("win1252db", Some("UTF8")).await;
    let (c, enc) = (conn.client(), &conn.encoding);

    // Checked with PostgreSQL's own table, before anything is sent.
    let err = check_representable(c, enc, "Жук").await.unwrap_err();
    let SessionEncodingError::NotRepresentable {
        database_encoding,
        source,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(database_encoding, "WIN1252");
    assert_eq!(source.character(), Some('Ж'));
    let message = err.to_string();
    assert!(
        message.starts_with("the WIN1252 database cannot store this text: ")
            && message.contains("U+0416"),
        "{message}"
    );
    check_representable(c, enc, CAFE).await.unwrap();

    // The server agrees, word for word, when the text is sent anyway.
    c.batch_execute("CREATE TEMP TABLE notes (body text)")
        .await
        .unwrap();
    let server_err = c
        .execute("INSERT INTO notes VALUES ($1)", &[&"Жук"])
        .await
        .unwrap_err();
    assert_eq!(
        server_err.as_db_error().unwrap().message(),
        source.pg_message()
    );
    assert!(enc.text_to_db("Жук").is_err());

    // A database encoding pgdap has no table of: the server is asked.
    let conn = connect("koi8rdb", None).await;
    let err = check_representable(conn.client(), &conn.encoding, "日本")
        .await
        .unwrap_err();
    let SessionEncodingError::RejectedByServer {
        database_encoding,
        message,
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(database_encoding, "KOI8R");
    assert_eq!(
        message,
        "character with byte sequence 0xe6 0x97 0xa5 in encoding \"UTF8\" has no equivalent in encoding \"KOI8R\""
    );
    check_representable(conn.client(), &conn.encoding, "Жук")
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------
// examples/convert.rs, the contract
// ---------------------------------------------------------------------------------------

/// Runs the example with `args`, feeding `stdin`: (exit code, stdout, stderr).
fn run_convert(args: &[&str], stdin: &[u8]) -> (i32, Vec<u8>, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(crate::common::example("convert"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run convert");
    let mut pipe = child.stdin.take().expect("stdin");
    // The program may exit before reading (usage errors): a broken pipe is fine then.
    if let Err(e) = pipe.write_all(stdin) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
    }
    drop(pipe);
    let out = child.wait_with_output().expect("convert output");
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn convert_example_keeps_its_contract() {
    // --decode: raw bytes in, UTF-8 out, nothing else on stdout.
    let (code, out, err) = run_convert(&["--encoding", "Win1252", "--decode"], CAFE_WIN1252);
    assert_eq!(
        (code, out.as_slice(), err.as_str()),
        (0, CAFE.as_bytes(), "")
    );
    // --encode: UTF-8 in, encoded bytes out.
    let (code, out, _) = run_convert(&["--encoding", "win-1252", "--encode"], CAFE.as_bytes());
    assert_eq!((code, out.as_slice()), (0, CAFE_WIN1252));
    let (code, out, _) = run_convert(&["--encode", "--encoding=SJIS"], "日本".as_bytes());
    assert_eq!((code, out.as_slice()), (0, &b"\x93\xfa\x96\x7b"[..]));

    // An undecodable byte sequence: non-zero, stderr names the bytes, stdout empty.
    let (code, out, err) = run_convert(&["--encoding", "SJIS", "--decode"], b"ab\x81\x20");
    assert_ne!(code, 0);
    assert!(out.is_empty());
    assert!(
        err.contains("0x81 0x20") && err.contains("\"SJIS\""),
        "{err}"
    );
    let (code, out, err) = run_convert(&["--encoding", "WIN1252", "--decode"], b"ok\x81");
    assert!(code != 0 && out.is_empty() && err.contains("0x81"), "{err}");
    // An unencodable character: non-zero, stderr names the character.
    let (code, out, err) = run_convert(
        &["--encoding", "LATIN1", "--encode"],
        "prix: 5 €".as_bytes(),
    );
    assert!(code != 0 && out.is_empty(), "{err}");
    assert!(
        err.contains("'€'") && err.contains("U+20AC") && err.contains("LATIN1"),
        "{err}"
    );
    // Input to --encode that is not UTF-8.
    let (code, out, err) = run_convert(&["--encoding", "LATIN1", "--encode"], b"caf\xe9");
    assert!(code != 0 && out.is_empty() && err.contains("0xe9"), "{err}");

    // Unknown encoding: non-zero, the valid names listed.
    let (code, out, err) = run_convert(&["--encoding", "EBCDIC", "--decode"], b"x");
    assert!(code != 0 && out.is_empty(), "{err}");
    for name in ClientEncoding::NAMES {
        assert!(err.contains(name), "{name} missing from {err}");
    }
    // Usage errors.
    for args in [
        &["--decode"][..],
        &["--encoding", "UTF8"],
        &["--encoding", "UTF8", "--decode", "--encode"],
        &["--bogus"],
    ] {
        let (code, out, err) = run_convert(args, b"");
        assert!(
            code != 0 && out.is_empty() && err.contains("usage"),
            "{args:?}: {err}"
        );
    }
}
