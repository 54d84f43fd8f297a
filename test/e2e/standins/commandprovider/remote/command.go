// Stand-in for the Pulumi command provider (pulumi-resource-command v1.2.1),
// written for the nodelocaldns end-to-end tests. This is NOT the real provider;
// see ../README.md. Our own code: the behaviour was modelled on the real
// provider's source (github.com/pulumi/pulumi-command, tag v1.2.1), nothing was
// copied from it.

// Package remote implements the stand-in's only resource, command:remote:Command.
// The Go package name is what gives the token its "remote" module.
package remote

import (
	"context"

	"github.com/pulumi/pulumi-go-provider/infer"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// Command is the resource command:remote:Command.
type Command struct{}

// CommandInputs are the inputs as @pulumi/command 1.2.1 sends them
// (remote/command.js, remote/command.d.ts) and as the real provider declares
// them (remote/command.go and common/inputs.go at v1.2.1).
//
// Diff (no custom Diff, as in the real provider: pulumi-go-provider's infer
// computes it from old and new inputs):
//   - no input changed: no changes, nothing runs;
//   - any input changed: an update, except for `triggers`;
//   - `triggers` carries provider:"replaceOnChanges": when the list appears or
//     disappears the provider itself reports add&replace / delete&replace. For a
//     change inside the list infer reports the element path ("triggers[0]") as
//     an update, and the replacement comes from the resource option
//     replaceOnChanges: ["triggers[*]"] that the SDK always adds
//     (remote/command.js), which the engine applies to that path. The end
//     result with the SDK is a replace for every triggers change.
//   - unknown input values (preview) do not fail the diff and nothing runs in
//     preview. A plain unknown value (e.g. `create`) is reported as a change. A
//     SECRET unknown value, which is how the SDK sends a `connection` that is
//     not known yet, counts as unchanged: infer converts it to an unknown
//     output value and the SDK's property diff (sdk v3.224.0
//     PropertyMap.diff: "for output properties, however, ignore differences")
//     skips those. Same framework code as the real provider, so the real one
//     behaves the same; the engine re-diffs with known values during `up`.
type CommandInputs struct {
	Triggers *[]any  `pulumi:"triggers,optional" provider:"replaceOnChanges"`
	Create   *string `pulumi:"create,optional"`
	Update   *string `pulumi:"update,optional"`
	Delete   *string `pulumi:"delete,optional"`

	Stdin   *string  `pulumi:"stdin,optional"`
	Logging *Logging `pulumi:"logging,optional"`
	// The whole connection is secret (real provider: provider:"secret";
	// the SDK also wraps it in pulumi.secret and lists it in additionalSecretOutputs).
	Connection             *Connection       `pulumi:"connection" provider:"secret"`
	Environment            map[string]string `pulumi:"environment,optional"`
	AddPreviousOutputInEnv *bool             `pulumi:"addPreviousOutputInEnv,optional"`
}

// Annotate sets the schema descriptions.
func (c *CommandInputs) Annotate(a infer.Annotator) {
	a.Describe(&c.Triggers, "The resource will be updated (or replaced) if any of these values change.")
	a.Describe(&c.Create, "The command to run once on resource creation.")
	a.Describe(&c.Update, "The command to run when the resource is updated. If empty, the create command runs instead.")
	a.Describe(&c.Delete, "The command to run on resource deletion.")
	a.Describe(&c.Stdin, "Pass a string to the command's process as standard in")
	a.Describe(&c.Logging, "If the command's stdout and stderr should be logged. Defaults to both.")
	a.Describe(&c.Connection, "The parameters with which to connect to the remote host.")
	a.Describe(&c.Environment, "Additional environment variables available to the command's process "+
		"(sent with SSH setenv requests: the server must accept them via AcceptEnv).")
	a.Describe(&c.AddPreviousOutputInEnv, "If the previous command's stdout and stderr are injected "+
		"into the environment of the next run as PULUMI_COMMAND_STDOUT and PULUMI_COMMAND_STDERR. Defaults to true.")
}

// CommandOutputs is the state: every input plus stdout and stderr.
// Outputs that come from secret inputs stay secret (infer re-applies the
// inputs' secrecy to the outputs of the same name).
type CommandOutputs struct {
	CommandInputs
	Stdout string `pulumi:"stdout"`
	Stderr string `pulumi:"stderr"`
}

// Annotate sets the schema descriptions.
func (c *CommandOutputs) Annotate(a infer.Annotator) {
	a.Describe(&c.Stdout, "The standard output of the command's process")
	a.Describe(&c.Stderr, "The standard error of the command's process")
}

// Annotate describes the resource.
func (c *Command) Annotate(a infer.Annotator) {
	a.Describe(&c, "STAND-IN for command:remote:Command of pulumi-resource-command v1.2.1 "+
		"(nodelocaldns end-to-end tests). A command to run on a remote host over SSH.")
}

var (
	_ infer.CustomResource[CommandInputs, CommandOutputs] = (*Command)(nil)
	_ infer.CustomUpdate[CommandInputs, CommandOutputs]   = (*Command)(nil)
	_ infer.CustomDelete[CommandOutputs]                  = (*Command)(nil)
)

// Create runs `create` (if set) with the inputs.
//
// Real provider (remote/commandController.go, Create, v1.2.1):
//   - the ID is the resource name plus 8 random hex digits;
//   - in preview nothing runs and the outputs are the inputs (stdout/stderr
//     empty, unknown where the engine fills them in);
//   - without `create` nothing runs (no SSH connection is made) and the
//     resource is created with empty stdout/stderr;
//   - there are no previous outputs, so PULUMI_COMMAND_* are not sent;
//   - if the command fails the create fails and no state is recorded.
func (*Command) Create(ctx context.Context, req infer.CreateRequest[CommandInputs],
) (infer.CreateResponse[CommandOutputs], error) {
	state := CommandOutputs{CommandInputs: req.Inputs}
	id, err := resource.NewUniqueHex(req.Name, 8, 0)
	if err != nil {
		return infer.CreateResponse[CommandOutputs]{Output: state}, err
	}
	if req.DryRun || req.Inputs.Create == nil {
		return infer.CreateResponse[CommandOutputs]{ID: id, Output: state}, nil
	}
	err = state.run(ctx, *req.Inputs.Create, req.Inputs.Logging)
	return infer.CreateResponse[CommandOutputs]{ID: id, Output: state}, err
}

// Update runs `update`, or `create` when `update` is unset, with the NEW
// inputs (new connection, environment, stdin, ...). The old `delete` is not run.
//
// Real provider (remote/commandController.go, Update, v1.2.1):
//   - the previous stdout/stderr are kept in the state and sent as
//     PULUMI_COMMAND_STDOUT/STDERR (when addPreviousOutputInEnv);
//   - in preview, or when neither update nor create is set, nothing runs and
//     the previous stdout/stderr are kept;
//   - if the command fails the update fails and the old state is kept.
func (*Command) Update(ctx context.Context, req infer.UpdateRequest[CommandInputs, CommandOutputs],
) (infer.UpdateResponse[CommandOutputs], error) {
	state := CommandOutputs{CommandInputs: req.Inputs, Stdout: req.State.Stdout, Stderr: req.State.Stderr}
	if req.DryRun {
		return infer.UpdateResponse[CommandOutputs]{Output: state}, nil
	}
	var err error
	switch {
	case req.Inputs.Update != nil:
		err = state.run(ctx, *req.Inputs.Update, req.Inputs.Logging)
	case req.Inputs.Create != nil:
		err = state.run(ctx, *req.Inputs.Create, req.Inputs.Logging)
	}
	return infer.UpdateResponse[CommandOutputs]{Output: state}, err
}

// Delete runs `delete` (if set) with the STORED state the engine passes: the
// old connection, environment, stdin and logging, and the last stdout/stderr
// as PULUMI_COMMAND_STDOUT/STDERR. Without `delete` nothing runs. A failing
// delete command fails the delete, so the resource stays in the state.
// (Real provider: remote/commandController.go, Delete, v1.2.1.)
func (*Command) Delete(ctx context.Context, req infer.DeleteRequest[CommandOutputs]) (infer.DeleteResponse, error) {
	state := req.State
	if state.Delete == nil {
		return infer.DeleteResponse{}, nil
	}
	return infer.DeleteResponse{}, state.run(ctx, *state.Delete, state.Logging)
}

// Read is not implemented: pulumi-go-provider's default Read returns the
// stored state and inputs unchanged, as for the real provider (which has no
// Read either), so `pulumi refresh` never changes a Command.
