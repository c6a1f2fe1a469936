// Package conformance asks Istio's own code what it makes of the objects
// `globaldns render` writes: its config validation, the xDS a client
// sidecar and an east-west gateway are sent (pilot/test/xds), and its
// analyzers. Everything is in the _test.go files; run it with run.sh.
package conformance
