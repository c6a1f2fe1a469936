package conformance

// Shared by every file: where the rendered objects come from (run.sh), the
// registry they were rendered from, what a user may expect of each cluster
// (derived from the registry and DESIGN.md §2 and §5, never from the rendered
// objects), and small helpers around Istio's test server. Which Istio code
// decides each assertion is said in the file that makes it.

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"sigs.k8s.io/yaml"

	meshconfig "istio.io/api/mesh/v1alpha1"
	networking "istio.io/api/networking/v1alpha3"
	"istio.io/istio/pilot/pkg/config/kube/crd"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/networking/util"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pilot/test/xdstest"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/schema/gvk"
	"istio.io/istio/pkg/log"
	"istio.io/istio/pkg/network"
)

// renderedEnv names the directory run.sh renders into. Without it nothing
// here can be judged, so the whole run fails (it does not skip: a CI that
// forgot to render must not pass).
const renderedEnv = "GLOBALDNS_RENDERED"

// logEnv sets the level of Istio's own logging (debug, info, warn, error,
// none). Its test server logs thousands of lines about the informers of a
// fake Kubernetes, so the default is none.
const logEnv = "ORACLE_ISTIO_LOG"

func TestMain(m *testing.M) {
	if os.Getenv(renderedEnv) == "" {
		fmt.Fprintf(os.Stderr, "%s is not set: these tests judge objects rendered by a globaldns binary.\n"+
			"Run them through the harness, from the repository root:\n"+
			"    conformance/istio/run.sh target/debug/globaldns\n", renderedEnv)
		os.Exit(1)
	}
	level := os.Getenv(logEnv)
	if level == "" {
		level = "none"
	}
	for _, s := range log.Scopes() {
		s.SetOutputLevel(log.StringToLevel(level))
	}
	os.Exit(m.Run())
}

// requiredCases are the renders the tests rely on; run.sh makes each one.
// A case missing from the rendered directory fails the run.
var requiredCases = map[string]string{
	"registry":             "examples/registry.yaml, defaults",
	"bookinfo":             "examples/bookinfo.yaml, defaults (a gateway given by name)",
	"vm":                   "examples/vm.yaml, defaults (endpoints outside Kubernetes)",
	"two-zones":            "examples/bookinfo.yaml with --zone global --zone region",
	"selector":             "examples/registry.yaml with a non-default --gateway-selector",
	"destination-rules":    "examples/registry.yaml with --destination-rules",
	"tcp":                  "testdata/tcp.yaml: TCP and several ports, a gateway on another port",
	"ipv6":                 "testdata/tcp.yaml with IPv6 VIPs beside the IPv4 ones",
	"api-v1beta1":          "examples/registry.yaml written as networking.istio.io/v1beta1",
	"api-v1alpha3":         "examples/bookinfo.yaml written as networking.istio.io/v1alpha3",
	"no-per-cluster-names": "examples/bookinfo.yaml with --no-per-cluster-names: the services' hosts only",
	"failover":             "examples/failover.yaml: a failover order, weights and outlier detection over three exporting clusters and one without exports",
	"failover-eds":         "testdata/failover.yaml: the failover policy seen from a cluster exporting nothing (STATIC hosts only)",
	"clusterset":           "examples/bookinfo.yaml with --clusterset-zone clusterset.local: the MCS form's hosts beside .global, no per-cluster names there",
}

// Defaults of `globaldns render` (DESIGN.md §5), used when a case's flags
// leave them out.
const (
	defaultZone        = "global"
	defaultSelector    = "istio=eastwestgateway"
	defaultGatewayPort = 15443
	clusterDomain      = "cluster.local"
	tlsModeLabel       = "security.istio.io/tlsMode"
	// The namespace of the client workloads. Not istio-system, so that the
	// objects' export to other namespaces is part of what is checked.
	clientNamespace = "client-app"
	// The east-west gateway runs in istio-system in Istio's multicluster
	// samples (samples/multicluster/gen-eastwest-gateway.sh).
	gatewayNamespace = "istio-system"
)

// The registry file form (DESIGN.md §2); fields the tests do not use are
// left out and ignored.
type registry struct {
	Clusters []regCluster `json:"clusters"`
	Services []regService `json:"services"`
	// The registry-wide failover policy (issue 27 item 2): each field
	// applies to the services that leave it out.
	Defaults regPolicy `json:"defaults"`
}

// regPolicy is the failover policy of a service or of the registry's
// `defaults`. A nil field is one left out (a service's `failover: []` is
// its own empty order, not the default's).
type regPolicy struct {
	// Clusters preferred after the client's own, in order.
	Failover *[]string `json:"failover"`
	// Cluster -> relative share within its tier (1 when left out).
	Weights *map[string]uint32 `json:"weights"`
	// Overrides of Istio's outlier detection defaults, field by field.
	OutlierDetection *regOutlier `json:"outlierDetection"`
}

// regOutlier: durations as the registry writes them (250ms, 10s, 1m, 1h).
type regOutlier struct {
	Consecutive5xxErrors *uint32 `json:"consecutive5xxErrors"`
	Interval             *string `json:"interval"`
	BaseEjectionTime     *string `json:"baseEjectionTime"`
	MaxEjectionPercent   *uint32 `json:"maxEjectionPercent"`
}

type regCluster struct {
	Name     string       `json:"name"`
	Network  string       `json:"network"`
	Locality string       `json:"locality"`
	Gateways []regGateway `json:"gateways"`
}

type regGateway struct {
	Address string `json:"address"`
	Port    uint32 `json:"port"`
}

type regService struct {
	Name         string        `json:"name"`
	Namespace    string        `json:"namespace"`
	ExportedFrom []string      `json:"exportedFrom"`
	Ports        []regPort     `json:"ports"`
	Endpoints    []regEndpoint `json:"endpoints"`
	// The service's own failover policy (`failover`, `weights`,
	// `outlierDetection`), over the registry's `defaults`.
	regPolicy
}

type regPort struct {
	Name     string `json:"name"`
	Number   uint32 `json:"number"`
	Protocol string `json:"protocol"`
}

type regEndpoint struct {
	Address        string            `json:"address"`
	Network        string            `json:"network"`
	Locality       string            `json:"locality"`
	Ports          map[string]uint32 `json:"ports"`
	Labels         map[string]string `json:"labels"`
	ServiceAccount string            `json:"serviceAccount"`
}

// gatewayPorts are the ports a cluster's east-west gateway takes `.global`
// traffic on: those of its gateways in the registry (README: the Gateway has
// a server on the port of each of the cluster's gateways), 15443 by default.
func (r registry) gatewayPorts(cluster string) []uint32 {
	var out []uint32
	for _, g := range r.cluster(cluster).Gateways {
		port := g.Port
		if port == 0 {
			port = defaultGatewayPort
		}
		if !slices.Contains(out, port) {
			out = append(out, port)
		}
	}
	slices.Sort(out)
	return out
}

func (r registry) cluster(name string) regCluster {
	for _, c := range r.Clusters {
		if c.Name == name {
			return c
		}
	}
	return regCluster{}
}

// renderCase is one render by run.sh: a registry, the flags, and one YAML
// stream per cluster of the registry.
type renderCase struct {
	name  string
	reg   registry
	flags []string
	zones []string
	// Per-cluster names are rendered (DESIGN.md §2: on unless the flags
	// say --no-per-cluster-names).
	perCluster bool
	selector   map[string]string
	// cluster name -> the YAML `globaldns render --cluster NAME` printed
	rendered map[string]string
	// host -> the addresses (A and AAAA) `globaldns zonefile` serves for it
	dns map[string][]string
}

func (c renderCase) clusterNames() []string {
	names := make([]string, 0, len(c.reg.Clusters))
	for _, cl := range c.reg.Clusters {
		names = append(names, cl.Name)
	}
	return names
}

var (
	casesOnce sync.Once
	cases     map[string]renderCase
	casesErr  error
)

// loadCases reads every case directory once: registry.yaml (the registry
// rendered), flags (the render flags, one a line) and CLUSTER.yaml per cluster.
func loadCases() (map[string]renderCase, error) {
	root := os.Getenv(renderedEnv)
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	out := map[string]renderCase{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		c := renderCase{name: e.Name(), rendered: map[string]string{}, dns: map[string][]string{}}
		b, err := os.ReadFile(filepath.Join(dir, "registry.yaml"))
		if err != nil {
			return nil, err
		}
		if err := yaml.Unmarshal(b, &c.reg); err != nil {
			return nil, fmt.Errorf("%s/registry.yaml: %v", e.Name(), err)
		}
		b, err = os.ReadFile(filepath.Join(dir, "flags"))
		if err != nil {
			return nil, err
		}
		c.flags = strings.Fields(string(b))
		c.perCluster = !slices.Contains(c.flags, "--no-per-cluster-names")
		selector := defaultSelector
		clusterset := ""
		for i := 0; i+1 < len(c.flags); i++ {
			switch c.flags[i] {
			case "--zone":
				c.zones = append(c.zones, c.flags[i+1])
			case "--clusterset-zone":
				clusterset = c.flags[i+1]
			case "--gateway-selector":
				selector = c.flags[i+1]
			}
		}
		if len(c.zones) == 0 {
			c.zones = []string{defaultZone}
		}
		// DESIGN.md §4: the Multi-Cluster Services form's hosts are
		// <name>.<namespace>.svc.<zone>, without per-cluster names.
		if clusterset != "" {
			c.zones = append(c.zones, "svc."+clusterset)
		}
		c.selector = map[string]string{}
		for _, kv := range strings.Split(selector, ",") {
			k, v, _ := strings.Cut(kv, "=")
			c.selector[k] = v
		}
		b, err = os.ReadFile(filepath.Join(dir, "zone.txt"))
		if err != nil {
			return nil, err
		}
		// master file lines: OWNER TTL IN TYPE DATA
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) == 5 && f[2] == "IN" && (f[3] == "A" || f[3] == "AAAA") {
				host := strings.TrimSuffix(f[0], ".")
				c.dns[host] = append(c.dns[host], f[4])
			}
		}
		for _, cl := range c.reg.Clusters {
			b, err := os.ReadFile(filepath.Join(dir, cl.Name+".yaml"))
			if err != nil {
				return nil, fmt.Errorf("case %s: cluster %s was not rendered: %v", e.Name(), cl.Name, err)
			}
			c.rendered[cl.Name] = string(b)
		}
		out[c.name] = c
	}
	return out, nil
}

func allCases(t *testing.T) []renderCase {
	t.Helper()
	casesOnce.Do(func() { cases, casesErr = loadCases() })
	if casesErr != nil {
		t.Fatalf("reading the rendered cases in $%s: %v", renderedEnv, casesErr)
	}
	var missing []string
	for name := range requiredCases {
		if _, ok := cases[name]; !ok {
			missing = append(missing, name+" ("+requiredCases[name]+")")
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		t.Fatalf("run.sh rendered no case %s", strings.Join(missing, ", "))
	}
	out := make([]renderCase, 0, len(cases))
	for _, c := range cases {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func oneCase(t *testing.T, name string) renderCase {
	t.Helper()
	for _, c := range allCases(t) {
		if c.name == name {
			return c
		}
	}
	t.Fatalf("no case %s", name)
	return renderCase{}
}

// forEachCluster runs fn as a subtest per case and cluster.
func forEachCluster(t *testing.T, fn func(t *testing.T, c renderCase, cluster string)) {
	for _, c := range allCases(t) {
		for _, cl := range c.clusterNames() {
			t.Run(c.name+"/"+cl, func(t *testing.T) {
				defer failOnIstioPanic(t)
				fn(t, c, cl)
			})
		}
	}
}

// failOnIstioPanic, deferred at the top of a subtest that asks Istio for
// configuration, turns a panic inside Istio's config generation into that
// subtest's failure, naming the Istio functions on the way, so that the
// other subtests still run. Such a panic is no harness problem: istiod runs
// the same code for every connected proxy with no recover on the push path
// (nothing in pilot/pkg/xds or pilot/pkg/networking/core recovers), so the
// real control plane would crash, and crash again on restart, on the same
// objects.
func failOnIstioPanic(t *testing.T) {
	if r := recover(); r != nil {
		t.Fatalf("Istio panics generating this proxy's configuration (istiod would crash): %v\n\tin %s",
			r, istioFrames(debug.Stack(), 9))
	}
}

// istioFrames names the first n Istio functions of a goroutine's stack
// (debug.Stack, taken in a deferred recover: the panic's own frames come
// first), with their files relative to the module.
func istioFrames(stack []byte, n int) string {
	var frames []string
	lines := strings.Split(string(stack), "\n")
	for i := 0; i+1 < len(lines) && len(frames) < n; i++ {
		fn := lines[i]
		if !strings.HasPrefix(fn, "istio.io/istio/") {
			continue
		}
		if j := strings.LastIndex(fn, "("); j > 0 {
			fn = fn[:j]
		}
		file := strings.TrimSpace(lines[i+1])
		if _, rest, ok := strings.Cut(file, "istio.io/istio@"); ok {
			if _, rel, ok := strings.Cut(rest, "/"); ok {
				file = rel
			}
		}
		if k := strings.LastIndex(file, " +0x"); k >= 0 {
			file = file[:k]
		}
		frames = append(frames, fmt.Sprintf("%s (%s)", strings.TrimPrefix(fn, "istio.io/istio/"), file))
	}
	return strings.Join(frames, "\n\tcalled from ")
}

// --- what a user may expect, from the registry ---

// wantEndpoint is one endpoint a cluster's traffic for a host should reach.
type wantEndpoint struct {
	addr string // host:port as Envoy is given it
	mtls bool   // sent Istio mTLS (the endpoint carries tlsMode istio)
}

// wantPort is one exported host and port as seen from one cluster.
type wantPort struct {
	service   regService
	host      string
	port      regPort
	endpoints []wantEndpoint
	// The endpoint the exporting cluster's east-west gateway delivers to,
	// when this cluster exports the service; "" otherwise.
	local string
	// For a per-cluster name `<cluster>.<host>`, that cluster (the only
	// source of its endpoints); "" for the service's own host.
	perClusterOf string
}

func (w wantPort) sni() string { return fmt.Sprintf("outbound_.%d_._.%s", w.port.Number, w.host) }

func (w wantPort) outboundCluster() string {
	return fmt.Sprintf("outbound|%d||%s", w.port.Number, w.host)
}

func (w wantPort) byName() bool {
	for _, e := range w.endpoints {
		if isHostName(e.addr) {
			return true
		}
	}
	return false
}

// absolute gives a host name its trailing dot: DESIGN.md §5 says names given
// to Envoy's resolver are absolute.
func absolute(addr string) string {
	if net.ParseIP(addr) != nil || strings.HasSuffix(addr, ".") {
		return addr
	}
	return addr + "."
}

func isHostName(hostPort string) bool {
	h, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		h = hostPort
	}
	return net.ParseIP(h) == nil
}

func hostPort(addr string, port uint32) string {
	return net.JoinHostPort(absolute(addr), fmt.Sprint(port))
}

func localService(s regService, port uint32) string {
	return hostPort(fmt.Sprintf("%s.%s.svc.%s", s.Name, s.Namespace, clusterDomain), port)
}

// expected lists, for one cluster, every exported host and port with the
// endpoints DESIGN.md §5 promises: the local Service when the cluster
// exports it, every other exporter's gateways on their gateway port, and the
// workloads outside Kubernetes on their own ports. With per-cluster names
// (DESIGN.md §2), each exporter's name `<cluster>.<host>` too, whose only
// endpoints are that exporter's: the local Service in the exporter itself,
// its gateways elsewhere.
func expected(c renderCase, cluster string) []wantPort {
	var out []wantPort
	for _, s := range c.reg.Services {
		for _, zone := range c.zones {
			for _, p := range s.Ports {
				w := wantPort{service: s, host: fmt.Sprintf("%s.%s.%s", s.Name, s.Namespace, zone), port: p}
				var perCluster []wantPort
				for _, from := range s.ExportedFrom {
					reach := exporterEndpoints(c, s, p, from, cluster)
					if from == cluster {
						w.local = localService(s, p.Number)
					}
					w.endpoints = append(w.endpoints, reach...)
					if c.perCluster && !strings.HasPrefix(zone, "svc.") {
						one := wantPort{service: s, host: from + "." + w.host, port: p, endpoints: reach, perClusterOf: from}
						if from == cluster {
							one.local = w.local
						}
						perCluster = append(perCluster, one)
					}
				}
				for _, e := range s.Endpoints {
					port := p.Number
					if n, ok := e.Ports[p.Name]; ok {
						port = n
					}
					// README: an endpoint with a serviceAccount runs a sidecar and is sent mTLS.
					mtls := e.ServiceAccount != "" || e.Labels[tlsModeLabel] == "istio"
					w.endpoints = append(w.endpoints, wantEndpoint{addr: hostPort(e.Address, port), mtls: mtls})
				}
				out = append(out, w)
				out = append(out, perCluster...)
			}
		}
	}
	return out
}

// exporterEndpoints are the endpoints of exporter `from` of service s's
// port p as cluster `cluster` reaches them: the local Service when `from`
// is `cluster`, its gateways on their gateway port otherwise; all mTLS.
func exporterEndpoints(c renderCase, s regService, p regPort, from, cluster string) []wantEndpoint {
	if from == cluster {
		return []wantEndpoint{{addr: localService(s, p.Number), mtls: true}}
	}
	var out []wantEndpoint
	for _, g := range c.reg.cluster(from).Gateways {
		port := g.Port
		if port == 0 {
			port = defaultGatewayPort
		}
		out = append(out, wantEndpoint{addr: hostPort(g.Address, port), mtls: true})
	}
	return out
}

// exportedBy keeps the ports of services the cluster itself exports.
func exportedBy(ws []wantPort) []wantPort {
	var out []wantPort
	for _, w := range ws {
		if w.local != "" {
			out = append(out, w)
		}
	}
	return out
}

// --- the rendered objects, as Istio reads them ---

// parseRendered reads a YAML stream the way Istio's test server does
// (pilot/pkg/config/kube/crd/conversion.go ParseInputs, which runs each
// kind's validation) and fails on any object Istio does not know: ParseInputs
// would silently leave it out otherwise.
func parseRendered(t *testing.T, what, y string) []config.Config {
	t.Helper()
	cfgs, unknown, err := crd.ParseInputs(y)
	if err != nil {
		t.Fatalf("%s: Istio refuses the rendered objects: %v", what, err)
	}
	for _, u := range unknown {
		t.Errorf("%s: Istio does not know %s %s/%s (apiVersion %s): it would be ignored",
			what, u.Kind, u.Namespace, u.Name, u.APIVersion)
	}
	if len(cfgs) == 0 {
		t.Fatalf("%s: nothing rendered", what)
	}
	return cfgs
}

// vips are the addresses of the rendered ServiceEntry for host, which the
// sidecar matches; they must be the VIPs DNS answers for host.
func vips(t *testing.T, c renderCase, cfgs []config.Config, host string) []string {
	t.Helper()
	for _, cfg := range cfgs {
		if cfg.GroupVersionKind != gvk.ServiceEntry {
			continue
		}
		se := cfg.Spec.(*networking.ServiceEntry)
		if slices.Contains(se.Hosts, host) {
			if len(se.Addresses) == 0 {
				t.Errorf("ServiceEntry %s for %s has no address (VIP)", cfg.Name, host)
			}
			got, dns := slices.Sorted(slices.Values(se.Addresses)), slices.Sorted(slices.Values(c.dns[host]))
			if !slices.Equal(got, dns) {
				t.Errorf("ServiceEntry %s for %s has addresses %v, but DNS answers %v", cfg.Name, host, got, dns)
			}
			return se.Addresses
		}
	}
	t.Fatalf("no ServiceEntry for %s was rendered", host)
	return nil
}

// renderedHosts are all hosts of the rendered ServiceEntries.
func renderedHosts(cfgs []config.Config) []string {
	var out []string
	for _, c := range cfgs {
		if c.GroupVersionKind == gvk.ServiceEntry {
			out = append(out, c.Spec.(*networking.ServiceEntry).Hosts...)
		}
	}
	sort.Strings(out)
	return out
}

// --- Istio's test server and the two proxies ---

// newServer loads the rendered YAML into Istio's test discovery server
// (pilot/test/xds/fake.go NewFakeDiscoveryServer), which validates every
// object the way the admission webhook does.
func newServer(t *testing.T, y string, mesh *meshconfig.MeshConfig) *xds.FakeDiscoveryServer {
	t.Helper()
	return xds.NewFakeDiscoveryServer(t, xds.FakeOptions{ConfigString: y, MeshConfig: mesh})
}

// newServerFromConfigs is newServer for objects already parsed (and so
// validated) and then changed by a negative control.
func newServerFromConfigs(t *testing.T, cfgs []config.Config, mesh *meshconfig.MeshConfig) *xds.FakeDiscoveryServer {
	t.Helper()
	return xds.NewFakeDiscoveryServer(t, xds.FakeOptions{Configs: cfgs, MeshConfig: mesh})
}

// clientSidecar is an application pod's sidecar in the cluster's network
// and locality.
func clientSidecar(s *xds.FakeDiscoveryServer, reg registry, cluster string) *model.Proxy {
	cl := reg.cluster(cluster)
	return s.SetupProxy(&model.Proxy{
		ConfigNamespace: clientNamespace,
		Locality:        proxyLocality(cl.Locality),
		Metadata:        &model.NodeMetadata{Network: network.ID(cl.Network)},
	})
}

// eastWestGateway is the cluster's east-west gateway as Istio's samples
// install it: a router labelled with the selector, in its network, asking
// for that network's view only (ISTIO_META_REQUESTED_NETWORK_VIEW), in the
// cluster's locality (the registry's `locality` of the cluster).
func eastWestGateway(s *xds.FakeDiscoveryServer, labels map[string]string, net, locality string) *model.Proxy {
	md := &model.NodeMetadata{Labels: labels, Network: network.ID(net)}
	if net != "" {
		md.RequestedNetworkView = []string{net}
	}
	return s.SetupProxy(&model.Proxy{
		Type:            model.Router,
		ConfigNamespace: gatewayNamespace,
		Locality:        proxyLocality(locality),
		Labels:          labels,
		Metadata:        md,
	})
}

// proxyLocality is a proxy's locality as istiod sets it on connection
// (pilot/pkg/xds/ads.go setTopologyLabels: the pod's topology labels, else
// the Envoy node's locality, else an empty one): never nil. The test
// server's SetupProxy leaves a proxy's Locality as given, and a nil one is
// a state istiod never builds configuration for; with it,
// loadbalancer.go applyLocalityFailover dereferences nil for any rule with
// region `failover`. A pod in a cluster is given that cluster's locality
// in the registry ("" gives the empty locality).
func proxyLocality(locality string) *corev3.Locality {
	return util.ConvertLocality(locality)
}

// --- reading Envoy configuration ---

// lbEndpoint is one endpoint Envoy is given: its address and the tlsMode it
// is marked with, which decides the transport socket Envoy picks for it.
type lbEndpoint struct {
	addr    string
	tlsMode string
}

func (e lbEndpoint) String() string {
	if e.tlsMode == "" {
		return e.addr + " (no tlsMode)"
	}
	return e.addr + " (tlsMode " + e.tlsMode + ")"
}

func endpointsOf(cla *endpointv3.ClusterLoadAssignment) []lbEndpoint {
	var out []lbEndpoint
	for _, loc := range cla.GetEndpoints() {
		for _, lb := range loc.GetLbEndpoints() {
			sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
			mode := lb.GetMetadata().GetFilterMetadata()["envoy.transport_socket_match"].GetFields()["tlsMode"].GetStringValue()
			out = append(out, lbEndpoint{
				addr:    net.JoinHostPort(sa.GetAddress(), fmt.Sprint(sa.GetPortValue())),
				tlsMode: mode,
			})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].addr < out[j].addr })
	return out
}

// clusterEndpoints gives a cluster's endpoints wherever Istio puts them: in
// the cluster itself for DNS clusters, through EDS otherwise.
func clusterEndpoints(s *xds.FakeDiscoveryServer, p *model.Proxy, c *clusterv3.Cluster) []lbEndpoint {
	if c.GetType() != clusterv3.Cluster_EDS {
		return endpointsOf(c.GetLoadAssignment())
	}
	for _, cla := range s.Endpoints(p) {
		if cla.GetClusterName() == c.GetName() {
			return endpointsOf(cla)
		}
	}
	return nil
}

const drTLS = "transport socket (DestinationRule ISTIO_MUTUAL)"

// mtlsSNI is the SNI of the Istio mTLS a cluster sends: the transport socket
// of its `tlsMode-istio` match (auto mTLS), or its only transport socket
// when a DestinationRule asks ISTIO_MUTUAL. how says which.
func mtlsSNI(t *testing.T, c *clusterv3.Cluster) (sni, how string) {
	t.Helper()
	for _, m := range c.GetTransportSocketMatches() {
		if m.GetName() == "tlsMode-istio" {
			tls := xdstest.UnmarshalAny[tlsv3.UpstreamTlsContext](t, m.GetTransportSocket().GetTypedConfig())
			return tls.GetSni(), "transport socket match tlsMode-istio"
		}
	}
	if ts := c.GetTransportSocket(); ts != nil && ts.GetName() == "envoy.transport_sockets.tls" {
		tls := xdstest.UnmarshalAny[tlsv3.UpstreamTlsContext](t, ts.GetTypedConfig())
		return tls.GetSni(), drTLS
	}
	return "", ""
}

// sniRoutes maps each SNI a listener matches on to the cluster its
// tcp_proxy sends to.
func sniRoutes(t *testing.T, l *listenerv3.Listener) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, fc := range l.GetFilterChains() {
		tcp := xdstest.ExtractTCPProxy(t, fc)
		for _, name := range fc.GetFilterChainMatch().GetServerNames() {
			out[name] = tcp.GetCluster()
		}
	}
	return out
}

// addrs are the distinct addresses of the endpoints, sorted. An endpoint
// listed twice is logged, not failed: Istio makes one service per address of
// a ServiceEntry (pilot/pkg/serviceregistry/serviceentry/conversion.go
// convertServices), so an entry with an IPv4 and an IPv6 VIP gives Envoy
// every endpoint twice (istio/istio#34577, #56783). Same address, same
// weight: the balance is unchanged.
func addrs(t *testing.T, es []lbEndpoint) []string {
	t.Helper()
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.addr)
	}
	slices.Sort(out)
	if n := len(slices.Compact(slices.Clone(out))); n != len(out) {
		t.Logf("note: %d endpoints for %d addresses (Istio lists each once per VIP of the entry)", len(out), n)
	}
	return slices.Compact(out)
}
