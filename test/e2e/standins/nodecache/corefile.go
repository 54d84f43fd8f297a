// Copyright 2026 The nodelocaldns authors.
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//     http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

// This file is the stand-in's re-implementation of node-cache's Corefile templating: the four
// __PILLAR__ placeholders and the stub-domain blocks appended from the kube-dns ConfigMap. It is
// written from node-cache's documented behaviour, not copied from it.

package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
)

// The placeholders node-cache substitutes in its base Corefile. Any other placeholder (for example
// __PILLAR__DNS__DOMAIN__) must already be filled in by whoever wrote the template.
const (
	upstreamServersVar = "__PILLAR__UPSTREAM__SERVERS__"
	clusterDNSVar      = "__PILLAR__CLUSTER__DNS__"
	localDNSVar        = "__PILLAR__LOCAL__DNS__"
	dnsServerVar       = "__PILLAR__DNS__SERVER__"

	// resolvConf is what the upstream placeholder becomes when the kube-dns ConfigMap names no
	// upstreamNameservers: CoreDNS's forward plugin then reads the nameservers from that file itself.
	resolvConf = "/etc/resolv.conf"

	// stubDomainCacheTTL is the cache TTL, in seconds, of every appended stub-domain block.
	stubDomainCacheTTL = 30
)

// upstreamTCPBlock is the exact text of a TCP forward to the placeholder, as node-cache's own
// templates write it. With custom upstreamNameservers, node-cache turns this block into a plain
// (UDP) forward; a template that spells the forward differently has just the placeholder replaced.
const upstreamTCPBlock = "\n    forward . " + upstreamServersVar + " {\n            force_tcp\n    }\n"

// kubeDNSConfig is the part of the kube-dns ConfigMap that node-cache reads.
type kubeDNSConfig struct {
	// UpstreamNameservers is the ConfigMap's `upstreamNameservers` key (a JSON list).
	UpstreamNameservers []string
	// StubDomains is the ConfigMap's `stubDomains` key (a JSON object: domain -> nameservers).
	StubDomains map[string][]string
}

// templateParams is what the Corefile rendering depends on besides the template itself.
type templateParams struct {
	// LocalIPStr is the -localip flag as given: a comma-separated list of IPs.
	LocalIPStr string
	// LocalPort is the DNS port (CoreDNS's -dns.port flag); it is used by the stub-domain blocks.
	LocalPort string
	// ClusterDNSIP is the parsed value of $<UPSTREAMSVC>_SERVICE_HOST; nil when unset or invalid,
	// which, as in node-cache, renders as "<nil>".
	ClusterDNSIP net.IP
}

// svcHostEnv returns the name of the environment variable Kubernetes sets to a Service's cluster
// IP: the Service name upper-cased, '-' turned into '_', then "_SERVICE_HOST".
func svcHostEnv(svcName string) string {
	return strings.ToUpper(strings.ReplaceAll(svcName, "-", "_")) + "_SERVICE_HOST"
}

// clusterDNSIPFromEnv reads the upstream Service's cluster IP the way a pod sees it.
func clusterDNSIPFromEnv(svcName string) net.IP {
	return net.ParseIP(os.Getenv(svcHostEnv(svcName)))
}

// spaceSeparated turns node-cache's comma-separated -localip value into the space-separated list
// that CoreDNS's bind plugin takes.
func spaceSeparated(localIPStr string) string {
	return strings.ReplaceAll(localIPStr, ",", " ")
}

// renderCorefile fills the template in base and appends one block per stub domain.
func renderCorefile(base []byte, p templateParams, cfg kubeDNSConfig) []byte {
	out := append([]byte(nil), base...)
	servers := strings.Join(cfg.UpstreamNameservers, " ")
	if servers == "" {
		// No custom upstreams: forward to whatever the node's resolv.conf names.
		out = bytes.ReplaceAll(out, []byte(upstreamServersVar), []byte(resolvConf))
	} else {
		// Custom upstreams are reached over UDP: a TCP forward block becomes a plain forward.
		udpBlock := "\n    forward . " + servers + "\n"
		out = bytes.ReplaceAll(out, []byte(upstreamTCPBlock), []byte(udpBlock))
		if bytes.Contains(out, []byte(upstreamServersVar)) {
			logWarningf("Did not find TCP upstream block to replace, assuming upstreams already use UDP.")
			out = bytes.ReplaceAll(out, []byte(upstreamServersVar), []byte(servers))
		}
	}
	out = bytes.ReplaceAll(out, []byte(clusterDNSVar), []byte(p.ClusterDNSIP.String()))
	out = bytes.ReplaceAll(out, []byte(localDNSVar), []byte(spaceSeparated(p.LocalIPStr)))
	// Every listen IP comes from __PILLAR__LOCAL__DNS__; the separate kube-dns IP placeholder
	// (used by iptables-mode templates) is dropped.
	out = bytes.ReplaceAll(out, []byte(dnsServerVar), nil)
	return append(out, stubDomainBlocks(cfg.StubDomains, p)...)
}

// stubDomainBlocks renders one server block per stub domain, in domain-name order.
func stubDomainBlocks(stubDomains map[string][]string, p templateParams) []byte {
	domains := make([]string, 0, len(stubDomains))
	for d := range stubDomains {
		domains = append(domains, d)
	}
	sort.Strings(domains)
	var b bytes.Buffer
	for _, d := range domains {
		fmt.Fprintf(&b, "\n%s:%s {\n", d, p.LocalPort)
		b.WriteString("    errors\n")
		fmt.Fprintf(&b, "    cache %d\n", stubDomainCacheTTL)
		fmt.Fprintf(&b, "    bind %s\n", spaceSeparated(p.LocalIPStr))
		fmt.Fprintf(&b, "    forward . %s\n", strings.Join(stubDomains[d], " "))
		b.WriteString("}\n")
	}
	return b.Bytes()
}
