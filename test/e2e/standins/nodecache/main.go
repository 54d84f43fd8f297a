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

// Command node-cache here is a STAND-IN for Kubernetes' node-cache (k8s-dns-node-cache, module
// k8s.io/dns), which the Go module proxy available to this project does not serve. It exists only
// for this project's end-to-end tests.
//
// What is real: CoreDNS (github.com/coredns/coredns, linked with the same plugins node-cache
// links) parses and serves the Corefile, exactly as inside node-cache.
//
// What is re-implemented here, from node-cache's documented behaviour and without its code: the
// command-line flags (same names and defaults), the -localip validation, the Corefile templating
// (the four __PILLAR__ placeholders and the kube-dns ConfigMap's upstreamNameservers and
// stubDomains), the 10-second re-templating when the template directory or the kube-dns
// ConfigMap directory changes, -reloadwithsignal, and the setup-error metric on
// -metrics-listen-address.
//
// What is missing: all networking setup. node-cache creates a dummy interface holding the local
// IPs (netlink) and installs NOTRACK/ACCEPT iptables rules; this stand-in has neither, so it
// refuses to start unless -setupinterface=false and -setupiptables=false are given, and the local
// IPs must already be on an interface (for example the loopback of a test network namespace).
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coredns/coredns/coremain"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	// The CoreDNS plugins node-cache links, so that any Corefile node-cache accepts parses here.
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/bufsize"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/debug"
	_ "github.com/coredns/coredns/plugin/dns64"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/pprof"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/rewrite"
	_ "github.com/coredns/coredns/plugin/template"
	_ "github.com/coredns/coredns/plugin/timeouts"
	_ "github.com/coredns/coredns/plugin/trace"
	_ "github.com/coredns/coredns/plugin/whoami"
)

// standinVersion names this program in logs and in -version.
const standinVersion = "node-cache stand-in (nodelocaldns e2e)"

// configSyncPeriod is how often the template directory and the kube-dns ConfigMap directory are
// polled for changes (node-cache's default for both).
const configSyncPeriod = 10 * time.Second

// logWarningf is a seam for the templating code, which logs one warning.
var logWarningf = clog.Warningf

// params holds node-cache's flags plus the CoreDNS flags node-cache reads back.
type params struct {
	LocalIPStr           string
	LocalIPs             []net.IP
	LocalPort            string
	MetricsListenAddress string
	SetupInterface       bool
	InterfaceName        string
	Interval             time.Duration
	SetupIptables        bool
	BaseCoreFile         string
	CoreFile             string
	KubednsCMPath        string
	UpstreamSvcName      string
	HealthPort           string
	SkipTeardown         bool
	ReloadWithSignal     bool
	Pidfile              string
}

// registerFlags defines node-cache's own flags, with node-cache's names and defaults, on fs.
// CoreDNS defines -conf, -dns.port, -pidfile, -version and the rest on flag.CommandLine itself.
func registerFlags(fs *flag.FlagSet) *params {
	p := &params{LocalPort: "53"}
	fs.StringVar(&p.LocalIPStr, "localip", "", "comma-separated string of ip addresses to bind dnscache to")
	fs.BoolVar(&p.SetupInterface, "setupinterface", true, "indicates whether network interface should be setup (the stand-in requires false)")
	fs.StringVar(&p.InterfaceName, "interfacename", "nodelocaldns", "name of the interface to be created (unused by the stand-in)")
	// A bare number is nanoseconds for a Duration flag; node-cache multiplies it by a second.
	fs.DurationVar(&p.Interval, "syncinterval", 60, "interval(in seconds) to check for iptables rules (unused by the stand-in)")
	fs.StringVar(&p.MetricsListenAddress, "metrics-listen-address", "0.0.0.0:9353", "address to serve metrics on")
	fs.BoolVar(&p.SetupIptables, "setupiptables", true, "indicates whether iptables rules should be setup (the stand-in requires false)")
	fs.StringVar(&p.BaseCoreFile, "basecorefile", "/etc/coredns/Corefile.base", "Path to the template Corefile for node-cache")
	fs.StringVar(&p.CoreFile, "corefile", "/etc/Corefile", "Path to the Corefile to be used by node-cache (overridden by -conf)")
	fs.StringVar(&p.KubednsCMPath, "kubednscm", "", "Path where the kube-dns configmap will be mounted")
	fs.StringVar(&p.UpstreamSvcName, "upstreamsvc", "kube-dns", "Service name whose cluster IP is upstream for node-cache")
	fs.StringVar(&p.HealthPort, "health-port", "8080", "port used by health plugin")
	fs.BoolVar(&p.SkipTeardown, "skipteardown", false, "indicates whether iptables rules should be torn down on exit (nothing to tear down in the stand-in)")
	fs.BoolVar(&p.ReloadWithSignal, "reloadwithsignal", false, "use SIGUSR1 on self to reload CoreDNS")
	return p
}

// parseLocalIPs validates -localip: every comma-separated element must be an IP (so an empty
// element, as in "a,,b" or a trailing comma, is an error), all of one family.
func parseLocalIPs(s string) ([]net.IP, error) {
	var ips []net.IP
	for _, field := range strings.Split(s, ",") {
		ip := net.ParseIP(field)
		if ip == nil {
			return nil, fmt.Errorf("invalid localip specified - %q", field)
		}
		ips = append(ips, ip)
	}
	wantV6 := ips[0].To4() == nil
	for _, ip := range ips {
		if (ip.To4() == nil) != wantV6 {
			return nil, fmt.Errorf("unexpected IP Family for localIP - %q, want IPv6=%v", ip, wantV6)
		}
	}
	return ips, nil
}

// finish validates the parsed flags and copies in the CoreDNS flags node-cache honours: -dns.port
// (the listen port), -conf (where the Corefile is written; it replaces -corefile) and -pidfile.
func (p *params) finish(fs *flag.FlagSet) error {
	ips, err := parseLocalIPs(p.LocalIPStr)
	if err != nil {
		return err
	}
	p.LocalIPs = ips
	f := fs.Lookup("dns.port")
	if f == nil {
		return fmt.Errorf("failed to lookup \"dns.port\" parameter")
	}
	p.LocalPort = f.Value.String()
	if _, err := strconv.Atoi(p.LocalPort); err != nil {
		return fmt.Errorf("invalid port specified - %q", p.LocalPort)
	}
	if _, err := strconv.Atoi(p.HealthPort); err != nil {
		return fmt.Errorf("invalid healthcheck port specified - %q", p.HealthPort)
	}
	if f := fs.Lookup("conf"); f != nil {
		p.CoreFile = f.Value.String()
		clog.Infof("Using Corefile %s", p.CoreFile)
	}
	if f := fs.Lookup("pidfile"); f != nil {
		p.Pidfile = f.Value.String()
	}
	return nil
}

// networkingUnsupported is the message for the one thing the stand-in cannot do.
func (p *params) networkingUnsupported() error {
	if !p.SetupInterface && !p.SetupIptables {
		return nil
	}
	return fmt.Errorf("it has no netlink or iptables code, so it needs -setupinterface=false and "+
		"-setupiptables=false (got -setupinterface=%v -setupiptables=%v); put the -localip addresses "+
		"on an interface yourself", p.SetupInterface, p.SetupIptables)
}

// setupErrors mirrors node-cache's coredns_nodecache_setup_errors_total metric. Only the
// "configmap" error type can happen here; the others stay at zero.
var setupErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "coredns",
	Subsystem: "nodecache",
	Name:      "setup_errors_total",
	Help:      "The number of errors during periodic network setup for node-cache",
}, []string{"errortype"})

// serveMetrics serves the default Prometheus registry on addr, as node-cache does; a listen
// error is logged and the metric is then not registered.
func serveMetrics(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		clog.Errorf("Failed to start metrics handler: %s", err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.Handler())
	go func() { _ = http.Serve(ln, mux) }()
	prometheus.MustRegister(setupErrors)
	for _, t := range []string{"iptables", "iptables_lock", "interface_add", "interface_check", "configmap"} {
		setupErrors.WithLabelValues(t).Add(0)
	}
}

// cacheApp is the running stand-in: the flags, the cluster DNS IP and the current kube-dns config.
type cacheApp struct {
	p            *params
	clusterDNSIP net.IP
	kubeDNS      kubeDNSConfig
}

func newCacheApp(p *params) *cacheApp {
	a := &cacheApp{p: p, clusterDNSIP: clusterDNSIPFromEnv(p.UpstreamSvcName)}
	if a.clusterDNSIP == nil {
		env := svcHostEnv(p.UpstreamSvcName)
		clog.Warningf("Unable to lookup IP address of Upstream service %s, env %s `%s`",
			p.UpstreamSvcName, "$"+env, os.Getenv(env))
	}
	return a
}

// updateCorefile renders the template with the current kube-dns config and writes -conf.
func (a *cacheApp) updateCorefile() {
	base, err := os.ReadFile(a.p.BaseCoreFile)
	if err != nil {
		clog.Errorf("Failed to read node-cache coreFile %s - %v", a.p.BaseCoreFile, err)
		setupErrors.WithLabelValues("configmap").Inc()
		return
	}
	out := renderCorefile(base, templateParams{
		LocalIPStr:   a.p.LocalIPStr,
		LocalPort:    a.p.LocalPort,
		ClusterDNSIP: a.clusterDNSIP,
	}, a.kubeDNS)
	if err := os.WriteFile(a.p.CoreFile, out, 0o666); err != nil {
		clog.Errorf("Failed to write config file %s - err %v", a.p.CoreFile, err)
		setupErrors.WithLabelValues("configmap").Inc()
		return
	}
	upstream := strings.Join(a.kubeDNS.UpstreamNameservers, " ")
	if upstream == "" {
		upstream = resolvConf
	}
	clog.Infof("Updated Corefile with %d custom stubdomains and upstream servers %s", len(a.kubeDNS.StubDomains), upstream)
	clog.Infof("Using config file:\n%s", out)
	if a.p.ReloadWithSignal {
		// CoreDNS reloads its Corefile on SIGUSR1 (before CoreDNS starts, Go ignores the signal).
		clog.Infof("Sending reload signal to PID %v", os.Getpid())
		if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
			clog.Errorf("Failed to trigger CoreDNS reload: %v", err)
		}
	}
}

// loadKubeDNS reads the kube-dns ConfigMap directory; an invalid config is logged and ignored.
func (a *cacheApp) loadKubeDNS(snap dirSnapshot) {
	cfg, err := parseKubeDNSConfig(snap)
	if err != nil {
		clog.Errorf("Invalid kube-dns configuration, ignoring update: %v", err)
		setupErrors.WithLabelValues("configmap").Inc()
		return
	}
	a.kubeDNS = cfg
	a.updateCorefile()
}

// kubeDNSDir is -kubednscm, or /etc/kube-dns when that flag is empty and the directory exists.
func (a *cacheApp) kubeDNSDir() string {
	if a.p.KubednsCMPath != "" {
		return a.p.KubednsCMPath
	}
	if _, err := os.Stat(defaultKubeDNSConfigDir); err == nil {
		return defaultKubeDNSConfigDir
	}
	return ""
}

// start writes the first Corefile, then keeps it in step with its two input directories.
func (a *cacheApp) start() {
	serveMetrics(a.p.MetricsListenAddress)
	a.updateCorefile()
	kubeDNSDir := a.kubeDNSDir()
	kubeDNSVersion := ""
	if kubeDNSDir == "" {
		clog.Infof("Skipping kube-dns configmap sync as no directory was specified")
	} else if snap, err := readDirSnapshot(kubeDNSDir); err != nil {
		clog.Errorf("Failed to sync kube-dns config directory %s, err: %v", kubeDNSDir, err)
	} else {
		kubeDNSVersion = snap.version()
		a.loadKubeDNS(snap)
	}
	templateDir := filepath.Dir(a.p.BaseCoreFile)
	templateVersion := ""
	if snap, err := readDirSnapshot(templateDir); err == nil {
		templateVersion = snap.version()
	}
	go func() {
		for range time.Tick(configSyncPeriod) {
			if kubeDNSDir != "" {
				if snap, err := readDirSnapshot(kubeDNSDir); err != nil {
					clog.Errorf("Error loading config from %s: %v", kubeDNSDir, err)
				} else if v := snap.version(); v != kubeDNSVersion {
					kubeDNSVersion = v
					a.loadKubeDNS(snap)
				}
			}
			if snap, err := readDirSnapshot(templateDir); err != nil {
				clog.Errorf("Error loading config from %s: %v", templateDir, err)
			} else if v := snap.version(); v != templateVersion {
				templateVersion = v
				a.updateCorefile()
			}
		}
	}()
}

// versionRequested reports whether -version or --version is among the arguments; the stand-in
// then prints its name and leaves the rest to CoreDNS (node-cache itself would first insist on
// a valid -localip).
func versionRequested(args []string) bool {
	for _, a := range args {
		if a == "-version" || a == "--version" || a == "-version=true" || a == "--version=true" {
			return true
		}
	}
	return false
}

func main() {
	p := registerFlags(flag.CommandLine)
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage of %s:\n", os.Args[0])
		fmt.Fprintf(os.Stderr, "%s: runs CoreDNS v%s as a node-local cache listening on the specified ip:port\n\n",
			standinVersion, coremain.CoreVersion)
		flag.PrintDefaults()
	}
	if versionRequested(os.Args[1:]) {
		fmt.Println(standinVersion)
		coremain.Run() // prints CoreDNS's version and exits
		return
	}
	flag.Parse()
	clog.Infof("Starting %s on CoreDNS-%s", standinVersion, coremain.CoreVersion)
	if err := p.finish(flag.CommandLine); err != nil {
		clog.Fatalf("Error parsing flags - %s, Exiting", err)
	}
	if err := p.networkingUnsupported(); err != nil {
		fmt.Fprintf(os.Stderr, "node-cache stand-in: %v\n", err)
		os.Exit(1)
	}
	newCacheApp(p).start()
	coremain.Run()
}
