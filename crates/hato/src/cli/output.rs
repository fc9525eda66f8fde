//! Printing and URL helpers every command uses.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

/// What a path segment must escape (RFC 3986 §3.3): every byte that is not a `pchar`, i.e. not
/// unreserved (`A-Z a-z 0-9 - . _ ~`), a sub-delim (`! $ & ' ( ) * + , ; =`), `:` or `@`. So `/`,
/// `?`, `#`, `%`, spaces, quotes, controls and every byte of a non-ASCII character are escaped,
/// and an address such as `a+b@x` keeps its readable form (`+` is a sub-delim, literal in a path;
/// only form-encoded queries read it as a space).
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

/// Percent-encodes one path segment (an address, a name, an id) as RFC 3986 §3.3 requires.
pub(crate) fn enc(s: &str) -> String {
    utf8_percent_encode(s, PATH_SEGMENT).to_string()
}

/// Prints a JSON array as a table with these columns, or as JSON.
pub(crate) fn print_rows(v: &Value, columns: &[&str], as_json: bool) -> Result<(), String> {
    if as_json {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        return Ok(());
    }
    let rows = v.as_array().cloned().unwrap_or_default();
    let cell = |row: &Value, c: &str| -> String {
        match &row[c] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    };
    let mut widths: Vec<usize> = columns.iter().map(|c| c.len()).collect();
    for row in &rows {
        for (i, c) in columns.iter().enumerate() {
            widths[i] = widths[i].max(cell(row, c).chars().count().min(60));
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| {
                let short: String = c.chars().take(60).collect();
                format!("{short:<w$}")
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    println!(
        "{}",
        line(columns.iter().map(|c| c.to_uppercase()).collect())
    );
    for row in &rows {
        println!("{}", line(columns.iter().map(|c| cell(row, c)).collect()));
    }
    if rows.is_empty() {
        println!("(none)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::enc;

    /// RFC 3986 §3.3: `pchar = unreserved / pct-encoded / sub-delims / ":" / "@"`.
    fn is_pchar(b: u8) -> bool {
        b.is_ascii_alphanumeric()
            || b"-._~".contains(&b)
            || b"!$&'()*+,;=".contains(&b)
            || b":@".contains(&b)
    }

    #[test]
    fn a_path_segment_escapes_exactly_what_is_not_a_pchar() {
        for b in 0u8..=0x7f {
            let c = char::from(b).to_string();
            let want = if is_pchar(b) {
                c.clone()
            } else {
                format!("%{b:02X}")
            };
            assert_eq!(enc(&c), want, "byte {b:#04x}");
        }
        // Every byte of a non-ASCII character, in UTF-8.
        assert_eq!(enc("jürgen@bücher.test"), "j%C3%BCrgen@b%C3%BCcher.test");
        assert_eq!(enc("用户"), "%E7%94%A8%E6%88%B7");
        assert_eq!(
            enc("\"john smith\"+a/b?c#d%e@x.test"),
            "%22john%20smith%22+a%2Fb%3Fc%23d%25e@x.test"
        );
    }
}
