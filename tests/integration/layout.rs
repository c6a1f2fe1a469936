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

/// The module path of a source file below `root`: `registry/parse/path.rs`
/// is `registry::parse::path`, a `mod.rs` names its folder, and `lib.rs`
/// (`main.rs`) the crate.
fn module_of(root: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(root).unwrap().with_extension("");
    let mut path: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect();
    if path.last().is_some_and(|last| last == "mod") {
        path.pop();
    }
    if path == ["lib"] || path == ["main"] {
        path.clear();
    }
    path
}

/// The file of the deepest module along `segments` (a path from the crate
/// root, module names then perhaps an item): where what it names lives.
fn file_along(root: &Path, segments: &[String]) -> PathBuf {
    let mut found = root.join("lib.rs");
    let mut dir = root.to_path_buf();
    for segment in segments {
        let own = dir.join(format!("{segment}.rs"));
        let folder = dir.join(segment).join("mod.rs");
        if own.is_file() {
            found = own;
        } else if folder.is_file() {
            found = folder;
        } else {
            break;
        }
        dir = dir.join(segment);
    }
    found
}

/// The paths `text` names, braces expanded: `a::{b, c::d}` is `a::b` and
/// `a::c::d`. Stops at the first character that cannot continue a path.
fn expand(text: &str) -> Vec<Vec<String>> {
    fn path(text: &str, mut at: usize, prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
        let bytes = text.as_bytes();
        let mut segments = prefix.to_vec();
        loop {
            let start = at;
            while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_') {
                at += 1;
            }
            if at > start {
                segments.push(text[start..at].to_string());
            }
            if text[at..].starts_with("::{") {
                at += 3;
                loop {
                    while at < bytes.len() && bytes[at].is_ascii_whitespace() {
                        at += 1;
                    }
                    if at >= bytes.len() || bytes[at] == b'}' {
                        return at + 1;
                    }
                    at = path(text, at, &segments, out);
                    // Past `as name`, to the next item or the end.
                    while at < bytes.len() && bytes[at] != b',' && bytes[at] != b'}' {
                        at += 1;
                    }
                    if at < bytes.len() && bytes[at] == b',' {
                        at += 1;
                    }
                }
            }
            if text[at..].starts_with("::") && at > start {
                at += 2;
                continue;
            }
            out.push(segments);
            return at;
        }
    }
    let mut out = Vec::new();
    path(text, 0, &[], &mut out);
    out
}

/// The files `file` (of module `module`) imports from: every `crate::` and
/// `super::` path it names, resolved to the file of the deepest module on
/// it. Its own children (named without a prefix) are not counted: a
/// module and the files below it are one unit.
fn imports(root: &Path, file: &Path) -> BTreeSet<PathBuf> {
    let module = module_of(root, file);
    let code = code(file);
    let mut out = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        for path in expand(&code[at + "crate::".len()..]) {
            out.insert(file_along(root, &path));
        }
    }
    for (at, _) in code.match_indices("super::") {
        if code[..at].ends_with("::") {
            continue; // a later `super::` of a chain
        }
        let mut rest = &code[at..];
        let mut base = module.clone();
        while let Some(after) = rest.strip_prefix("super::") {
            base.pop();
            rest = after;
        }
        for path in expand(rest) {
            let mut full = base.clone();
            full.extend(path);
            out.insert(file_along(root, &full));
        }
    }
    out.remove(file);
    out
}

/// Issue 26: no circle of imports between any two files of `src/`, at any
/// depth (the module test above sees only the top level).
#[test]
fn no_files_import_each_other_in_a_circle() {
    let root = src();
    let mut files = Vec::new();
    sources(&root, &mut files);
    let graph: BTreeMap<String, BTreeSet<String>> = files
        .iter()
        .filter(|f| !f.ends_with("tests.rs"))
        .map(|f| {
            let name = |p: &Path| p.strip_prefix(&root).unwrap().display().to_string();
            (name(f), imports(&root, f).iter().map(|p| name(p)).collect())
        })
        .collect();
    let edges: usize = graph.values().map(BTreeSet::len).sum();
    assert!(edges > 200, "{edges} imports found: the reader is broken");
    assert_eq!(
        cycle(&graph),
        None,
        "files that import each other in a circle"
    );
}

/// The import reader resolves what the circle test relies on.
#[test]
fn imports_are_resolved_to_files() {
    let root = src();
    let paths = expand("a::{b, c::{d, e as f}}, x");
    let strings: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(strings, ["a::b", "a::c::d", "a::c::e"]);
    let isolate = root.join("registry/parse/isolate.rs");
    let found = imports(&root, &isolate);
    assert!(
        found.contains(&root.join("registry/parse/path.rs")),
        "{found:?}"
    );
    assert!(
        found.contains(&root.join("registry/parse/focused.rs")),
        "{found:?}"
    );
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
    // Every file below dns/ too (zone/, zone/names/...).
    let mut below = Vec::new();
    sources(&dir, &mut below);
    assert!(below.len() > graph.len(), "{below:?}");
    for file in below {
        assert!(
            !code(&file).contains("kube::"),
            "{} uses kube",
            file.display()
        );
    }
}

/// The Kubernetes code, wherever it lives (every file that uses the `kube`
/// crate: `registry/kube/`, `mesh/`'s writer, `watch.rs`, the commands that
/// talk to a cluster), never uses hickory: the snapshot is what the two
/// sides share.
#[test]
fn the_kubernetes_code_knows_nothing_of_hickory() {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let kubernetes: Vec<&PathBuf> = files
        .iter()
        .filter(|file| {
            let code = code(file);
            code.contains("use kube::") || code.contains(" kube::api::")
        })
        .collect();
    let root = src();
    for expected in ["registry/kube/source.rs", "mesh/sync.rs", "watch.rs"] {
        assert!(
            kubernetes.contains(&&root.join(expected)),
            "{expected} is not found to be Kubernetes code"
        );
    }
    for file in kubernetes {
        assert!(
            !code(file).contains("hickory"),
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

/// Issue 26: one name, one file: no two source files of `src/` share a
/// name (`tests.rs` and `mod.rs` aside), so a file's name says which it is.
#[test]
fn no_two_source_files_share_a_name() {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if name != "tests.rs" && name != "mod.rs" {
            by_name
                .entry(name)
                .or_default()
                .push(file.display().to_string());
        }
    }
    let shared: Vec<&Vec<String>> = by_name.values().filter(|f| f.len() > 1).collect();
    assert!(shared.is_empty(), "files that share a name: {shared:?}");
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

/// Issue 26: the module map of docs/development.md cannot go stale: every
/// `src/` entry it lists exists, and every module of `src/` (a file or a
/// folder at the top) is listed.
#[test]
fn the_module_map_matches_the_source_tree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/development.md")).unwrap();
    let start = page.find("## Layout").expect("a Layout section");
    let block = &page[start..];
    let block = &block[block.find("```\n").unwrap() + 4..];
    let block = &block[..block.find("```").unwrap()];
    let listed: BTreeSet<String> = block
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.starts_with("src/"))
        .map(|w| w.trim_end_matches(',').to_string())
        .collect();
    for entry in &listed {
        assert!(
            root.join(entry).exists(),
            "docs/development.md lists {entry}, which is gone"
        );
    }
    for entry in std::fs::read_dir(src()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let shown = if path.is_dir() {
            format!("src/{name}/")
        } else {
            format!("src/{name}")
        };
        assert!(
            listed.contains(&shown),
            "{shown} is missing from docs/development.md's map"
        );
    }
}
