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

package main

import (
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseLocalIPs(t *testing.T) {
	for _, tc := range []struct {
		in      string
		wantN   int
		wantErr string
	}{
		{in: "169.254.20.10", wantN: 1},
		{in: "169.254.20.10,10.96.0.10", wantN: 2},
		{in: "fd00::a,fd00::b", wantN: 2},
		{in: "", wantErr: `invalid localip specified - ""`},
		{in: "169.254.20.10,", wantErr: `invalid localip specified - ""`},
		{in: ",169.254.20.10", wantErr: `invalid localip specified - ""`},
		{in: "169.254.20.10,,10.96.0.10", wantErr: `invalid localip specified - ""`},
		{in: "169.254.20.10, 10.96.0.10", wantErr: `invalid localip specified - " 10.96.0.10"`},
		{in: "169.254.20.300", wantErr: `invalid localip specified - "169.254.20.300"`},
		{in: "node-local", wantErr: `invalid localip specified - "node-local"`},
		{in: "169.254.20.10,fd00::a", wantErr: `unexpected IP Family for localIP - "fd00::a", want IPv6=false`},
		{in: "fd00::a,169.254.20.10", wantErr: `unexpected IP Family for localIP - "169.254.20.10", want IPv6=true`},
	} {
		ips, err := parseLocalIPs(tc.in)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("parseLocalIPs(%q): unexpected error %v", tc.in, err)
		case tc.wantErr == "" && len(ips) != tc.wantN:
			t.Errorf("parseLocalIPs(%q) = %v, want %d IPs", tc.in, ips, tc.wantN)
		case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
			t.Errorf("parseLocalIPs(%q) error = %v, want %q", tc.in, err, tc.wantErr)
		}
	}
}

// newFlagSet registers the stand-in's flags plus stand-ins for the CoreDNS flags it reads back.
func newFlagSet() (*flag.FlagSet, *params) {
	fs := flag.NewFlagSet("node-cache", flag.ContinueOnError)
	p := registerFlags(fs)
	fs.String("dns.port", "53", "")
	fs.String("conf", "", "")
	fs.String("pidfile", "", "")
	return fs, p
}

func TestFlagDefaultsAndFinish(t *testing.T) {
	fs, p := newFlagSet()
	if err := fs.Parse([]string{"-localip", "169.254.20.10", "-conf", "/tmp/Corefile", "-dns.port", "5353"}); err != nil {
		t.Fatal(err)
	}
	if err := p.finish(fs); err != nil {
		t.Fatal(err)
	}
	if p.CoreFile != "/tmp/Corefile" || p.LocalPort != "5353" {
		t.Errorf("CoreFile=%q LocalPort=%q, want -conf and -dns.port to win", p.CoreFile, p.LocalPort)
	}
	defaults := map[string]string{
		"setupinterface": "true", "setupiptables": "true", "skipteardown": "false",
		"basecorefile": "/etc/coredns/Corefile.base", "upstreamsvc": "kube-dns", "kubednscm": "",
		"health-port": "8080", "metrics-listen-address": "0.0.0.0:9353", "reloadwithsignal": "false",
		"interfacename": "nodelocaldns", "corefile": "/etc/Corefile", "syncinterval": "60ns",
	}
	for name, want := range defaults {
		if got := fs.Lookup(name).DefValue; got != want {
			t.Errorf("-%s default = %q, want %q", name, got, want)
		}
	}
	if p.networkingUnsupported() == nil {
		t.Error("the defaults (-setupinterface=true -setupiptables=true) must be refused")
	}
}

func TestFinishRejectsBadPorts(t *testing.T) {
	for _, args := range [][]string{
		{"-localip", "169.254.20.10", "-dns.port", "x"},
		{"-localip", "169.254.20.10", "-health-port", "http"},
		{"-localip", "169.254.20.10,"},
	} {
		fs, p := newFlagSet()
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := p.finish(fs); err == nil {
			t.Errorf("finish after %v: want an error", args)
		}
	}
}

func TestNetworkingFlagsMustBothBeFalse(t *testing.T) {
	for _, tc := range []struct {
		iface, ipt bool
		ok         bool
	}{{false, false, true}, {true, false, false}, {false, true, false}, {true, true, false}} {
		p := &params{SetupInterface: tc.iface, SetupIptables: tc.ipt}
		err := p.networkingUnsupported()
		if (err == nil) != tc.ok {
			t.Errorf("setupinterface=%v setupiptables=%v: err=%v", tc.iface, tc.ipt, err)
		}
		if err != nil && !strings.Contains(err.Error(), "-setupinterface=false and -setupiptables=false") {
			t.Errorf("message does not say what is needed: %v", err)
		}
	}
}

func TestSvcHostEnv(t *testing.T) {
	for in, want := range map[string]string{
		"kube-dns":          "KUBE_DNS_SERVICE_HOST",
		"kube-dns-upstream": "KUBE_DNS_UPSTREAM_SERVICE_HOST",
		"coredns":           "COREDNS_SERVICE_HOST",
	} {
		if got := svcHostEnv(in); got != want {
			t.Errorf("svcHostEnv(%q) = %q, want %q", in, got, want)
		}
	}
	t.Setenv("KUBE_DNS_UPSTREAM_SERVICE_HOST", "10.96.0.20")
	if ip := clusterDNSIPFromEnv("kube-dns-upstream"); ip.String() != "10.96.0.20" {
		t.Errorf("clusterDNSIPFromEnv = %v", ip)
	}
}

// upstreamTemplate is node-cache's iptables-mode template shape: every placeholder appears.
const upstreamTemplate = `cluster.local:53 {
    errors
    cache 30
    bind __PILLAR__LOCAL__DNS__ __PILLAR__DNS__SERVER__
    forward . __PILLAR__CLUSTER__DNS__ {
            force_tcp
    }
}
.:53 {
    errors
    cache 30
    bind __PILLAR__LOCAL__DNS__ __PILLAR__DNS__SERVER__
    forward . __PILLAR__UPSTREAM__SERVERS__ {
            force_tcp
    }
}
`

func TestRenderDefaultsToResolvConf(t *testing.T) {
	got := string(renderCorefile([]byte(upstreamTemplate), templateParams{
		LocalIPStr: "169.254.20.10,10.96.0.10", LocalPort: "53", ClusterDNSIP: net.ParseIP("10.96.0.20"),
	}, kubeDNSConfig{}))
	want := `cluster.local:53 {
    errors
    cache 30
    bind 169.254.20.10 10.96.0.10 
    forward . 10.96.0.20 {
            force_tcp
    }
}
.:53 {
    errors
    cache 30
    bind 169.254.20.10 10.96.0.10 
    forward . /etc/resolv.conf {
            force_tcp
    }
}
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestRenderCustomUpstreamsSwitchToUDPAndAppendStubDomains(t *testing.T) {
	got := string(renderCorefile([]byte(upstreamTemplate), templateParams{
		LocalIPStr: "169.254.20.10", LocalPort: "53", ClusterDNSIP: net.ParseIP("10.96.0.10"),
	}, kubeDNSConfig{
		UpstreamNameservers: []string{"10.0.0.1", "10.0.0.2:5353"},
		StubDomains:         map[string][]string{"z.example": {"10.1.0.1"}, "a.example": {"10.2.0.1", "10.2.0.2"}},
	}))
	want := `cluster.local:53 {
    errors
    cache 30
    bind 169.254.20.10 
    forward . 10.96.0.10 {
            force_tcp
    }
}
.:53 {
    errors
    cache 30
    bind 169.254.20.10 
    forward . 10.0.0.1 10.0.0.2:5353
}

a.example:53 {
    errors
    cache 30
    bind 169.254.20.10
    forward . 10.2.0.1 10.2.0.2
}

z.example:53 {
    errors
    cache 30
    bind 169.254.20.10
    forward . 10.1.0.1
}
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// projectTemplate has the shape of the project's IPVS-mode Corefile (components/corefile.ts):
// only the upstream placeholder is left, in a UDP forward without a block.
const projectTemplate = `.:53 {
    errors
    cache 30
    reload
    loop
    bind 169.254.20.10
    forward . __PILLAR__UPSTREAM__SERVERS__
    prometheus :9253
}
`

func TestRenderProjectTemplate(t *testing.T) {
	p := templateParams{LocalIPStr: "169.254.20.10", LocalPort: "53"}
	got := string(renderCorefile([]byte(projectTemplate), p, kubeDNSConfig{}))
	if want := strings.Replace(projectTemplate, upstreamServersVar, "/etc/resolv.conf", 1); got != want {
		t.Errorf("no custom upstreams: got:\n%s\nwant:\n%s", got, want)
	}
	got = string(renderCorefile([]byte(projectTemplate), p, kubeDNSConfig{UpstreamNameservers: []string{"10.0.0.1"}}))
	if want := strings.Replace(projectTemplate, upstreamServersVar, "10.0.0.1", 1); got != want {
		t.Errorf("custom upstream: got:\n%s\nwant:\n%s", got, want)
	}
}

func TestRenderUnsetClusterDNSIsNil(t *testing.T) {
	got := string(renderCorefile([]byte("forward . __PILLAR__CLUSTER__DNS__\n"), templateParams{LocalIPStr: "169.254.20.10"}, kubeDNSConfig{}))
	if got != "forward . <nil>\n" {
		t.Errorf("got %q, want node-cache's rendering of a missing service IP", got)
	}
}

func TestKubeDNSConfigDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("upstreamNameservers", `["10.0.0.1", "10.0.0.2:53"]`)
	write("stubDomains", `{"corp.example": ["10.3.0.1"]}`)
	write(".hidden", "ignored")
	snap, err := readDirSnapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := snap[".hidden"]; ok {
		t.Error("hidden files must be skipped")
	}
	cfg, err := parseKubeDNSConfig(snap)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.UpstreamNameservers) != 2 || cfg.StubDomains["corp.example"][0] != "10.3.0.1" {
		t.Errorf("parsed %+v", cfg)
	}
	v1 := snap.version()
	write("upstreamNameservers", `["10.0.0.9"]`)
	snap2, _ := readDirSnapshot(dir)
	if snap2.version() == v1 {
		t.Error("version must change with the contents")
	}

	for name, bad := range map[string]dirSnapshot{
		"not JSON":      {"upstreamNameservers": `10.0.0.1`},
		"four servers":  {"upstreamNameservers": `["10.0.0.1","10.0.0.2","10.0.0.3","10.0.0.4"]`},
		"a host name":   {"upstreamNameservers": `["dns.example"]`},
		"a bad port":    {"upstreamNameservers": `["10.0.0.1:99999"]`},
		"a bad domain":  {"stubDomains": `{"Bad_Domain": ["10.0.0.1"]}`},
		"a bad stub ns": {"stubDomains": `{"corp.example": ["10.0.0.1:x"]}`},
	} {
		if _, err := parseKubeDNSConfig(bad); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}
