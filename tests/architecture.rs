//! The house rules of `src/`, checked on every test run (see docs/architecture.md):
//! layers import only from the layers below them, the root holds only `main.rs`, `lib.rs` and
//! folders, source files stay readable in size, and the emulator crate stands alone.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Top-level modules, lowest layer first. A module may import from its own layer's module and
/// from any module of a lower layer; modules that share a layer may not import each other.
const LAYERS: &[&[&str]] = &[
    &["domain"],
    &["probe"],
    &["config"],
    &["metrics"],
    &["monitor"],
    &["store", "report"],
    &["web"],
    &["app"],
    &["cli"],
];

/// Files allowed above the size limit, each with its reason.
const LONG_FILES: &[(&str, &str)] = &[];

const MAX_LINES: usize = 600;

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// `crate::name` references in code (comments and doc links do not count).
fn imports(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
            rest = after;
        }
    }
    found
}

#[test]
fn layers_import_only_downwards() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut violations = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(src()).expect("under src");
        let first = rel.components().next().expect("component");
        let module = first.as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        if module == "main" || module == "lib" {
            continue;
        }
        let Some(own) = layer_of(&module) else {
            violations.push(format!("{}: module {module} is in no layer", rel.display()));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read source");
        for target in imports(&text) {
            if target == module {
                continue;
            }
            match layer_of(&target) {
                Some(l) if l < own => {}
                Some(_) => violations.push(format!("{}: {module} imports crate::{target}", rel.display())),
                None => violations.push(format!("{}: crate::{target} is in no layer", rel.display())),
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports against the layer order {LAYERS:?}:\n{}",
        violations.join("\n")
    );
}

#[test]
fn src_root_holds_only_main_lib_and_folders() {
    let mut stray = Vec::new();
    for entry in std::fs::read_dir(src()).expect("read src") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("name").to_string_lossy().to_string();
        if path.is_file() && name != "main.rs" && name != "lib.rs" {
            stray.push(name);
        }
    }
    assert!(stray.is_empty(), "files at the root of src/: {stray:?}");
}

#[test]
fn source_files_stay_under_the_size_limit() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("crates"), &mut files);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut long = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(root)
            .expect("under root")
            .to_string_lossy()
            .to_string();
        let lines = std::fs::read_to_string(&file).expect("read").lines().count();
        if lines > MAX_LINES && !LONG_FILES.iter().any(|(f, _)| *f == rel) {
            long.push(format!("{rel}: {lines} lines"));
        }
    }
    assert!(long.is_empty(), "files over {MAX_LINES} lines:\n{}", long.join("\n"));
}

#[test]
fn the_emulator_crate_depends_on_nothing_of_the_daemon() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/lab/Cargo.toml"))
        .expect("crates/lab/Cargo.toml");
    let deps = manifest.split("[dependencies]").nth(1).unwrap_or("");
    assert!(
        !deps
            .lines()
            .any(|l| l.trim_start().starts_with("diemcau ") || l.trim_start().starts_with("diemcau=")),
        "crates/lab must not depend on the daemon"
    );
}
