//! One line of `doctor`'s report, and the two ways it is printed: a table
//! for people, JSON (`-o json`) for scripts.

use std::fmt::Write;

use serde::Serialize;

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing to do.
    Pass,
    /// Works, but not as intended, or cannot be told: read the message.
    Warn,
    /// Breaks `.global` calls: the fix says what to do. `doctor` exits 1.
    Fail,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// One check's result: which check (a stable id such as `dns.wiring`), on
/// which object (`ConfigMap kube-system/coredns`), what was found, and for
/// a warning or a failure, what to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The kubeconfig context of the cluster it concerns (empty for the
    /// checks across clusters).
    pub context: String,
    pub check: &'static str,
    pub status: Status,
    pub object: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    /// A passed check.
    pub fn pass(
        check: &'static str,
        object: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(check, Status::Pass, object, message, None)
    }

    /// A warning, with what to do about it.
    pub fn warn(
        check: &'static str,
        object: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::new(check, Status::Warn, object, message, Some(fix.into()))
    }

    /// A failure, with its fix.
    pub fn fail(
        check: &'static str,
        object: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::new(check, Status::Fail, object, message, Some(fix.into()))
    }

    fn new(
        check: &'static str,
        status: Status,
        object: impl Into<String>,
        message: impl Into<String>,
        fix: Option<String>,
    ) -> Self {
        Self {
            context: String::new(),
            check,
            status,
            object: object.into(),
            message: message.into(),
            fix,
        }
    }
}

/// The findings as a table: one block per cluster (its context), a line per
/// check (status, check, object, message), the fix indented below a
/// warning or failure, and a count at the end.
pub fn table(findings: &[Finding]) -> String {
    let mut out = String::new();
    let check_width = findings.iter().map(|f| f.check.len()).max().unwrap_or(0);
    let object_width = findings
        .iter()
        .map(|f| f.object.len())
        .max()
        .unwrap_or(0)
        .min(48);
    let mut context: Option<&str> = None;
    for finding in findings {
        if context != Some(finding.context.as_str()) {
            context = Some(&finding.context);
            let title = if finding.context.is_empty() {
                "across the clusters".to_string()
            } else {
                format!("context {}", finding.context)
            };
            let _ = writeln!(out, "{}== {title}", if out.is_empty() { "" } else { "\n" });
        }
        let _ = writeln!(
            out,
            "{:<4}  {:<check_width$}  {:<object_width$}  {}",
            finding.status.word(),
            finding.check,
            finding.object,
            finding.message
        );
        if let Some(fix) = &finding.fix {
            let _ = writeln!(out, "      fix: {fix}");
        }
    }
    let count = |s| findings.iter().filter(|f| f.status == s).count();
    let _ = writeln!(
        out,
        "\n{} passed, {} warning(s), {} failed",
        count(Status::Pass),
        count(Status::Warn),
        count(Status::Fail)
    );
    out
}

/// The findings as a JSON array of objects with the fields of [`Finding`]
/// (`context`, `check`, `status` `pass`/`warn`/`fail`, `object`, `message`,
/// `fix` when there is one).
pub fn json(findings: &[Finding]) -> String {
    serde_json::to_string_pretty(findings).unwrap_or_else(|_| "[]".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_groups_by_context_and_prints_fixes_and_counts() {
        let mut a = Finding::pass(
            "globaldns.service",
            "Service globaldns/globaldns",
            "10.0.0.10",
        );
        a.context = "east".into();
        let mut b = Finding::fail(
            "dns.wiring",
            "ConfigMap kube-system/coredns",
            "no block",
            "apply it",
        );
        b.context = "east".into();
        let c = Finding::warn(
            "mesh.vip-agreement",
            "httpbin.bar.global",
            "differs",
            "look",
        );
        let text = table(&[a, b, c]);
        assert!(text.starts_with("== context east\n"), "{text}");
        assert!(text.contains("FAIL  dns.wiring"), "{text}");
        assert!(text.contains("      fix: apply it\n"), "{text}");
        assert!(text.contains("== across the clusters"), "{text}");
        assert!(
            text.ends_with("1 passed, 1 warning(s), 1 failed\n"),
            "{text}"
        );
    }

    #[test]
    fn json_has_a_status_word_and_no_fix_when_none() {
        let text = json(&[Finding::pass("istio.versions", "networking.istio.io", "v1")]);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value[0]["status"], "pass");
        assert_eq!(value[0]["check"], "istio.versions");
        assert!(value[0].get("fix").is_none());
    }
}
