package conformance

// The ambient path (issue 29): what ztunnel, the ambient data plane, is sent
// for the hosts globaldns writes. The rendered objects of one cluster go
// into Istio's ambient index (pilot/pkg/serviceregistry/ambient
// ambientindex.go New, wired as pilot/pkg/bootstrap/servicecontroller.go
// wires it, over a fake Kubernetes), and the workload API objects it would
// push to ztunnel are read back. The asserts encode today's facts, which are
// why the README says ambient clients are not reached: when one fails, Istio
// changed, and the limit (README.md "Limit: ambient clients",
// docs/istio-path.md "Ambient clients") must be revisited.
//
// Decided by services.go serviceEntriesInfo, constructServiceEntries (a
// ServiceEntry's service has no scope); workloads.go
// serviceEntryWorkloadBuilder, setTunnelProtocol (the tunnel protocol comes
// from the ServiceEntry's own labels and annotations, and the tlsMode label
// counts only with EnableMtlsTransportProtocol, which istiod never sets);
// multicluster.go buildGlobalCollections (AMBIENT_ENABLE_MULTI_NETWORK:
// endpoints of another network are kept only, coalesced behind that
// network's gateway, for services of global scope).

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	meshconfig "istio.io/api/mesh/v1alpha1"
	networking "istio.io/api/networking/v1alpha3"
	"istio.io/istio/pilot/pkg/config/kube/crdclient"
	"istio.io/istio/pilot/pkg/features"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/serviceregistry/ambient"
	"istio.io/istio/pilot/pkg/serviceregistry/util/xdsfake"
	"istio.io/istio/pkg/activenotifier"
	"istio.io/istio/pkg/cluster"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/mesh"
	"istio.io/istio/pkg/config/mesh/meshwatcher"
	"istio.io/istio/pkg/config/schema/gvk"
	"istio.io/istio/pkg/config/schema/gvr"
	kubelib "istio.io/istio/pkg/kube"
	"istio.io/istio/pkg/kube/kclient/clienttest"
	"istio.io/istio/pkg/kube/krt"
	"istio.io/istio/pkg/kube/multicluster"
	"istio.io/istio/pkg/test"
	"istio.io/istio/pkg/workloadapi"
)

const ambientLimit = "Istio's ambient index changed: revisit the ambient limit " +
	"(README.md \"Limit: ambient clients\", docs/istio-path.md \"Ambient clients: not reached yet, and why\", " +
	"conformance/istio/README.md TestAmbient)"

// TestAmbient takes, in case clusterset, the first service a cluster imports
// from a single exporter reached at a gateway IP (bookinfo: productpage, seen
// from cluster2), and looks at its `.global` and `svc.clusterset.local`
// hosts in that cluster's ambient index, without and with multi-network
// ambient.
func TestAmbient(t *testing.T) {
	c := oneCase(t, "clusterset")
	svc, client, from, gw := ambientSubject(t, c)
	cfgs := parseRendered(t, "clusterset/"+client, c.rendered[client])
	hosts := []string{
		fmt.Sprintf("%s.%s.%s", svc.Name, svc.Namespace, defaultZone),
		fmt.Sprintf("%s.%s.svc.clusterset.local", svc.Name, svc.Namespace),
	}
	for _, multiNetwork := range []bool{false, true} {
		t.Run(fmt.Sprintf("multi-network=%v", multiNetwork), func(t *testing.T) {
			test.SetForTest(t, &features.EnableAmbientMultiNetwork, multiNetwork)
			idx := ambientIndex(t, cfgs, cluster.ID(client), c.reg.cluster(client).Network)
			for _, host := range hosts {
				key := seNamespace(t, cfgs, host) + "/" + host
				info := idx.ServiceInfo(key)
				if info == nil {
					t.Fatalf("%s: ztunnel gets no Service %s. %s", host, key, ambientLimit)
				}
				var wls []*workloadapi.Workload
				for _, a := range idx.Lookup(key) {
					if w := a.GetWorkload(); w != nil {
						wls = append(wls, w)
					}
				}
				t.Logf("%s", ambientReport(host, key, info, wls))

				// The Service carries the globaldns VIPs (the DNS answers).
				var got []string
				for _, a := range info.Service.GetAddresses() {
					ip, _ := netip.AddrFromSlice(a.GetAddress())
					got = append(got, ip.String())
				}
				if want := slices.Sorted(slices.Values(c.dns[host])); !slices.Equal(slices.Sorted(slices.Values(got)), want) {
					t.Errorf("%s: Service addresses %v, DNS answers %v. %s", host, got, want, ambientLimit)
				}
				// A ServiceEntry's service is never of global scope, whatever the
				// mesh's serviceScopeConfigs say.
				if info.Scope == model.Global {
					t.Errorf("%s: the ServiceEntry's service now has global scope. %s", host, ambientLimit)
				}
				if multiNetwork {
					// Endpoints on another network are dropped: no endpoint at all.
					if len(wls) != 0 {
						t.Errorf("%s: with multi-network ambient, %d endpoint(s), want none. %s", host, len(wls), ambientLimit)
					}
					continue
				}
				// One workload: the exporter's gateway, on the exporter's
				// network, service port -> gateway port, no tunnel protocol.
				if len(wls) != 1 {
					t.Fatalf("%s: %d endpoint workloads, want 1 (%s's gateway). %s", host, len(wls), from, ambientLimit)
				}
				w := wls[0]
				ip, _ := netip.AddrFromSlice(slices.Concat(w.GetAddresses()...))
				if ip.String() != gw.Address || w.GetNetwork() != c.reg.cluster(from).Network {
					t.Errorf("%s: endpoint %s on network %q, want %s's gateway %s on %q. %s",
						host, ip, w.GetNetwork(), from, gw.Address, c.reg.cluster(from).Network, ambientLimit)
				}
				ports := w.GetServices()[key].GetPorts()
				if len(ports) != len(svc.Ports) {
					t.Errorf("%s: the endpoint serves %d port(s) of the service, want %d. %s", host, len(ports), len(svc.Ports), ambientLimit)
				}
				for _, p := range ports {
					if p.GetTargetPort() != gatewayPort(gw) {
						t.Errorf("%s: port %d goes to %d, want the gateway port %d. %s",
							host, p.GetServicePort(), p.GetTargetPort(), gatewayPort(gw), ambientLimit)
					}
				}
				if w.GetTunnelProtocol() != workloadapi.TunnelProtocol_NONE || w.GetNativeTunnel() {
					t.Errorf("%s: endpoint tunnel protocol is now %v (native %v), not NONE: ztunnel may reach it. %s",
						host, w.GetTunnelProtocol(), w.GetNativeTunnel(), ambientLimit)
				}
				if w.GetNetworkGateway() != nil {
					t.Errorf("%s: endpoint has network gateway %v without any istio-remote Gateway. %s", host, w.GetNetworkGateway(), ambientLimit)
				}
			}
		})
	}
}

// ambientSubject picks the first service (registry order) some cluster does
// not export, with one exporter whose gateways are IP addresses: the
// service, that importing cluster, the exporter and its first gateway.
func ambientSubject(t *testing.T, c renderCase) (regService, string, string, regGateway) {
	t.Helper()
	for _, s := range c.reg.Services {
		if len(s.ExportedFrom) != 1 || len(c.reg.cluster(s.ExportedFrom[0]).Gateways) == 0 {
			continue
		}
		gws := c.reg.cluster(s.ExportedFrom[0]).Gateways
		if slices.ContainsFunc(gws, func(g regGateway) bool { return net.ParseIP(g.Address) == nil }) {
			continue
		}
		for _, cl := range c.clusterNames() {
			if cl != s.ExportedFrom[0] {
				return s, cl, s.ExportedFrom[0], gws[0]
			}
		}
	}
	t.Fatalf("case %s: no service imported from a single exporter with gateway IPs", c.name)
	return regService{}, "", "", regGateway{}
}

func gatewayPort(g regGateway) uint32 {
	if g.Port == 0 {
		return defaultGatewayPort
	}
	return g.Port
}

func seNamespace(t *testing.T, cfgs []config.Config, host string) string {
	t.Helper()
	for _, cfg := range cfgs {
		if cfg.GroupVersionKind == gvk.ServiceEntry && slices.Contains(cfg.Spec.(*networking.ServiceEntry).Hosts, host) {
			return cfg.Namespace
		}
	}
	t.Fatalf("no ServiceEntry for %s was rendered", host)
	return ""
}

// ambientIndex is the cluster's ambient index, built as istiod builds it
// (bootstrap/servicecontroller.go) over a fake Kubernetes holding the
// rendered objects, written through Istio's own config store (crdclient),
// and the system namespace labelled with the cluster's network. The mesh
// config is the default plus the ambient profile's serviceScopeConfigs
// (manifests/helm-profiles/ambient.yaml: Services labelled
// istio.io/global=true are of global scope).
func ambientIndex(t *testing.T, cfgs []config.Config, clusterID cluster.ID, network string) ambient.Index {
	t.Helper()
	cl := kubelib.NewFakeClient(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: gatewayNamespace, Labels: map[string]string{"topology.istio.io/network": network}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: clientNamespace, Labels: map[string]string{"istio.io/dataplane-mode": "ambient"}}},
	)
	// As the ambient index's own tests do: the CRDs its informers wait for.
	for _, r := range []schema.GroupVersionResource{gvr.AuthorizationPolicy, gvr.PeerAuthentication,
		gvr.KubernetesGateway, gvr.GatewayClass, gvr.WorkloadEntry, gvr.ServiceEntry} {
		clienttest.MakeCRD(t, cl, r)
	}
	store := crdclient.New(cl, crdclient.Option{DomainSuffix: clusterDomain})
	for _, cfg := range cfgs {
		if _, err := store.Create(cfg); err != nil {
			t.Fatalf("writing %s %s/%s: %v", cfg.GroupVersionKind.Kind, cfg.Namespace, cfg.Name, err)
		}
	}
	m := mesh.DefaultMeshConfig()
	m.ServiceScopeConfigs = []*meshconfig.MeshConfig_ServiceScopeConfigs{{
		ServicesSelector: &meshconfig.LabelSelector{MatchExpressions: []*meshconfig.LabelSelectorRequirement{
			{Key: "istio.io/global", Operator: "In", Values: []string{"true"}},
		}},
		Scope: meshconfig.MeshConfig_ServiceScopeConfigs_GLOBAL,
	}}
	watcher := meshwatcher.NewTestWatcher(m)
	stop := test.NewStop(t)
	mc := multicluster.NewController(multicluster.ControllerOptions{
		Client: cl, ClusterID: clusterID, SystemNamespace: gatewayNamespace,
		MeshConfig: watcher, Debugger: krt.GlobalDebugHandler,
	})
	idx := ambient.New(ambient.Options{
		SystemNamespace:        gatewayNamespace,
		DomainSuffix:           clusterDomain,
		ClusterID:              clusterID,
		XDSUpdater:             xdsfake.NewFakeXDS(),
		MeshConfig:             watcher,
		StatusNotifier:         activenotifier.New(false),
		Debugger:               krt.GlobalDebugHandler,
		MultiClusterController: mc,
		Flags: ambient.FeatureFlags{
			DefaultAllowFromWaypoint:              features.DefaultAllowFromWaypoint,
			EnableK8SServiceSelectWorkloadEntries: features.EnableK8SServiceSelectWorkloadEntries,
		},
	})
	if err := mc.Run(stop); err != nil {
		t.Fatal(err)
	}
	cl.RunAndWait(stop)
	go idx.Run(stop)
	if !kubelib.WaitForCacheSync("ambient oracle", stop, idx.HasSynced) {
		t.Fatal("the ambient index never synced")
	}
	return idx
}

// ambientReport is one line: service, VIPs, endpoints with their ports and
// tunnel protocol, and the verdict for an ambient client.
func ambientReport(host, key string, info *model.ServiceInfo, wls []*workloadapi.Workload) string {
	var vips, eps []string
	for _, a := range info.Service.GetAddresses() {
		ip, _ := netip.AddrFromSlice(a.GetAddress())
		vips = append(vips, ip.String())
	}
	verdict := "no endpoint: ztunnel has nowhere to send it"
	for _, w := range wls {
		ip, _ := netip.AddrFromSlice(slices.Concat(w.GetAddresses()...))
		var ports []string
		for _, p := range w.GetServices()[key].GetPorts() {
			ports = append(ports, fmt.Sprintf("%d->%d", p.GetServicePort(), p.GetTargetPort()))
		}
		eps = append(eps, fmt.Sprintf("%s %s network %q tunnel %v", ip, strings.Join(ports, ","), w.GetNetwork(), w.GetTunnelProtocol()))
		if w.GetTunnelProtocol() == workloadapi.TunnelProtocol_HBONE {
			verdict = "an HBONE endpoint: revisit the limit"
		} else {
			verdict = "not reachable by ztunnel: no HBONE tunnel, so plain TCP to a gateway port that expects Istio mTLS"
		}
	}
	scope := info.Scope
	if scope == "" {
		scope = "none"
	}
	return fmt.Sprintf("%s: service %s (scope %s), VIPs %v, endpoints [%s]; %s",
		host, key, scope, vips, strings.Join(eps, "; "), verdict)
}
