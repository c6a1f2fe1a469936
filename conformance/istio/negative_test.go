package conformance

// Negative controls: each rendered object, and each field the README calls
// load-bearing, is taken away (or the mesh made hostile) and Istio must then
// build the broken path. Each control first checks the same path with the
// objects unchanged, so the change is the only difference. Istio code that
// decides it:
//
//   - own ServiceEntry: pilot/pkg/networking/core/gateway.go
//     builtAutoPassthroughFilterChains makes chains only for services the
//     gateway's cluster knows, and cluster.go buildOutboundSniDnatClusters only
//     clusters for them (what replaced the tcp_cluster_rewrite filter);
//   - the tlsMode label: pilot/pkg/serviceregistry/serviceentry/conversion.go
//     getTLSModeFromWorkloadEntry, pilot/pkg/xds/endpoints/mtls_checker.go
//     checkMtlsEnabled (client side: no tlsMode metadata, so Envoy takes the
//     tlsMode-disabled match, plain text), and endpoint_builder.go
//     EndpointsWithMTLSFilter (gateway side: the sni-dnat cluster drops it);
//   - the Gateway object and its selector: pilot/pkg/model/push_context.go
//     mergeGateways;
//   - the network view: pilot/pkg/model/proxy_view.go newProxyView and
//     endpoint_builder.go filterIstioEndpoint (an endpoint with no network is
//     visible to every view);
//   - exportTo under a mesh default of ".": push_context.go
//     initServiceRegistry / exportToDefaults for ServiceEntries, and
//     setDestinationRules / getExportedDestinationRuleFromNamespace for
//     DestinationRules;
//   - the failover priorities: pilot/pkg/networking/core/loadbalancer/
//     loadbalancer.go ApplyLocalityLoadBalancer runs applyFailoverPriorities
//     only under a rule with failoverPriority and outlier detection, and
//     applyFailoverPriorityPerLocality ranks endpoints by the labels the
//     rule lists: without the rule, or without the labels, every endpoint
//     is at priority 0. A DNS host's rule orders by region instead
//     (applyLocalityFailover): without its `failover` entry every region
//     but the client's is at one priority.

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	meshconfig "istio.io/api/mesh/v1alpha1"
	networking "istio.io/api/networking/v1alpha3"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pilot/test/xdstest"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/mesh"
	"istio.io/istio/pkg/config/schema/gvk"
)

// exporters are the clusters of a case that export something, with what.
func exporters(c renderCase) map[string][]wantPort {
	out := map[string][]wantPort{}
	for _, cl := range c.clusterNames() {
		if w := exportedBy(expected(c, cl)); len(w) > 0 {
			out[cl] = w
		}
	}
	return out
}

// gatewayChains gives the SNI routes of the gateway's listeners on the
// cluster's gateway ports (none when there is no such listener) and its
// clusters.
func gatewayChains(t *testing.T, s *xds.FakeDiscoveryServer, c renderCase, cluster string, labels map[string]string) (map[string]string, map[string]bool) {
	t.Helper()
	p := eastWestGateway(s, labels, c.reg.cluster(cluster).Network, c.reg.cluster(cluster).Locality)
	routes := map[string]string{}
	listeners := s.Listeners(p)
	for _, port := range c.reg.gatewayPorts(cluster) {
		if l := xdstest.ExtractListener(fmt.Sprintf("0.0.0.0_%d", port), listeners); l != nil {
			for sni, to := range sniRoutes(t, l) {
				routes[sni] = to
			}
		}
	}
	clusters := map[string]bool{}
	for _, c := range s.Clusters(p) {
		clusters[c.GetName()] = true
	}
	return routes, clusters
}

func dropConfigs(cfgs []config.Config, drop func(config.Config) bool) []config.Config {
	var out []config.Config
	for _, c := range cfgs {
		if !drop(c) {
			out = append(out, c)
		}
	}
	return out
}

func serviceEntryFor(host string) func(config.Config) bool {
	return func(c config.Config) bool {
		return c.GroupVersionKind == gvk.ServiceEntry && slices.Contains(c.Spec.(*networking.ServiceEntry).Hosts, host)
	}
}

// withoutTLSMode copies the objects with the tlsMode label taken off every
// ServiceEntry endpoint.
func withoutTLSMode(cfgs []config.Config) []config.Config {
	out := make([]config.Config, 0, len(cfgs))
	for _, c := range cfgs {
		c = c.DeepCopy()
		if se, ok := c.Spec.(*networking.ServiceEntry); ok {
			for _, e := range se.Endpoints {
				delete(e.Labels, tlsModeLabel)
			}
		}
		out = append(out, c)
	}
	return out
}

// The cases the negative controls are run on: the plain registry, and
// bookinfo with the Multi-Cluster Services zone (hosts
// <name>.<ns>.svc.clusterset.local beside .global).
var negativeCases = []string{"registry", "clusterset"}

// Without the exporting cluster's own ServiceEntry its gateway has no chain
// and no sni-dnat cluster for the host: the call from the other cluster is
// reset.
func TestNoOwnServiceEntryNoChain(t *testing.T) {
	for _, name := range negativeCases {
		t.Run(name, func(t *testing.T) { noOwnServiceEntryNoChain(t, oneCase(t, name)) })
	}
}

func noOwnServiceEntryNoChain(t *testing.T, c renderCase) {
	for cluster, want := range exporters(c) {
		for _, w := range want {
			t.Run(cluster+"/"+w.host, func(t *testing.T) {
				defer failOnIstioPanic(t)
				cfgs := parseRendered(t, cluster, c.rendered[cluster])
				routes, clusters := gatewayChains(t, newServerFromConfigs(t, cfgs, nil), c, cluster, c.selector)
				if routes[w.sni()] != w.sni() || !clusters[w.sni()] {
					t.Fatalf("control: with every object the gateway has no chain or cluster %s", w.sni())
				}

				cut := dropConfigs(cfgs, serviceEntryFor(w.host))
				if len(cut) == len(cfgs) {
					t.Fatalf("no ServiceEntry for %s to drop", w.host)
				}
				routes, clusters = gatewayChains(t, newServerFromConfigs(t, cut, nil), c, cluster, c.selector)
				if _, ok := routes[w.sni()]; ok {
					t.Errorf("without the ServiceEntry for %s the gateway still matches SNI %s", w.host, w.sni())
				}
				if clusters[w.sni()] {
					t.Errorf("without the ServiceEntry for %s the gateway still has cluster %s", w.host, w.sni())
				}
			})
		}
	}
}

// Without the Gateway object the east-west gateway does not take the
// traffic at all.
func TestNoGatewayObjectNoChain(t *testing.T) {
	for _, name := range negativeCases {
		t.Run(name, func(t *testing.T) { noGatewayObjectNoChain(t, oneCase(t, name)) })
	}
}

func noGatewayObjectNoChain(t *testing.T, c renderCase) {
	for cluster, want := range exporters(c) {
		t.Run(cluster, func(t *testing.T) {
			defer failOnIstioPanic(t)
			cfgs := parseRendered(t, cluster, c.rendered[cluster])
			routes, _ := gatewayChains(t, newServerFromConfigs(t, cfgs, nil), c, cluster, c.selector)
			for _, w := range want {
				if routes[w.sni()] != w.sni() {
					t.Fatalf("control: with every object the gateway has no chain for %s", w.sni())
				}
			}
			cut := dropConfigs(cfgs, func(c config.Config) bool { return c.GroupVersionKind == gvk.Gateway })
			if len(cut) == len(cfgs) {
				t.Fatalf("%s exports %s but no Gateway was rendered", cluster, want[0].host)
			}
			routes, _ = gatewayChains(t, newServerFromConfigs(t, cut, nil), c, cluster, c.selector)
			for _, w := range want {
				if _, ok := routes[w.sni()]; ok {
					t.Errorf("without the Gateway object the gateway still matches SNI %s", w.sni())
				}
			}
		})
	}
}

// The Gateway selects the pods --gateway-selector names, and only those: a
// gateway pod with the default labels gets nothing in the "selector" case.
func TestGatewaySelectorIsHonoured(t *testing.T) {
	c := oneCase(t, "selector")
	def := map[string]string{"istio": "eastwestgateway"}
	if fmt.Sprint(c.selector) == fmt.Sprint(def) {
		t.Fatalf("the selector case was rendered with the default selector %v", c.selector)
	}
	for cluster, want := range exporters(c) {
		t.Run(cluster, func(t *testing.T) {
			defer failOnIstioPanic(t)
			s := newServer(t, c.rendered[cluster], nil)
			routes, _ := gatewayChains(t, s, c, cluster, def)
			for _, w := range want {
				if _, ok := routes[w.sni()]; ok {
					t.Errorf("a gateway labelled %v (not %v) matches SNI %s", def, c.selector, w.sni())
				}
			}
		})
	}
}

// Without the tlsMode label a client sends plain text (its endpoints carry
// no tlsMode, so the tlsMode-disabled match applies), and the gateway's
// sni-dnat cluster is empty.
func TestNoTLSModeLabel(t *testing.T) {
	c := oneCase(t, "registry")
	for _, cluster := range c.clusterNames() {
		t.Run(cluster, func(t *testing.T) {
			defer failOnIstioPanic(t)
			cfgs := parseRendered(t, cluster, c.rendered[cluster])
			stripped := withoutTLSMode(cfgs)
			net := c.reg.cluster(cluster).Network
			for name, objs := range map[string][]config.Config{"control": cfgs, "stripped": stripped} {
				s := newServerFromConfigs(t, objs, nil)
				p := clientSidecar(s, c.reg, cluster)
				clusters := s.Clusters(p)
				for _, w := range expected(c, cluster) {
					oc := xdstest.ExtractCluster(w.outboundCluster(), clusters)
					if oc == nil {
						t.Fatalf("%s: no outbound cluster %s", name, w.outboundCluster())
					}
					eps := clusterEndpoints(s, p, oc)
					if len(eps) == 0 {
						t.Fatalf("%s: %s has no endpoint", name, w.outboundCluster())
					}
					for _, e := range eps {
						if name == "control" && e.tlsMode != "istio" {
							t.Errorf("control: %s endpoint %v is not marked for mTLS", w.outboundCluster(), e)
						}
						if name == "stripped" && e.tlsMode == "istio" {
							t.Errorf("without the label, %s endpoint %v is still marked for mTLS", w.outboundCluster(), e)
						}
					}
				}
				if len(exportedBy(expected(c, cluster))) == 0 {
					continue
				}
				gw := eastWestGateway(s, c.selector, net, c.reg.cluster(cluster).Locality)
				gwClusters := s.Clusters(gw)
				for _, w := range exportedBy(expected(c, cluster)) {
					dnat := xdstest.ExtractCluster(w.sni(), gwClusters)
					if dnat == nil {
						t.Fatalf("%s: no sni-dnat cluster %s", name, w.sni())
					}
					eps := clusterEndpoints(s, gw, dnat)
					if name == "control" && len(eps) == 0 {
						t.Errorf("control: sni-dnat cluster %s is empty", w.sni())
					}
					if name == "stripped" && len(eps) != 0 {
						t.Errorf("without the label, sni-dnat cluster %s still has %v", w.sni(), eps)
					}
				}
			}
		})
	}
}

// A gateway whose Istio network is not the one the registry names (the
// registry is written by hand; topology.istio.io/network by the installer)
// still delivers: the local endpoint must be visible to any network view.
// This fails while globaldns puts `network` on the local endpoint.
func TestGatewayInAnotherNetworkStillDelivers(t *testing.T) {
	const other = "some-other-network"
	for _, c := range allCases(t) {
		for cluster, want := range exporters(c) {
			t.Run(c.name+"/"+cluster, func(t *testing.T) {
				defer failOnIstioPanic(t)
				if c.reg.cluster(cluster).Network == other {
					t.Fatalf("the registry already names %s", other)
				}
				s := newServer(t, c.rendered[cluster], nil)
				checkGatewayDelivers(t, s, c, cluster, other, want)
			})
		}
	}
}

// A mesh whose default export is "." (meshConfig defaultServiceExportTo and
// defaultDestinationRuleExportTo) still shows the objects to application
// sidecars in other namespaces: globaldns sets exportTo itself.
func TestExportedUnderPrivateMeshDefault(t *testing.T) {
	private := mesh.DefaultMeshConfig()
	private.DefaultServiceExportTo = []string{"."}
	private.DefaultDestinationRuleExportTo = []string{"."}
	private.DefaultVirtualServiceExportTo = []string{"."}
	for _, name := range []string{"registry", "destination-rules"} {
		c := oneCase(t, name)
		for _, cluster := range c.clusterNames() {
			t.Run(name+"/"+cluster, func(t *testing.T) {
				defer failOnIstioPanic(t)
				checkSidecarUnder(t, c, cluster, private, name == "destination-rules")
			})
		}
	}
}

func checkSidecarUnder(t *testing.T, c renderCase, cluster string, m *meshconfig.MeshConfig, wantDR bool) {
	y := c.rendered[cluster]
	cfgs := parseRendered(t, cluster, y)
	s := newServer(t, y, m)
	v := sidecarView{t: t, s: s, p: clientSidecar(s, c.reg, cluster), wantDR: wantDR}
	v.load()
	for _, w := range expected(c, cluster) {
		t.Run(fmt.Sprintf("%s:%d", w.host, w.port.Number), func(t *testing.T) {
			defer failOnIstioPanic(t)
			v.t = t
			v.checkPort(w, vips(t, c, cfgs, w.host))
		})
	}
}

// withoutPriorityLabels copies the objects with the failover priority
// labels (globaldns.io/failover-N) taken off every ServiceEntry endpoint;
// it reports how many it took.
func withoutPriorityLabels(cfgs []config.Config) ([]config.Config, int) {
	out := make([]config.Config, 0, len(cfgs))
	n := 0
	for _, c := range cfgs {
		c = c.DeepCopy()
		if se, ok := c.Spec.(*networking.ServiceEntry); ok {
			for _, e := range se.Endpoints {
				for k := range e.Labels {
					if strings.HasPrefix(k, "globaldns.io/failover-") {
						delete(e.Labels, k)
						n++
					}
				}
			}
		}
		out = append(out, c)
	}
	return out, n
}

// Without the DestinationRules, or without the priority labels on the
// endpoints, every endpoint is at priority 0 and TestFailover's priority
// assertion fails: it can fail. Judged from north in case failover-eds,
// whose hosts are STATIC (EDS), ordered by the labels. The DNS hosts,
// ordered by region, have their own control
// (TestFailoverRegionsNeedTheFailoverEntry).
func TestFailoverPrioritiesNeedTheRule(t *testing.T) {
	c := oneCase(t, "failover-eds")
	const cluster = "north"
	cfgs := parseRendered(t, cluster, c.rendered[cluster])
	var multi []wantPort
	for _, w := range expected(c, cluster) {
		if hasRule(w) && len(tiers(c.reg, w.service, cluster)) > 1 {
			multi = append(multi, w)
		}
	}
	if len(multi) == 0 {
		t.Fatalf("no host of case %s has two tiers or more as seen from %s", c.name, cluster)
	}
	noRules := dropConfigs(cfgs, func(c config.Config) bool { return c.GroupVersionKind == gvk.DestinationRule })
	if len(noRules) == len(cfgs) {
		t.Fatalf("%s: no DestinationRule was rendered", cluster)
	}
	noLabels, n := withoutPriorityLabels(cfgs)
	if n == 0 {
		t.Fatalf("%s: no endpoint carries a globaldns.io/failover-N label", cluster)
	}
	for _, variant := range []struct {
		name string
		objs []config.Config
	}{{"control", cfgs}, {"without DestinationRules", noRules}, {"without priority labels", noLabels}} {
		t.Run(variant.name, func(t *testing.T) {
			defer failOnIstioPanic(t)
			v := newFailoverView(t, c, cluster, variant.objs)
			if v.panicked != "" {
				t.Fatalf("Istio panics: %s", v.panicked)
			}
			for _, w := range multi {
				g := v.get(t, w)
				pr := judgeFailover(c, cluster, w, g, true)
				if variant.name == "control" {
					for _, e := range pr.priority {
						t.Errorf("control: %s", e)
					}
					continue
				}
				if len(pr.priority) == 0 {
					t.Errorf("%s: the priority assertion still holds for %s: %v", variant.name, w.outboundCluster(), priorities(g.eps))
				}
				if variant.name == "without DestinationRules" && len(pr.outlier) == 0 {
					t.Errorf("%s: the outlier detection assertion still holds for %s", variant.name, w.outboundCluster())
				}
				for _, e := range g.eps {
					if e.priority != 0 {
						t.Errorf("%s: %s endpoint %s is at priority %d, want 0", variant.name, w.outboundCluster(), e.addr, e.priority)
					}
				}
				t.Logf("%s: %s: %d priority mismatches, as it must", variant.name, w.outboundCluster(), len(pr.priority))
			}
		})
	}
}

// Without the endpoint weights the shares are one unit per endpoint, and
// TestFailover's share assertion fails for every tier whose clusters the
// policy weighs unequally (judged as TestFailoverPrioritiesNeedTheRule is).
func TestFailoverSharesNeedTheWeights(t *testing.T) {
	c := oneCase(t, "failover-eds")
	const cluster = "north"
	cfgs := parseRendered(t, cluster, c.rendered[cluster])
	var weighed []wantPort
	for _, w := range expected(c, cluster) {
		ws := effectiveWeights(c.reg, w.service)
		if !hasRule(w) || ws == nil {
			continue
		}
		// A tier of two clusters or more whose weights are not in
		// proportion to their endpoint counts.
		for _, tier := range tiers(c.reg, w.service, cluster) {
			for i := 1; i < len(tier); i++ {
				a, b := tier[0], tier[i]
				na, nb := len(c.reg.cluster(a).Gateways), len(c.reg.cluster(b).Gateways)
				unequal := weightOf(ws, a)*uint32(nb) != weightOf(ws, b)*uint32(na)
				if unequal && !slices.ContainsFunc(weighed, func(o wantPort) bool { return o.outboundCluster() == w.outboundCluster() }) {
					weighed = append(weighed, w)
				}
			}
		}
	}
	if len(weighed) == 0 {
		t.Fatalf("no host of case %s has a tier with unequal weights as seen from %s", c.name, cluster)
	}
	unweighted := make([]config.Config, 0, len(cfgs))
	n := 0
	for _, cfg := range cfgs {
		cfg = cfg.DeepCopy()
		if se, ok := cfg.Spec.(*networking.ServiceEntry); ok {
			for _, e := range se.Endpoints {
				if e.Weight != 0 {
					e.Weight = 0
					n++
				}
			}
		}
		unweighted = append(unweighted, cfg)
	}
	if n == 0 {
		t.Fatalf("%s: no endpoint carries a weight", cluster)
	}
	for _, variant := range []struct {
		name string
		objs []config.Config
	}{{"control", cfgs}, {"without weights", unweighted}} {
		t.Run(variant.name, func(t *testing.T) {
			defer failOnIstioPanic(t)
			v := newFailoverView(t, c, cluster, variant.objs)
			for _, w := range weighed {
				pr := judgeFailover(c, cluster, w, v.get(t, w), true)
				switch {
				case variant.name == "control":
					for _, e := range pr.share {
						t.Errorf("control: %s", e)
					}
				case len(pr.share) == 0:
					t.Errorf("%s: the share assertion still holds for %s", variant.name, w.outboundCluster())
				default:
					t.Logf("%s: %s", variant.name, pr.share[0])
				}
			}
		})
	}
}

// withoutRegionFailover copies the objects with the `failover` entries
// taken out of every DestinationRule's localityLbSetting; it reports how
// many rules had some.
func withoutRegionFailover(cfgs []config.Config) ([]config.Config, int) {
	out := make([]config.Config, 0, len(cfgs))
	n := 0
	for _, c := range cfgs {
		c = c.DeepCopy()
		if dr, ok := c.Spec.(*networking.DestinationRule); ok {
			if l := dr.GetTrafficPolicy().GetLoadBalancer().GetLocalityLbSetting(); len(l.GetFailover()) > 0 {
				l.Failover = nil
				n++
			}
		}
		out = append(out, c)
	}
	return out, n
}

// A DNS host's rule orders by region: without its `failover` entry (from
// the client's region to the next tier's) every other region is at one
// priority, and TestFailover's priority assertion for DNS hosts fails: it
// can fail. Judged from each exporting cluster of case failover (all
// regions distinct), for the hosts whose expected order has three
// priorities or more: there, with the unchanged objects, the assertion
// holds.
func TestFailoverRegionsNeedTheFailoverEntry(t *testing.T) {
	c := oneCase(t, "failover")
	checked := 0
	for _, cluster := range c.clusterNames() {
		var ordered []wantPort
		for _, w := range expected(c, cluster) {
			if !orderedByRegion(c, cluster, w) {
				continue
			}
			want, _ := regionPriorities(c, cluster, w)
			levels := map[uint32]bool{}
			for _, p := range want {
				levels[p] = true
			}
			if len(levels) >= 3 {
				ordered = append(ordered, w)
			}
		}
		if len(ordered) == 0 {
			continue
		}
		cfgs := parseRendered(t, cluster, c.rendered[cluster])
		noEntry, n := withoutRegionFailover(cfgs)
		if n == 0 {
			t.Fatalf("%s: no DestinationRule has a region failover entry", cluster)
		}
		for _, variant := range []struct {
			name string
			objs []config.Config
		}{{"control", cfgs}, {"without the failover entry", noEntry}} {
			t.Run(cluster+"/"+variant.name, func(t *testing.T) {
				defer failOnIstioPanic(t)
				v := newFailoverView(t, c, cluster, variant.objs)
				if v.panicked != "" {
					t.Fatalf("Istio panics: %s", v.panicked)
				}
				for _, w := range ordered {
					checked++
					g := v.get(t, w)
					pr := judgeFailover(c, cluster, w, g, true)
					if variant.name == "control" {
						for _, e := range pr.priority {
							t.Errorf("control: %s", e)
						}
						continue
					}
					if len(pr.priority) == 0 {
						t.Errorf("%s: the priority assertion still holds for %s: %v", variant.name, w.outboundCluster(), priorities(g.eps))
					}
					// Every endpoint outside the client's cluster (here:
					// its region) shares one priority.
					src := endpointSources(c, cluster, w)
					others := map[uint32][]string{}
					for _, e := range g.eps {
						if s := src[e.addr]; s != cluster && !slices.Contains(others[e.priority], s) {
							others[e.priority] = append(others[e.priority], s)
						}
					}
					if len(others) != 1 {
						t.Errorf("%s: %s: the other clusters are at priorities %v, want one", variant.name, w.outboundCluster(), others)
					}
					t.Logf("%s: %s: %d priority mismatches, as it must; the other clusters at %v", variant.name, w.outboundCluster(), len(pr.priority), others)
				}
			})
		}
	}
	if checked == 0 {
		t.Fatalf("no host of case %s is ordered by region over three priorities or more from any cluster", c.name)
	}
}
