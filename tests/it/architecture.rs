//! The module graph of ARCHITECTURE.md, checked against the source: a module imports only
//! from its own layer or below, so there is no circle.

use std::collections::BTreeMap;
use std::path::Path;

/// The layers of ARCHITECTURE.md, bottom first.
const LAYERS: &[&[&str]] = &[
    &["status", "capture", "resource"],
    &["error"],
    &["signal", "namespaces", "plan"],
    &["sys"],
    &["attr", "spawn", "raw", "lookpath"],
    &["process", "cmd"],
    &["upgrade", "agent"],
];

/// Items re-exported at the crate root, by the module that defines them.
const ROOT_ITEMS: &[(&str, &str)] = &[
    ("Signal", "status"),
    ("ProcessState", "status"),
    ("Resource", "resource"),
    ("Error", "error"),
    ("ErrorKind", "error"),
    ("Result", "error"),
    ("Stage", "error"),
    ("IgnoredSignals", "signal"),
    ("Namespaces", "namespaces"),
    ("look_path", "lookpath"),
    ("look_path_in", "lookpath"),
    ("path_candidates", "lookpath"),
    ("SysProcAttr", "attr"),
    ("Credential", "attr"),
    ("IdMap", "attr"),
    ("Process", "process"),
    ("ProcAttr", "process"),
    ("start_process", "process"),
    ("find_process", "process"),
    ("Cmd", "cmd"),
    ("Child", "cmd"),
    ("Stdio", "cmd"),
    ("Output", "cmd"),
    ("WaitSet", "cmd"),
];

/// The layer of a module, or of the module behind a root re-export.
fn layer(name: &str) -> Option<usize> {
    let module = ROOT_ITEMS
        .iter()
        .find(|(item, _)| *item == name)
        .map_or(name, |(_, m)| m);
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The crate modules `src` refers to as `crate::<module>`, outside `#[cfg(test)]` code
/// and comments.
fn references(src: &str) -> Vec<String> {
    let code = match src.find("#[cfg(test)]\nmod tests") {
        Some(i) => &src[..i],
        None => src,
    };
    let mut out = Vec::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                group[..end]
                    .split(',')
                    .map(|n| n.trim().split("::").next().unwrap_or(""))
                    .collect()
            } else {
                vec![
                    rest.split(|c: char| !c.is_alphanumeric() && c != '_')
                        .next()
                        .unwrap_or(""),
                ]
            };
            out.extend(
                names
                    .into_iter()
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned),
            );
        }
    }
    out
}

fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, files);
        } else if p.extension().is_some_and(|x| x == "rs") {
            files.push(p);
        }
    }
}

#[test]
fn modules_import_only_downwards() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut bad = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_owned();
        if module == "lib" {
            continue;
        }
        let Some(own) = layer(&module) else {
            panic!(
                "{}: module {module} is in no layer of ARCHITECTURE.md",
                rel.display()
            );
        };
        for r in references(&std::fs::read_to_string(&f).unwrap()) {
            // Items re-exported at the crate root (crate::Error, crate::Cmd...) are named
            // by their module's layer where known; other root names are not modules.
            if let Some(l) = layer(&r) {
                if l > own {
                    bad.entry(rel.display().to_string())
                        .or_insert_with(Vec::new)
                        .push(format!("{module} (layer {own}) imports {r} (layer {l})"));
                }
            }
        }
    }
    assert!(bad.is_empty(), "upward imports:\n{bad:#?}");
}

#[test]
fn the_checker_sees_imports() {
    let src = "use crate::sys::cstr::X;\nuse crate::{error::Error, status};\n// crate::cmd\nlet _ = crate::Cmd::new(\"x\");\n#[cfg(test)]\nmod tests { use crate::agent; }";
    assert_eq!(references(src), ["sys", "error", "status", "Cmd"]);
    assert_eq!(layer("Cmd"), layer("cmd"));
}
