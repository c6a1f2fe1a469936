// Command coredns is a CoreDNS binary cut down to the plugins that the
// globaldns wiring puts in a Corefile, so that tests/smoke/coredns.sh can
// put globaldns behind the real thing (the grpc plugin of the sidecar mode,
// and the forward plugin that `globaldns stub-config --for coredns` wires)
// without building the whole plugin set. It holds no DNS logic of its own:
// everything below is CoreDNS's, pinned in go.mod.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	// Each plugin registers itself with Caddy when its package is imported.
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/grpc"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/reload"
)

func init() {
	// The order in which a query passes the plugins of a server block. It is
	// the relative order of these names in core/dnsserver/zdirectives.go of
	// the pinned CoreDNS: keep it so when changing the version or the list.
	// A directive a Corefile uses must be both listed here and imported above.
	dnsserver.Directives = []string{
		"reload",
		"bind",
		"health",
		"errors",
		"log",
		"cache",
		"forward",
		"grpc",
	}
}

func main() {
	coremain.Run()
}
