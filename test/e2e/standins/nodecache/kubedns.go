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

// Reading the kube-dns ConfigMap as node-cache sees it: a directory (the ConfigMap's volume
// mount) whose files are the ConfigMap's keys. Only `upstreamNameservers` and `stubDomains`
// matter to node-cache; other keys are ignored.

package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/coredns/coredns/plugin/pkg/parse"
	"github.com/coredns/coredns/plugin/pkg/transport"
)

// defaultKubeDNSConfigDir is used when -kubednscm is empty and this directory exists.
const defaultKubeDNSConfigDir = "/etc/kube-dns"

// dirSnapshot is the non-hidden regular files directly inside a directory, by name.
type dirSnapshot map[string]string

// readDirSnapshot reads every non-hidden file directly in dir (subdirectories, such as the
// ..data links of a ConfigMap volume, are skipped: only their top-level symlinks count).
func readDirSnapshot(dir string) (dirSnapshot, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	snap := dirSnapshot{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		info, err := os.Stat(path) // follows the ConfigMap volume's symlinks
		if err != nil {
			return nil, err
		}
		if info.IsDir() {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		snap[e.Name()] = string(data)
	}
	return snap, nil
}

// version is a digest of the snapshot, so that a poll can tell whether anything changed.
func (s dirSnapshot) version() string {
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		h.Write([]byte(n))
		h.Write([]byte{0})
		h.Write([]byte(s[n]))
		h.Write([]byte{0})
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// parseKubeDNSConfig decodes and validates the two keys node-cache uses.
func parseKubeDNSConfig(s dirSnapshot) (kubeDNSConfig, error) {
	var cfg kubeDNSConfig
	if v, ok := s["upstreamNameservers"]; ok {
		if err := json.Unmarshal([]byte(v), &cfg.UpstreamNameservers); err != nil {
			return kubeDNSConfig{}, fmt.Errorf("invalid JSON in upstreamNameservers %q: %v", v, err)
		}
	}
	if v, ok := s["stubDomains"]; ok {
		if err := json.Unmarshal([]byte(v), &cfg.StubDomains); err != nil {
			return kubeDNSConfig{}, fmt.Errorf("invalid JSON in stubDomains %q: %v", v, err)
		}
	}
	if err := cfg.validate(); err != nil {
		return kubeDNSConfig{}, err
	}
	return cfg, nil
}

// dns1123Subdomain matches a lower-case RFC 1123 subdomain (the length is checked separately).
var dns1123Subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

func isDNS1123Subdomain(s string) bool {
	return len(s) <= 253 && dns1123Subdomain.MatchString(s)
}

// validNameserverIPPort accepts "IP" or "IP:port" with a port in 1..65535.
func validNameserverIPPort(ns string) error {
	if net.ParseIP(ns) != nil {
		return nil
	}
	host, port, err := net.SplitHostPort(ns)
	if err != nil {
		return err
	}
	if net.ParseIP(host) == nil {
		return fmt.Errorf("bad IP address: %q", host)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("bad port number: %q", port)
	}
	return nil
}

// validate applies the same rules as kube-dns's ConfigMap validation plus node-cache's check that
// every nameserver is something CoreDNS's forward plugin accepts (plain DNS or DNS over TLS).
func (c kubeDNSConfig) validate() error {
	if len(c.UpstreamNameservers) > 3 {
		return fmt.Errorf("upstreamNameserver cannot have more than three entries")
	}
	for _, ns := range c.UpstreamNameservers {
		if err := validNameserverIPPort(ns); err != nil {
			return err
		}
	}
	for domain, servers := range c.StubDomains {
		if !isDNS1123Subdomain(domain) {
			return fmt.Errorf("invalid domain name: %q", domain)
		}
		for _, ns := range servers {
			host, port, err := net.SplitHostPort(ns)
			if err != nil {
				host = ns
			}
			if port != "" {
				if _, err := strconv.ParseUint(port, 10, 16); err != nil {
					return fmt.Errorf("invalid nameserver: %q", ns)
				}
			}
			if net.ParseIP(host) == nil && !isDNS1123Subdomain(ns) {
				return fmt.Errorf("invalid nameserver: %q", ns)
			}
		}
		if err := validateForward(servers...); err != nil {
			return fmt.Errorf("invalid nameservers %s for the stub domain %s: %v", servers, domain, err)
		}
	}
	if err := validateForward(c.UpstreamNameservers...); err != nil {
		return fmt.Errorf("invalid upstream nameservers %s: %v", c.UpstreamNameservers, err)
	}
	return nil
}

// validateForward checks nameservers with CoreDNS's own parser for the forward plugin's targets.
func validateForward(nameservers ...string) error {
	if len(nameservers) == 0 {
		return nil
	}
	hosts, err := parse.HostPortOrFile(nameservers...)
	if err != nil {
		return err
	}
	for _, h := range hosts {
		if trans, _ := parse.Transport(h); trans != transport.DNS && trans != transport.TLS {
			return fmt.Errorf("unsupported transport %s of nameserver %s", trans, h)
		}
	}
	return nil
}
