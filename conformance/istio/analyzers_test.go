package conformance

// What Istio says about the objects before it uses them:
//
//   - validation, as the admission webhook runs it: each kind's
//     ValidateConfig (pkg/config/validation/validation.go ValidateServiceEntry,
//     ValidateGateway, ValidateDestinationRule; pkg/config/validation/agent/
//     validation.go for addresses and names). An error fails; warnings are
//     printed and fail too, since `kubectl apply` shows them to the user;
//   - every analyzer of `istioctl analyze` (pkg/config/analysis/analyzers
//     AllCombined, run by pkg/config/analysis/local IstiodAnalyzer) over the
//     rendered objects plus a stand-in east-west gateway Pod and Service, as a
//     cluster following Istio's multicluster guide has them. Every message is
//     printed with its level; one at Error level fails.

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"istio.io/istio/pilot/pkg/config/kube/crd"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/analysis/analyzers"
	"istio.io/istio/pkg/config/analysis/diag"
	"istio.io/istio/pkg/config/analysis/local"
	"istio.io/istio/pkg/config/schema/collections"
	"istio.io/istio/pkg/config/schema/gvk"
	"istio.io/istio/pkg/test"
)

func TestValidation(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c renderCase, cluster string) {
		cfgs := parseRendered(t, cluster, c.rendered[cluster])
		for _, cfg := range cfgs {
			s, ok := collections.PilotGatewayAPI().FindByGroupKind(cfg.GroupVersionKind)
			if !ok {
				t.Errorf("%s %s/%s: Istio has no schema for it", cfg.GroupVersionKind.Kind, cfg.Namespace, cfg.Name)
				continue
			}
			warn, err := s.ValidateConfig(cfg)
			if err != nil {
				t.Errorf("%s %s/%s: invalid: %v", cfg.GroupVersionKind.Kind, cfg.Namespace, cfg.Name, err)
			}
			if warn != nil && oldThresholdWarning(c, cfg, warn) {
				// The objects for Istio 1.1–1.4 (--istio-api-version
				// v1alpha3) name the outlier threshold consecutiveErrors,
				// the only name those versions know (consecutive5xxErrors
				// came with 1.5); today's validation warns that it is
				// deprecated. Only this warning, only in such a case, is
				// printed rather than failed: the same rule rendered for
				// v1beta1 or v1 must not warn at all. (This Istio ignores
				// the field: TestFailover notes it.)
				t.Logf("note: %s %s/%s: warning for the Istio 1.1–1.4 field: %v", cfg.GroupVersionKind.Kind, cfg.Namespace, cfg.Name, warn)
			} else if warn != nil {
				t.Errorf("%s %s/%s: warning: %v", cfg.GroupVersionKind.Kind, cfg.Namespace, cfg.Name, warn)
			}
		}
		t.Logf("%d objects valid: %s", len(cfgs), kinds(c.rendered[cluster]))
	})
}

// oldThresholdWarning: warn is exactly the deprecation of
// consecutiveErrors, on a DestinationRule of a case rendered for Istio
// 1.1–1.4.
func oldThresholdWarning(c renderCase, cfg config.Config, warn error) bool {
	return !failoverRendered(c) && slices.Contains(c.flags, "v1alpha3") &&
		cfg.GroupVersionKind == gvk.DestinationRule &&
		warn.Error() == "outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or consecutive5xxErrors instead"
}

func kinds(y string) string {
	cfgs, _, _ := crd.ParseInputs(y)
	n := map[string]int{}
	for _, c := range cfgs {
		n[c.GroupVersionKind.Kind]++
	}
	return fmt.Sprint(n)
}

// standIn is the east-west gateway of Istio's multicluster guide
// (samples/multicluster/gen-eastwest-gateway.sh): a Pod with the labels the
// rendered Gateway selects, and the Service exposing its 15443.
func standIn(selector map[string]string) string {
	var labels strings.Builder
	for k, v := range selector {
		fmt.Fprintf(&labels, "    %s: %q\n", k, v)
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: istio-system
---
apiVersion: v1
kind: Pod
metadata:
  name: istio-eastwestgateway-0
  namespace: istio-system
  labels:
%sspec:
  containers:
  - name: istio-proxy
    image: istio/proxyv2
    ports:
    - containerPort: 15443
      protocol: TCP
---
apiVersion: v1
kind: Service
metadata:
  name: istio-eastwestgateway
  namespace: istio-system
spec:
  type: LoadBalancer
  selector:
%s  ports:
  - name: tls
    port: 15443
    targetPort: 15443
    protocol: TCP
`, labels.String(), labels.String())
}

func TestAnalyzers(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c renderCase, cluster string) {
		sa := local.NewSourceAnalyzer(analyzers.AllCombined(), "", "istio-system", nil)
		// The test reader keeps Pods, Services and Namespaces, which the
		// file reader of `istioctl analyze` leaves to the live cluster.
		err := sa.AddTestReaderKubeSource([]local.ReaderSource{
			{Name: cluster + ".yaml", Reader: strings.NewReader(c.rendered[cluster])},
			{Name: "stand-in-gateway.yaml", Reader: strings.NewReader(standIn(c.selector))},
		})
		if err != nil {
			t.Fatalf("the analyzers cannot read the objects: %v", err)
		}
		res, err := sa.Analyze(test.NewStop(t))
		if err != nil {
			t.Fatalf("analysis failed: %v", err)
		}
		for _, m := range res.Messages {
			t.Logf("%s", m.String())
			if m.Type.Level() == diag.Error {
				t.Errorf("analyzer error: %s", m.String())
			}
		}
		t.Logf("%d analyzers ran, %d skipped (inputs absent), %d messages",
			len(res.ExecutedAnalyzers), len(res.SkippedAnalyzers), len(res.Messages))
	})
}
