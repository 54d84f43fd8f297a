// Stand-in for the Pulumi command provider (pulumi-resource-command v1.2.1),
// written for the nodelocaldns end-to-end tests. This is NOT the real provider;
// see ../README.md. Our own code: the behaviour was modelled on the real
// provider's source (github.com/pulumi/pulumi-command, tag v1.2.1), nothing was
// copied from it.

package remote

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	p "github.com/pulumi/pulumi-go-provider"
)

// Names of the variables that carry the previous outputs
// (real provider: util.PulumiCommandStdout / PulumiCommandStderr).
const (
	envPreviousStdout = "PULUMI_COMMAND_STDOUT"
	envPreviousStderr = "PULUMI_COMMAND_STDERR"
)

// Logger is what the stand-in writes to the Pulumi log. In the plugin it is the
// engine's log (pulumi-go-provider's GetLogger); tests substitute a recorder
// with WithLogger.
type Logger interface {
	InfoStatus(msg string)
	Warning(msg string)
	Error(msg string)
}

type loggerKey struct{}

// WithLogger makes the stand-in log to l for operations run with the returned context.
func WithLogger(ctx context.Context, l Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

func loggerFrom(ctx context.Context) Logger {
	if l, ok := ctx.Value(loggerKey{}).(Logger); ok {
		return l
	}
	return p.GetLogger(ctx)
}

// setenvHint is logged when the server refuses a variable (text as in the
// real provider's logAndWrapSetenvErr).
func setenvHint(name string) string {
	return fmt.Sprintf("Unable to set '%s'. This only works if your SSH server is configured to accept "+
		"these variables via AcceptEnv. Alternatively, if a Bash-like shell runs the command on the remote "+
		"host, you could prefix the command itself with the variables in the form 'VAR=value command'", name)
}

// run executes cmd on the remote host described by s.Connection and, on
// success, stores its stdout and stderr in s.
//
// Semantics (real provider: CommandOutputs.run in remote/commandOutputs.go at
// v1.2.1), each checked by a test in run_test.go:
//   - a new SSH connection (see Connection.Dial) and one session per command;
//     the command text goes out as a single "exec" request, so sshd runs it
//     with the user's login shell ("$SHELL -c <command>"); no PTY is requested;
//   - every `environment` entry is sent as a "env" (setenv) request first; a
//     refusal logs an error and fails the step with
//     `could not set environment variable "NAME": ...` before the command runs;
//   - when addPreviousOutputInEnv is unset or true, the outputs currently in s
//     (the previous create/update's, so none on create) are sent as
//     PULUMI_COMMAND_STDOUT / PULUMI_COMMAND_STDERR, each only if non-empty; a
//     refusal is only logged as a warning and the command still runs;
//   - a non-empty `stdin` is written to the command's standard input, which is
//     then closed; without stdin the command sees EOF at once;
//   - stdout and stderr are captured separately; lines of the streams selected
//     by `logging` are echoed to the Pulumi log as info status messages;
//   - a failure to run or a non-zero exit fails the step with
//     "<ssh error>: running \"<command>\":\n<stdout and stderr interleaved>",
//     and the outputs in s are left unchanged; the command is never retried;
//   - on success stdout and stderr become the outputs, each with one trailing
//     newline removed.
func (s *CommandOutputs) run(ctx context.Context, cmd string, logging *Logging) error {
	log := loggerFrom(ctx)

	client, closer, err := s.Connection.Dial(ctx)
	if err != nil {
		return err
	}
	defer closer.Close()

	session, err := client.NewSession()
	if err != nil {
		return err
	}
	defer session.Close()

	for name, value := range s.Environment {
		if err := session.Setenv(name, value); err != nil {
			log.Error(setenvHint(name))
			return fmt.Errorf("could not set environment variable %q: %w", name, err)
		}
	}

	if s.AddPreviousOutputInEnv == nil || *s.AddPreviousOutputInEnv {
		for _, prev := range []struct{ name, value string }{
			{envPreviousStdout, s.Stdout},
			{envPreviousStderr, s.Stderr},
		} {
			if prev.value == "" {
				continue
			}
			if err := session.Setenv(prev.name, prev.value); err != nil {
				log.Warning(setenvHint(prev.name))
			}
		}
	}

	if s.Stdin != nil && *s.Stdin != "" {
		session.Stdin = strings.NewReader(*s.Stdin)
	}

	// x/crypto/ssh copies stdout and stderr in two goroutines: the shared
	// writers are serialised.
	var stdout, stderr, interleaved bytes.Buffer
	combined := &lockedWriter{w: &interleaved}
	logReader, logWriter := io.Pipe()
	lockedLog := &lockedWriter{w: logWriter}

	outWriters := []io.Writer{&stdout, combined}
	if logging.logsStdout() {
		outWriters = append(outWriters, lockedLog)
	}
	errWriters := []io.Writer{&stderr, combined}
	if logging.logsStderr() {
		errWriters = append(errWriters, lockedLog)
	}
	session.Stdout = io.MultiWriter(outWriters...)
	session.Stderr = io.MultiWriter(errWriters...)

	logged := make(chan struct{})
	go func() {
		defer close(logged)
		lines := bufio.NewScanner(logReader)
		for lines.Scan() {
			log.InfoStatus(lines.Text())
		}
		_, _ = io.Copy(io.Discard, logReader) // drain after an over-long line
	}()

	runErr := session.Run(cmd)
	_ = logWriter.Close()
	<-logged

	if runErr != nil {
		return fmt.Errorf("%w: running %q:\n%s", runErr, cmd, interleaved.String())
	}
	s.Stdout = strings.TrimSuffix(stdout.String(), "\n")
	s.Stderr = strings.TrimSuffix(stderr.String(), "\n")
	return nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
