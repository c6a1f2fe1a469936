//! Leader election on a `coordination.k8s.io/v1` Lease: only the holder
//! writes ServiceEntries; every replica serves DNS.
//!
//! The holder renews every third of the lease duration. Another replica
//! takes the lease over only once the holder has not renewed for a whole
//! duration. Every write is a `replace` carrying the resourceVersion that was
//! read, so of two replicas racing for an expired lease exactly one wins
//! (the other gets 409 Conflict and stays a follower).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};

/// What to do with the lease as read.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// No lease yet: create it, held by us.
    Create,
    /// Ours: renew it.
    Renew,
    /// Someone else's, expired: take it over.
    TakeOver,
    /// Someone else's, live: stay a follower.
    Follow,
}

/// Decides from the lease's spec (`None`: no lease), who we are and the
/// time. Pure.
pub fn step(spec: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> Step {
    let Some(spec) = spec else {
        return Step::Create;
    };
    if spec.holder_identity.as_deref() == Some(identity) {
        return Step::Renew;
    }
    let held_until = spec.renew_time.as_ref().map(|t| {
        let seconds = spec.lease_duration_seconds.unwrap_or(0);
        t.0 + SignedDuration::from_secs(i64::from(seconds))
    });
    match (spec.holder_identity.as_deref(), held_until) {
        (None | Some(""), _) => Step::TakeOver,
        (Some(_), Some(until)) if until > now => Step::Follow,
        _ => Step::TakeOver,
    }
}

/// One replica's side of the election.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
}

impl Elector {
    pub fn new(api: Api<Lease>, name: &str, identity: &str, duration: Duration) -> Self {
        Self {
            api,
            name: name.to_string(),
            identity: identity.to_string(),
            duration,
        }
    }

    /// How often [`Elector::try_lead`] should run.
    pub fn renew_every(&self) -> Duration {
        self.duration / 3
    }

    /// Reads the lease and creates, renews or takes it over as [`step`]
    /// says. `Ok(true)` while we hold it. A conflict (someone else wrote
    /// first) is `Ok(false)`, not an error.
    pub async fn try_lead(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let current = self.api.get_opt(&self.name).await?;
        let spec = current.as_ref().and_then(|l| l.spec.as_ref());
        let seconds = i32::try_from(self.duration.as_secs()).unwrap_or(i32::MAX);
        let result = match step(spec, &self.identity, now) {
            Step::Follow => return Ok(false),
            Step::Create => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.identity.clone()),
                        lease_duration_seconds: Some(seconds),
                        acquire_time: Some(MicroTime(now)),
                        renew_time: Some(MicroTime(now)),
                        lease_transitions: Some(0),
                        ..LeaseSpec::default()
                    }),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            step @ (Step::Renew | Step::TakeOver) => {
                let mut lease = current.expect("a lease was read");
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                if step == Step::TakeOver {
                    spec.holder_identity = Some(self.identity.clone());
                    spec.acquire_time = Some(MicroTime(now));
                    spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                }
                spec.renew_time = Some(MicroTime(now));
                spec.lease_duration_seconds = Some(seconds);
                // metadata.resourceVersion is kept: the write fails with
                // 409 if anyone wrote since we read.
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
            }
        };
        match result {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests;
