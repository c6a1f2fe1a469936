//! `TXT _explain.<host>` (`serve --explain-txt`, off by default): a
//! one-line provenance of a served name, for a developer who can `dig`
//! from a pod but cannot reach the admin endpoint (design §6, issue 28).
//!
//! The DNS side only: which names are asked ([`target`]) and the record
//! ([`record`]); the line itself comes from an [`Explainer`] the server
//! puts in the [`ExplainSlot`] every snapshot shares, so that this module
//! knows nothing of registries.

use std::sync::{Arc, OnceLock};

use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{LowerName, Name, RData, Record};

/// The first label of an explain query.
pub const LABEL: &[u8] = b"_explain";

/// Writes the provenance line of `host` (lower case, no trailing dot),
/// served in zones of SOA serial `serial`; `exists` says whether the name
/// is in the zones (so that the line never contradicts the answer for it).
/// `None`: not now (the explainer's rate limit), answered REFUSED.
pub trait Explainer: Send + Sync + std::fmt::Debug {
    fn line(&self, host: &str, serial: u32, exists: bool) -> Option<String>;
}

/// Where the server puts its [`Explainer`] once it has one; empty (every
/// `_explain` name answered as any other name) unless `--explain-txt`.
/// Shared by every snapshot the controller publishes.
pub type ExplainSlot = OnceLock<Arc<dyn Explainer>>;

/// The host an explain query asks about: `name` without its first label
/// when that label is [`LABEL`] (any case) and something follows it.
pub fn target(name: &LowerName) -> Option<Name> {
    let name = Name::from(name);
    let first = name.iter().next()?;
    if !first.eq_ignore_ascii_case(LABEL) || name.num_labels() < 2 {
        return None;
    }
    Some(name.base_name())
}

/// Whether a wire-format question name (length-prefixed labels) starts
/// with the label [`LABEL`]: the fast path leaves such names to the
/// general one while explaining is on.
pub fn asks(wire_name: &[u8]) -> bool {
    let len = LABEL.len();
    wire_name.first() == Some(&(len as u8))
        && wire_name
            .get(1..=len)
            .is_some_and(|label| label.eq_ignore_ascii_case(LABEL))
}

/// The TXT record answering `owner`: `line` cut into character-strings
/// of at most 255 bytes (RFC 1035 §3.3.14), TTL 0 so that no cache keeps
/// a provenance that changes with every registry version.
pub fn record(owner: Name, line: &str) -> Record {
    let mut strings = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        let mut cut = rest.len().min(255);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        strings.push(rest[..cut].to_string());
        rest = &rest[cut..];
    }
    Record::from_rdata(owner, 0, RData::TXT(TXT::new(strings)))
}
