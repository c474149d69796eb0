//! Converts between a client encoding and UTF-8, as PostgreSQL 15 would.
//!
//! ```text
//! convert --encoding NAME --decode   < raw bytes   > UTF-8 text
//! convert --encoding NAME --encode   < UTF-8 text  > raw bytes
//! ```
//!
//! NAME is any name or alias PostgreSQL accepts for an encoding of the vendor's table
//! (`Win1252`, `ISO-8859-1`, `ShiftJIS`, …). Nothing but the converted bytes is written to
//! stdout. Exit status: 0 on success; 1 when the input cannot be converted (stderr names
//! the offending byte sequence or character and its offset, in PostgreSQL's words); 2 for
//! a usage error or an unknown encoding (stderr lists the valid names).
//!
//! ```text
//! $ printf 'caf\xe9 \x80' | cargo run -q --example convert -- --encoding Win1252 --decode
//! café €
//! ```

use std::io::{self, Read, Write};
use std::process::ExitCode;

use pgdap::encoding::ClientEncoding;

const USAGE: &str = "usage: convert --encoding NAME (--decode | --encode)
  --decode  read bytes in encoding NAME on stdin, write UTF-8 text on stdout
  --encode  read UTF-8 text on stdin, write bytes in encoding NAME on stdout
  -h, --help  this help

NAME is any name or alias PostgreSQL accepts (Win1252, ISO-8859-1, ShiftJIS, ...).
Exit status: 0 on success; 1 when the input cannot be converted; 2 on a usage error or an
unknown encoding. (`pgdap convert`, feature `cli`, is the same.)";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Decode,
    Encode,
}

/// Parses the arguments (std only): `--encoding NAME` or `--encoding=NAME`, and exactly
/// one of `--decode`/`--encode`.
/// `Ok(None)`: help was asked for.
fn parse_args(
    args: impl IntoIterator<Item = String>,
) -> Result<Option<(String, Direction)>, String> {
    let mut encoding = None;
    let mut direction = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "--encoding" => Some(args.next().ok_or("--encoding needs a value")?),
            _ => arg.strip_prefix("--encoding=").map(str::to_string),
        };
        if let Some(value) = value {
            if encoding.replace(value).is_some() {
                return Err("--encoding given twice".into());
            }
            continue;
        }
        let dir = match arg.as_str() {
            "--decode" => Direction::Decode,
            "--encode" => Direction::Encode,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unexpected argument {other:?}")),
        };
        if direction.replace(dir).is_some_and(|d| d != dir) {
            return Err("give either --decode or --encode, not both".into());
        }
    }
    match (encoding, direction) {
        (Some(e), Some(d)) => Ok(Some((e, d))),
        (None, _) => Err("--encoding NAME is required".into()),
        (_, None) => Err("--decode or --encode is required".into()),
    }
}

fn main() -> ExitCode {
    let (name, direction) = match parse_args(std::env::args().skip(1)) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("convert: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let Some(encoding) = ClientEncoding::from_name(&name) else {
        eprintln!(
            "convert: unknown encoding {name:?}; valid encodings: {}",
            ClientEncoding::NAMES.join(", ")
        );
        return ExitCode::from(2);
    };

    let mut input = Vec::new();
    if let Err(e) = io::stdin().lock().read_to_end(&mut input) {
        eprintln!("convert: cannot read stdin: {e}");
        return ExitCode::from(1);
    }
    let output = match direction {
        Direction::Decode => encoding.decode(&input).map(String::into_bytes),
        // The input must itself be UTF-8 (without NUL): checked as PostgreSQL would.
        Direction::Encode => ClientEncoding::Utf8
            .decode(&input)
            .and_then(|text| encoding.encode(&text)),
    };
    match output {
        Ok(bytes) => {
            let mut stdout = io::stdout().lock();
            if let Err(e) = stdout.write_all(&bytes).and_then(|()| stdout.flush()) {
                eprintln!("convert: cannot write stdout: {e}");
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("convert: {e}");
            ExitCode::from(1)
        }
    }
}
