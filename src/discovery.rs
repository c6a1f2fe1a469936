//! Which versions of an API group the API server serves: one `GET
//! /apis/<group>` (Kubernetes "API discovery"; every authenticated user may
//! read it, through the `system:discovery` ClusterRole), so that globaldns
//! writes and reads the objects of other projects (Istio's, the MCS API's)
//! in a version the cluster has, whichever release of them it runs.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIGroup;

/// The versions of `group` the API server serves, its preferred one first
/// (as discovery lists them); empty when it does not serve the group at
/// all (a 404: its CRDs are not installed).
pub async fn served_versions(
    client: &kube::Client,
    group: &str,
) -> Result<Vec<String>, kube::Error> {
    let request = http::Request::get(format!("/apis/{group}"))
        .body(Vec::new())
        .expect("a GET of a group is a valid request");
    match client.request::<APIGroup>(request).await {
        Ok(found) => Ok(found.versions.into_iter().map(|v| v.version).collect()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The first of `known` (newest first) that `served` lists.
pub fn newest<T: Copy>(
    known: &[T],
    served: &[String],
    version: impl Fn(T) -> &'static str,
) -> Option<T> {
    known
        .iter()
        .copied()
        .find(|k| served.iter().any(|s| s == version(*k)))
}
