//! GBK and UHC's hot decode loop, [`pair_run`]: every high byte starts a two-byte
//! character there, so the characters of 64 bytes are found at once from the high-bit
//! mask, and the ASCII between them is copied 16 bytes at a time.

use super::ascii::{put_utf8_3, utf8_3, OUT_BLOCK};

/// One bit per byte of `chunk`, set where `flag` marks the byte (`flag` maps each byte of
/// a word to 0x80 or 0x00).
#[inline(always)]
fn byte_mask(chunk: &[u8; 64], flag: impl Fn(u64) -> u64) -> u64 {
    let mut mask = 0u64;
    for (i, word) in chunk.chunks_exact(8).enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        // Each flagged byte is 0x01 after the shift; the multiplication gathers byte k's
        // bit into bit 56 + k.
        let bits = (flag(u64::from_le_bytes(w)) >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56;
        mask |= bits << (8 * i);
    }
    mask
}

/// Copies the ASCII bytes `from..to` of a chunk (`padded`: 64 bytes and 16 of padding)
/// to `buf` at `len`, 16 bytes per store (the bytes past `to` are overwritten next), and
/// returns the new output length.
#[inline(always)]
fn copy_ascii(
    padded: &[u8; 80],
    from: usize,
    to: usize,
    buf: &mut [u8; OUT_BLOCK],
    len: usize,
) -> usize {
    let from = from.min(64); // always: the compiler then knows `from + 16 <= 80`
    let n = to.saturating_sub(from);
    // The first 16 unconditionally: whether a space lies between two characters is
    // unpredictable, a longer run of ASCII is rare.
    if let Some(dst) = buf.get_mut(len..len + 16) {
        dst.copy_from_slice(&padded[from..from + 16]);
    }
    if n > 16 {
        if let (Some(src), Some(dst)) = (padded.get(from..to), buf.get_mut(len..len + n)) {
            dst.copy_from_slice(src);
        }
    }
    len + n
}

/// The hot loop of GBK and UHC decoding, where every high byte starts a two-byte character
/// (`pg_gbk_mblen`, `pg_uhc_mblen`). Per 64 bytes, the character starts are computed from
/// the high-bit mask without a branch: in each run of high bytes the leads are every other
/// byte from the run's first. Text that mixes words and spaces (Korean) would otherwise
/// mispredict a branch at every word boundary. The characters are then converted in order,
/// found by `trailing_zeros`, and the ASCII between two of them is copied with one 16-byte
/// store (docs/benchmarks.md has the measurements of each step). Stops before anything the
/// exact path must see: a NUL, a lead whose second byte is ASCII (UHC's extension rows,
/// the invalid pair), a character of one or two UTF-8 bytes or without equivalent (a
/// table value other than three UTF-8 bytes), or fewer than 64 bytes before `end`. Returns the new input and
/// output positions.
#[inline(never)]
pub(super) fn pair_run(
    decode2: &[[u8; 4]; 0x8000],
    bytes: &[u8],
    mut at: usize,
    end: usize,
    buf: &mut [u8; OUT_BLOCK],
    mut len: usize,
) -> (usize, usize) {
    const EVEN: u64 = 0x5555_5555_5555_5555;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const LOWS: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    while at.saturating_add(64) <= end {
        let Some(chunk) = bytes
            .get(at..at + 64)
            .and_then(|c| <&[u8; 64]>::try_from(c).ok())
        else {
            break;
        };
        let high = byte_mask(chunk, |w| w & HIGHS);
        if high == u64::MAX {
            // 32 two-byte characters (Chinese and Japanese text has no spaces).
            for (i, pair) in chunk.chunks_exact(2).enumerate() {
                let key = usize::from(pair[0] & 0x7f) << 8 | usize::from(pair[1]);
                let Some(ch) = utf8_3(decode2[key]) else {
                    return (at + 2 * i, len);
                };
                len = put_utf8_3(buf, len, ch);
            }
            at += 64;
            continue;
        }
        let nul = byte_mask(chunk, |w| !(((w & LOWS) + LOWS) | w) & HIGHS);
        // Runs of high bytes; those starting at an even position have their leads at even
        // positions, the others at odd ones. Adding a run's first bit carries through the
        // run, so `high & !(high + starts)` is exactly the runs holding those starts.
        let starts = high & !(high << 1);
        let even_runs = high & !high.wrapping_add(starts & EVEN);
        let leads = (even_runs & EVEN) | (high & !even_runs & !EVEN);
        // A lead in the last byte continues in the next chunk: the chunk ends before it.
        let limit = if leads >> 63 != 0 { 63 } else { 64 };
        // A lead whose second byte is ASCII, or a NUL: the exact path decides from there.
        let odd_lead = (leads << 1) & !high;
        let odd_lead_at = match odd_lead {
            0 => 64,
            _ => odd_lead.trailing_zeros() - 1,
        };
        let stop = (odd_lead_at.min(nul.trailing_zeros()) as usize).min(limit);
        let stopped = stop < limit;
        let below = if stop == 64 {
            u64::MAX
        } else {
            (1u64 << stop) - 1
        };
        // The characters in order; the ASCII bytes between two (a space) are copied 16 at a
        // time from the padded chunk, so they cost no iteration of their own.
        let mut padded = [0u8; 80];
        padded[..64].copy_from_slice(chunk);
        let mut todo = leads & below;
        let mut next = 0; // the first byte of the chunk not yet written
        while todo != 0 {
            let p = todo.trailing_zeros() as usize;
            todo &= todo - 1;
            len = copy_ascii(&padded, next, p, buf, len);
            let (b0, b1) = (padded[p & 63], padded[(p & 63) + 1]);
            let key = usize::from(b0 & 0x7f) << 8 | usize::from(b1);
            let Some(ch) = utf8_3(decode2[key]) else {
                return (at + p, len);
            };
            len = put_utf8_3(buf, len, ch);
            next = p + 2;
        }
        len = copy_ascii(&padded, next, stop, buf, len);
        at += stop;
        if stopped {
            break;
        }
    }
    (at, len)
}

#[cfg(test)]
mod tests {
    use super::super::reference::{reference_decode, same, Rng};
    use super::super::{codec, decode, Codec};
    use crate::encoding::ClientEncoding;

    /// `pair_run`'s edges: text that is almost all two-byte characters, shifted against
    /// the 64-byte chunks, with lone spaces, runs of ASCII longer than 16 bytes, UHC's
    /// extension characters (ASCII second byte), characters below U+0800, the invalid
    /// pair, NUL and truncation.
    #[test]
    fn pair_run_edges_equal_the_reference() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for enc in [ClientEncoding::Gbk, ClientEncoding::Uhc] {
            let (multi, table) = match codec(enc) {
                Codec::Multi(m, t) => (m, t),
                _ => unreachable!("GBK and UHC are multibyte"),
            };
            // Mapped two-byte characters, split by second byte (high or ASCII) and by
            // UTF-8 length (three bytes, or fewer: the fast path stops for those).
            let (mut wide, mut ascii_trail, mut narrow) = (Vec::new(), Vec::new(), Vec::new());
            for b0 in 0x81u8..=0xfe {
                for b1 in 0x01u8..=0xfe {
                    if !multi.two_byte_ok(b0, b1) {
                        continue;
                    }
                    let ch = table.decode2[usize::from(b0 & 0x7f) << 8 | usize::from(b1)];
                    match (ch[3], b1 < 0x80) {
                        (0, _) => {}
                        (3, false) => wide.push([b0, b1]),
                        (3, true) => ascii_trail.push([b0, b1]),
                        _ => narrow.push([b0, b1]),
                    }
                }
            }
            assert!(!wide.is_empty() && !narrow.is_empty());
            for case in 0..400 {
                let mut bytes = vec![b'a'; rng.below(70)];
                let len = bytes.len() + 64 + rng.below(600);
                while bytes.len() < len {
                    match rng.below(40) {
                        0..=5 => bytes.push(b' '),
                        6 if !ascii_trail.is_empty() => {
                            bytes.extend(ascii_trail[rng.below(ascii_trail.len())])
                        }
                        7 if case % 3 == 0 => bytes.extend(narrow[rng.below(narrow.len())]),
                        8 if case % 7 == 0 => bytes.extend(b". "),
                        9 if case % 5 == 0 => bytes.extend(b"hello world, 0123456789 "),
                        _ => bytes.extend(wide[rng.below(wide.len())]),
                    }
                }
                assert!(
                    same(decode(enc, &bytes), reference_decode(enc, &bytes)),
                    "{enc} case {case}"
                );
                let mut bad = bytes.clone();
                let at = rng.below(bad.len());
                match case % 4 {
                    0 => bad[at] = 0,
                    1 => bad.splice(at..at, [0x8d, b' ']).for_each(drop),
                    2 => bad.truncate(at.max(1) | 1),
                    _ => bad[at] = 0xff,
                }
                assert!(
                    same(decode(enc, &bad), reference_decode(enc, &bad)),
                    "{enc} corrupted case {case}"
                );
            }
        }
    }
}
