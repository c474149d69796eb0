//! The single-byte encodings (LATINn, ISO_8859_n, WINnnn): decode through a 256-entry
//! table of ready UTF-8, verifying (NUL) and converting in one pass. Their encode is the
//! table encode shared with the multibyte encodings ([`super::table_encode`]).

use super::ascii::{all_clean, ascii16, flush, nul_from, IN_BLOCK, OUT_BLOCK};
use crate::encoding::tables::SingleByte;
use crate::encoding::{ClientEncoding, EncodingError};

/// Single-byte decode, verifying (NUL) and converting in one pass.
pub(super) fn decode_single(
    enc: ClientEncoding,
    table: &SingleByte,
    bytes: &[u8],
) -> Result<String, EncodingError> {
    let mut out = String::with_capacity(bytes.len() + bytes.len() / 4);
    let mut buf = [0u8; OUT_BLOCK];
    let mut at = 0;
    while at < bytes.len() {
        let end = at.saturating_add(IN_BLOCK).min(bytes.len());
        let block = bytes.get(at..end).unwrap_or_default();
        if all_clean(block) {
            flush(&mut out, block);
            at = end;
            continue;
        }
        let mut len = 0;
        while at < end {
            if let Some(k) = ascii16(bytes, at, &mut buf, len) {
                len += k;
                at += k;
                if k == 16 {
                    continue;
                }
            }
            // A run of non-ASCII bytes (or a NUL), then ASCII again: eight bytes per step
            // (ASCII bytes among them go through the table too: they map to themselves),
            // whether to stop is asked once per step …
            while let Some(step) = bytes.get(at..at + 8) {
                let mut missing = false;
                for &b in step {
                    let ch = table.utf8[usize::from(b)];
                    missing |= ch[3] == 0;
                    if let Some(dst) = buf.get_mut(len..len + 4) {
                        dst.copy_from_slice(&ch);
                    }
                    len += usize::from(ch[3]);
                }
                if missing {
                    // The first NUL or byte without equivalent of the step decides.
                    let bad = step
                        .iter()
                        .position(|&b| table.utf8[usize::from(b)][3] == 0);
                    return Err(single_error(enc, bytes, at + bad.unwrap_or(0)));
                }
                at += 8;
                if at >= end
                    || (bytes.get(at).is_some_and(|&b| b < 0x80)
                        && bytes.get(at + 1).is_some_and(|&b| b < 0x80))
                {
                    break;
                }
            }
            if at >= end || bytes.len() - at >= 8 {
                continue;
            }
            // … and the input's last bytes one at a time.
            while let Some(&b) = bytes.get(at) {
                let ch = table.utf8[usize::from(b)];
                if ch[3] == 0 {
                    return Err(single_error(enc, bytes, at));
                }
                if let Some(dst) = buf.get_mut(len..len + 4) {
                    dst.copy_from_slice(&ch);
                }
                len += usize::from(ch[3]);
                at += 1;
                // A lone ASCII byte (a space between words) stays here; two or more go
                // back to the 16-byte path.
                if at >= end
                    || (bytes.get(at).is_some_and(|&b| b < 0x80)
                        && bytes.get(at + 1).is_some_and(|&b| b < 0x80))
                {
                    break;
                }
            }
        }
        flush(&mut out, buf.get(..len).unwrap_or_default());
    }
    Ok(out)
}

/// The error of a single-byte decode at `at` (a NUL or a byte without equivalent):
/// PostgreSQL verifies the whole input (NUL) before converting, so a NUL further on wins.
#[cold]
fn single_error(enc: ClientEncoding, bytes: &[u8], at: usize) -> EncodingError {
    match nul_from(bytes, at) {
        Some(nul) => EncodingError::invalid(enc, enc.name(), nul, &[0]),
        None => {
            let b = bytes.get(at).copied().unwrap_or_default();
            EncodingError::no_unicode_equivalent(enc, at, &[b])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode;
    use super::*;

    /// The most output a block can have: every byte a three-byte character, the 8-byte
    /// steps ending past the block's end, at every offset against the blocks.
    #[test]
    fn longest_output_fits_the_block() {
        use super::super::reference::{reference_decode, same};
        for &enc in ClientEncoding::ALL {
            let wide: Vec<u8> = (0x80u8..=0xff)
                .filter(|&b| decode(enc, &[b]).is_ok_and(|s| s.len() == 3))
                .collect();
            let Some(&w) = wide.first() else { continue };
            for lead in 0..9 {
                let mut bytes = vec![b'a'; lead];
                bytes.extend(std::iter::repeat_n(w, 3 * IN_BLOCK + 5));
                assert!(
                    same(decode(enc, &bytes), reference_decode(enc, &bytes)),
                    "{enc} {lead}"
                );
            }
        }
    }

    #[test]
    fn verification_comes_before_conversion() {
        // 0x81 has no equivalent in WIN1252, but the NUL later is reported first, as
        // PostgreSQL verifies the whole input before converting.
        let err = decode(ClientEncoding::Win1252, b"\x81a\x00").unwrap_err();
        assert_eq!(err.offset(), 2);
        assert_eq!(
            err.pg_message(),
            "invalid byte sequence for encoding \"WIN1252\": 0x00"
        );
    }
}
