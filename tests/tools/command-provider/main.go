// Command pulumi-resource-command is a test-only stand-in for the Pulumi command provider 1.2.1: it implements
// the part of command:remote:Command that this project uses, so CI can run the real Pulumi engine where the
// real plugin cannot be downloaded. Operators never use it; README.md says what it does and does not do.
package main

import (
	"fmt"
	"os"

	"github.com/pulumi/pulumi/pkg/v3/resource/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// version is the plugin version @pulumi/command 1.2.1 asks the engine for.
const version = "1.2.1"

func main() {
	err := provider.Main("command", func(host *provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return newServer(host), nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
