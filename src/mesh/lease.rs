//! Leader election on a `coordination.k8s.io/v1` Lease: only the holder
//! writes ServiceEntries; every replica serves DNS.
//!
//! The holder renews every third of the lease duration. Another replica
//! takes the lease over only once the holder has not renewed for a whole
//! duration. Every write is a `replace` carrying the resourceVersion that was
//! read, so of two replicas racing for an expired lease exactly one wins
//! (the other gets 409 Conflict and stays a follower).
//!
//! A holder stops writing before anyone else may take over: it counts
//! itself the holder only until two thirds of the duration after it sent
//! its last successful renewal ([`Elector::holds`]), the renew deadline
//! client-go uses too (10 s of 15). The other third covers clock drift
//! between replicas and a write already on the wire.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

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
    /// Until when we may act as the holder; `None`: we are not it.
    deadline: Mutex<Option<Instant>>,
}

impl Elector {
    pub fn new(api: Api<Lease>, name: &str, identity: &str, duration: Duration) -> Self {
        Self {
            api,
            name: name.to_string(),
            identity: identity.to_string(),
            duration,
            deadline: Mutex::new(None),
        }
    }

    /// Whether we hold the lease now: the last [`Elector::try_lead`] won it
    /// and its renew deadline has not passed. Checked before every write.
    pub fn holds(&self) -> bool {
        self.deadline
            .lock()
            .expect("lease deadline lock")
            .is_some_and(|deadline| Instant::now() < deadline)
    }

    fn set_deadline(&self, deadline: Option<Instant>) {
        *self.deadline.lock().expect("lease deadline lock") = deadline;
    }

    /// How often [`Elector::try_lead`] should run.
    pub fn renew_every(&self) -> Duration {
        self.duration / 3
    }

    /// Reads the lease and creates, renews or takes it over as [`step`]
    /// says. `Ok(true)` while we hold it. A conflict (someone else wrote
    /// first) is `Ok(false)`, not an error. An error leaves the deadline of
    /// the last renewal standing: a passing API hiccup does not end the
    /// holding, but the deadline does.
    pub async fn try_lead(&self) -> Result<bool, kube::Error> {
        let held = self.try_lead_once().await;
        if let Ok(false) = held {
            self.set_deadline(None);
        }
        held
    }

    /// Gives the lease up if we hold it, so that another replica takes over
    /// at once instead of a duration later (on shutdown). Best effort: a
    /// failure leaves the lease to expire.
    pub async fn release(&self) -> Result<(), kube::Error> {
        self.set_deadline(None);
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            // Someone wrote since we read: it is not ours to release.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn try_lead_once(&self) -> Result<bool, kube::Error> {
        // Measured from before the read: the API server's renewTime is
        // later than this, so the deadline errs early.
        let sent = Instant::now();
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
            Ok(_) => {
                self.set_deadline(Some(sent + self.duration * 2 / 3));
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests;
