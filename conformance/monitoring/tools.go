//go:build tools

// Package monitoring pins what generates the PrometheusRule CRD the
// end-to-end suite installs: the prometheus-operator API types of a
// release, and the controller-gen that turns Go types into CRDs (the way
// prometheus-operator generates its own). Nothing here is built into
// globaldns; see crd.sh.
package monitoring

import (
	_ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
)
