//! Tests only: the straightforward implementation the fast paths replace, and the helpers
//! the tests that compare them share.

use super::multi_byte::{is_highbit, verify_multi};
use super::table_encode::store_coded;
use super::utf8::verify_utf8;
use super::{codec, Codec};
use crate::encoding::tables;
use crate::encoding::{ClientEncoding, EncodingError};

/// The straightforward implementation the fast paths replace, PostgreSQL's two steps
/// one after the other: verify the whole input, then convert character by character
/// through the runs. The fast paths must agree with it on every input.
pub(super) fn reference_decode(enc: ClientEncoding, bytes: &[u8]) -> Result<String, EncodingError> {
    match codec(enc) {
        Codec::Utf8 => verify_utf8(enc, bytes).map(str::to_owned),
        Codec::SqlAscii => {
            if let Some(nul) = bytes.iter().position(|&b| b == 0) {
                return Err(EncodingError::invalid(enc, enc.name(), nul, &[0]));
            }
            verify_utf8(enc, bytes).map(str::to_owned)
        }
        Codec::Single(table) => {
            if let Some(nul) = bytes.iter().position(|&b| b == 0) {
                return Err(EncodingError::invalid(enc, enc.name(), nul, &[0]));
            }
            let mut out = String::new();
            for (at, &b) in bytes.iter().enumerate() {
                match char::from_u32(table.decode[usize::from(b)]).filter(|&c| c != '\0') {
                    Some(c) => out.push(c),
                    None => return Err(EncodingError::no_unicode_equivalent(enc, at, &[b])),
                }
            }
            Ok(out)
        }
        Codec::Multi(multi, table) => {
            verify_multi(enc, multi, bytes, 0)?;
            let mut out = String::new();
            let mut at = 0;
            while let Some(&b) = bytes.get(at) {
                if !is_highbit(b) {
                    out.push(char::from(b));
                    at += 1;
                    continue;
                }
                let rest = &bytes[at..];
                let l = multi.verify_char(rest).unwrap_or(1);
                let seq = &rest[..l];
                let key = seq.iter().fold(0u32, |k, &b| k << 8 | u32::from(b));
                match tables::lookup(table.decode, key).and_then(char::from_u32) {
                    Some(c) => out.push(c),
                    None => return Err(EncodingError::no_unicode_equivalent(enc, at, seq)),
                }
                at += l;
            }
            Ok(out)
        }
    }
}

pub(super) fn reference_encode(enc: ClientEncoding, text: &str) -> Result<Vec<u8>, EncodingError> {
    if let Some(nul) = text.bytes().position(|b| b == 0) {
        return Err(EncodingError::nul_in_text(enc, nul));
    }
    let runs = match codec(enc) {
        Codec::Utf8 | Codec::SqlAscii => return Ok(text.as_bytes().to_vec()),
        Codec::Single(table) => table.encode,
        Codec::Multi(_, table) => table.encode,
    };
    let mut out = Vec::new();
    for (at, ch) in text.char_indices() {
        if ch.is_ascii() {
            out.push(ch as u8);
            continue;
        }
        match tables::lookup(runs, u32::from(ch)) {
            Some(code) => store_coded(&mut out, code),
            None => return Err(EncodingError::no_equivalent(enc, at, ch)),
        }
    }
    Ok(out)
}

pub(super) fn same<T: PartialEq + std::fmt::Debug>(
    a: Result<T, EncodingError>,
    b: Result<T, EncodingError>,
) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => a == b,
        (Err(a), Err(b)) => {
            (a.offset(), a.pg_message(), a.kind()) == (b.offset(), b.pg_message(), b.kind())
        }
        _ => false,
    }
}

/// xorshift64*: deterministic inputs.
pub(super) struct Rng(pub(super) u64);
impl Rng {
    pub(super) fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as usize % n
    }
}
