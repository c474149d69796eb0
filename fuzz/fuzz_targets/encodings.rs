//! Every client encoding's decoder and encoder on arbitrary input: never panics, errors
//! point inside the input, and decoding is stable under a round trip.
//!
//! For each encoding of `ClientEncoding::ALL`:
//! - the input bytes are decoded; when that succeeds, the text encodes again and the
//!   bytes it encodes to decode to the same text (PostgreSQL's one-way mappings, e.g.
//!   SJIS duplicates, change the bytes but never the text);
//! - the input read as (lossy) UTF-8 is encoded; when that succeeds, the result is
//!   decoded (which may fail: GBK encodes `€` to 0x80, which its decoder refuses, as
//!   PostgreSQL does); a successful decode gives a text that encodes to the same bytes
//!   (SJIS encodes `¥` to 0x5C, which decodes as `\`, which encodes to 0x5C).

#![no_main]

use libfuzzer_sys::fuzz_target;
use pgdap::encoding::{ClientEncoding, RawText};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for &enc in ClientEncoding::ALL {
        match enc.decode(data) {
            Ok(decoded) => {
                let bytes = enc
                    .encode(&decoded)
                    .unwrap_or_else(|e| panic!("{enc}: decoded text does not encode: {e}"));
                let again = enc
                    .decode(&bytes)
                    .unwrap_or_else(|e| panic!("{enc}: encoded bytes do not decode: {e}"));
                assert_eq!(again, decoded, "{enc}: round trip changed the text");
                assert_eq!(RawText(data.to_vec()).decode(enc).ok(), Some(decoded));
            }
            Err(e) => {
                assert!(
                    e.offset() < data.len(),
                    "{enc}: offset {} past the end",
                    e.offset()
                );
                assert!(!e.bytes().is_empty(), "{enc}: error without bytes");
                assert!(
                    data[e.offset()..].starts_with(e.bytes()),
                    "{enc}: error bytes {:x?} not at offset {}",
                    e.bytes(),
                    e.offset()
                );
                assert_eq!(e.encoding(), enc);
                let _ = (e.to_string(), e.pg_message(), format!("{e:?}"));
            }
        }
        match enc.encode(&text) {
            Ok(bytes) => {
                if let Ok(back) = enc.decode(&bytes) {
                    let again = enc.encode(&back).unwrap_or_else(|e| {
                        panic!("{enc}: text decoded from encoded bytes does not encode: {e}")
                    });
                    assert_eq!(again, bytes, "{enc}: encode/decode/encode is not stable");
                }
                assert_eq!(
                    RawText::encode(enc, &text).ok().map(RawText::into_bytes),
                    Some(bytes)
                );
            }
            Err(e) => {
                assert!(
                    e.offset() < text.len(),
                    "{enc}: offset {} past the end",
                    e.offset()
                );
                let _ = (
                    e.to_string(),
                    e.pg_message(),
                    format!("{e:?}"),
                    e.character(),
                );
            }
        }
    }
});
