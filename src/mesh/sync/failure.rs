//! A write of the sync that failed: which object, why (a reason an
//! operator can act on, also the label of `globaldns_sync_failures_total`),
//! and the API server's own words, in one line.

use std::fmt;

/// Why a write failed, from the API server's status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// 401/403: the ServiceAccount may not do it (RBAC as installed lacks a
    /// verb, or the token is not accepted).
    Forbidden,
    /// 409: someone else holds the object or a field of it.
    Conflict,
    /// 400/422: the API server refused the object (its schema, a webhook).
    Invalid,
    /// 429, 5xx, or no answer: the API server is busy or away.
    Unavailable,
    Other,
}

impl Reason {
    /// Every reason, in the order of the metric's series.
    pub const ALL: [Reason; 5] = [
        Reason::Forbidden,
        Reason::Conflict,
        Reason::Invalid,
        Reason::Unavailable,
        Reason::Other,
    ];

    /// The reason of a failed request.
    pub fn of(error: &kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => match status.code {
                401 | 403 => Reason::Forbidden,
                409 => Reason::Conflict,
                400 | 422 => Reason::Invalid,
                429 | 500..=599 => Reason::Unavailable,
                _ => Reason::Other,
            },
            kube::Error::HyperError(_) | kube::Error::Service(_) => Reason::Unavailable,
            _ => Reason::Other,
        }
    }

    /// The metric label.
    pub fn label(self) -> &'static str {
        crate::metrics::SYNC_FAILURE_REASONS[self.index()]
    }

    /// The index of this reason in [`Reason::ALL`].
    pub fn index(self) -> usize {
        Reason::ALL.iter().position(|r| *r == self).expect("in ALL")
    }
}

/// One write that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// `apply` or `delete`.
    pub write: &'static str,
    /// The object, as `Kind name`.
    pub name: String,
    pub reason: Reason,
    /// What the API server said (code, reason, message), or the client's
    /// error when there was no answer.
    pub message: String,
}

impl Failure {
    /// A pass that could not start: which version of Istio's API to write
    /// was not found out (`write` is `discover`, the object the group).
    pub fn discovery(error: &crate::mesh::api_version::DiscoveryError) -> Self {
        use crate::mesh::api_version::DiscoveryError;
        let reason = match error {
            DiscoveryError::Api { source, .. } => Reason::of(source),
            DiscoveryError::NotServed { .. } | DiscoveryError::NoKnownVersion { .. } => {
                Reason::Other
            }
        };
        Self {
            write: "discover",
            name: crate::mesh::GROUP.to_string(),
            reason,
            message: error.to_string(),
        }
    }

    pub fn new(write: &'static str, object: &impl fmt::Display, error: &kube::Error) -> Self {
        let message = match error {
            kube::Error::Api(status) => {
                format!("{} {}: {}", status.code, status.reason, status.message)
            }
            other => other.to_string(),
        };
        Self {
            write,
            name: object.to_string(),
            reason: Reason::of(error),
            message,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({}): {}",
            self.write,
            self.name,
            self.reason.label(),
            self.message
        )
    }
}

/// The failures of a pass in one line: the first few in full, then a count.
pub fn summary(failures: &[Failure]) -> String {
    const SHOWN: usize = 3;
    let mut text: Vec<String> = failures
        .iter()
        .take(SHOWN)
        .map(ToString::to_string)
        .collect();
    if failures.len() > SHOWN {
        text.push(format!("and {} more", failures.len() - SHOWN));
    }
    text.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(Box::new(
            kube::core::Status::failure("it says no", reason).with_code(code),
        ))
    }

    #[test]
    fn every_reason_has_its_own_label() {
        let labels: Vec<&str> = Reason::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(
            labels,
            ["forbidden", "conflict", "invalid", "unavailable", "other"]
        );
    }

    #[test]
    fn reasons_follow_the_status_code() {
        assert_eq!(Reason::of(&api(403, "Forbidden")), Reason::Forbidden);
        assert_eq!(Reason::of(&api(409, "Conflict")), Reason::Conflict);
        assert_eq!(Reason::of(&api(422, "Invalid")), Reason::Invalid);
        assert_eq!(
            Reason::of(&api(503, "ServiceUnavailable")),
            Reason::Unavailable
        );
        assert_eq!(
            Reason::of(&api(429, "TooManyRequests")),
            Reason::Unavailable
        );
        assert_eq!(Reason::of(&api(404, "NotFound")), Reason::Other);
    }

    /// One line, the API server's words once: no Debug dump of the Status.
    #[test]
    fn a_failure_reads_in_one_line() {
        let failure = Failure::new(
            "apply",
            &"ServiceEntry httpbin-bar-global",
            &api(403, "Forbidden"),
        );
        assert_eq!(
            failure.to_string(),
            "apply ServiceEntry httpbin-bar-global (forbidden): 403 Forbidden: it says no"
        );
        let many: Vec<Failure> = (0..5)
            .map(|i| {
                Failure::new(
                    "apply",
                    &format!("ServiceEntry s{i}"),
                    &api(403, "Forbidden"),
                )
            })
            .collect();
        let line = summary(&many);
        assert!(line.ends_with("; and 2 more"), "{line}");
        assert_eq!(line.matches("(forbidden)").count(), 3);
    }
}
