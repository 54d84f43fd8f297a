// Tests of the stand-in command provider's SSH behaviour against the
// in-process test SSH server (internal/sshtest). Our own code.

package remote

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"nodelocaldns.test/standins/commandprovider/internal/sshtest"
)

// recorder is a Logger that keeps what was logged.
type recorder struct {
	mu                     sync.Mutex
	status, warnings, errs []string
}

func (r *recorder) InfoStatus(m string) { r.mu.Lock(); r.status = append(r.status, m); r.mu.Unlock() }
func (r *recorder) Warning(m string)    { r.mu.Lock(); r.warnings = append(r.warnings, m); r.mu.Unlock() }
func (r *recorder) Error(m string)      { r.mu.Lock(); r.errs = append(r.errs, m); r.mu.Unlock() }

func (r *recorder) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(append(append(append([]string{}, r.status...), r.warnings...), r.errs...), "\n")
}

func ptr[T any](v T) *T { return &v }

const testPassword = "pw-Secret-123"

// passwordConn returns a connection to srv with password auth, the host key
// pinned and quick failure (dialErrorLimit 0: one attempt).
func passwordConn(srv *sshtest.Server) *Connection {
	srv.SetPassword("deploy", testPassword)
	return &Connection{sshEndpoint: sshEndpoint{
		User:           ptr("deploy"),
		Password:       ptr(testPassword),
		Host:           ptr(srv.Host),
		Port:           ptr(float64(srv.Port)),
		DialErrorLimit: ptr(0),
		PerDialTimeout: ptr(5),
		HostKey:        ptr(sshtest.AuthorizedKey(srv.HostKey.PublicKey())),
	}}
}

func testCtx(t *testing.T) (context.Context, *recorder) {
	t.Setenv("SSH_AUTH_SOCK", "") // no ambient agent
	rec := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return WithLogger(ctx, rec), rec
}

func onlyExec(t *testing.T, srv *sshtest.Server) sshtest.Exec {
	t.Helper()
	execs := srv.Execs()
	if len(execs) != 1 {
		t.Fatalf("want exactly 1 command run on the server, got %d: %+v", len(execs), execs)
	}
	return execs[0]
}

func TestStdinReachesCommandAndOutputsAreSeparate(t *testing.T) {
	ctx, _ := testCtx(t)
	srv := sshtest.Start(t)
	cmd := `cat; echo "to stderr" >&2`
	s := &CommandOutputs{CommandInputs: CommandInputs{
		Connection: passwordConn(srv),
		Stdin:      ptr("line one\nline two\n"),
	}}
	if err := s.run(ctx, cmd, nil); err != nil {
		t.Fatal(err)
	}
	if s.Stdout != "line one\nline two" {
		t.Errorf("stdout = %q", s.Stdout)
	}
	if s.Stderr != "to stderr" {
		t.Errorf("stderr = %q", s.Stderr)
	}
	e := onlyExec(t, srv)
	if e.Command != cmd {
		t.Errorf("server got command %q, want the exact text %q", e.Command, cmd)
	}
	if e.Stdin != "line one\nline two\n" {
		t.Errorf("server-side stdin = %q", e.Stdin)
	}
	if e.PTY {
		t.Error("a PTY was requested; the provider must run the command without one")
	}
	if e.User != "deploy" {
		t.Errorf("user = %q", e.User)
	}
}

func TestNoStdinMeansImmediateEOF(t *testing.T) {
	ctx, _ := testCtx(t)
	srv := sshtest.Start(t)
	s := &CommandOutputs{CommandInputs: CommandInputs{Connection: passwordConn(srv), Stdin: ptr("")}}
	if err := s.run(ctx, "cat; echo done", nil); err != nil {
		t.Fatal(err)
	}
	if s.Stdout != "done" {
		t.Errorf("stdout = %q", s.Stdout)
	}
}

func TestOnlyOneTrailingNewlineIsTrimmed(t *testing.T) {
	ctx, _ := testCtx(t)
	srv := sshtest.Start(t)
	s := &CommandOutputs{CommandInputs: CommandInputs{Connection: passwordConn(srv)}}
	if err := s.run(ctx, `printf 'a\n\n'; printf 'b' >&2`, nil); err != nil {
		t.Fatal(err)
	}
	if s.Stdout != "a\n" || s.Stderr != "b" {
		t.Errorf("stdout = %q, stderr = %q", s.Stdout, s.Stderr)
	}
}

func TestCommandRunsThroughTheLoginShell(t *testing.T) {
	ctx, _ := testCtx(t)
	srv := sshtest.Start(t)
	s := &CommandOutputs{CommandInputs: CommandInputs{Connection: passwordConn(srv)}}
	// Shell syntax (arithmetic, &&, variables) works because the server runs
	// "$SHELL -c <text>", as sshd does with an exec request.
	if err := s.run(ctx, `x=$((20+22)) && echo "$x $SHELL"`, nil); err != nil {
		t.Fatal(err)
	}
	if s.Stdout != "42 /bin/sh" {
		t.Errorf("stdout = %q", s.Stdout)
	}
}

func TestNonZeroExitFailsWithCommandAndOutput(t *testing.T) {
	ctx, _ := testCtx(t)
	srv := sshtest.Start(t)
	cmd := `echo partial-out; echo partial-err >&2; exit 3`
	s := &CommandOutputs{CommandInputs: CommandInputs{Connection: passwordConn(srv)}, Stdout: "previous", Stderr: "previous-err"}
	err := s.run(ctx, cmd, nil)
	if err == nil {
		t.Fatal("want an error for exit status 3")
	}
	msg := err.Error()
	for _, want := range []string{"Process exited with status 3", `running "` + cmd + `"`, "partial-out", "partial-err"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, testPassword) {
		t.Error("error message contains the password")
	}
	if s.Stdout != "previous" || s.Stderr != "previous-err" {
		t.Errorf("outputs changed on failure: %q %q", s.Stdout, s.Stderr)
	}
	// A failed command is not retried.
	if n := len(srv.Execs()); n != 1 {
		t.Errorf("command ran %d times, want 1", n)
	}
	if n := srv.Connections(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestEnvironmentAcceptedAndRefused(t *testing.T) {
	t.Run("accepted", func(t *testing.T) {
		ctx, _ := testCtx(t)
		srv := sshtest.Start(t)
		srv.AcceptEnv(sshtest.MatchNames("NODE_*"))
		s := &CommandOutputs{CommandInputs: CommandInputs{
			Connection:  passwordConn(srv),
			Environment: map[string]string{"NODE_A": "1", "NODE_B": "two words"},
		}}
		if err := s.run(ctx, `echo "$NODE_A/$NODE_B"`, nil); err != nil {
			t.Fatal(err)
		}
		if s.Stdout != "1/two words" {
			t.Errorf("stdout = %q", s.Stdout)
		}
	})
	t.Run("refused fails the step before the command runs", func(t *testing.T) {
		ctx, rec := testCtx(t)
		srv := sshtest.Start(t)
		srv.AcceptEnv(sshtest.MatchNames("NODE_*"))
		s := &CommandOutputs{CommandInputs: CommandInputs{
			Connection:  passwordConn(srv),
			Environment: map[string]string{"NOT_ACCEPTED": "x"},
		}}
		err := s.run(ctx, "touch ran", nil)
		if err == nil || !strings.Contains(err.Error(), `could not set environment variable "NOT_ACCEPTED"`) {
			t.Fatalf("err = %v", err)
		}
		if n := len(srv.Execs()); n != 0 {
			t.Errorf("the command ran (%d execs) although setenv was refused", n)
		}
		if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], "AcceptEnv") {
			t.Errorf("logged errors = %q", rec.errs)
		}
	})
}

func TestPreviousOutputsInEnvironment(t *testing.T) {
	t.Run("accepted", func(t *testing.T) {
		ctx, rec := testCtx(t)
		srv := sshtest.Start(t)
		srv.AcceptEnv(sshtest.MatchNames("PULUMI_COMMAND_*"))
		s := &CommandOutputs{CommandInputs: CommandInputs{Connection: passwordConn(srv)}, Stdout: "old out", Stderr: "old err"}
		if err := s.run(ctx, `echo "$PULUMI_COMMAND_STDOUT|$PULUMI_COMMAND_STDERR"`, nil); err != nil {
			t.Fatal(err)
		}
		if s.Stdout != "old out|old err" {
			t.Errorf("stdout = %q", s.Stdout)
		}
		if len(rec.warnings) != 0 {
			t.Errorf("warnings = %q", rec.warnings)
		}
	})
	t.Run("refused is only a warning", func(t *testing.T) {
		ctx, rec := testCtx(t)
		srv := sshtest.Start(t) // accepts no env
		s := &CommandOutputs{CommandInputs: CommandInputs{Connection: passwordConn(srv)}, Stdout: "old out", Stderr: "old err"}
		if err := s.run(ctx, `echo "[$PULUMI_COMMAND_STDOUT]"`, nil); err != nil {
			t.Fatalf("a refused PULUMI_COMMAND_* setenv must not fail the step: %v", err)
		}
		if s.Stdout != "[]" {
			t.Errorf("stdout = %q", s.Stdout)
		}
		e := onlyExec(t, srv)
		if strings.Join(e.Refused, ",") != "PULUMI_COMMAND_STDOUT,PULUMI_COMMAND_STDERR" {
			t.Errorf("refused = %q", e.Refused)
		}
		if len(rec.warnings) != 2 || len(rec.errs) != 0 {
			t.Errorf("warnings = %q, errors = %q", rec.warnings, rec.errs)
		}
	})
	t.Run("addPreviousOutputInEnv false sends nothing", func(t *testing.T) {
		ctx, _ := testCtx(t)
		srv := sshtest.Start(t)
		srv.AcceptEnv(sshtest.MatchNames("*"))
		s := &CommandOutputs{CommandInputs: CommandInputs{Connection: passwordConn(srv), AddPreviousOutputInEnv: ptr(false)},
			Stdout: "old out", Stderr: "old err"}
		if err := s.run(ctx, "true", nil); err != nil {
			t.Fatal(err)
		}
		if e := onlyExec(t, srv); len(e.Env) != 0 || len(e.Refused) != 0 {
			t.Errorf("env requests sent: %v %v", e.Env, e.Refused)
		}
	})
	t.Run("empty previous outputs are not sent", func(t *testing.T) {
		ctx, _ := testCtx(t)
		srv := sshtest.Start(t)
		srv.AcceptEnv(sshtest.MatchNames("*"))
		s := &CommandOutputs{CommandInputs: CommandInputs{Connection: passwordConn(srv)}, Stdout: "only out"}
		if err := s.run(ctx, "true", nil); err != nil {
			t.Fatal(err)
		}
		e := onlyExec(t, srv)
		if _, ok := e.Env["PULUMI_COMMAND_STDERR"]; ok || e.Env["PULUMI_COMMAND_STDOUT"] != "only out" {
			t.Errorf("env = %v", e.Env)
		}
	})
}

func TestLoggingSelectsStreams(t *testing.T) {
	for _, tc := range []struct {
		logging          *Logging
		wantOut, wantErr bool
	}{
		{nil, true, true},
		{ptr(LogStdoutAndStderr), true, true},
		{ptr(LogStdout), true, false},
		{ptr(LogStderr), false, true},
		{ptr(LogNone), false, false},
	} {
		name := "unset"
		if tc.logging != nil {
			name = string(*tc.logging)
		}
		t.Run(name, func(t *testing.T) {
			ctx, rec := testCtx(t)
			srv := sshtest.Start(t)
			s := &CommandOutputs{CommandInputs: CommandInputs{Connection: passwordConn(srv)}}
			if err := s.run(ctx, "echo OUT-LINE; echo ERR-LINE >&2", tc.logging); err != nil {
				t.Fatal(err)
			}
			logs := rec.all()
			if strings.Contains(logs, "OUT-LINE") != tc.wantOut || strings.Contains(logs, "ERR-LINE") != tc.wantErr {
				t.Errorf("logged %q", logs)
			}
			// Capture is independent of logging.
			if s.Stdout != "OUT-LINE" || s.Stderr != "ERR-LINE" {
				t.Errorf("outputs %q %q", s.Stdout, s.Stderr)
			}
		})
	}
}

func TestHostKeyPinning(t *testing.T) {
	t.Run("right key accepted", func(t *testing.T) {
		ctx, _ := testCtx(t)
		srv := sshtest.Start(t)
		s := &CommandOutputs{CommandInputs: CommandInputs{Connection: passwordConn(srv)}}
		if err := s.run(ctx, "echo ok", nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("wrong key refused, after dialErrorLimit+1 attempts", func(t *testing.T) {
		ctx, _ := testCtx(t)
		srv := sshtest.Start(t)
		conn := passwordConn(srv)
		other := sshtest.NewHostKey(t)
		conn.HostKey = ptr(sshtest.AuthorizedKey(other.PublicKey()))
		conn.DialErrorLimit = ptr(1)
		s := &CommandOutputs{CommandInputs: CommandInputs{Connection: conn}}
		err := s.run(ctx, "echo must-not-run", nil)
		if err == nil || !strings.Contains(err.Error(), "host key mismatch") ||
			!strings.Contains(err.Error(), "after 1 failed attempts") {
			t.Fatalf("err = %v", err)
		}
		if n := srv.Connections(); n != 2 {
			t.Errorf("%d dial attempts, want 2 (dialErrorLimit 1)", n)
		}
		if len(srv.Execs()) != 0 || len(srv.Auths()) != 0 {
			t.Error("authenticated or ran a command on a host with the wrong key")
		}
	})
	t.Run("no hostKey: any key accepted", func(t *testing.T) {
		ctx, _ := testCtx(t)
		srv := sshtest.Start(t)
		conn := passwordConn(srv)
		conn.HostKey = nil
		s := &CommandOutputs{CommandInputs: CommandInputs{Connection: conn}}
		if err := s.run(ctx, "echo ok", nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unparsable hostKey", func(t *testing.T) {
		ctx, _ := testCtx(t)
		srv := sshtest.Start(t)
		conn := passwordConn(srv)
		conn.HostKey = ptr("not a key")
		s := &CommandOutputs{CommandInputs: CommandInputs{Connection: conn}}
		err := s.run(ctx, "echo ok", nil)
		if err == nil || !strings.Contains(err.Error(), "failed to parse host key") {
			t.Fatalf("err = %v", err)
		}
		if srv.Connections() != 0 {
			t.Error("dialed despite an unparsable host key")
		}
	})
}

func newClientKey(t *testing.T) (ssh.Signer, ed25519.PrivateKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer, priv
}

func keyConn(srv *sshtest.Server) *Connection {
	return &Connection{sshEndpoint: sshEndpoint{
		User: ptr("root"), Host: ptr(srv.Host), Port: ptr(float64(srv.Port)),
		DialErrorLimit: ptr(0), PerDialTimeout: ptr(5),
	}}
}

func TestAuthentication(t *testing.T) {
	t.Run("private key", func(t *testing.T) {
		ctx, _ := testCtx(t)
		srv := sshtest.Start(t)
		signer, priv := newClientKey(t)
		srv.Authorize(signer.PublicKey())
		block, err := ssh.MarshalPrivateKey(priv, "")
		if err != nil {
			t.Fatal(err)
		}
		conn := keyConn(srv)
		conn.PrivateKey = ptr(string(pem.EncodeToMemory(block)))
		s := &CommandOutputs{CommandInputs: CommandInputs{Connection: conn}}
		if err := s.run(ctx, "whoami >/dev/null; echo ok", nil); err != nil {
			t.Fatal(err)
		}
		if a := srv.Auths(); len(a) != 1 || a[0] != "root publickey" {
			t.Errorf("auths = %q", a)
		}
	})
	t.Run("encrypted private key with passphrase", func(t *testing.T) {
		ctx, _ := testCtx(t)
		srv := sshtest.Start(t)
		signer, priv := newClientKey(t)
		srv.Authorize(signer.PublicKey())
		block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("key-pass-phrase"))
		if err != nil {
			t.Fatal(err)
		}
		pemText := string(pem.EncodeToMemory(block))
		conn := keyConn(srv)
		conn.PrivateKey = ptr(pemText)
		conn.PrivateKeyPassword = ptr("key-pass-phrase")
		s := &CommandOutputs{CommandInputs: CommandInputs{Connection: conn}}
		if err := s.run(ctx, "echo ok", nil); err != nil {
			t.Fatal(err)
		}
		// Wrong passphrase: a clear error without the secrets in it.
		conn.PrivateKeyPassword = ptr("wrong-pass-phrase")
		err = s.run(ctx, "echo ok", nil)
		if err == nil {
			t.Fatal("want an error for a wrong passphrase")
		}
		if strings.Contains(err.Error(), "pass-phrase") || strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("error leaks a secret: %v", err)
		}
		// Encrypted key without passphrase.
		conn.PrivateKeyPassword = nil
		if err := s.run(ctx, "echo ok", nil); err == nil || strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("garbage private key", func(t *testing.T) {
		ctx, _ := testCtx(t)
		srv := sshtest.Start(t)
		conn := keyConn(srv)
		conn.PrivateKey = ptr("-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END OPENSSH PRIVATE KEY-----\n")
		s := &CommandOutputs{CommandInputs: CommandInputs{Connection: conn}}
		err := s.run(ctx, "echo ok", nil)
		if err == nil || strings.Contains(err.Error(), "c2VjcmV0") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		ctx, _ := testCtx(t)
		srv := sshtest.Start(t)
		conn := passwordConn(srv)
		conn.Password = ptr("not-the-password-xyz")
		s := &CommandOutputs{CommandInputs: CommandInputs{Connection: conn}}
		err := s.run(ctx, "echo ok", nil)
		if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
			t.Fatalf("err = %v", err)
		}
		if strings.Contains(err.Error(), "not-the-password-xyz") {
			t.Error("error leaks the password")
		}
	})
	agentSocket := func(t *testing.T, signerKey ed25519.PrivateKey) string {
		t.Helper()
		keyring := agent.NewKeyring()
		if err := keyring.Add(agent.AddedKey{PrivateKey: signerKey}); err != nil {
			t.Fatal(err)
		}
		sock := filepath.Join(t.TempDir(), "agent.sock")
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { defer c.Close(); _ = agent.ServeAgent(keyring, c) }()
			}
		}()
		return sock
	}
	t.Run("agent at agentSocketPath", func(t *testing.T) {
		ctx, _ := testCtx(t)
		srv := sshtest.Start(t)
		signer, priv := newClientKey(t)
		srv.Authorize(signer.PublicKey())
		conn := keyConn(srv)
		conn.AgentSocketPath = ptr(agentSocket(t, priv))
		s := &CommandOutputs{CommandInputs: CommandInputs{Connection: conn}}
		if err := s.run(ctx, "echo ok", nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("agent at SSH_AUTH_SOCK", func(t *testing.T) {
		ctx, _ := testCtx(t)
		srv := sshtest.Start(t)
		signer, priv := newClientKey(t)
		srv.Authorize(signer.PublicKey())
		t.Setenv("SSH_AUTH_SOCK", agentSocket(t, priv))
		s := &CommandOutputs{CommandInputs: CommandInputs{Connection: keyConn(srv)}}
		if err := s.run(ctx, "echo ok", nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("agent socket missing fails without dialing", func(t *testing.T) {
		ctx, _ := testCtx(t)
		srv := sshtest.Start(t)
		conn := keyConn(srv)
		conn.AgentSocketPath = ptr(filepath.Join(t.TempDir(), "none.sock"))
		s := &CommandOutputs{CommandInputs: CommandInputs{Connection: conn}}
		if err := s.run(ctx, "echo ok", nil); err == nil || !strings.Contains(err.Error(), "SSH agent") {
			t.Fatalf("err = %v", err)
		}
		if srv.Connections() != 0 {
			t.Error("dialed although the agent socket failed")
		}
	})
}

func TestDialRetries(t *testing.T) {
	t.Run("limit reached", func(t *testing.T) {
		ctx, rec := testCtx(t)
		srv := sshtest.Start(t)
		srv.RejectAll(true)
		conn := passwordConn(srv)
		conn.DialErrorLimit = ptr(2)
		s := &CommandOutputs{CommandInputs: CommandInputs{Connection: conn}}
		err := s.run(ctx, "echo ok", nil)
		if err == nil || !strings.Contains(err.Error(), "after 2 failed attempts") {
			t.Fatalf("err = %v", err)
		}
		if n := srv.Connections(); n != 3 {
			t.Errorf("%d attempts, want 3 (dialErrorLimit 2)", n)
		}
		if !strings.Contains(rec.all(), "Dial 1/2 failed: retrying") || !strings.Contains(rec.all(), "Dial 2/2 failed: retrying") {
			t.Errorf("logged %q", rec.all())
		}
	})
	t.Run("a later attempt succeeds", func(t *testing.T) {
		ctx, _ := testCtx(t)
		srv := sshtest.Start(t)
		srv.RejectFirst(2)
		conn := passwordConn(srv)
		conn.DialErrorLimit = ptr(2)
		s := &CommandOutputs{CommandInputs: CommandInputs{Connection: conn}}
		if err := s.run(ctx, "echo ok", nil); err != nil {
			t.Fatal(err)
		}
		if n := srv.Connections(); n != 3 {
			t.Errorf("%d attempts, want 3 (two rejected, the third accepted)", n)
		}
	})
	t.Run("nothing listening", func(t *testing.T) {
		ctx, _ := testCtx(t)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().(*net.TCPAddr)
		_ = ln.Close()
		conn := &Connection{sshEndpoint: sshEndpoint{Host: ptr("127.0.0.1"), Port: ptr(float64(addr.Port)),
			Password: ptr(testPassword), DialErrorLimit: ptr(1), PerDialTimeout: ptr(1)}}
		s := &CommandOutputs{CommandInputs: CommandInputs{Connection: conn}}
		err = s.run(ctx, "echo ok", nil)
		if err == nil || !strings.Contains(err.Error(), "after 1 failed attempts") || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("err = %v", err)
		}
		if strings.Contains(err.Error(), testPassword) {
			t.Error("error leaks the password")
		}
	})
}

func TestProxy(t *testing.T) {
	ctx, _ := testCtx(t)
	bastion := sshtest.Start(t)
	target := sshtest.Start(t)
	conn := passwordConn(target)
	proxy := passwordConn(bastion)
	conn.Proxy = &ProxyConnection{sshEndpoint: proxy.sshEndpoint}
	s := &CommandOutputs{CommandInputs: CommandInputs{Connection: conn, Stdin: ptr("via bastion")}}
	if err := s.run(ctx, "cat", nil); err != nil {
		t.Fatal(err)
	}
	if s.Stdout != "via bastion" {
		t.Errorf("stdout = %q", s.Stdout)
	}
	if len(bastion.Execs()) != 0 || len(target.Execs()) != 1 {
		t.Errorf("bastion ran %d, target ran %d commands", len(bastion.Execs()), len(target.Execs()))
	}
	if len(bastion.Auths()) != 1 || len(target.Auths()) != 1 {
		t.Errorf("auths: bastion %q, target %q", bastion.Auths(), target.Auths())
	}

	t.Run("target host key checked through the bastion", func(t *testing.T) {
		ctx, _ := testCtx(t)
		conn := passwordConn(target)
		conn.HostKey = ptr(sshtest.AuthorizedKey(sshtest.NewHostKey(t).PublicKey()))
		conn.Proxy = &ProxyConnection{sshEndpoint: passwordConn(bastion).sshEndpoint}
		s := &CommandOutputs{CommandInputs: CommandInputs{Connection: conn}}
		err := s.run(ctx, "echo no", nil)
		if err == nil || !strings.HasPrefix(err.Error(), "proxy: ") || !strings.Contains(err.Error(), "host key mismatch") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("bastion host key checked", func(t *testing.T) {
		ctx, _ := testCtx(t)
		conn := passwordConn(target)
		p := passwordConn(bastion)
		p.HostKey = ptr(sshtest.AuthorizedKey(target.HostKey.PublicKey())) // the wrong server's key
		conn.Proxy = &ProxyConnection{sshEndpoint: p.sshEndpoint}
		s := &CommandOutputs{CommandInputs: CommandInputs{Connection: conn}}
		err := s.run(ctx, "echo no", nil)
		if err == nil || !strings.HasPrefix(err.Error(), "proxy: ") || !strings.Contains(err.Error(), "host key mismatch") {
			t.Fatalf("err = %v", err)
		}
	})
}
