//! Name rules shared by the registry and the command line: the Kubernetes
//! label rules (DNS-1123, DNS-1035) and DNS host names.

/// Longest DNS name in presentation form without the trailing dot (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 253;
/// Longest DNS label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// Why a name breaks a rule, with the offending part of it. Its Display is
/// phrased to follow "`x` is not a valid ...", as in "must not be empty" or
/// "label \`a_b\` must consist of lower-case letters, digits and '-'";
/// registry problems, command-line errors and Kubernetes warnings embed it.
/// Lengths are in bytes, as the rules count them (every allowed character
/// is one byte).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty where the rule wants at least one character: a
    /// DNS-1123 or DNS-1035 label (and so each label of a subdomain).
    #[error("must not be empty")]
    Empty,
    /// The name is `len` bytes long, more than the rule's `max`:
    /// [`MAX_LABEL_LEN`] for a label, a label value and the name part of a
    /// label key; [`MAX_NAME_LEN`] for a subdomain.
    #[error("must be at most {max} characters")]
    TooLong { len: usize, max: usize },
    /// `c`, the first character outside a DNS-1123 label's alphabet
    /// (RFC 1123 §2.1 as Kubernetes validates it): lower-case ASCII
    /// letters, digits and `-`.
    #[error("must consist of lower-case letters, digits and '-'")]
    BadCharacter { c: char },
    /// `c`, the first character outside the alphabet of a Kubernetes
    /// label value or label key name (`metadata.labels`): ASCII letters
    /// of either case, digits, `-`, `_` and `.`.
    #[error("must consist of letters, digits, '-', '_' and '.'")]
    BadLabelCharacter { c: char },
    /// The name starts or ends with `c`, which is allowed inside but not
    /// at either end: a DNS-1123 label, a label value and a label key name
    /// start and end with an ASCII letter or digit.
    #[error("must start and end with a letter or digit")]
    BadEdge { c: char },
    /// A DNS-1035 label (RFC 1035 §2.3.1 as Kubernetes validates it)
    /// starts with `first`, not a lower-case letter.
    #[error("must start with a lower-case letter")]
    BadStart { first: char },
    /// The label `label` of a DNS-1123 subdomain breaks the DNS-1123 label
    /// rule as `error` says.
    #[error("label `{label}` {error}")]
    InLabel {
        label: String,
        error: Box<NameError>,
    },
    /// The prefix `prefix` of a label key (before its last `/`) is not a
    /// DNS-1123 subdomain, as `error` says.
    #[error("prefix `{prefix}` {error}")]
    InPrefix {
        prefix: String,
        error: Box<NameError>,
    },
    /// A label key's name (after the `/`, or all of it) is empty.
    #[error("the name must not be empty")]
    EmptyKeyName,
    /// A zone given on the command line is the root (empty, or only dots).
    #[error("the root zone cannot be served")]
    RootZone,
}

/// The first character of `s` for which `allowed` is false, if any.
fn first_not(s: &str, allowed: impl Fn(char) -> bool) -> Option<char> {
    s.chars().find(|&c| !allowed(c))
}

/// DNS-1123 label (RFC 1123 §2.1, as Kubernetes validates it): lower-case
/// ASCII alphanumerics and `-`, starting and ending alphanumeric, 1 to 63
/// characters. Kubernetes namespaces and port names follow it.
/// Errors: [`NameError::Empty`], [`NameError::TooLong`],
/// [`NameError::BadCharacter`], [`NameError::BadEdge`], checked in that order.
pub fn dns1123_label(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.len() > MAX_LABEL_LEN {
        return Err(NameError::TooLong {
            len: s.len(),
            max: MAX_LABEL_LEN,
        });
    }
    if let Some(c) = first_not(s, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
    }) {
        return Err(NameError::BadCharacter { c });
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err(NameError::BadEdge { c: '-' });
    }
    Ok(())
}

/// DNS-1035 label (RFC 1035 §2.3.1, as Kubernetes validates it): a
/// DNS-1123 label that starts with a lower-case letter. Kubernetes Service
/// names follow it. Errors: those of [`dns1123_label`], then
/// [`NameError::BadStart`].
pub fn dns1035_label(s: &str) -> Result<(), NameError> {
    dns1123_label(s)?;
    let first = char::from(s.as_bytes()[0]);
    if !first.is_ascii_lowercase() {
        return Err(NameError::BadStart { first });
    }
    Ok(())
}

/// DNS-1123 subdomain (RFC 1123 §2.1, as Kubernetes validates it):
/// dot-separated DNS-1123 labels, at most 253 characters. Errors:
/// [`NameError::TooLong`] for the whole name, else [`NameError::InLabel`]
/// for the first label that breaks the label rule.
pub fn dns1123_subdomain(s: &str) -> Result<(), NameError> {
    if s.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong {
            len: s.len(),
            max: MAX_NAME_LEN,
        });
    }
    for label in s.split('.') {
        dns1123_label(label).map_err(|error| NameError::InLabel {
            label: label.to_string(),
            error: Box::new(error),
        })?;
    }
    Ok(())
}

/// A Kubernetes label key (`metadata.labels`): an optional DNS-1123
/// subdomain prefix and `/`, then a name of 1 to 63 characters
/// (ASCII alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric).
/// Errors: [`NameError::InPrefix`] for a bad prefix,
/// [`NameError::EmptyKeyName`], else those of [`label_value`] for the name.
pub fn label_key(s: &str) -> Result<(), NameError> {
    let name = match s.rsplit_once('/') {
        Some((prefix, name)) => {
            dns1123_subdomain(prefix).map_err(|error| NameError::InPrefix {
                prefix: prefix.to_string(),
                error: Box::new(error),
            })?;
            name
        }
        None => s,
    };
    if name.is_empty() {
        return Err(NameError::EmptyKeyName);
    }
    label_value(name)
}

/// A Kubernetes label value (`metadata.labels`): empty, or at most 63
/// ASCII alphanumerics, `-`, `_` and `.`, starting and ending alphanumeric.
/// Errors: [`NameError::TooLong`], [`NameError::BadLabelCharacter`],
/// [`NameError::BadEdge`], checked in that order.
pub fn label_value(s: &str) -> Result<(), NameError> {
    if s.len() > MAX_LABEL_LEN {
        return Err(NameError::TooLong {
            len: s.len(),
            max: MAX_LABEL_LEN,
        });
    }
    if let Some(c) = first_not(s, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
    }) {
        return Err(NameError::BadLabelCharacter { c });
    }
    let edge = [s.chars().next(), s.chars().next_back()];
    if let Some(c) = edge
        .into_iter()
        .flatten()
        .find(|c| !c.is_ascii_alphanumeric())
    {
        return Err(NameError::BadEdge { c });
    }
    Ok(())
}

/// Normalises a zone given on the command line: lower case, no trailing
/// dot, and a DNS-1123 subdomain. Errors: [`NameError::RootZone`], else
/// those of [`dns1123_subdomain`].
pub fn zone(s: &str) -> Result<String, NameError> {
    let z = s.trim_end_matches('.').to_ascii_lowercase();
    if z.is_empty() {
        return Err(NameError::RootZone);
    }
    dns1123_subdomain(&z)?;
    Ok(z)
}

/// The label between a Multi-Cluster Services zone and the namespaces
/// below it: hosts are `<service>.<namespace>.svc.<zone>` (MCS DNS
/// specification, schema 1.0.0, §2.3.1).
pub const CLUSTERSET_LABEL: &str = "svc";

/// The host suffix of the MCS zone `zone` (`clusterset.local` →
/// `svc.clusterset.local`): what joins the served zones' host suffixes, so
/// that [`crate::registry::Service::host`] of it is the service's
/// clusterset host `<name>.<namespace>.svc.<zone>` (MCS DNS spec §2.3.1).
pub fn clusterset_suffix(zone: &str) -> String {
    format!("{CLUSTERSET_LABEL}.{zone}")
}

/// The MCS zone whose hosts end in `suffix`, when `suffix` is a host
/// suffix made by [`clusterset_suffix`] (`svc.clusterset.local` →
/// `clusterset.local`); `None` for a `--zone`'s suffix. The command line
/// refuses `--zone` values of that shape, so the suffix alone says which
/// form a zone is served in.
pub fn clusterset_zone(suffix: &str) -> Option<&str> {
    suffix
        .strip_prefix(CLUSTERSET_LABEL)?
        .strip_prefix('.')
        .filter(|zone| !zone.is_empty())
}

/// The DNS zone that holds the hosts ending in `suffix`: the MCS zone's
/// apex for a clusterset suffix ([`clusterset_zone`]), `suffix` itself
/// otherwise. What the cluster DNS forwards and the SOA is served at.
pub fn dns_zone(suffix: &str) -> &str {
    clusterset_zone(suffix).unwrap_or(suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The MCS host suffix and its zone read each other back; a plain
    /// zone is its own DNS zone.
    #[test]
    fn clusterset_suffixes() {
        assert_eq!(
            clusterset_suffix("clusterset.local"),
            "svc.clusterset.local"
        );
        assert_eq!(
            clusterset_zone("svc.clusterset.local"),
            Some("clusterset.local")
        );
        assert_eq!(dns_zone("svc.clusterset.local"), "clusterset.local");
        for plain in ["global", "svc", "svcx.local", "a.svc.local"] {
            assert_eq!(clusterset_zone(plain), None, "{plain}");
            assert_eq!(dns_zone(plain), plain);
        }
    }

    #[test]
    fn label_rules() {
        assert!(dns1123_label("httpbin").is_ok());
        assert!(dns1123_label("9lives").is_ok());
        assert!(dns1035_label("9lives").is_err());
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64)] {
            assert!(dns1123_label(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn label_rules_of_kubernetes() {
        assert!(label_key("istio").is_ok());
        assert!(label_key("app.kubernetes.io/name").is_ok());
        assert!(label_key("security.istio.io/tlsMode").is_ok());
        for bad in ["", "/x", "-a", "a b", "Bad_Prefix/x", &"k".repeat(64)] {
            assert!(label_key(bad).is_err(), "{bad:?}");
        }
        assert!(label_value("").is_ok());
        assert!(label_value("eastwestgateway").is_ok());
        assert!(label_value("a.b_c-1").is_ok());
        assert!(label_value("-a").is_err());
        assert!(label_value("a/b").is_err());
    }

    #[test]
    fn zones_are_normalised() {
        assert_eq!(zone("Global.").unwrap(), "global");
        assert_eq!(zone("mesh.example.com").unwrap(), "mesh.example.com");
        assert!(zone(".").is_err());
        assert!(zone("a..b").is_err());
    }

    #[test]
    fn errors_carry_the_offending_input() {
        use NameError::*;
        assert_eq!(dns1123_label(""), Err(Empty));
        assert_eq!(
            dns1123_label(&"a".repeat(64)),
            Err(TooLong { len: 64, max: 63 })
        );
        assert_eq!(dns1123_label("aB_"), Err(BadCharacter { c: 'B' }));
        assert_eq!(dns1123_label("né"), Err(BadCharacter { c: 'é' }));
        assert_eq!(dns1123_label("a-"), Err(BadEdge { c: '-' }));
        assert_eq!(dns1035_label("9lives"), Err(BadStart { first: '9' }));
        let bad_label = |label: &str, error| InLabel {
            label: label.into(),
            error: Box::new(error),
        };
        assert_eq!(dns1123_subdomain("a..b"), Err(bad_label("", Empty)));
        assert_eq!(
            dns1123_subdomain(&"a.".repeat(127)),
            Err(TooLong { len: 254, max: 253 })
        );
        assert_eq!(
            label_key("Bad_Prefix/x"),
            Err(InPrefix {
                prefix: "Bad_Prefix".into(),
                error: Box::new(bad_label("Bad_Prefix", BadCharacter { c: 'B' })),
            })
        );
        assert_eq!(label_key("a/"), Err(EmptyKeyName));
        assert_eq!(label_value("a b"), Err(BadLabelCharacter { c: ' ' }));
        assert_eq!(label_value("a."), Err(BadEdge { c: '.' }));
        assert_eq!(label_value("_a"), Err(BadEdge { c: '_' }));
        assert_eq!(zone(".."), Err(RootZone));
    }

    #[test]
    fn reasons_read_as_before() {
        let reason = |r: Result<(), NameError>| r.unwrap_err().to_string();
        assert_eq!(reason(dns1123_label("")), "must not be empty");
        assert_eq!(
            reason(dns1123_label(&"a".repeat(64))),
            "must be at most 63 characters"
        );
        assert_eq!(
            reason(dns1123_label("a_b")),
            "must consist of lower-case letters, digits and '-'"
        );
        assert_eq!(
            reason(dns1123_label("-a")),
            "must start and end with a letter or digit"
        );
        assert_eq!(
            reason(dns1035_label("9lives")),
            "must start with a lower-case letter"
        );
        assert_eq!(
            reason(dns1123_subdomain("a.B")),
            "label `B` must consist of lower-case letters, digits and '-'"
        );
        assert_eq!(
            reason(label_key("a..b/x")),
            "prefix `a..b` label `` must not be empty"
        );
        assert_eq!(reason(label_key("a/")), "the name must not be empty");
        assert_eq!(
            reason(label_value("a/b")),
            "must consist of letters, digits, '-', '_' and '.'"
        );
        assert_eq!(
            zone(".").unwrap_err().to_string(),
            "the root zone cannot be served"
        );
    }
}
