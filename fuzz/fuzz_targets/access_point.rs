//! The Access Point parser on arbitrary bytes: never panics, and a document it accepts
//! means the same thing when written back out in canonical form.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pgdap::AccessPoint;

fuzz_target!(|data: &[u8]| {
    let ap = match AccessPoint::parse_bytes(data) {
        Ok(ap) => ap,
        Err(e) => {
            // Formatting an error must not panic either.
            let _ = (e.to_string(), format!("{e:?}"));
            return;
        }
    };
    // Accepted: the values are trimmed, non-empty where required, on one line each.
    for value in [ap.server(), ap.dbname(), ap.username()] {
        assert!(!value.is_empty());
        assert_eq!(value, value.trim());
        assert!(!value.contains('\n'));
    }
    assert_eq!(ap.port(), 5432);
    let _ = (ap.to_string(), format!("{ap:?}"));
    // The canonical form parses back to the same Access Point.
    let canonical = format!(
        "dbengine=postgre\ndbserver={}\ndbname={}\nusername={}\npassword={}\n",
        ap.server(),
        ap.dbname(),
        ap.username(),
        ap.password().expose()
    );
    let again =
        AccessPoint::parse(&canonical).unwrap_or_else(|e| panic!("canonical form refused: {e}"));
    assert_eq!(again, ap);
});
