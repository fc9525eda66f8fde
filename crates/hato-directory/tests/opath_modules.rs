//! The project's module rule, for `src/opath/`: no two modules import each other. `mod.rs` only
//! declares the modules and re-exports their items; a module uses another one only by its path
//! (`super::filter::Filter`), never through what `mod.rs` re-exports (which would make it import
//! `mod.rs`, and `mod.rs` it); and the uses between the modules have no cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/opath");

/// The code of a file: comments left out, and the unit tests at its end (which may use
/// anything of their own module's parent).
fn code(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        if !line.starts_with("//") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The first path segment of each item a `super::` path names, e.g. `filter` for
/// `super::filter::{A, B}` and `filter`, `text` for `super::{filter::A, text}`.
fn super_uses(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("super::") {
        rest = &rest[at + "super::".len()..];
        let items: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group
                .split('}')
                .next()
                .unwrap_or_default()
                .split(',')
                .collect(),
            None => vec![rest],
        };
        for item in items {
            let first: String = item
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '*')
                .collect();
            if !first.is_empty() {
                out.push(first);
            }
        }
    }
    out
}

#[test]
fn opath_modules_do_not_import_each_other() {
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(DIR).expect("src/opath") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("a file name")
                .to_string();
            let text = std::fs::read_to_string(&path).expect("source");
            modules.insert(name, code(&text));
        }
    }
    let root = modules.remove("mod").expect("mod.rs");
    let children: BTreeSet<String> = modules.keys().cloned().collect();

    // mod.rs: module declarations and re-exports, nothing that uses its modules' items.
    for statement in root.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        assert!(
            statement.starts_with("mod ") || statement.starts_with("pub use "),
            "mod.rs does more than declare and re-export: {statement:?}"
        );
    }

    // Each module uses its siblings by their paths, and only those.
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, code) in &modules {
        for used in super_uses(code) {
            assert!(
                children.contains(&used) && &used != name,
                "{name}.rs uses super::{used}, which is not another module of opath/ \
                 (an item of mod.rs, or a glob)"
            );
            uses.entry(name.clone()).or_default().insert(used);
        }
    }

    // No cycle: repeatedly take away a module that uses none of those left.
    let mut left = children.clone();
    while !left.is_empty() {
        let free: Vec<String> = left
            .iter()
            .filter(|m| {
                uses.get(*m)
                    .is_none_or(|u| u.iter().all(|x| !left.contains(x)))
            })
            .cloned()
            .collect();
        assert!(
            !free.is_empty(),
            "these modules of opath/ use each other in a cycle: {left:?} ({uses:?})"
        );
        for m in free {
            left.remove(&m);
        }
    }
    assert!(Path::new(DIR).join("filter.rs").exists());
}
