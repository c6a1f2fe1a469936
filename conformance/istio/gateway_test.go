package conformance

// The exporting side: what the east-west gateway of a cluster that exports a
// service is sent, so that a connection arriving on its gateway port (15443
// unless the registry says otherwise) with the SNI
// outbound_.<port>_._.<host> reaches the local Service. Istio code that
// decides it:
//
//   - the Gateway is applied to the pod its selector matches:
//     pilot/pkg/model/push_context.go mergeGateways, and merged on 15443 by
//     pilot/pkg/model/gateway.go MergeGateways;
//   - one filter chain per host and port of the cluster's own ServiceEntries
//     inside the Gateway's hosts (*.<zone>), SNI match and tcp_proxy to the
//     cluster of the same name: pilot/pkg/networking/core/gateway.go
//     buildGatewayNetworkFiltersFromTLSRoutes -> builtAutoPassthroughFilterChains;
//   - that sni-dnat cluster, without TLS of its own (the mTLS bytes pass
//     through): cluster.go BuildClusters -> buildOutboundSniDnatClusters,
//     cluster_traffic_policy.go applyTrafficPolicy (SniDnatClusterMode);
//   - its endpoints: pilot/pkg/xds/endpoints/endpoint_builder.go generate:
//     filterIstioEndpoint (the network view, pilot/pkg/model/proxy_view.go:
//     the requested networks and endpoints with no network), then
//     EndpointsByNetworkFilter, then EndpointsWithMTLSFilter (an sni-dnat
//     cluster keeps only endpoints marked tlsMode istio).

import (
	"fmt"
	"slices"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pilot/test/xdstest"
)

func TestEastWestGateway(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c renderCase, cluster string) {
		want := exportedBy(expected(c, cluster))
		if len(want) == 0 {
			t.Logf("%s exports nothing: no east-west gateway traffic to check", cluster)
			return
		}
		s := newServer(t, c.rendered[cluster], nil)
		net := c.reg.cluster(cluster).Network
		checkGatewayDelivers(t, s, c, cluster, net, want)
	})
}

// checkGatewayDelivers asserts that a gateway in network net, labelled with
// the case's selector, routes every wanted SNI, on each of the cluster's
// gateway ports, to an sni-dnat cluster that delivers to the local Service.
func checkGatewayDelivers(t *testing.T, s *xds.FakeDiscoveryServer, c renderCase, cluster, net string, want []wantPort) {
	t.Helper()
	p := eastWestGateway(s, c.selector, net, c.reg.cluster(cluster).Locality)
	routes := map[int]map[string]string{}
	listeners := s.Listeners(p)
	for _, port := range c.reg.gatewayPorts(cluster) {
		l := xdstest.ExtractListener(fmt.Sprintf("0.0.0.0_%d", port), listeners)
		if l == nil {
			t.Fatalf("the east-west gateway (labels %v, network %q) has no listener on %d (listeners: %v)",
				c.selector, net, port, xdstest.ExtractListenerNames(listeners))
		}
		routes[int(port)] = sniRoutes(t, l)
	}
	clusters := s.Clusters(p)
	for _, w := range want {
		t.Run(fmt.Sprintf("%s:%d", w.host, w.port.Number), func(t *testing.T) {
			defer failOnIstioPanic(t)
			sni := w.sni()
			for port, r := range routes {
				to, ok := r[sni]
				if !ok {
					t.Errorf("no filter chain on %d matches SNI %s (chains match %v)", port, sni, xdstest.MapKeys(r))
				} else if to != sni {
					t.Errorf("on %d, SNI %s is sent to cluster %q, want the sni-dnat cluster %q", port, sni, to, sni)
				}
			}
			dnat := xdstest.ExtractCluster(sni, clusters)
			if dnat == nil {
				t.Fatalf("no sni-dnat cluster %s", sni)
			}
			if dnat.GetTransportSocket() != nil || len(dnat.GetTransportSocketMatches()) > 0 {
				t.Errorf("sni-dnat cluster %s originates TLS: the caller's mTLS must pass through", sni)
			}
			if w.byName() && dnat.GetType() != clusterv3.Cluster_STRICT_DNS && dnat.GetType() != clusterv3.Cluster_LOGICAL_DNS {
				t.Errorf("sni-dnat cluster %s is %v: the local Service is a name, Envoy must resolve it", sni, dnat.GetType())
			}
			eps := clusterEndpoints(s, p, dnat)
			t.Logf("SNI %s -> %s: %v, endpoints %v", sni, sni, dnat.GetType(), eps)
			got := addrs(t, eps)
			wantAddrs := gatewayEndpoints(c, cluster, net, w)
			if !slices.Equal(got, wantAddrs) {
				t.Errorf("sni-dnat cluster %s: endpoints %v, want %v", sni, got, wantAddrs)
			}
		})
	}
}

// gatewayEndpoints is what an sni-dnat cluster holds under Istio's filters
// (see the top of this file): the local Service, plus any other endpoint of
// the host that is in the gateway's network view and marked for mTLS.
func gatewayEndpoints(c renderCase, cluster, net string, w wantPort) []string {
	out := []string{w.local}
	if w.perClusterOf != "" {
		// A per-cluster name's only endpoint is the exporter's own (its
		// local Service here): no other exporter's gateway, no workload
		// outside Kubernetes. (Not met before case failover-eds, the first
		// service with both exporters and such workloads.)
		return out
	}
	visible := func(n string) bool { return n == "" || net == "" || n == net }
	for _, from := range w.service.ExportedFrom {
		other := c.reg.cluster(from)
		if from == cluster || !visible(other.Network) {
			continue
		}
		for _, g := range other.Gateways {
			port := g.Port
			if port == 0 {
				port = defaultGatewayPort
			}
			out = append(out, hostPort(g.Address, port))
		}
	}
	for _, e := range w.service.Endpoints {
		mtls := e.ServiceAccount != "" || e.Labels[tlsModeLabel] == "istio"
		if !mtls || !visible(e.Network) {
			continue
		}
		port := w.port.Number
		if n, ok := e.Ports[w.port.Name]; ok {
			port = n
		}
		out = append(out, hostPort(e.Address, port))
	}
	slices.Sort(out)
	return out
}
