//! A plain clone stands on its own: no source, manifest or script of the project names a path
//! outside the repository (issue #10). CI proves the same by running the tests in a copy of the
//! clone with nothing beside it (`.ci/run`); this test says which file broke the rule.

use std::path::{Component, Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// Folders that are build output or another tool's state, not the project's files.
const SKIP_DIRS: &[&str] = &["target", ".git", "node_modules", "__pycache__", ".venv"];

/// Files whose text could name a path: sources, manifests, scripts, configs.
fn is_checked(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    matches!(ext, "rs" | "toml" | "sh" | "py" | "yml" | "yaml" | "wit")
        || name == "Dockerfile"
        || path
            .parent()
            .and_then(|p| p.file_name())
            .is_some_and(|d| d == "scripts" || d == ".ci")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let name = entry.file_name();
        if entry.file_type().unwrap().is_dir() {
            if !SKIP_DIRS.iter().any(|s| name == *s) {
                files(&path, out);
            }
        } else if is_checked(&path) {
            out.push(path);
        }
    }
}

/// The folder relative paths on `line` of `file` start from: the package root for Rust sources
/// (they join `CARGO_MANIFEST_DIR`) except in `include_*!`, which resolve from the file's own
/// folder, as everything else does.
fn base_of(file: &Path, line: &str) -> PathBuf {
    let dir = file.parent().unwrap();
    let from_file = line.contains("include_bytes!(") || line.contains("include_str!(");
    if file.extension().is_some_and(|e| e == "rs") && !from_file {
        let mut d = dir;
        while !d.join("Cargo.toml").is_file() {
            match d.parent() {
                Some(p) => d = p,
                None => return dir.to_path_buf(),
            }
        }
        return d.to_path_buf();
    }
    dir.to_path_buf()
}

/// `base` joined with `rel` and normalised lexically: does it stay inside `root`?
fn stays_inside(root: &Path, base: &Path, rel: &str) -> bool {
    let mut parts: Vec<Component> = base.components().collect();
    for c in Path::new(rel).components() {
        match c {
            Component::ParentDir => {
                parts.pop();
            }
            Component::CurDir => {}
            other => parts.push(other),
        }
    }
    parts.iter().collect::<PathBuf>().starts_with(root)
}

/// Every `../`-run in `text` with the path that follows it, up to a quote or blank.
fn relative_paths(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("../") {
        let before = rest[..i].chars().last();
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ')' | '`' | ','))
            .unwrap_or(tail.len());
        // Only a run that starts a path (not the middle of `a/../b`, which a later run covers).
        if !matches!(before, Some('.') | Some('/')) {
            out.push(&tail[..end]);
        }
        rest = &tail[end.max(3)..];
    }
    out
}

#[test]
fn no_tracked_file_reaches_outside_the_repository() {
    let root = repo();
    let mut all = Vec::new();
    files(&root, &mut all);
    assert!(all.len() > 50, "walked too few files: {}", all.len());
    let mut bad = Vec::new();
    for file in &all {
        // This file names the forbidden forms to look for them.
        if file.ends_with("host/tests/it/self_contained.rs") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            let shown = file.strip_prefix(&root).unwrap().display();
            let base = base_of(file, line);
            for rel in relative_paths(line) {
                if !stays_inside(&root, &base, rel) {
                    bad.push(format!("{shown}:{}: {rel}", n + 1));
                }
            }
            for absolute in ["/work/", "shared/golden", "shared/reference"] {
                if line.contains(absolute) {
                    bad.push(format!("{shown}:{}: names {absolute}", n + 1));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "paths outside the repository:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_checker_sees_an_escape() {
    let root = repo();
    let host = root.join("host");
    // Spelt in two parts so that a plain grep for such paths does not flag this test.
    assert!(!stays_inside(
        &root,
        &host,
        concat!("../../", "shared/golden")
    ));
    assert!(stays_inside(&root, &host, "../tests/data/golden"));
    let plugin = root.join("plugins/compression-zstd");
    assert!(stays_inside(&root, &plugin, "../../plugin-api"));
    assert_eq!(
        relative_paths(r#"join("../../x/y") and "../z""#),
        vec!["../../x/y", "../z"]
    );
}
