//! The PrometheusRule (`manifests/monitoring/prometheusrule.yaml`) against
//! a real API server with the Prometheus Operator's CRD installed: the CRD
//! generated from a pinned prometheus-operator release's Go types by
//! `conformance/monitoring/crd.sh` (`GLOBALDNS_PROMETHEUS_CRDS`, set by
//! .ci/run). The object is accepted, nothing of it is pruned, and the
//! schema is live (a bad duration is refused).

use futures::FutureExt;
use serde_json::Value;

use crate::suite::Suite;

pub const TESTS: [(&str, crate::Test); 1] = [(
    "monitoring::the_prometheus_rule_is_stored_whole_by_the_operator_s_crd",
    |s| stored_whole(s).boxed(),
)];

const CRD: &str = "prometheusrules.monitoring.coreos.com";

fn kubectl(suite: &Suite, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    suite.env.kubectl(args, stdin)
}

async fn stored_whole(suite: &Suite) {
    let crds = std::env::var("GLOBALDNS_PROMETHEUS_CRDS").expect(
        "GLOBALDNS_PROMETHEUS_CRDS names the PrometheusRule CRD (conformance/monitoring/crd.sh OUT; .ci/run sets it)",
    );
    let had_crd = kubectl(suite, &["get", "crd", CRD], None).is_ok();
    if !had_crd {
        kubectl(suite, &["apply", "--server-side", "-f", &crds], None).expect("the CRD installs");
        kubectl(
            suite,
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                &format!("crd/{CRD}"),
            ],
            None,
        )
        .expect("the CRD is served");
    }
    let path = suite
        .env
        .repo
        .join("manifests/monitoring/prometheusrule.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let file: Value = serde_saphyr::from_str(&text).expect("the file parses");
    let result = kubectl(
        suite,
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "globaldns-e2e",
            "-f",
            "-",
        ],
        Some(&text),
    );
    let stored = kubectl(
        suite,
        &[
            "-n",
            "globaldns",
            "get",
            "prometheusrule",
            "globaldns",
            "-o",
            "json",
        ],
        None,
    );
    // A bad duration, as a typo would give: the schema refuses it.
    let refused = kubectl(
        suite,
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--field-manager",
            "globaldns-e2e",
            "-f",
            "-",
        ],
        Some(&text.replacen("for: 5m", "for: 5 minutes", 1)),
    );
    let _ = kubectl(
        suite,
        &[
            "-n",
            "globaldns",
            "delete",
            "prometheusrule",
            "globaldns",
            "--ignore-not-found",
        ],
        None,
    );
    if !had_crd {
        let _ = kubectl(suite, &["delete", "crd", CRD, "--ignore-not-found"], None);
    }
    result.expect("the PrometheusRule is accepted");
    let stored: Value = serde_json::from_str(&stored.expect("it is stored")).unwrap();
    assert_eq!(
        stored["spec"], file["spec"],
        "the API server pruned or changed the spec"
    );
    let refused = refused.expect_err("`for: 5 minutes` is accepted");
    assert!(refused.contains("spec.groups[0].rules[0].for"), "{refused}");
}
