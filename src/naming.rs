//! Name rules shared by the registry and the command line: the Kubernetes
//! label rules (DNS-1123, DNS-1035) and DNS host names.

/// Longest DNS name in presentation form without the trailing dot (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 253;
/// Longest DNS label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// Why a name breaks a rule, phrased to follow "`x` is not a valid ...".
pub type NameError = String;

/// DNS-1123 label: lower-case alphanumerics and `-`, starting and ending
/// alphanumeric, at most 63 characters. Kubernetes namespaces follow it.
pub fn dns1123_label(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > MAX_LABEL_LEN {
        return Err(format!("must be at most {MAX_LABEL_LEN} characters"));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("must consist of lower-case letters, digits and '-'".into());
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("must start and end with a letter or digit".into());
    }
    Ok(())
}

/// DNS-1035 label: a DNS-1123 label that starts with a letter. Kubernetes
/// Service names follow it.
pub fn dns1035_label(s: &str) -> Result<(), NameError> {
    dns1123_label(s)?;
    if !s.as_bytes()[0].is_ascii_lowercase() {
        return Err("must start with a lower-case letter".into());
    }
    Ok(())
}

/// DNS-1123 subdomain: dot-separated DNS-1123 labels, at most 253 characters.
pub fn dns1123_subdomain(s: &str) -> Result<(), NameError> {
    if s.len() > MAX_NAME_LEN {
        return Err(format!("must be at most {MAX_NAME_LEN} characters"));
    }
    for label in s.split('.') {
        dns1123_label(label).map_err(|e| format!("label `{label}` {e}"))?;
    }
    Ok(())
}

/// A Kubernetes label key: an optional DNS-1123 subdomain prefix and `/`,
/// then a name of at most 63 characters (alphanumerics, `-`, `_`, `.`,
/// starting and ending alphanumeric).
pub fn label_key(s: &str) -> Result<(), NameError> {
    let name = match s.rsplit_once('/') {
        Some((prefix, name)) => {
            dns1123_subdomain(prefix).map_err(|e| format!("prefix `{prefix}` {e}"))?;
            name
        }
        None => s,
    };
    if name.is_empty() {
        return Err("the name must not be empty".into());
    }
    label_value(name)
}

/// A Kubernetes label value: at most 63 characters, alphanumerics, `-`,
/// `_` and `.`, starting and ending alphanumeric; or empty.
pub fn label_value(s: &str) -> Result<(), NameError> {
    if s.len() > MAX_LABEL_LEN {
        return Err(format!("must be at most {MAX_LABEL_LEN} characters"));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err("must consist of letters, digits, '-', '_' and '.'".into());
    }
    let edge = |b: Option<&u8>| b.is_none_or(|b| b.is_ascii_alphanumeric());
    if !edge(s.as_bytes().first()) || !edge(s.as_bytes().last()) {
        return Err("must start and end with a letter or digit".into());
    }
    Ok(())
}

/// Normalises a zone given on the command line: lower case, no trailing dot,
/// and a valid DNS name.
pub fn zone(s: &str) -> Result<String, NameError> {
    let z = s.trim_end_matches('.').to_ascii_lowercase();
    if z.is_empty() {
        return Err("the root zone cannot be served".into());
    }
    dns1123_subdomain(&z)?;
    Ok(z)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
