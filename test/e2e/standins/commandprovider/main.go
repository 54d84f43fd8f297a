// Stand-in for the Pulumi command provider (pulumi-resource-command v1.2.1),
// written for the nodelocaldns end-to-end tests. This is NOT the real provider:
// it implements only command:remote:Command, on pulumi-go-provider's infer (the
// framework the real provider uses), with the semantics documented in
// remote/*.go and README.md. Our own code: the behaviour was modelled on the
// real provider's source (github.com/pulumi/pulumi-command, tag v1.2.1),
// nothing was copied from it.
//
// Build (the e2e toolchain script does exactly this):
//
//	go build -trimpath -o <out>/pulumi-resource-command .
//
// The plugin version reported to the engine is 1.2.1 (the version
// @pulumi/command 1.2.1 asks for) unless set with
// -ldflags "-X main.version=...".
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	p "github.com/pulumi/pulumi-go-provider"
)

// version is what GetPluginInfo reports. Override with -ldflags "-X main.version=1.2.3".
var version = "1.2.1"

func main() {
	if err := p.RunProvider(context.Background(), packageName, strings.TrimPrefix(version, "v"), NewProvider()); err != nil {
		fmt.Fprintf(os.Stderr, "Error: %s\n", err)
		os.Exit(1)
	}
}
