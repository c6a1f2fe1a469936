//! The wiring merged into the cluster DNS configuration already there, so
//! that `stub-config | kubectl apply -f -` adds globaldns' zones instead of
//! replacing what the cluster had:
//!
//! - kube-dns: the `stubDomains` of ConfigMap `kube-system/kube-dns` keep
//!   every domain but the served zones, which are added or replaced; the
//!   ConfigMap's other keys (`upstreamNameservers`...) are kept as they are.
//! - CoreDNS: in the `Corefile` of ConfigMap `kube-system/coredns`, a server
//!   block for a served zone on port 53 is replaced by globaldns' block for
//!   it (put where the first such block was), every other block, comment
//!   and blank line is kept byte for byte; a block that also serves other
//!   zones keeps serving them, without the served zone's key.
//!
//! Pure text in, text out; reading the ConfigMaps is [`super::configmap_of`]'s.

use std::collections::BTreeMap;

use serde_json::Value;

/// Why an existing configuration cannot be merged into: named so that the
/// user can look at it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MergeError {
    #[error(
        "stubDomains of ConfigMap kube-system/kube-dns is not a JSON object of domain → list of servers: {0}"
    )]
    StubDomains(String),
    #[error("Corefile of ConfigMap kube-system/coredns: {0}")]
    Corefile(String),
}

/// The zone a kube-dns stub domain or a Corefile server key names, in the
/// form zones are compared: lower case, no trailing dot.
fn normal(zone: &str) -> String {
    zone.trim_end_matches('.').to_ascii_lowercase()
}

/// The `stubDomains` JSON with every zone forwarded to `upstream`, the
/// other domains kept. `existing` is the ConfigMap's value, if it has one.
pub fn stub_domains(
    existing: Option<&str>,
    zones: &[String],
    upstream: &str,
) -> Result<String, MergeError> {
    let mut domains: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(text) = existing.filter(|t| !t.trim().is_empty()) {
        let value: Value =
            serde_json::from_str(text).map_err(|e| MergeError::StubDomains(e.to_string()))?;
        let Value::Object(map) = value else {
            return Err(MergeError::StubDomains(format!("found `{}`", text.trim())));
        };
        for (domain, servers) in map {
            let servers: Vec<String> = serde_json::from_value(servers)
                .map_err(|e| MergeError::StubDomains(format!("`{domain}`: {e}")))?;
            domains.insert(domain, servers);
        }
    }
    domains.retain(|domain, _| !zones.contains(&normal(domain)));
    for zone in zones {
        domains.insert(zone.clone(), vec![upstream.to_string()]);
    }
    let entries: Vec<String> = domains
        .iter()
        .map(|(domain, servers)| {
            let servers: Vec<String> = servers.iter().map(|s| json(s)).collect();
            format!("{}: [{}]", json(domain), servers.join(", "))
        })
        .collect();
    Ok(format!("{{{}}}", entries.join(", ")))
}

fn json(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// One top-level piece of a Corefile: text between blocks (blank lines,
/// comments), or a server block with its keys.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Block {
        /// The keys' text as written, up to the opening brace.
        head: &'a str,
        /// The keys (`global:53`, `dns://other:53`).
        keys: Vec<&'a str>,
        /// From the opening brace to the closing one, included.
        body: &'a str,
    },
}

/// Splits a Corefile into its top-level pieces. Braces inside comments
/// (`#` to the end of the line) and quoted strings do not count.
fn pieces(corefile: &str) -> Result<Vec<Piece<'_>>, MergeError> {
    let mut out = Vec::new();
    let bytes = corefile.as_bytes();
    let (mut depth, mut line) = (0usize, 1usize);
    let (mut text_start, mut block_start, mut keys_start) = (0, 0, 0);
    let (mut in_comment, mut in_quote) = (false, false);
    let mut keys: Vec<&str> = Vec::new();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\n' => {
                line += 1;
                in_comment = false;
            }
            _ if in_comment => {}
            b'"' => in_quote = !in_quote,
            _ if in_quote => {}
            b'#' => in_comment = true,
            b'{' => {
                if depth == 0 {
                    // The keys are the words on the line(s) since the last
                    // comment or block; the text before them is kept apart.
                    let header = &corefile[text_start..i];
                    let (before, words) = split_header(header);
                    keys_start = text_start + before.len();
                    keys = words.split_whitespace().collect();
                    if keys.is_empty() {
                        return Err(MergeError::Corefile(format!(
                            "line {line}: a block without a server key"
                        )));
                    }
                    block_start = i;
                }
                depth += 1;
            }
            b'}' => {
                if depth == 0 {
                    return Err(MergeError::Corefile(format!(
                        "line {line}: `}}` closes nothing"
                    )));
                }
                depth -= 1;
                if depth == 0 {
                    if keys_start > text_start {
                        out.push(Piece::Text(&corefile[text_start..keys_start]));
                    }
                    out.push(Piece::Block {
                        head: &corefile[keys_start..block_start],
                        keys: std::mem::take(&mut keys),
                        body: &corefile[block_start..=i],
                    });
                    text_start = i + 1;
                }
            }
            _ => {}
        }
    }
    if depth > 0 {
        return Err(MergeError::Corefile(format!(
            "{depth} block(s) not closed at the end"
        )));
    }
    if text_start < corefile.len() {
        out.push(Piece::Text(&corefile[text_start..]));
    }
    Ok(out)
}

/// The text before a block's keys (whole lines up to the keys' line) and
/// the keys' part.
fn split_header(header: &str) -> (&str, &str) {
    let trimmed = header.trim_end_matches([' ', '\t']);
    let cut = trimmed.rfind('\n').map_or(0, |n| n + 1);
    header.split_at(cut)
}

/// Whether a server key serves `zone` on port 53 over plain DNS (`zone`,
/// `zone.`, `zone:53`, `dns://zone:53`), the way the cluster DNS is asked.
fn serves(key: &str, zone: &str) -> bool {
    let key = key.strip_prefix("dns://").unwrap_or(key);
    if key.contains("://") {
        return false; // tls://, https://, grpc://: another server
    }
    let (host, port) = match key.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (key, None),
    };
    port.is_none_or(|p| p == "53") && normal(host) == zone
}

/// The Corefile with a server block per zone (`blocks`, one per zone in
/// order) in place of the blocks that served those zones.
pub fn corefile(existing: &str, zones: &[String], blocks: &str) -> Result<String, MergeError> {
    let mut out = String::new();
    let mut placed = false;
    for piece in pieces(existing)? {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Block { head, keys, body } => {
                let kept: Vec<&str> = keys
                    .iter()
                    .copied()
                    .filter(|key| !zones.iter().any(|zone| serves(key, zone)))
                    .collect();
                if kept.len() < keys.len() && !placed {
                    out.push_str(blocks.trim_end_matches('\n'));
                    placed = true;
                    if !kept.is_empty() {
                        out.push('\n');
                    }
                }
                if kept.len() == keys.len() {
                    out.push_str(head);
                    out.push_str(body);
                } else if !kept.is_empty() {
                    out.push_str(&kept.join(" "));
                    out.push(' ');
                    out.push_str(body);
                }
            }
        }
    }
    if !placed {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(blocks);
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

/// The servers kube-dns' `stubDomains` JSON (`text`) forwards `zone` to,
/// `None` when it has no entry for the zone; for `doctor`, which compares
/// them with globaldns' ClusterIP.
pub fn stub_domain_servers(text: &str, zone: &str) -> Result<Option<Vec<String>>, MergeError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let value: Value =
        serde_json::from_str(text).map_err(|e| MergeError::StubDomains(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(MergeError::StubDomains(format!("found `{}`", text.trim())));
    };
    for (domain, servers) in map {
        if normal(&domain) == zone {
            let servers: Vec<String> = serde_json::from_value(servers)
                .map_err(|e| MergeError::StubDomains(format!("`{domain}`: {e}")))?;
            return Ok(Some(servers));
        }
    }
    Ok(None)
}

/// The upstreams of the `forward .` directive in the Corefile's server
/// block for `zone` on port 53 (`forward . 10.0.0.10:53` gives
/// `["10.0.0.10:53"]`); `None` when no block serves the zone, an empty list
/// when its block forwards nowhere. For `doctor`.
pub fn corefile_forwards(corefile: &str, zone: &str) -> Result<Option<Vec<String>>, MergeError> {
    for piece in pieces(corefile)? {
        let Piece::Block { keys, body, .. } = piece else {
            continue;
        };
        if !keys.iter().any(|key| serves(key, zone)) {
            continue;
        }
        let mut upstreams = Vec::new();
        for line in body.trim_matches(['{', '}']).lines() {
            let line = line.split('#').next().unwrap_or_default();
            let mut words = line.split_whitespace();
            // `forward . IP` or `forward <zone> IP` (FROM the block's zone).
            let from = (words.next() == Some("forward"))
                .then(|| words.next())
                .flatten();
            if from.is_some_and(|f| f == "." || normal(f) == zone) {
                upstreams.extend(
                    words
                        .take_while(|w| *w != "{")
                        .map(|w| w.strip_prefix("dns://").unwrap_or(w).to_string()),
                );
            }
        }
        return Ok(Some(upstreams));
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
