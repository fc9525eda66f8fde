//! Printing and URL helpers every command uses.

use serde_json::Value;

/// Percent-encodes a path segment.
pub(crate) fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@+".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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
