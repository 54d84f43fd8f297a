// Test SSH server for the nodelocaldns stand-in command provider: an
// in-process server (golang.org/x/crypto/ssh, server side) on 127.0.0.1 that
// behaves like OpenSSH's sshd where the stand-in relies on it. Our own code.
//
// What it does, like sshd:
//   - "exec" runs the command with the login shell: "$SHELL -c <command>"
//     (Server.Shell, default /bin/sh), stdin/stdout/stderr wired to the
//     channel, stderr on the extended-data stream, then "exit-status";
//   - "env" requests are accepted only for names matching Server.AcceptEnv
//     (sshd's AcceptEnv; none by default) and refused otherwise;
//   - "pty-req" is accepted and recorded (the provider must not send one);
//   - "direct-tcpip" (port forwarding, used when this server is a bastion) is
//     allowed only to 127.0.0.1;
//   - public key, password and keyboard-interactive authentication.
//
// Everything is recorded for assertions: connections, authentications, execs
// with their environment and stdin.
package sshtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// Exec is one command the server ran.
type Exec struct {
	User    string
	Command string
	Env     map[string]string // the accepted "env" requests
	Refused []string          // names of refused "env" requests
	PTY     bool              // a pty-req was made on the session
	Stdin   string            // what the command read from stdin
	Exit    int
}

// Server is a running test SSH server.
type Server struct {
	Addr    string // 127.0.0.1:port
	Host    string
	Port    int
	HostKey ssh.Signer

	// Policy, set before use (safe to change between commands).
	mu             sync.Mutex
	acceptEnv      func(name string) bool
	authorizedKeys []ssh.PublicKey
	passwords      map[string]string // user -> password
	rejectAll      bool              // fail every authentication
	rejectUntil    int               // fail authentication on connections numbered <= rejectUntil
	shell          string

	// Records.
	connections int
	authOK      []string // "user method"
	execs       []Exec

	listener net.Listener
	wg       sync.WaitGroup
	t        testing.TB
}

// NewHostKey returns a fresh ed25519 host key.
func NewHostKey(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// AuthorizedKey renders a public key in authorized_keys form, as the
// provider's `hostKey` input takes it ("ssh-ed25519 AAAA...").
func AuthorizedKey(k ssh.PublicKey) string {
	return string(bytes.TrimSpace(ssh.MarshalAuthorizedKey(k)))
}

// Start starts a server on 127.0.0.1 with a fresh host key; it is stopped
// when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host, portText, _ := net.SplitHostPort(ln.Addr().String())
	port, _ := strconv.Atoi(portText)
	s := &Server{
		Addr:      ln.Addr().String(),
		Host:      host,
		Port:      port,
		HostKey:   NewHostKey(t),
		passwords: map[string]string{},
		acceptEnv: func(string) bool { return false },
		shell:     "/bin/sh",
		listener:  ln,
		t:         t,
	}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

// Close stops the server and waits for its connections to end.
func (s *Server) Close() {
	_ = s.listener.Close()
	s.wg.Wait()
}

// AcceptEnv sets which "env" request names are accepted (sshd's AcceptEnv).
func (s *Server) AcceptEnv(accept func(name string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acceptEnv = accept
}

// Authorize accepts public key authentication with k (any user).
func (s *Server) Authorize(k ssh.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authorizedKeys = append(s.authorizedKeys, k)
}

// SetPassword accepts password (and keyboard-interactive) authentication of user.
func (s *Server) SetPassword(user, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.passwords[user] = password
}

// RejectAll makes every authentication fail (to count dial attempts).
func (s *Server) RejectAll(reject bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectAll = reject
}

// RejectFirst makes authentication fail on the next n connections only.
func (s *Server) RejectFirst(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectUntil = s.connections + n
}

// Connections is the number of TCP connections accepted so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connections
}

// Auths lists the successful authentications as "user method".
func (s *Server) Auths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.authOK...)
}

// Execs lists the commands run so far.
func (s *Server) Execs() []Exec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Exec(nil), s.execs...)
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		conn, err := s.listener.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.connections++
		number := s.connections
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handleConn(conn, number)
		}()
	}
}

func (s *Server) config(number int) *ssh.ServerConfig {
	// rejected is called with s.mu held.
	rejected := func() bool { return s.rejectAll || number <= s.rejectUntil }
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			if !rejected() {
				for _, k := range s.authorizedKeys {
					if bytes.Equal(k.Marshal(), key.Marshal()) {
						s.authOK = append(s.authOK, meta.User()+" publickey")
						return nil, nil
					}
				}
			}
			return nil, errors.New("public key not authorized")
		},
		PasswordCallback: func(meta ssh.ConnMetadata, password []byte) (*ssh.Permissions, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			if want, ok := s.passwords[meta.User()]; ok && !rejected() && want == string(password) {
				s.authOK = append(s.authOK, meta.User()+" password")
				return nil, nil
			}
			return nil, errors.New("wrong password")
		},
		KeyboardInteractiveCallback: func(meta ssh.ConnMetadata, challenge ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			answers, err := challenge(meta.User(), "", []string{"Password: "}, []bool{false})
			if err != nil {
				return nil, err
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if want, ok := s.passwords[meta.User()]; ok && !rejected() && len(answers) == 1 && answers[0] == want {
				s.authOK = append(s.authOK, meta.User()+" keyboard-interactive")
				return nil, nil
			}
			return nil, errors.New("wrong answer")
		},
	}
	cfg.AddHostKey(s.HostKey)
	return cfg
}

func (s *Server) handleConn(nc net.Conn, number int) {
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(60 * time.Second))
	conn, chans, reqs, err := ssh.NewServerConn(nc, s.config(number))
	if err != nil {
		return
	}
	defer conn.Close()
	_ = nc.SetDeadline(time.Time{})
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	defer wg.Wait()
	for nch := range chans {
		switch nch.ChannelType() {
		case "session":
			ch, creqs, err := nch.Accept()
			if err != nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.handleSession(conn.User(), ch, creqs)
			}()
		case "direct-tcpip":
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.handleForward(nch)
			}()
		default:
			_ = nch.Reject(ssh.UnknownChannelType, "unsupported channel type")
		}
	}
}

// handleForward serves a direct-tcpip channel (RFC 4254 7.2) to 127.0.0.1 only.
func (s *Server) handleForward(nch ssh.NewChannel) {
	var req struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nch.ExtraData(), &req); err != nil {
		_ = nch.Reject(ssh.ConnectionFailed, "bad direct-tcpip request")
		return
	}
	if req.Host != "127.0.0.1" && req.Host != "localhost" {
		_ = nch.Reject(ssh.Prohibited, "test server forwards to 127.0.0.1 only")
		return
	}
	target, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(req.Port))))
	if err != nil {
		_ = nch.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		_ = target.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(ch, target); _ = ch.CloseWrite(); done <- struct{}{} }()
	go func() { _, _ = io.Copy(target, ch); _ = target.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	<-done
	<-done
	_ = ch.Close()
	_ = target.Close()
}

func (s *Server) handleSession(user string, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	rec := Exec{User: user, Env: map[string]string{}}
	for req := range reqs {
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			if err := ssh.Unmarshal(req.Payload, &kv); err != nil {
				_ = req.Reply(false, nil)
				continue
			}
			s.mu.Lock()
			ok := s.acceptEnv(kv.Name)
			s.mu.Unlock()
			if ok {
				rec.Env[kv.Name] = kv.Value
			} else {
				rec.Refused = append(rec.Refused, kv.Name)
			}
			_ = req.Reply(ok, nil)
		case "pty-req":
			rec.PTY = true
			_ = req.Reply(true, nil)
		case "exec":
			var cmd struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &cmd); err != nil {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			rec.Command = cmd.Command
			s.runExec(ch, &rec)
			return
		default:
			_ = req.Reply(false, nil)
		}
	}
}

func (s *Server) runExec(ch ssh.Channel, rec *Exec) {
	s.mu.Lock()
	shell := s.shell
	s.mu.Unlock()

	home := s.t.TempDir()
	cmd := exec.Command(shell, "-c", rec.Command)
	cmd.Dir = home
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"USER=" + rec.User,
		"SHELL=" + shell,
		"LOGNAME=" + rec.User,
	}
	for k, v := range rec.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdin bytes.Buffer
	stdinPipe, err := cmd.StdinPipe()
	if err != nil {
		s.finish(ch, rec, 255)
		return
	}
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(ch.Stderr(), "sshtest: %v\n", err)
		s.finish(ch, rec, 127)
		return
	}
	// Feed stdin until the client's EOF (or the command exits).
	stdinDone := make(chan struct{})
	go func() {
		defer close(stdinDone)
		_, _ = io.Copy(io.MultiWriter(stdinPipe, &stdin), ch)
		_ = stdinPipe.Close()
	}()
	exit := 0
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			exit = ee.ExitCode()
		} else {
			exit = 255
		}
	}
	select {
	case <-stdinDone:
	case <-time.After(2 * time.Second):
	}
	rec.Stdin = stdin.String()
	s.finish(ch, rec, exit)
}

func (s *Server) finish(ch ssh.Channel, rec *Exec, exit int) {
	rec.Exit = exit
	s.mu.Lock()
	s.execs = append(s.execs, *rec)
	s.mu.Unlock()
	status := make([]byte, 4)
	binary.BigEndian.PutUint32(status, uint32(exit))
	_, _ = ch.SendRequest("exit-status", false, status)
	_ = ch.CloseWrite()
}

// MatchNames returns an AcceptEnv policy accepting the given names or shell-style patterns.
func MatchNames(patterns ...string) func(string) bool {
	return func(name string) bool {
		for _, p := range patterns {
			if ok, _ := path.Match(p, name); ok {
				return true
			}
		}
		return false
	}
}
