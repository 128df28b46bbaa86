//! The import rules of `host/src` (docs/ARCHITECTURE.md, "Rooms"): each module belongs to a
//! room, and a room may name only the rooms listed for it. This reads the sources (no build
//! of the crate needed) and fails with every `crate::` path that crosses a rule, so an arrow
//! running the wrong way is caught in review, not found years later as a knot.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Rooms, lowest first, and the rooms each may import (its own room is always allowed).
/// Support modules are small ground-floor services every room may use.
const RULES: &[(&str, &[&str])] = &[
    ("config", &[]),
    ("support", &["config"]),
    ("asb", &["config", "support"]),
    ("plugins", &["config", "support"]),
    ("error", &["config", "support", "asb", "plugins"]),
    ("aerospike", &["config", "support", "asb", "error"]),
    (
        "storage",
        &["config", "support", "asb", "plugins", "error", "aerospike"],
    ),
    (
        "jobs",
        &[
            "config",
            "support",
            "asb",
            "plugins",
            "error",
            "aerospike",
            "storage",
        ],
    ),
    (
        "notify",
        &["config", "support", "jobs", "error", "plugins", "storage"],
    ),
    (
        "scheduler",
        &[
            "config",
            "support",
            "plugins",
            "error",
            "aerospike",
            "storage",
            "jobs",
        ],
    ),
    (
        "remote_config",
        &["config", "support", "plugins", "error", "storage", "jobs"],
    ),
    (
        "api",
        &[
            "config",
            "support",
            "asb",
            "plugins",
            "error",
            "aerospike",
            "storage",
            "jobs",
            "scheduler",
            "notify",
            "remote_config",
        ],
    ),
    (
        "service",
        &[
            "config",
            "support",
            "asb",
            "plugins",
            "error",
            "aerospike",
            "storage",
            "jobs",
            "scheduler",
            "notify",
            "remote_config",
            "api",
        ],
    ),
];

/// The room of a top-level module of the crate.
fn room_of(module: &str) -> Option<&'static str> {
    Some(match module {
        "config" => "config",
        "clock" | "progress" | "metrics" | "logging" | "malloc" | "outbound" | "pem_key"
        | "secrets" => "support",
        "asb" => "asb",
        "plugins" | "plugin_check" => "plugins",
        "error" => "error",
        "aerospike" => "aerospike",
        "storage" => "storage",
        "jobs" => "jobs",
        "notify" => "notify",
        "scheduler" => "scheduler",
        "remote_config" => "remote_config",
        "api" => "api",
        "service" | "main" | "lib" => "service",
        _ => return None,
    })
}

/// Top-level modules a file names through `crate::`, in paths and in `use crate::{a, b}`.
fn named_modules(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in text.match_indices("crate::") {
        // `abs::crate::` cannot occur; skip `$crate::` of macros.
        if text[..i].ends_with('$') {
            continue;
        }
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for part in inner.split(',') {
                let name = ident(part.trim());
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

/// The source without `//` comments: a doc link is a pointer for the reader, not an import.
/// (A `//` inside a string literal cuts a line short, which can only hide a path, and a
/// string holding `crate::` is not a real import anyway.)
fn code_only(text: &str) -> String {
    text.lines()
        .map(|l| l.split_once("//").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn modules_import_only_the_rooms_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(
        files.len() > 50,
        "host/src was found ({} files)",
        files.len()
    );
    let mut broken = Vec::new();
    let mut unknown = BTreeSet::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|s| s.trim_end_matches(".rs"))
            .expect("a file name");
        let Some(room) = room_of(top) else {
            unknown.insert(top.to_string());
            continue;
        };
        let allowed = RULES
            .iter()
            .find(|(r, _)| *r == room)
            .map(|(_, a)| *a)
            .expect("every room has a rule");
        let text = code_only(&std::fs::read_to_string(file).expect("a readable source"));
        for name in named_modules(&text) {
            let Some(target) = room_of(&name) else {
                // An item of lib.rs itself, or a macro path: not a module.
                continue;
            };
            if target != room && !allowed.contains(&target) {
                broken.push(format!(
                    "{} ({room}) imports crate::{name} ({target})",
                    rel.display()
                ));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "modules with no room (add them to room_of and docs/ARCHITECTURE.md): {unknown:?}"
    );
    assert!(
        broken.is_empty(),
        "imports against the rules in docs/ARCHITECTURE.md:\n  {}",
        broken.join("\n  ")
    );
}

#[test]
fn the_reader_sees_paths_and_groups() {
    let text = "use crate::config::X;\nuse crate::{jobs::a, storage};\nlet x = $crate::y;";
    let names: Vec<String> = named_modules(text).into_iter().collect();
    assert_eq!(names, ["config", "jobs", "storage"]);
}

/// Longest a source file may be without saying why at its top (a `Length:` paragraph in its
/// module comment): past it, a file usually holds more than one job.
const LONG_FILE_LINES: usize = 800;

#[test]
fn long_files_say_why_they_are_long() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in [
        "host/src",
        "host/tests",
        "host/benches",
        "tests/src",
        "tests/tests",
        "plugin-api/src",
        "plugins",
        "examples",
    ] {
        let dir = root.join(dir);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        }
    }
    assert!(
        files.len() > 100,
        "the sources were found ({})",
        files.len()
    );
    let unexplained: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).ok()?;
            let lines = text.lines().count();
            let explained = text
                .lines()
                .take_while(|l| l.starts_with("//!"))
                .any(|l| l.starts_with("//! Length:"));
            (lines > LONG_FILE_LINES && !explained).then(|| format!("{} ({lines})", f.display()))
        })
        .collect();
    assert!(
        unexplained.is_empty(),
        "files over {LONG_FILE_LINES} lines without a `//! Length:` reason at the top:\n  {}",
        unexplained.join("\n  ")
    );
}

/// The `.rs` files below `dir`, skipping build outputs, installed packages and hidden folders.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a readable directory") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !matches!(name, "target" | "node_modules") && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}
