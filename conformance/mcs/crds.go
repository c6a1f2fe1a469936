// Package mcs pins the Multi-Cluster Services API release (KEP-1645,
// sigs.k8s.io/mcs-api) whose published CRDs the end-to-end suite
// installs; see crds.sh. Nothing here is built into globaldns.
package mcs

import _ "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
