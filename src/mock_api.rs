//! Test support for the Kubernetes code: answers for a tower-test mock API
//! server, written once for every module's tests.

use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::{Handle, SendResponse};

pub type ApiHandle = Handle<Request<Body>, Response<Body>>;

/// A 200 answer with `value` as JSON.
pub fn ok(value: &Value) -> Response<Body> {
    Response::builder()
        .body(Body::from(serde_json::to_vec(value).expect("JSON")))
        .expect("response")
}

/// An API error, as the API server writes it: a `Status` object.
pub fn status(code: u16, reason: &str) -> Response<Body> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                      "reason": reason, "code": code, "message": reason});
    Response::builder()
        .status(code)
        .body(Body::from(serde_json::to_vec(&body).expect("JSON")))
        .expect("response")
}

/// Answers with the request's own body, as an apply or create returns
/// the object written.
pub async fn echo(request: Request<Body>) -> Response<Body> {
    let body = request.into_body().collect_bytes().await.expect("body");
    Response::builder()
        .body(Body::from(body.to_vec()))
        .expect("response")
}

/// Keeps a watch open: the answer comes only long after any test ends.
pub fn hold_open(send: SendResponse<Response<Body>>) {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        drop(send);
    });
}

/// The next request the client makes, within 5 s.
pub async fn next(handle: &mut ApiHandle) -> (Request<Body>, SendResponse<Response<Body>>) {
    tokio::time::timeout(Duration::from_secs(5), handle.next_request())
        .await
        .expect("a request within 5 s")
        .expect("the client is alive")
}
