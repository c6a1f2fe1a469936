//! The `networking.istio.io` version globaldns writes and reads Istio's
//! objects in: the newest one the API server serves ([`crate::discovery`]),
//! asked again on every sync pass, so that one globaldns works with every
//! Istio release from 1.1 on (see [`IstioApiVersion`]).

use tokio_util::sync::CancellationToken;

use crate::discovery::{newest, served_versions};
use crate::watch::{RETRY_MAX, RETRY_MIN};

use super::{GROUP, IstioApiVersion};

/// Why the versions of a group could not be told.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("the API server does not serve {group}: {hint}")]
    NotServed { group: String, hint: &'static str },
    #[error(
        "the API server serves {group} only in {served}, none of which globaldns knows ({known})"
    )]
    NoKnownVersion {
        group: String,
        served: String,
        known: String,
    },
    #[error("cannot read which versions of {group} the API server serves: {source}")]
    Api {
        group: String,
        #[source]
        source: kube::Error,
    },
}

/// The newest `networking.istio.io` version the API server serves: `v1`,
/// else `v1beta1`, else `v1alpha3` (see [`IstioApiVersion`] for which
/// Istio releases serve which). Errors: Istio's CRDs are not installed, or
/// serve none of these, or the API server cannot be asked.
pub async fn istio_api_version(client: &kube::Client) -> Result<IstioApiVersion, DiscoveryError> {
    let served = served_versions(client, GROUP)
        .await
        .map_err(|source| DiscoveryError::Api {
            group: GROUP.to_string(),
            source,
        })?;
    pick_istio(&served)
}

/// [`istio_api_version`], asked again on the watches' retry schedule
/// (250 ms doubling to 5 s) until it is told, for a watch of `what` that
/// cannot start without it; `None` once `shutdown` comes first. The first
/// failure of a streak is a warning, the rest are debug lines.
pub async fn istio_api_version_until(
    client: &kube::Client,
    shutdown: &CancellationToken,
    what: &str,
) -> Option<IstioApiVersion> {
    let mut wait = RETRY_MIN;
    let mut warned = false;
    loop {
        match istio_api_version(client).await {
            Ok(version) => return Some(version),
            Err(e) if !warned => {
                tracing::warn!("{what} not watched yet, retrying: {e}");
                warned = true;
            }
            Err(e) => tracing::debug!("{what} not watched yet: {e}"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(RETRY_MAX);
    }
}

/// [`istio_api_version`]'s choice among the `served` versions.
pub fn pick_istio(served: &[String]) -> Result<IstioApiVersion, DiscoveryError> {
    if served.is_empty() {
        return Err(DiscoveryError::NotServed {
            group: GROUP.to_string(),
            hint: "install Istio (its CRDs) in this cluster first",
        });
    }
    newest(
        &IstioApiVersion::NEWEST_FIRST,
        served,
        IstioApiVersion::version,
    )
    .ok_or_else(|| DiscoveryError::NoKnownVersion {
        group: GROUP.to_string(),
        served: served.join(", "),
        known: IstioApiVersion::NEWEST_FIRST
            .map(IstioApiVersion::version)
            .join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock_api::{next, ok, status};
    use http::{Request, Response};
    use kube::client::Body;
    use serde_json::json;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// Issue 24: `networking.istio.io/v1` is served only from Istio 1.22;
    /// 1.5–1.21 serve v1beta1 and v1alpha3, 1.1–1.4 v1alpha3 alone. The
    /// newest served is written, whatever order discovery lists them in.
    #[test]
    fn the_newest_served_istio_version_is_chosen() {
        let pick = |served: &[&str]| pick_istio(&strings(served)).unwrap();
        assert_eq!(pick(&["v1", "v1beta1", "v1alpha3"]), IstioApiVersion::V1);
        assert_eq!(pick(&["v1alpha3", "v1beta1"]), IstioApiVersion::V1beta1);
        assert_eq!(pick(&["v1alpha3"]), IstioApiVersion::V1alpha3);
        let none = pick_istio(&[]).unwrap_err().to_string();
        assert!(
            none.contains("does not serve networking.istio.io"),
            "{none}"
        );
        let unknown = pick_istio(&strings(&["v2"])).unwrap_err().to_string();
        assert!(unknown.contains("only in v2"), "{unknown}");
    }

    /// Discovery is one GET of the group; a 404 means the group is not
    /// served (no CRDs), said as such, not as an API error.
    #[tokio::test]
    async fn discovery_reads_the_group_and_takes_a_404_as_not_served() {
        let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(mock, "default");
        let asked = tokio::spawn({
            let client = client.clone();
            async move { istio_api_version(&client).await }
        });
        let (request, send) = next(&mut handle).await;
        assert_eq!(
            (request.method().as_str(), request.uri().path()),
            ("GET", "/apis/networking.istio.io")
        );
        send.send_response(ok(&json!({
            "kind": "APIGroup", "apiVersion": "v1", "name": "networking.istio.io",
            "versions": [
                {"groupVersion": "networking.istio.io/v1beta1", "version": "v1beta1"},
                {"groupVersion": "networking.istio.io/v1alpha3", "version": "v1alpha3"}
            ],
            "preferredVersion": {"groupVersion": "networking.istio.io/v1beta1", "version": "v1beta1"}
        })));
        assert_eq!(asked.await.unwrap().unwrap(), IstioApiVersion::V1beta1);

        let asked = tokio::spawn(async move { istio_api_version(&client).await });
        let (_, send) = next(&mut handle).await;
        send.send_response(status(404, "NotFound"));
        let err = asked.await.unwrap().unwrap_err();
        assert!(matches!(err, DiscoveryError::NotServed { .. }), "{err}");
    }
}
