//! Replays the fuzz corpus (`fuzz/corpus/`) through the fuzz targets'
//! checks, so that every saved input, seeds and past findings alike, is a
//! test in `cargo test`. The fuzzers themselves: docs/development.md, "Fuzzing".

use std::path::Path;

use globaldns::fuzzing::{check_query, check_registry, zones};

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.unwrap().path();
            (path.display().to_string(), std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_query_corpus_replays_cleanly() {
    let inputs = corpus("query");
    assert!(inputs.len() >= 10, "{} inputs", inputs.len());
    for (name, data) in inputs {
        let result = std::panic::catch_unwind(|| check_query(zones(), &data));
        assert!(result.is_ok(), "{name}");
    }
}

#[test]
fn the_registry_corpus_replays_cleanly() {
    let inputs = corpus("registry");
    assert!(inputs.len() >= 3);
    for (name, data) in inputs {
        if let Ok(text) = std::str::from_utf8(&data) {
            let result = std::panic::catch_unwind(|| check_registry(text));
            assert!(result.is_ok(), "{name}");
        }
    }
}
