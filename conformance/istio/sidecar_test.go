package conformance

// The caller's side: what an application pod's sidecar in each cluster is
// sent for every exported host and port. Istio code that decides it:
//
//   - the VIP stays the rendered address: pilot/pkg/serviceregistry/serviceentry/
//     conversion.go convertServices (spec addresses are never replaced);
//   - HTTP ports: the 0.0.0.0_<port> listener routes through the route
//     configuration <port>, whose virtual host domains come from
//     pilot/pkg/networking/core/httproute.go BuildSidecarOutboundVirtualHosts /
//     generateVirtualHostDomains; other ports get a <VIP>_<port> listener,
//     listener.go buildSidecarOutboundListener;
//   - the cluster type: cluster.go convertResolution (STATIC -> EDS, DNS ->
//     STRICT_DNS); the endpoints and their ports: conversion.go convertEndpoint;
//   - mTLS: cluster_tls.go buildUpstreamTLSSettings / applyUpstreamTLSSettings
//     (auto mTLS puts the TLS socket under the `tlsMode-istio` match), the SNI
//     from cluster_builder.go applyDestinationRule (model.BuildDNSSrvSubsetKey);
//   - which endpoint gets it: conversion.go getTLSModeFromWorkloadEntry (the
//     security.istio.io/tlsMode label) and pilot/pkg/xds/endpoints/
//     mtls_checker.go checkMtlsEnabled (endpoint metadata tlsMode: istio);
//   - split horizon: pilot/pkg/xds/endpoints/ep_filters.go EndpointsByNetworkFilter
//     (no network gateway is known here, so endpoints are kept as rendered).

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pilot/test/xdstest"
	"istio.io/istio/pkg/config/protocol"
)

func TestSidecar(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c renderCase, cluster string) {
		y := c.rendered[cluster]
		cfgs := parseRendered(t, cluster, y)
		s := newServer(t, y, nil)
		p := clientSidecar(s, c.reg, cluster)
		want := expected(c, cluster)
		if len(want) == 0 {
			t.Fatalf("the registry exports nothing: nothing to check")
		}
		env := sidecarView{t: t, s: s, p: p, wantDR: slices.Contains(c.flags, "--destination-rules")}
		env.load()
		checked := map[string]bool{}
		for _, w := range want {
			checked[w.host] = true
			t.Run(fmt.Sprintf("%s:%d", w.host, w.port.Number), func(t *testing.T) {
				defer failOnIstioPanic(t)
				env.t = t
				env.checkPort(w, vips(t, c, cfgs, w.host))
			})
		}
		// Every host a rendered ServiceEntry names is one the registry exports.
		for _, h := range renderedHosts(cfgs) {
			if !checked[h] {
				t.Errorf("rendered host %s is not a host of the registry's services in zones %v", h, c.zones)
			}
		}
	})
}

// sidecarView is what one sidecar was sent.
type sidecarView struct {
	t         *testing.T
	s         *xds.FakeDiscoveryServer
	p         *model.Proxy
	clusters  []*clusterv3.Cluster
	listeners []*listenerv3.Listener
	routes    map[string]*routev3.RouteConfiguration
	// The objects include the `*.<zone>` ISTIO_MUTUAL DestinationRule: its
	// TLS settings, not auto mTLS, must be what the cluster carries.
	wantDR bool
}

func (v *sidecarView) load() {
	v.clusters = v.s.Clusters(v.p)
	v.listeners = v.s.Listeners(v.p)
	v.routes = xdstest.ExtractRouteConfigurations(v.s.RoutesFromListeners(v.p, v.listeners))
}

func (v *sidecarView) checkPort(w wantPort, vips []string) {
	t := v.t
	name := w.outboundCluster()
	c := xdstest.ExtractCluster(name, v.clusters)
	if c == nil {
		t.Fatalf("no outbound cluster %s", name)
	}

	// Resolved by Envoy when any endpoint is a name, through EDS otherwise.
	dns := c.GetType() == clusterv3.Cluster_STRICT_DNS || c.GetType() == clusterv3.Cluster_LOGICAL_DNS
	if w.byName() && !dns {
		t.Errorf("%s: an endpoint is a host name, but the cluster is %v, not STRICT_DNS/LOGICAL_DNS", name, c.GetType())
	}
	if !w.byName() && c.GetType() != clusterv3.Cluster_EDS {
		t.Errorf("%s: every endpoint is an IP, but the cluster is %v, not EDS", name, c.GetType())
	}

	// Istio mTLS with the SNI the far gateway routes on.
	sni, how := mtlsSNI(t, c)
	if how == "" {
		t.Errorf("%s: no Istio mTLS transport socket (matches %v)", name, socketMatchNames(c))
	} else if sni != w.sni() {
		t.Errorf("%s: %s sends SNI %q, want %q", name, how, sni, w.sni())
	}
	if v.wantDR && how != drTLS {
		t.Errorf("%s: the rendered DestinationRule does not apply: TLS from %q", name, how)
	}

	// The endpoints: the exporters' gateways (or the local Service, or the
	// VMs), each marked for mTLS exactly when it should be sent mTLS.
	got := clusterEndpoints(v.s, v.p, c)
	var wantAddrs []string
	for _, e := range w.endpoints {
		wantAddrs = append(wantAddrs, e.addr)
	}
	slices.Sort(wantAddrs)
	if !slices.Equal(addrs(t, got), wantAddrs) {
		t.Errorf("%s: endpoints %v, want %v", name, got, wantAddrs)
	}
	for _, e := range w.endpoints {
		for _, g := range got {
			if g.addr != e.addr {
				continue
			}
			if e.mtls && g.tlsMode != "istio" {
				t.Errorf("%s: endpoint %v is not marked for Istio mTLS: it would be sent plain text", name, g)
			}
			if !e.mtls && g.tlsMode == "istio" {
				t.Errorf("%s: endpoint %v runs no sidecar but is marked for Istio mTLS", name, g)
			}
		}
	}

	t.Logf("%s: %v, %s SNI %s, endpoints %v", name, c.GetType(), how, sni, got)

	// The VIP is matched: a route for HTTP ports, a listener for the others.
	if protocol.Parse(w.port.Protocol).IsHTTP() {
		v.checkHTTPRoute(w, vips)
	} else {
		v.checkTCPListener(w, vips)
	}
}

// checkHTTPRoute: the 0.0.0.0_<port> listener takes the connection to the
// VIP and hands it to route configuration <port>, where a virtual host whose
// domains include every VIP sends it to the outbound cluster.
func (v *sidecarView) checkHTTPRoute(w wantPort, vips []string) {
	t := v.t
	port := fmt.Sprint(w.port.Number)
	l := xdstest.ExtractListener("0.0.0.0_"+port, v.listeners)
	if l == nil {
		t.Fatalf("no listener 0.0.0.0_%s for HTTP port %s (listeners: %v)", port, port, xdstest.ExtractListenerNames(v.listeners))
	}
	rds := false
	for _, fc := range l.GetFilterChains() {
		if h := xdstest.ExtractHTTPConnectionManager(t, fc); h != nil {
			if r, ok := h.GetRouteSpecifier().(*hcm.HttpConnectionManager_Rds); ok && r.Rds.GetRouteConfigName() == port {
				rds = true
			}
		}
	}
	if !rds {
		t.Errorf("listener 0.0.0.0_%s does not route through route configuration %q", port, port)
	}
	rc := v.routes[port]
	if rc == nil {
		t.Fatalf("no route configuration %q", port)
	}
	vhosts := xdstest.ExtractVirtualHosts(rc)
	var matched, missing []string
	for _, vip := range vips {
		domain := vip
		if strings.Contains(vip, ":") {
			domain = "[" + vip + "]" // Envoy's form of an IPv6 authority
		}
		clusters, ok := vhosts[domain]
		if !ok {
			missing = append(missing, vip)
			continue
		}
		matched = append(matched, vip)
		if !slices.Contains(clusters, w.outboundCluster()) {
			t.Errorf("route %q: the VIP %s routes to %v, not %s", port, vip, clusters, w.outboundCluster())
		}
	}
	switch {
	case len(missing) == 0:
	case len(vips) > 1 && len(matched) > 0:
		// One service per address (see addrs), and one virtual host per host
		// name: only one of an entry's VIPs becomes a domain. Requests carry
		// the host name in Host, which still matches; only a request whose
		// Host is the other VIP itself is not routed. Known Istio limitation
		// (istio/istio#34577), reported, not failed.
		t.Logf("note: route %q matches VIP %v but not %v (Istio takes one address per host for HTTP routes)", port, matched, missing)
	default:
		t.Errorf("route %q: no virtual host has the VIP %v among its domains (%s)", port, missing, domainsFor(rc, w.host))
	}
	if clusters := vhosts[w.host]; !slices.Contains(clusters, w.outboundCluster()) {
		t.Errorf("route %q: the host %s routes to %v, not %s", port, w.host, clusters, w.outboundCluster())
	}
}

// checkTCPListener: a listener on <VIP>:<port> proxies to the outbound cluster.
func (v *sidecarView) checkTCPListener(w wantPort, vips []string) {
	t := v.t
	for _, vip := range vips {
		name := fmt.Sprintf("%s_%d", vip, w.port.Number)
		l := xdstest.ExtractListener(name, v.listeners)
		if l == nil {
			t.Errorf("no listener %s for TCP port %d (listeners: %v)", name, w.port.Number, xdstest.ExtractListenerNames(v.listeners))
			continue
		}
		ok := false
		for _, fc := range l.GetFilterChains() {
			if tcp := xdstest.ExtractTCPProxy(t, fc); tcp != nil && tcp.GetCluster() == w.outboundCluster() {
				ok = true
			}
		}
		if !ok {
			t.Errorf("listener %s has no tcp_proxy to %s", name, w.outboundCluster())
		}
	}
}

func socketMatchNames(c *clusterv3.Cluster) []string {
	var out []string
	for _, m := range c.GetTransportSocketMatches() {
		out = append(out, m.GetName())
	}
	return out
}

// domainsFor shows the domains of the virtual hosts that mention host.
func domainsFor(rc *routev3.RouteConfiguration, host string) string {
	var out []string
	for _, vh := range rc.GetVirtualHosts() {
		if slices.ContainsFunc(vh.GetDomains(), func(d string) bool { return strings.HasPrefix(d, host) }) {
			out = append(out, fmt.Sprintf("%s: %v", vh.GetName(), vh.GetDomains()))
		}
	}
	return strings.Join(out, "; ")
}
