//! The shape of the source tree, checked so that it stays easy to live in:
//! no import cycles between the crate's top-level modules or between the
//! files of `dns/`, and the layering STYLE asks for (answering DNS knows
//! nothing of Kubernetes; the Kubernetes code nothing of hickory).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its comments and without its unit tests.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names following `prefix` (`crate::`, `super::`) in `code`.
fn references<'c>(code: &'c str, prefix: &str) -> BTreeSet<&'c str> {
    code.match_indices(prefix)
        .map(|(at, _)| {
            let rest = &code[at + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// A cycle in `graph`, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn the_top_level_modules_import_no_cycle() {
    let root = src();
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&root).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" || file.ends_with("tests.rs") {
            continue;
        }
        let code = code(&file);
        let uses = references(&code, "crate::");
        let entry = graph.entry(top.clone()).or_default();
        entry.extend(uses.into_iter().filter(|m| *m != top).map(String::from));
    }
    assert!(graph.len() > 10, "{graph:?}");
    assert_eq!(cycle(&graph), None, "an import cycle between modules");
}

#[test]
fn the_files_of_dns_import_no_cycle_and_nothing_of_kubernetes() {
    let dir = src().join("dns");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("mod.rs") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let code = code(&path);
        assert!(!code.contains("kube::"), "dns/{name} uses kube");
        let uses = references(&code, "super::");
        graph
            .entry(name.clone())
            .or_default()
            .extend(uses.into_iter().filter(|m| *m != name).map(String::from));
    }
    assert!(graph.len() >= 8, "{graph:?}");
    assert_eq!(cycle(&graph), None, "an import cycle inside dns/");
}

#[test]
fn the_kubernetes_code_knows_nothing_of_hickory() {
    let mut files = Vec::new();
    sources(&src().join("k8s"), &mut files);
    assert!(!files.is_empty());
    for file in files {
        assert!(
            !code(&file).contains("hickory"),
            "{} uses hickory",
            file.display()
        );
    }
}

/// Files stay short enough to read whole: every source file has at most
/// 400 lines of code, comments and unit tests left out. Files of unit
/// tests (`tests.rs`) are left out.
#[test]
fn no_source_file_has_more_than_400_lines_of_code() {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    assert!(files.len() > 50, "{files:?}");
    let long: Vec<String> = files
        .iter()
        .filter(|path| !path.ends_with("tests.rs"))
        .filter_map(|path| {
            let lines = code(path).lines().count();
            (lines > 400).then(|| format!("{} ({lines})", path.display()))
        })
        .collect();
    assert!(long.is_empty(), "files over 400 lines of code: {long:?}");
}

/// The checker itself finds a cycle where there is one.
#[test]
fn a_cycle_is_found() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(cycle(&graph).unwrap().len(), 4);
}
