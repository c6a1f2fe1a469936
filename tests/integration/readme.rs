//! The README's claims, and those of its reference (docs/reference.md),
//! that the code can check: every command and every flag of `serve` has its
//! row, every metric the server exports is listed with its type, every
//! metric and flag named on either page exists, the two commands at the
//! top are what they say, and every relative link leads to a file and a
//! heading.

use std::path::Path;

use clap::{CommandFactory, Parser};
use globaldns::cli::{Cli, Command};

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// docs/reference.md, where the README's reference tables live.
fn reference() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reference.md");
    std::fs::read_to_string(path).unwrap()
}

/// The rows of the Markdown table under `heading`.
fn table(text: &str, heading: &str) -> Vec<String> {
    let start = text
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("no `{heading}` in the README"));
    text[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(str::to_string)
        .collect()
}

#[test]
fn every_command_has_its_row() {
    let text = reference();
    let rows = table(&text, "## Commands");
    let mut names: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    names.sort();
    let mut listed: Vec<String> = rows
        .iter()
        .filter_map(|row| {
            let cell = row.trim_start_matches("| `globaldns ");
            cell.split([' ', '`']).next().map(str::to_string)
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed, names,
        "the Commands table and the command line differ"
    );
}

/// Every flag of `serve` has a row with its environment variable and, when
/// it has one, its default; and every row is a flag that exists.
#[test]
fn every_serve_flag_has_its_row() {
    let text = reference();
    let rows = table(&text, "## Flags of `serve`");
    let cli = Cli::command();
    let serve = cli.find_subcommand("serve").unwrap();
    let mut flags = Vec::new();
    for arg in serve.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if long == "help" {
            continue;
        }
        flags.push(long.to_string());
        let row = rows
            .iter()
            .find(|r| r.starts_with(&format!("| `--{long}")))
            .unwrap_or_else(|| panic!("--{long} has no row in the README's flags table"));
        if let Some(env) = arg.get_env() {
            let env = env.to_string_lossy();
            assert!(
                row.contains(&format!("`{env}`")),
                "--{long}: {env} not in {row}"
            );
        }
        let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values());
        for default in arg.get_default_values().iter().filter(|_| takes_value) {
            let default = default.to_string_lossy();
            assert!(
                row.contains(&format!("`{default}`")),
                "--{long}: default {default} not in {row}"
            );
        }
    }
    for row in &rows {
        let flag = row
            .trim_start_matches("| `--")
            .split([' ', '`'])
            .next()
            .unwrap();
        assert!(
            flags.iter().any(|f| f == flag),
            "the README lists --{flag}, which `serve` does not take"
        );
    }
}

/// Every series `/metrics` exports is in the metrics table, with its type.
#[test]
fn every_metric_is_documented() {
    let text = reference();
    let rows = table(&text, "## Metrics");
    let exported = globaldns::metrics::Metrics::default().render();
    let mut count = 0;
    for line in exported.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut words = line.split_whitespace().skip(2);
        let (name, kind) = (words.next().unwrap(), words.next().unwrap());
        let row = rows
            .iter()
            .find(|r| {
                r.starts_with(&format!("| `{name}`")) || r.starts_with(&format!("| `{name}{{"))
            })
            .unwrap_or_else(|| panic!("{name} is not in the README's metrics table"));
        assert!(
            row.contains(&format!("| {kind} |")),
            "{name}: not a {kind} in {row}"
        );
        count += 1;
    }
    assert!(count >= 20, "{count} metrics exported");
    assert_eq!(
        rows.len(),
        count,
        "the table lists a metric no longer exported"
    );
}

/// The words of `text` that start with `prefix` and go on with lower-case
/// letters, digits and `sep`.
fn words_starting(text: &str, prefix: &str, sep: char) -> std::collections::BTreeSet<String> {
    text.match_indices(prefix)
        .map(|(at, _)| {
            let rest = &text[at + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == sep))
                .unwrap_or(rest.len());
            format!("{prefix}{}", rest[..end].trim_end_matches(sep))
        })
        .filter(|w| w.len() > prefix.len())
        .collect()
}

/// Every metric the README names anywhere (its prose too, e.g. the client
/// notes) is a series the server exports.
#[test]
fn every_metric_the_readme_names_is_exported() {
    let exported = globaldns::metrics::Metrics::default().render();
    let names: Vec<&str> = exported
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for name in words_starting(&(readme() + &reference()), "globaldns_", '_') {
        assert!(
            names.contains(&name.as_str()),
            "the README names {name}, which is not exported"
        );
    }
}

/// Every `--flag` the README names anywhere is a flag of some globaldns
/// command, but for the other programs' flags it quotes.
#[test]
fn every_flag_the_readme_names_exists() {
    const OTHERS: [&str; 6] = [
        "--create-namespace",
        "--dnssec",
        "--nocapture",
        "--release",
        "--set",
        "--test",
    ];
    fn longs(command: &clap::Command, into: &mut std::collections::BTreeSet<String>) {
        for arg in command.get_arguments() {
            into.extend(arg.get_long().map(|l| format!("--{l}")));
            into.extend(
                arg.get_all_aliases()
                    .into_iter()
                    .flatten()
                    .map(|a| format!("--{a}")),
            );
        }
        for sub in command.get_subcommands() {
            longs(sub, into);
        }
    }
    let mut flags = std::collections::BTreeSet::new();
    longs(&Cli::command(), &mut flags);
    for flag in words_starting(&(readme() + &reference()), "--", '-') {
        assert!(
            flags.contains(&flag) || OTHERS.contains(&flag.as_str()),
            "the README names {flag}, which no globaldns command takes"
        );
    }
}

/// The first command of the README serves the example on 127.0.0.1:5353,
/// as its comment says, and the second is `cargo test`.
#[test]
fn the_two_commands_are_at_the_top_and_true() {
    let text = readme();
    let top: String = text.lines().take(25).collect::<Vec<_>>().join("\n");
    let serve = "cargo run --release -- serve --registry examples/registry.yaml";
    assert!(
        top.contains(&format!("{serve}   # serves on 127.0.0.1:5353")),
        "{top}"
    );
    assert!(top.contains("\ncargo test "), "{top}");
    let cli = Cli::try_parse_from(["globaldns", "serve", "--registry", "examples/registry.yaml"])
        .unwrap();
    let Command::Serve(args) = cli.command else {
        panic!("serve")
    };
    let config = args.config().unwrap();
    assert_eq!(config.listen, "127.0.0.1:5353".parse().unwrap());
    // Issue 28 item 4: the first command's server answers the README's
    // `globaldns explain NAME`, which asks 127.0.0.1:9153 by default.
    let explain = Cli::try_parse_from(["globaldns", "explain", "httpbin.bar.global"]).unwrap();
    let Command::Explain(explain) = explain.command else {
        panic!("explain")
    };
    assert_eq!(config.admin, Some(explain.admin));
    assert!(config.admin_is_default);
}

/// The anchors of a page's headings, as GitHub makes them: lower case,
/// spaces as `-`, punctuation other than `-` and `_` dropped.
fn anchors(text: &str) -> Vec<String> {
    let mut in_code = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if in_code || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim();
        out.push(
            title
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect(),
        );
    }
    out
}

/// Every relative link of the README and docs/ leads to a file, and every
/// link within a page to one of its headings.
#[test]
fn every_relative_link_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        pages.push(entry.unwrap().path());
    }
    let mut links = 0;
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        for (i, _) in text.match_indices("](") {
            let target = &text[i + 2..];
            let target = &target[..target.find(')').unwrap()];
            if let Some(anchor) = target.strip_prefix('#') {
                assert!(
                    anchors(&text).contains(&anchor.to_string()),
                    "{}: no heading for #{anchor}",
                    page.display()
                );
                links += 1;
                continue;
            }
            if target.contains("://") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
            let resolved = page.parent().unwrap().join(path);
            assert!(
                resolved.exists(),
                "{}: link to {target} leads nowhere",
                page.display()
            );
            if !anchor.is_empty() {
                let other = std::fs::read_to_string(&resolved).unwrap();
                assert!(
                    anchors(&other).contains(&anchor.to_string()),
                    "{}: {} has no heading for #{anchor}",
                    page.display(),
                    resolved.display()
                );
            }
            links += 1;
        }
    }
    assert!(links >= 8, "{links} links checked");
}

/// Issue 26: no page of the repository points at a file a user's clone
/// does not have (the development machine's `../shared/`, say): every
/// Markdown page's relative links stay inside the repository, and none
/// names `../shared`.
#[test]
fn no_page_names_a_file_outside_the_repository() {
    fn pages(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() && !name.starts_with('.') && name != "target" {
                pages(&path, out);
            } else if name.ends_with(".md") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .canonicalize()
        .unwrap();
    let mut found = Vec::new();
    pages(&root, &mut found);
    assert!(found.len() >= 8, "{found:?}");
    for page in found {
        let text = std::fs::read_to_string(&page).unwrap();
        assert!(
            !text.contains("../shared"),
            "{} names ../shared",
            page.display()
        );
        for (i, _) in text.match_indices("](") {
            let target = &text[i + 2..];
            let target = &target[..target.find(')').unwrap_or(0)];
            let path = target.split('#').next().unwrap();
            if path.is_empty() || target.contains("://") {
                continue;
            }
            if let Ok(resolved) = page.parent().unwrap().join(path).canonicalize() {
                assert!(
                    resolved.starts_with(&root),
                    "{}: {target} is outside the repository",
                    page.display()
                );
            }
        }
    }
}
