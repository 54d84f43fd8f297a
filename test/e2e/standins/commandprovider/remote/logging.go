// Stand-in for the Pulumi command provider (pulumi-resource-command v1.2.1),
// written for the nodelocaldns end-to-end tests. This is NOT the real provider;
// see ../README.md. Our own code: the behaviour was modelled on the real
// provider's source (github.com/pulumi/pulumi-command, tag v1.2.1), nothing was
// copied from it.

package remote

import "github.com/pulumi/pulumi-go-provider/infer"

// Logging is the `logging` input of command:remote:Command: which of the
// command's output streams are echoed to the Pulumi log while it runs.
//
// Values and default (nil = both) as in the real provider
// (provider/pkg/provider/remote/logging.go at v1.2.1) and as the
// @pulumi/command 1.2.1 SDK declares them (types/enums/remote).
type Logging string

const (
	LogStdout          Logging = "stdout"
	LogStderr          Logging = "stderr"
	LogStdoutAndStderr Logging = "stdoutAndStderr"
	LogNone            Logging = "none"
)

// Values makes Logging a schema enum (the SDK sends the string values).
func (Logging) Values() []infer.EnumValue[Logging] {
	return []infer.EnumValue[Logging]{
		{Name: string(LogStdout), Value: LogStdout, Description: "Capture stdout in logs but not stderr"},
		{Name: string(LogStderr), Value: LogStderr, Description: "Capture stderr in logs but not stdout"},
		{Name: string(LogStdoutAndStderr), Value: LogStdoutAndStderr, Description: "Capture stdout and stderr in logs"},
		{Name: string(LogNone), Value: LogNone, Description: "Capture no logs"},
	}
}

// logsStdout reports whether stdout lines go to the Pulumi log.
// Unset means "stdoutAndStderr" (real provider: Logging.ShouldLogStdout).
func (l *Logging) logsStdout() bool {
	return l == nil || *l == LogStdout || *l == LogStdoutAndStderr
}

// logsStderr reports whether stderr lines go to the Pulumi log.
func (l *Logging) logsStderr() bool {
	return l == nil || *l == LogStderr || *l == LogStdoutAndStderr
}
