// Stand-in for the Pulumi command provider (pulumi-resource-command v1.2.1),
// written for the nodelocaldns end-to-end tests. This is NOT the real provider;
// see README.md. Our own code.

package main

import (
	"context"
	"fmt"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
	"github.com/pulumi/pulumi-go-provider/middleware/schema"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"

	"nodelocaldns.test/standins/commandprovider/remote"
)

// packageName is the Pulumi package the plugin serves (as the real provider:
// "command", so resource tokens are command:<module>:<Type>).
const packageName = "command"

// implementedResource is the only token the stand-in serves.
const implementedResource = "command:remote:Command"

// NewProvider builds the stand-in provider: infer serves command:remote:Command
// (defaults and secrets from the struct tags in package remote, Diff, Read and
// the gRPC plumbing from pulumi-go-provider v1.3.0, as in the real provider),
// and every other resource or function token of the real package
// (command:local:Command, command:remote:CopyToRemote,
// command:remote:CopyFile, command:local:run, ...) fails with an error that
// says the stand-in does not implement it.
func NewProvider() p.Provider {
	inner := infer.Provider(infer.Options{
		Metadata: schema.Metadata{
			DisplayName: "Command (nodelocaldns e2e stand-in)",
			Description: "STAND-IN for pulumi-resource-command v1.2.1, implementing only " +
				"command:remote:Command, for the nodelocaldns end-to-end tests.",
		},
		Resources: []infer.InferredResource{
			infer.Resource(&remote.Command{}),
		},
	})
	return guardTokens(inner)
}

// notImplemented is the error for a token the stand-in does not serve.
func notImplemented(token string) error {
	return fmt.Errorf("%s is not implemented by the stand-in command provider "+
		"(nodelocaldns test/e2e/standins/commandprovider implements only %s)", token, implementedResource)
}

// guardTokens wraps the resource and function entry points so that a token
// other than command:remote:Command fails with notImplemented instead of
// pulumi-go-provider's generic "unknown resource type" error.
func guardTokens(inner p.Provider) p.Provider {
	inner = inner.WithDefaults()
	out := inner
	check := func(t tokens.Type) error {
		if string(t) != implementedResource {
			return notImplemented(string(t))
		}
		return nil
	}
	out.Check = func(ctx context.Context, req p.CheckRequest) (p.CheckResponse, error) {
		if err := check(req.Urn.Type()); err != nil {
			return p.CheckResponse{}, err
		}
		return inner.Check(ctx, req)
	}
	out.Diff = func(ctx context.Context, req p.DiffRequest) (p.DiffResponse, error) {
		if err := check(req.Urn.Type()); err != nil {
			return p.DiffResponse{}, err
		}
		return inner.Diff(ctx, req)
	}
	out.Create = func(ctx context.Context, req p.CreateRequest) (p.CreateResponse, error) {
		if err := check(req.Urn.Type()); err != nil {
			return p.CreateResponse{}, err
		}
		return inner.Create(ctx, req)
	}
	out.Read = func(ctx context.Context, req p.ReadRequest) (p.ReadResponse, error) {
		if err := check(req.Urn.Type()); err != nil {
			return p.ReadResponse{}, err
		}
		return inner.Read(ctx, req)
	}
	out.Update = func(ctx context.Context, req p.UpdateRequest) (p.UpdateResponse, error) {
		if err := check(req.Urn.Type()); err != nil {
			return p.UpdateResponse{}, err
		}
		return inner.Update(ctx, req)
	}
	out.Delete = func(ctx context.Context, req p.DeleteRequest) error {
		if err := check(req.Urn.Type()); err != nil {
			return err
		}
		return inner.Delete(ctx, req)
	}
	out.Invoke = func(_ context.Context, req p.InvokeRequest) (p.InvokeResponse, error) {
		return p.InvokeResponse{}, notImplemented(string(req.Token))
	}
	out.Construct = func(_ context.Context, req p.ConstructRequest) (p.ConstructResponse, error) {
		return p.ConstructResponse{}, notImplemented(string(req.Urn.Type()))
	}
	out.Call = func(_ context.Context, req p.CallRequest) (p.CallResponse, error) {
		return p.CallResponse{}, notImplemented(string(req.Tok))
	}
	return out
}
