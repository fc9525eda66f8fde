//! Fuzzes the OPATH recipient-filter parser: it must never panic, every
//! error must point inside the text, and a filter that parses must come
//! back unchanged from its canonical text.

#![no_main]

use hato_directory::opath::{FilterErrorKind, MAX_FILTER_LENGTH, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(text) {
        Ok(filter) => {
            let canonical = filter.to_opath();
            match parse(&canonical) {
                Ok(again) => {
                    assert_eq!(again, filter, "round trip of {text:?} via {canonical:?}");
                    assert_eq!(again.to_opath(), canonical);
                }
                // The canonical form adds parentheses and quotes, so it can
                // be over the length limit when the input was not.
                Err(e) => assert!(
                    e.kind == FilterErrorKind::TooLong
                        && canonical.chars().count() > MAX_FILTER_LENGTH,
                    "canonical text {canonical:?} of {text:?} does not parse: {e}"
                ),
            }
        }
        Err(e) => {
            assert!(
                e.position <= text.chars().count().min(MAX_FILTER_LENGTH),
                "error position {} outside {text:?}",
                e.position
            );
            assert!(!e.message.is_empty() && !e.expected.is_empty());
        }
    }
});
