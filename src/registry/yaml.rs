//! The YAML parser's options for registries, shared by the decode
//! ([`super::parse`], [`super::file::reload`]) and the search for a problem's
//! line ([`super::locate`]).

/// Nodes (maps, lists, scalars) a YAML registry may hold: about 15 per
/// service, so room for well over a million services.
const MAX_YAML_NODES: usize = 32 << 20;

/// The YAML parser's options for registries.
pub(super) fn options() -> serde_saphyr::Options {
    // YAML 1.2 booleans only: under YAML 1.1 rules a namespace called `no`
    // or `n` would silently become `false`.
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    // The parser's default budget stops at 250,000 nodes, about 17,000
    // services. Every node costs at least a byte of input, which the budget
    // already caps (256 MiB), and aliases, the one way to make many nodes
    // from few bytes, keep their default caps.
    let mut budget = serde_saphyr::budget::Budget::default();
    budget.max_nodes = MAX_YAML_NODES;
    budget.max_events = 2 * MAX_YAML_NODES;
    options.budget = Some(budget);
    options
}

/// The YAML parser's options for the direct decode of `text` into the
/// model, the fast path that any failure sends to the checked one.
///
/// Text without merge keys (`<<`, the common case) is read leaving
/// repeated keys to the model, whose structs and mappings refuse them
/// themselves (serde's "duplicate field", [`super::model`]'s "duplicate
/// key"): the parser then keeps no set of the keys of every mapping, and a
/// registry is read ~6% faster (100,000 services: 1,350 → 1,270 ms of
/// parsing on one core). Merge keys need that set, so text with a `<<`
/// anywhere (in a string too: that only costs the 6%) keeps the parser's
/// own checks.
pub(super) fn direct_options(text: &str) -> serde_saphyr::Options {
    let mut options = options();
    if !text.contains("<<") {
        options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::PassThrough;
        // Cannot happen without a `<<`; says so if it ever did.
        options.merge_keys = serde_saphyr::MergeKeyPolicy::Error;
    }
    options
}
