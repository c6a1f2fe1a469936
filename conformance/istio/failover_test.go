package conformance

// The failover policy (issue 27 item 2), as an application sidecar in each
// cluster is sent it: the Envoy priority of every endpoint of every host and
// port, each cluster's share of the calls within its priority, and the
// outlier detection that makes Envoy leave a priority. The expectations are
// computed here from the registry's fields (tiers, localities, weights,
// thresholds), never read from the rendered objects:
//
//   - tiers for a client in cluster L, best first, none empty: [L] when L
//     exports the service; then one tier per cluster of the effective
//     `failover` (the service's own, else the `defaults`'), in order,
//     passing over L, clusters that do not export the service, and repeats;
//     then every other exporter (exportedFrom order) with the workloads
//     outside Kubernetes (`endpoints`), if any remain;
//   - only a service's own host with two sources or more (exporters, and
//     the outside workloads as one) gets a rule; a per-cluster name
//     `<cluster>.<host>` and a single-source host keep every endpoint at
//     priority 0 and get no outlier detection; so does a host of one tier
//     (its rule says `enabled: false`);
//   - a STATIC host (every endpoint an IP) is ordered by priority labels
//     and failoverPriority: an endpoint's Envoy priority is the index of
//     its source's tier;
//   - a DNS host (an endpoint is a name: the local Service, or a gateway
//     given by name) is ordered by region: globaldns writes no priority
//     labels and no failoverPriority there (istio/istio#61857), but
//     `failover: [{from: <L's region>, to: <region of the first tier after
//     L's that is one cluster>}]` (when both are known and differ), and the
//     endpoints keep their localities. The expected priority is Istio's
//     locality failover for a client at L's locality (regionPriorities):
//     0, 1, 2 in L's region (region, zone and subzone equal / region and
//     zone / region only), 3 in the `to` region, 4 elsewhere (3 without the
//     entry), renumbered 0..N without gaps. Where that differs from the
//     tiers (clusters without a locality, clusters sharing a region, a
//     fourth tier) a note says so: the rule cannot say more;
//   - every endpoint is in the locality the registry gives its cluster (an
//     outside workload: its own);
//   - with a non-empty effective `weights`, the shares of the clusters of a
//     tier are proportional to their weights (1 when left out); without,
//     every endpoint counts once. Within one cluster, every endpoint gets
//     the same share;
//   - outlier detection: Istio's documented defaults (consecutive5xxErrors
//     5, interval 10s, baseEjectionTime 30s, maxEjectionPercent 100, not Istio's 10), then
//     the `defaults`' fields, then the service's, field by field.
//
// The client is labelled (app: sleep) and placed in its cluster's network
// and locality, as a real pod is: Istio applies failoverPriority only for a
// proxy with at least one label, and locality failover relative to the
// proxy's locality.
//
// Istio code that decides each part:
//
//   - which rule applies and with what: pilot/pkg/model/push_context.go
//     DestinationRule (the most specific host), pilot/pkg/networking/core/
//     loadbalancer/loadbalancer.go GetEffectiveLbSetting (a rule's
//     `localityLbSetting.enabled: false` turns locality load balancing off;
//     no localityLbSetting falls back to the mesh's, enabled by default);
//   - priorities: loadbalancer.go ApplyLocalityLoadBalancer (failover only
//     when the cluster has outlier detection; failoverPriority when the
//     rule lists labels, else applyLocalityFailover), applyFailoverPriorities
//     and applyFailoverPriorityPerLocality (an endpoint's priority is the
//     number of failoverPriority labels after its first mismatch; with
//     `label=value` the endpoint's label is compared with the value, not
//     with the proxy's; nothing happens for a proxy without labels),
//     applyLocalityFailover with util.LbPriority (regions), then priorities
//     are renumbered 0..N without gaps. EDS clusters (STATIC entries):
//     pilot/pkg/xds/endpoints/endpoint_builder.go BuildClusterLoadAssignment.
//     DNS clusters: the inline load_assignment, pilot/pkg/networking/core/
//     cluster.go buildOutboundClusters -> cluster_traffic_policy.go
//     applyLoadBalancer -> LocalityLBSettings.ApplyToCluster;
//   - shares: pilot/pkg/serviceregistry/serviceentry/conversion.go
//     convertEndpoint (the entry's `weight`), endpoint_builder.go generate
//     (LbEndpoint.load_balancing_weight; LocalityLbEndpoints.
//     load_balancing_weight = the sum of its endpoints'), recomputed per
//     split locality by applyFailoverPriorityPerLocality. ApplyToCluster
//     sets locality_weighted_lb_config whenever failover applies with
//     failoverPriority or a region `failover`, and Envoy then picks a
//     locality of the priority by its weight, then an endpoint of it by the
//     endpoint's; without it, an endpoint by its weight among all of the
//     priority. Both are computed below (shares);
//   - outlier detection: cluster_traffic_policy.go applyOutlierDetection.
//
// At the pinned Istio, a DNS host with a failoverPriority rule panics in
// applyFailoverPriorityPerLocality (istio/istio#61857); globaldns no longer
// writes one, and any panic still fails the host's subtest (istiod would
// crash). README.md, "What Istio says today", has the details.

import (
	"fmt"
	"maps"
	"math/big"
	"net"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	networking "istio.io/api/networking/v1alpha3"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/xds/endpoints"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pilot/test/xdstest"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/schema/gvk"
	"istio.io/istio/pkg/network"
)

// outside is the source of a service's workloads outside Kubernetes.
const outside = "(outside Kubernetes)"

// failoverCases must have their priorities checked: the cases rendered to
// judge the policy.
var failoverCases = []string{"failover", "failover-eds"}

func TestFailover(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c renderCase, cluster string) {
		prio := failoverRendered(c)
		if !prio && slices.Contains(failoverCases, c.name) {
			t.Fatalf("case %s is rendered for an Istio without failoverPriority (flags %v): its priorities must be checked", c.name, c.flags)
		}
		v := newFailoverView(t, c, cluster, parseRendered(t, cluster, c.rendered[cluster]))
		for _, w := range expected(c, cluster) {
			t.Run(fmt.Sprintf("%s:%d", w.host, w.port.Number), func(t *testing.T) {
				defer failOnIstioPanic(t)
				g := v.get(t, w)
				t.Logf("%s: %v, %s", w.outboundCluster(), g.cluster.GetType(), g)
				pr := judgeFailover(c, cluster, w, g, prio)
				for _, n := range pr.notes {
					t.Logf("note: %s", n)
				}
				for _, e := range pr.all() {
					t.Error(e)
				}
			})
		}
	})
}

// failoverRendered: the objects carry the priority rule. Those for Istio
// 1.1–1.21 (--istio-api-version v1alpha3, v1beta1) get outlier detection and
// weights only: without failoverPriority Istio's own locality failover
// (the mesh default) orders their endpoints, which the registry does not
// describe, so their priorities are not checked (everything else is).
func failoverRendered(c renderCase) bool {
	for i := 0; i+1 < len(c.flags); i++ {
		if c.flags[i] == "--istio-api-version" && (c.flags[i+1] == "v1beta1" || c.flags[i+1] == "v1alpha3") {
			return false
		}
	}
	return true
}

// --- the policy, from the registry ---

// sources are the distinct exporters of s, plus `outside` when it has
// workloads outside Kubernetes.
func sources(s regService) []string {
	var out []string
	for _, c := range s.ExportedFrom {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	if len(s.Endpoints) > 0 {
		out = append(out, outside)
	}
	return out
}

// hasRule: a service's own host has a failover rule when its endpoints come
// from two sources or more.
func hasRule(w wantPort) bool {
	return w.perClusterOf == "" && len(sources(w.service)) >= 2
}

func effectiveFailover(reg registry, s regService) []string {
	if s.Failover != nil {
		return *s.Failover
	}
	if reg.Defaults.Failover != nil {
		return *reg.Defaults.Failover
	}
	return nil
}

// effectiveWeights is nil when the policy gives no weights.
func effectiveWeights(reg registry, s regService) map[string]uint32 {
	var m map[string]uint32
	switch {
	case s.Weights != nil:
		m = *s.Weights
	case reg.Defaults.Weights != nil:
		m = *reg.Defaults.Weights
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

func weightOf(m map[string]uint32, cluster string) uint32 {
	if w, ok := m[cluster]; ok {
		return w
	}
	return 1
}

// tiers of service s for a client in cluster client, best first.
func tiers(reg registry, s regService, client string) [][]string {
	exports := func(c string) bool { return slices.Contains(s.ExportedFrom, c) }
	var out [][]string
	placed := map[string]bool{}
	if exports(client) {
		out = append(out, []string{client})
		placed[client] = true
	}
	for _, c := range effectiveFailover(reg, s) {
		if placed[c] || !exports(c) {
			continue
		}
		placed[c] = true
		out = append(out, []string{c})
	}
	var rest []string
	for _, c := range sources(s) {
		if !placed[c] {
			rest = append(rest, c)
		}
	}
	if len(rest) > 0 {
		out = append(out, rest)
	}
	return out
}

// wantTiers gives each source of w's endpoints its tier as the client in
// cluster sees it: one tier of all sources where there is no rule.
func wantTiers(c renderCase, cluster string, w wantPort) [][]string {
	switch {
	case w.perClusterOf != "":
		return [][]string{{w.perClusterOf}}
	case !hasRule(w):
		return [][]string{sources(w.service)}
	}
	return tiers(c.reg, w.service, cluster)
}

// endpointSources maps each endpoint address w should have to its source.
func endpointSources(c renderCase, cluster string, w wantPort) map[string]string {
	out := map[string]string{}
	if w.perClusterOf != "" {
		for _, e := range w.endpoints {
			out[e.addr] = w.perClusterOf
		}
		return out
	}
	for _, from := range w.service.ExportedFrom {
		for _, e := range exporterEndpoints(c, w.service, w.port, from, cluster) {
			out[e.addr] = from
		}
	}
	for _, e := range w.service.Endpoints {
		port := w.port.Number
		if n, ok := e.Ports[w.port.Name]; ok {
			port = n
		}
		out[hostPort(e.Address, port)] = outside
	}
	return out
}

// endpointLocalities maps each endpoint address w should have to the
// locality the registry gives it: its cluster's (the local Service and the
// gateways alike), an outside workload's own.
func endpointLocalities(c renderCase, cluster string, w wantPort) map[string]string {
	out := map[string]string{}
	for addr, s := range endpointSources(c, cluster, w) {
		if s != outside {
			out[addr] = c.reg.cluster(s).Locality
		}
	}
	if w.perClusterOf != "" {
		return out
	}
	for _, e := range w.service.Endpoints {
		port := w.port.Number
		if n, ok := e.Ports[w.port.Name]; ok {
			port = n
		}
		out[hostPort(e.Address, port)] = e.Locality
	}
	return out
}

// orderedByRegion: w's rule orders its endpoints by region, not by
// priority labels: a host with a rule, two tiers or more, and a name among
// its endpoints (the entry is DNS). Read from the registry's endpoints.
func orderedByRegion(c renderCase, cluster string, w wantPort) bool {
	return hasRule(w) && w.byName() && len(wantTiers(c, cluster, w)) > 1
}

// splitLocality is a `region/zone/subzone` locality's three parts, "" for
// those left out.
func splitLocality(l string) (region, zone, subzone string) {
	parts := append(strings.SplitN(l, "/", 3), "", "", "")
	return parts[0], parts[1], parts[2]
}

// regionFailover is the `failover` entry a DNS host's rule must carry for a
// client in cluster: from the cluster's region to the region of the first
// tier after the local one that is a single cluster in another known
// region; ok is false when there is none or the client's region is
// unknown (no entry).
func regionFailover(c renderCase, cluster string, ts [][]string) (from, to string, ok bool) {
	from, _, _ = splitLocality(c.reg.cluster(cluster).Locality)
	for _, tier := range ts {
		if len(tier) == 1 && tier[0] != outside && tier[0] != cluster {
			r, _, _ := splitLocality(c.reg.cluster(tier[0]).Locality)
			if r != "" && r != from {
				to = r
				break
			}
		}
	}
	return from, to, from != "" && to != ""
}

// regionPriorities gives each endpoint of w (a host ordered by region) the
// Envoy priority Istio's locality failover gives it for a client at its
// cluster's locality, as Istio documents localityLbSetting.failover
// (loadbalancer.go applyLocalityFailover, util.LbPriority): 0 when region,
// zone and subzone are the client's, 1 region and zone, 2 region only, 3
// another region, 4 a region that is neither the client's nor the entry's
// `to` when the rule has an entry from the client's region; then the
// priorities in use renumbered 0..N in order. how says what it was
// computed from, for messages.
func regionPriorities(c renderCase, cluster string, w wantPort) (want map[string]uint32, how string) {
	ts := wantTiers(c, cluster, w)
	from, to, entry := regionFailover(c, cluster, ts)
	pr, pz, ps := splitLocality(c.reg.cluster(cluster).Locality)
	if pr == "" {
		// Without the client's region the rule turns locality load
		// balancing off (`enabled: false`): the copies are equal.
		want = map[string]uint32{}
		for addr := range endpointLocalities(c, cluster, w) {
			want[addr] = 0
		}
		return want, "equal: the client's cluster has no region in the registry, so the rule says enabled: false"
	}
	raw := map[string]int{}
	used := map[int]bool{}
	for addr, loc := range endpointLocalities(c, cluster, w) {
		r, z, sz := splitLocality(loc)
		p := 3
		switch {
		case r == pr && z == pz && sz == ps:
			p = 0
		case r == pr && z == pz:
			p = 1
		case r == pr:
			p = 2
		case entry && r != to:
			p = 4
		}
		raw[addr] = p
		used[p] = true
	}
	var levels []int
	for p := range used {
		levels = append(levels, p)
	}
	sort.Ints(levels)
	want = map[string]uint32{}
	for addr, p := range raw {
		want[addr] = uint32(slices.Index(levels, p))
	}
	how = fmt.Sprintf("by region for a client at %q, no failover entry", c.reg.cluster(cluster).Locality)
	if entry {
		how = fmt.Sprintf("by region for a client at %q, failover %s -> %s", c.reg.cluster(cluster).Locality, from, to)
	}
	return want, how
}

// outlierWant: Istio's documented defaults, then the registry's defaults,
// then the service's own fields.
type outlierWant struct {
	consecutive5xx   uint32
	interval         time.Duration
	baseEjectionTime time.Duration
	maxEjection      uint32
}

func wantOutlier(reg registry, s regService) (outlierWant, error) {
	out := outlierWant{consecutive5xx: 5, interval: 10 * time.Second, baseEjectionTime: 30 * time.Second, maxEjection: 100}
	for _, o := range []*regOutlier{reg.Defaults.OutlierDetection, s.OutlierDetection} {
		if o == nil {
			continue
		}
		if o.Consecutive5xxErrors != nil {
			out.consecutive5xx = *o.Consecutive5xxErrors
		}
		if o.MaxEjectionPercent != nil {
			out.maxEjection = *o.MaxEjectionPercent
		}
		for _, d := range []struct {
			from *string
			to   *time.Duration
		}{{o.Interval, &out.interval}, {o.BaseEjectionTime, &out.baseEjectionTime}} {
			if d.from == nil {
				continue
			}
			v, err := time.ParseDuration(*d.from)
			if err != nil {
				return out, fmt.Errorf("registry duration %q: %v", *d.from, err)
			}
			*d.to = v
		}
	}
	return out, nil
}

// --- what Envoy is given ---

// prioEndpoint is one endpoint of a ClusterLoadAssignment with what decides
// how much traffic it gets.
type prioEndpoint struct {
	addr         string
	priority     uint32
	locality     int    // index of its LocalityLbEndpoints
	localityName string // its locality, region/zone/subzone
	weight       uint32 // load_balancing_weight (Envoy's default 1 when unset)
	// The fraction of its priority's calls Envoy sends it while every
	// endpoint is healthy.
	share *big.Rat
}

type gotFailover struct {
	cluster *clusterv3.Cluster
	eps     []prioEndpoint
}

func (g gotFailover) String() string {
	var b strings.Builder
	lw := g.cluster.GetCommonLbConfig().GetLocalityWeightedLbConfig() != nil
	fmt.Fprintf(&b, "locality weighted %v, outlier detection %v, endpoints", lw, g.cluster.GetOutlierDetection() != nil)
	for _, e := range g.eps {
		f, _ := e.share.Float64()
		fmt.Fprintf(&b, " [%s %q p%d w%d %.1f%%]", e.addr, e.localityName, e.priority, e.weight, 100*f)
	}
	return b.String()
}

// readPriorities flattens a load assignment and computes each endpoint's
// share of its priority as Envoy balances it: with locality weighted load
// balancing a locality is picked by its load_balancing_weight (a locality
// without one gets nothing), then an endpoint by its weight; without, an
// endpoint by its weight among all of the priority.
func readPriorities(c *clusterv3.Cluster, cla *endpointv3.ClusterLoadAssignment) []prioEndpoint {
	localityWeighted := c.GetCommonLbConfig().GetLocalityWeightedLbConfig() != nil
	var out []prioEndpoint
	for i, loc := range cla.GetEndpoints() {
		for _, lb := range loc.GetLbEndpoints() {
			sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
			w := uint32(1)
			if lb.GetLoadBalancingWeight() != nil {
				w = lb.GetLoadBalancingWeight().GetValue()
			}
			l := loc.GetLocality()
			out = append(out, prioEndpoint{
				addr:         net.JoinHostPort(sa.GetAddress(), fmt.Sprint(sa.GetPortValue())),
				priority:     loc.GetPriority(),
				locality:     i,
				localityName: strings.TrimRight(strings.Join([]string{l.GetRegion(), l.GetZone(), l.GetSubZone()}, "/"), "/"),
				weight:       w,
			})
		}
	}
	// Sums per priority, and per locality.
	prioSum := map[uint32]int64{}
	locSum := map[int]int64{}
	prioLocWeights := map[uint32]int64{}
	seenLoc := map[int]bool{}
	for _, e := range out {
		prioSum[e.priority] += int64(e.weight)
		locSum[e.locality] += int64(e.weight)
		if !seenLoc[e.locality] {
			seenLoc[e.locality] = true
			prioLocWeights[e.priority] += int64(cla.GetEndpoints()[e.locality].GetLoadBalancingWeight().GetValue())
		}
	}
	for i := range out {
		e := &out[i]
		switch {
		case !localityWeighted:
			e.share = big.NewRat(int64(e.weight), prioSum[e.priority])
		case prioLocWeights[e.priority] == 0 || locSum[e.locality] == 0:
			e.share = new(big.Rat)
		default:
			lw := int64(cla.GetEndpoints()[e.locality].GetLoadBalancingWeight().GetValue())
			e.share = new(big.Rat).Mul(big.NewRat(lw, prioLocWeights[e.priority]), big.NewRat(int64(e.weight), locSum[e.locality]))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].addr < out[j].addr })
	return out
}

// failoverView is what one labelled client sidecar is sent.
type failoverView struct {
	c        renderCase
	cluster  string
	cfgs     []config.Config
	s        *xds.FakeDiscoveryServer
	p        *model.Proxy
	clusters []*clusterv3.Cluster
	// Istio's panic building this proxy's clusters, "" when it built them.
	panicked string
}

func newFailoverView(t *testing.T, c renderCase, cluster string, cfgs []config.Config) *failoverView {
	t.Helper()
	v := &failoverView{c: c, cluster: cluster, cfgs: cfgs}
	v.s = newServerFromConfigs(t, cfgs, nil)
	v.p = failoverClient(v.s, c.reg, cluster)
	v.clusters, v.panicked = tryClusters(v.s, v.p)
	if v.panicked != "" {
		t.Logf("Istio panics building the clusters of a labelled sidecar in %s: %s; each host is now tried alone", cluster, v.panicked)
	}
	return v
}

// failoverClient is an application pod's sidecar in the cluster: its
// network, its locality, and a label (Istio applies failoverPriority only
// for a proxy with labels).
func failoverClient(s *xds.FakeDiscoveryServer, reg registry, cluster string) *model.Proxy {
	cl := reg.cluster(cluster)
	labels := map[string]string{"app": "sleep"}
	return s.SetupProxy(&model.Proxy{
		ConfigNamespace: clientNamespace,
		Labels:          labels,
		Locality:        proxyLocality(cl.Locality),
		Metadata:        &model.NodeMetadata{Network: network.ID(cl.Network), Labels: labels},
	})
}

// tryClusters asks Istio for the proxy's clusters; a panic is returned as
// its message and the Istio functions it went through.
func tryClusters(s *xds.FakeDiscoveryServer, p *model.Proxy) (cs []*clusterv3.Cluster, panicked string) {
	defer func() {
		if r := recover(); r != nil {
			panicked = fmt.Sprintf("%v in %s", r, istioFrames(debug.Stack(), 9))
		}
	}()
	return s.Clusters(p), ""
}

// get finds w's outbound cluster and its endpoints. When the proxy's whole
// CDS panicked, the host is tried with only its own ServiceEntries and
// DestinationRules (a host's clusters depend on nothing else), so that the
// panic is pinned on the hosts that cause it and the others are judged.
func (v *failoverView) get(t *testing.T, w wantPort) gotFailover {
	t.Helper()
	s, p, clusters := v.s, v.p, v.clusters
	if v.panicked != "" {
		alone := dropConfigs(v.cfgs, func(c config.Config) bool {
			switch c.GroupVersionKind {
			case gvk.ServiceEntry:
				return !slices.Contains(c.Spec.(*networking.ServiceEntry).Hosts, w.host)
			case gvk.DestinationRule:
				h := c.Spec.(*networking.DestinationRule).Host
				return h != w.host && !strings.HasPrefix(h, "*")
			}
			return true
		})
		s = newServerFromConfigs(t, alone, nil)
		p = failoverClient(s, v.c.reg, v.cluster)
		var panicked string
		clusters, panicked = tryClusters(s, p)
		if panicked != "" {
			t.Fatalf("Istio panics building %s for a labelled sidecar in %s (istiod would crash): %s",
				w.outboundCluster(), v.cluster, panicked)
		}
		t.Logf("alone with its own objects, %s builds", w.host)
	}
	c := xdstest.ExtractCluster(w.outboundCluster(), clusters)
	if c == nil {
		t.Fatalf("no outbound cluster %s", w.outboundCluster())
	}
	cla := c.GetLoadAssignment()
	if c.GetType() == clusterv3.Cluster_EDS {
		b := endpoints.NewEndpointBuilder(c.GetName(), p, s.PushContext())
		cla = b.BuildClusterLoadAssignment(s.Discovery.Env.EndpointIndex)
	}
	return gotFailover{cluster: c, eps: readPriorities(c, cla)}
}

// --- the judgement ---

type failoverProblems struct {
	priority, share, outlier, other []string
	notes                           []string
}

func (p failoverProblems) all() []string {
	return slices.Concat(p.other, p.priority, p.share, p.outlier)
}

func judgeFailover(c renderCase, cluster string, w wantPort, g gotFailover, checkPriorities bool) failoverProblems {
	var pr failoverProblems
	name := w.outboundCluster()
	src := endpointSources(c, cluster, w)
	ts := wantTiers(c, cluster, w)
	tierOf := map[string]int{}
	for i, tier := range ts {
		for _, s := range tier {
			tierOf[s] = i
		}
	}
	rule := hasRule(w)
	if len(g.eps) == 0 {
		pr.other = append(pr.other, fmt.Sprintf("%s: no endpoint", name))
	}

	// Localities: the registry's, whatever the host.
	locs := endpointLocalities(c, cluster, w)
	for _, e := range g.eps {
		if want, ok := locs[e.addr]; ok && e.localityName != want {
			pr.other = append(pr.other, fmt.Sprintf("%s: endpoint %s is in locality %q, want %q (the registry's)", name, e.addr, e.localityName, want))
		}
	}

	// Priorities: the tier's index (labels), or by region (a DNS host).
	byRegion := checkPriorities && orderedByRegion(c, cluster, w)
	var regionWant map[string]uint32
	var how string
	if byRegion {
		regionWant, how = regionPriorities(c, cluster, w)
		for _, addr := range slices.Sorted(maps.Keys(regionWant)) {
			if s, ok := src[addr]; ok && regionWant[addr] != uint32(tierOf[s]) {
				p := regionWant[addr]
				pr.notes = append(pr.notes, fmt.Sprintf("%s: ordered %s, the registry's tiers %v are not all kept: %s (%s) is at priority %d, its tier %d",
					name, how, ts, addr, s, p, tierOf[s]))
			}
		}
	}
	skipped := false
	for _, e := range g.eps {
		s, ok := src[e.addr]
		if !ok {
			pr.other = append(pr.other, fmt.Sprintf("%s: endpoint %s is no endpoint of the registry's", name, e.addr))
			continue
		}
		if rule && !checkPriorities {
			skipped = true
			continue
		}
		if byRegion {
			if want := regionWant[e.addr]; e.priority != want {
				pr.priority = append(pr.priority, fmt.Sprintf("%s: endpoint %s (%s, %q) is at priority %d, want %d: a DNS host is ordered %s",
					name, e.addr, s, locs[e.addr], e.priority, want, how))
			}
			continue
		}
		if want := uint32(tierOf[s]); e.priority != want {
			pr.priority = append(pr.priority, fmt.Sprintf("%s: endpoint %s (%s) is at priority %d, want %d: tiers for a client in %s are %v",
				name, e.addr, s, e.priority, want, cluster, ts))
		}
	}
	if skipped {
		pr.notes = append(pr.notes, fmt.Sprintf("%s: priorities not checked (objects for an Istio without failoverPriority); got %v", name, priorities(g.eps)))
	}

	// Shares, per priority and tier: within one cluster equal; between the
	// clusters of a tier, proportional to the weights (or to the number of
	// endpoints without weights).
	weights := effectiveWeights(c.reg, w.service)
	type key struct {
		priority uint32
		tier     int
	}
	type part struct {
		sum   *big.Rat
		n     int64
		first *big.Rat
	}
	groups := map[key]map[string]*part{}
	for _, e := range g.eps {
		s, ok := src[e.addr]
		if !ok {
			continue
		}
		k := key{e.priority, tierOf[s]}
		if groups[k] == nil {
			groups[k] = map[string]*part{}
		}
		pt := groups[k][s]
		if pt == nil {
			pt = &part{sum: new(big.Rat), first: e.share}
			groups[k][s] = pt
		}
		if s != outside && e.share.Cmp(pt.first) != 0 {
			pr.share = append(pr.share, fmt.Sprintf("%s: the endpoints of %s get different shares of priority %d (%s vs %s)",
				name, s, e.priority, pt.first.RatString(), e.share.RatString()))
		}
		pt.sum.Add(pt.sum, e.share)
		pt.n++
	}
	for k, parts := range groups {
		var names []string
		for s := range parts {
			if s != outside {
				names = append(names, s)
			}
		}
		sort.Strings(names)
		for i := 1; i < len(names); i++ {
			a, b := names[0], names[i]
			pa, pb := parts[a], parts[b]
			// want pa.sum / pb.sum = wa / wb
			wa, wb := big.NewRat(pa.n, 1), big.NewRat(pb.n, 1)
			how := "one unit per endpoint (no weights)"
			if weights != nil {
				wa, wb = big.NewRat(int64(weightOf(weights, a)), 1), big.NewRat(int64(weightOf(weights, b)), 1)
				how = fmt.Sprintf("weights %v", weights)
			}
			lhs := new(big.Rat).Mul(pa.sum, wb)
			rhs := new(big.Rat).Mul(pb.sum, wa)
			if lhs.Cmp(rhs) != 0 {
				fa, _ := pa.sum.Float64()
				fb, _ := pb.sum.Float64()
				pr.share = append(pr.share, fmt.Sprintf("%s: in priority %d, %s gets %.2f%% and %s %.2f%% of the calls, want the ratio %s:%s (%s)",
					name, k.priority, a, 100*fa, b, 100*fb, wa.RatString(), wb.RatString(), how))
			}
		}
	}

	// Outlier detection: the rule's, or none.
	od := g.cluster.GetOutlierDetection()
	if !rule {
		if od != nil {
			pr.outlier = append(pr.outlier, fmt.Sprintf("%s: outlier detection %v on a host with one source", name, od))
		}
		return pr
	}
	want, err := wantOutlier(c.reg, w.service)
	if err != nil {
		pr.other = append(pr.other, err.Error())
		return pr
	}
	if od == nil {
		pr.outlier = append(pr.outlier, fmt.Sprintf("%s: no outlier detection: Envoy never leaves priority 0", name))
		return pr
	}
	switch {
	case od.GetConsecutive_5Xx() == nil && slices.Contains(c.flags, "v1alpha3"):
		// The objects for Istio 1.1–1.4 say consecutiveErrors, the field
		// those versions read; this Istio reads only consecutive5xxErrors
		// and consecutiveGatewayErrors (applyOutlierDetection), so Envoy
		// keeps its own default (5). Not a fault of objects meant for 1.1–1.4.
		pr.notes = append(pr.notes, fmt.Sprintf("%s: consecutive_5xx unset (v1alpha3 consecutiveErrors is ignored by this Istio), want %d on Istio 1.1–1.4", name, want.consecutive5xx))
	case od.GetConsecutive_5Xx().GetValue() != want.consecutive5xx || od.GetConsecutive_5Xx() == nil:
		pr.outlier = append(pr.outlier, fmt.Sprintf("%s: consecutive_5xx %v, want %d", name, od.GetConsecutive_5Xx(), want.consecutive5xx))
	case od.GetEnforcingConsecutive_5Xx() != nil && od.GetEnforcingConsecutive_5Xx().GetValue() != 100:
		pr.outlier = append(pr.outlier, fmt.Sprintf("%s: enforcing_consecutive_5xx %d%%, want 100%%", name, od.GetEnforcingConsecutive_5Xx().GetValue()))
	}
	if got := od.GetInterval().AsDuration(); od.GetInterval() == nil || got != want.interval {
		pr.outlier = append(pr.outlier, fmt.Sprintf("%s: outlier interval %v, want %v", name, od.GetInterval(), want.interval))
	}
	if got := od.GetBaseEjectionTime().AsDuration(); od.GetBaseEjectionTime() == nil || got != want.baseEjectionTime {
		pr.outlier = append(pr.outlier, fmt.Sprintf("%s: base ejection time %v, want %v", name, od.GetBaseEjectionTime(), want.baseEjectionTime))
	}
	if got := od.GetMaxEjectionPercent(); got == nil || got.GetValue() != want.maxEjection {
		pr.outlier = append(pr.outlier, fmt.Sprintf("%s: max ejection %v%%, want %d%%", name, got, want.maxEjection))
	}
	return pr
}

func priorities(eps []prioEndpoint) map[string]uint32 {
	out := map[string]uint32{}
	for _, e := range eps {
		out[e.addr] = e.priority
	}
	return out
}
