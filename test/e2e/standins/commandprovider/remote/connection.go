// Stand-in for the Pulumi command provider (pulumi-resource-command v1.2.1),
// written for the nodelocaldns end-to-end tests. This is NOT the real provider;
// see ../README.md. Our own code: the behaviour was modelled on the real
// provider's source (github.com/pulumi/pulumi-command, tag v1.2.1), nothing was
// copied from it.

package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/pulumi/pulumi-go-provider/infer"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// Defaults of the connection inputs. They are the schema defaults of the real
// provider (remote/connection.go, remote/proxyConnection.go at v1.2.1: SetDefault
// user "root", port 22, dialErrorLimit 10, perDialTimeout 15) and the ones the
// @pulumi/command 1.2.1 SDK fills in client side
// (types/input.js connectionArgsProvideDefaults). infer applies them in Check;
// applyDefaults below only guards against a caller that skipped Check.
const (
	defaultUser           = "root"
	defaultPort           = 22
	defaultDialErrorLimit = 10
	defaultPerDialTimeout = 15 // seconds; 0 means no limit
	// A dialErrorLimit of -1 (real provider: any value < 0) means "retry forever".
	unlimitedDialErrors = -1
)

// Connection is the `connection` input of command:remote:Command.
// Field names, optionality and secrecy as in the real provider's Connection /
// connectionBase (remote/connection.go) and the SDK's ConnectionArgs
// (types/input.d.ts): password, privateKey and privateKeyPassword are secret;
// the whole connection is secret as well (CommandInputs.Connection).
type Connection struct {
	sshEndpoint
	Proxy *ProxyConnection `pulumi:"proxy,optional"`
}

// ProxyConnection is `connection.proxy`: the bastion the target is reached
// through. Same fields as Connection, without a nested proxy
// (real provider: remote/proxyConnection.go).
type ProxyConnection struct {
	sshEndpoint
}

// sshEndpoint holds the fields shared by Connection and ProxyConnection.
type sshEndpoint struct {
	User               *string  `pulumi:"user,optional"`
	Password           *string  `pulumi:"password,optional"           provider:"secret"`
	Host               *string  `pulumi:"host"`
	Port               *float64 `pulumi:"port,optional"`
	PrivateKey         *string  `pulumi:"privateKey,optional"         provider:"secret"`
	PrivateKeyPassword *string  `pulumi:"privateKeyPassword,optional" provider:"secret"`
	AgentSocketPath    *string  `pulumi:"agentSocketPath,optional"`
	DialErrorLimit     *int     `pulumi:"dialErrorLimit,optional"`
	PerDialTimeout     *int     `pulumi:"perDialTimeout,optional"`
	HostKey            *string  `pulumi:"hostKey,optional"`
}

// Annotate sets the schema descriptions and defaults.
func (c *Connection) Annotate(a infer.Annotator) {
	a.Describe(&c, "Instructions for how to connect to a remote endpoint (stand-in provider).")
	annotateEndpoint(a, &c.sshEndpoint)
	a.Describe(&c.Proxy, "The connection settings for the bastion/proxy host.")
}

// Annotate sets the schema descriptions and defaults.
func (c *ProxyConnection) Annotate(a infer.Annotator) {
	a.Describe(&c, "Instructions for how to connect to a remote endpoint via a bastion host (stand-in provider).")
	annotateEndpoint(a, &c.sshEndpoint)
}

func annotateEndpoint(a infer.Annotator, e *sshEndpoint) {
	a.Describe(&e.User, "The user that we should use for the connection.")
	a.SetDefault(&e.User, defaultUser)
	a.Describe(&e.Password, "The password we should use for the connection.")
	a.Describe(&e.Host, "The address of the resource to connect to.")
	a.Describe(&e.Port, "The port to connect to. Defaults to 22.")
	a.SetDefault(&e.Port, defaultPort)
	a.Describe(&e.PrivateKey, "The contents of an SSH key to use for the connection. "+
		"This takes preference over the password if provided.")
	a.Describe(&e.PrivateKeyPassword, "The password to use in case the private key is encrypted.")
	a.Describe(&e.AgentSocketPath, "SSH Agent socket path. Default to environment variable SSH_AUTH_SOCK if present.")
	a.Describe(&e.DialErrorLimit, "Max allowed errors on trying to dial the remote host. "+
		"-1 set count to unlimited. Default value is 10.")
	a.SetDefault(&e.DialErrorLimit, defaultDialErrorLimit)
	a.Describe(&e.PerDialTimeout, "Max number of seconds for each dial attempt. "+
		"0 implies no maximum. Default value is 15 seconds.")
	a.SetDefault(&e.PerDialTimeout, defaultPerDialTimeout)
	a.Describe(&e.HostKey, "The expected host key to verify the server's identity. "+
		"If not provided, the host key will be ignored.")
}

func (e *sshEndpoint) user() string {
	if e.User == nil {
		return defaultUser
	}
	return *e.User
}

func (e *sshEndpoint) address() (string, error) {
	if e.Host == nil || *e.Host == "" {
		return "", errors.New("connection.host is required")
	}
	port := defaultPort
	if e.Port != nil {
		port = int(*e.Port)
	}
	return net.JoinHostPort(*e.Host, strconv.Itoa(port)), nil
}

func (e *sshEndpoint) dialErrorLimit() int {
	if e.DialErrorLimit == nil {
		return defaultDialErrorLimit
	}
	return *e.DialErrorLimit
}

func (e *sshEndpoint) perDialTimeout() time.Duration {
	if e.PerDialTimeout == nil {
		return defaultPerDialTimeout * time.Second
	}
	return time.Duration(*e.PerDialTimeout) * time.Second
}

// clientConfig builds the SSH client configuration for this endpoint.
//
// Semantics (real provider: connectionBase.SSHConfig in remote/connection.go,
// remote/connection_unix.go at v1.2.1):
//   - hostKey, in authorized_keys form ("ssh-ed25519 AAAA..."), pins the host
//     key: only that key is accepted, and only its algorithm is negotiated.
//     Without hostKey, any host key is accepted (no known_hosts check).
//   - Authentication methods, in this order: privateKey (decrypted with
//     privateKeyPassword when given), password (also answering
//     keyboard-interactive prompts with it), then the SSH agent at
//     agentSocketPath, or at $SSH_AUTH_SOCK when agentSocketPath is unset.
//     An agent socket that cannot be opened fails the step (no retry).
//   - perDialTimeout is the TCP connect timeout of each attempt (0 = none).
//
// Secret values (privateKey, password, privateKeyPassword) never appear in the
// errors returned here. The returned closer releases the agent connection.
func (e *sshEndpoint) clientConfig() (*ssh.ClientConfig, io.Closer, error) {
	cfg := &ssh.ClientConfig{
		User:    e.user(),
		Timeout: e.perDialTimeout(),
	}

	if e.HostKey != nil {
		pinned, _, _, _, err := ssh.ParseAuthorizedKey([]byte(*e.HostKey))
		if err != nil {
			return nil, nil, fmt.Errorf("failed to parse host key: %w", err)
		}
		cfg.HostKeyCallback = ssh.FixedHostKey(pinned)
		cfg.HostKeyAlgorithms = []string{pinned.Type()}
	} else {
		//nolint:gosec // no hostKey given: host keys are deliberately not checked, as in the real provider.
		cfg.HostKeyCallback = ssh.InsecureIgnoreHostKey()
	}

	if e.PrivateKey != nil {
		var (
			signer ssh.Signer
			err    error
		)
		if e.PrivateKeyPassword != nil {
			signer, err = ssh.ParsePrivateKeyWithPassphrase([]byte(*e.PrivateKey), []byte(*e.PrivateKeyPassword))
		} else {
			signer, err = ssh.ParsePrivateKey([]byte(*e.PrivateKey))
		}
		if err != nil {
			// x/crypto's parse errors describe the format problem, never the key bytes.
			return nil, nil, fmt.Errorf("parsing privateKey: %w", err)
		}
		cfg.Auth = append(cfg.Auth, ssh.PublicKeys(signer))
	}

	if e.Password != nil {
		password := *e.Password
		cfg.Auth = append(cfg.Auth,
			ssh.Password(password),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = password
				}
				return answers, nil
			}))
	}

	socket := ""
	if e.AgentSocketPath != nil {
		socket = *e.AgentSocketPath
	} else if env := os.Getenv("SSH_AUTH_SOCK"); env != "" {
		socket = env
	}
	var closer io.Closer = nopCloser{}
	if socket != "" {
		conn, err := net.Dial("unix", socket)
		if err != nil {
			return nil, nil, fmt.Errorf("connecting to the SSH agent: %w", err)
		}
		cfg.Auth = append(cfg.Auth, ssh.PublicKeysCallback(agent.NewClient(conn).Signers))
		closer = conn
	}

	return cfg, closer, nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// Retry pacing of dial attempts: the defaults of the Pulumi SDK's retry.Until,
// which the real provider's dialWithRetry uses (100 ms, x1.5 per attempt, at
// most 5 s between attempts).
var (
	retryFirstDelay = 100 * time.Millisecond
	retryBackoff    = 1.5
	retryMaxDelay   = 5 * time.Second
)

// withDialRetries runs attempt until it succeeds or the dial error limit is
// reached (real provider: dialWithRetry / reachedDialingErrorLimit in
// remote/connection.go at v1.2.1):
//   - every failed attempt counts, whatever the error (refused TCP connect,
//     handshake failure, host key mismatch, rejected authentication);
//   - with limit L >= 0 the step fails when the number of failed attempts
//     exceeds L, i.e. after L+1 attempts, with "after L failed attempts: <last
//     error>" (the real provider's wording and count, kept as is); L < 0 retries
//     until the operation is cancelled;
//   - between attempts it logs "<what> <n>/<L|inf> failed: retrying" as an
//     ephemeral info status, like the real provider.
func withDialRetries[T any](ctx context.Context, what string, limit int, attempt func() (T, error)) (T, error) {
	var zero T
	delay := retryFirstDelay
	for try := 0; ; try++ {
		result, err := attempt()
		if err == nil {
			return result, nil
		}
		failed := try + 1
		if limit > unlimitedDialErrors && failed > limit {
			return zero, fmt.Errorf("after %d failed attempts: %w", try, err)
		}
		limitText := "inf"
		if limit > unlimitedDialErrors {
			limitText = strconv.Itoa(limit)
		}
		loggerFrom(ctx).InfoStatus(fmt.Sprintf("%s %d/%s failed: retrying", what, failed, limitText))

		if delay > retryMaxDelay {
			delay = retryMaxDelay
		}
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return zero, ctx.Err()
		}
		delay = time.Duration(float64(delay) * retryBackoff)
	}
}

// Dial opens the SSH client connection for a command.
//
// Without proxy: dial the target with retries (dialErrorLimit of the target).
// With proxy (real provider: Connection.Dial in remote/connection.go):
//  1. dial the bastion with retries under the proxy's dialErrorLimit and
//     perDialTimeout ("Dial proxy");
//  2. open a direct-tcpip channel from the bastion to host:port with retries
//     under the target's dialErrorLimit ("Dial from proxy");
//  3. run the SSH handshake with the target over that channel, retried under
//     the target's dialErrorLimit ("Dial"), authenticating and checking the
//     host key with the target's settings.
//
// Errors of the proxy path are prefixed "proxy: ".
// The returned closer closes everything the dial opened.
func (c *Connection) Dial(ctx context.Context) (*ssh.Client, io.Closer, error) {
	if c == nil {
		return nil, nil, errors.New("connection is required")
	}
	target, err := c.address()
	if err != nil {
		return nil, nil, err
	}
	cfg, agentConn, err := c.clientConfig()
	if err != nil {
		return nil, nil, err
	}
	closers := closeAll{agentConn}

	if c.Proxy == nil {
		client, err := withDialRetries(ctx, "Dial", c.dialErrorLimit(), func() (*ssh.Client, error) {
			return ssh.Dial("tcp", target, cfg)
		})
		if err != nil {
			closers.Close()
			return nil, nil, err
		}
		return client, append(closeAll{client}, closers...), nil
	}

	bastion, err := c.Proxy.address()
	if err != nil {
		closers.Close()
		return nil, nil, fmt.Errorf("proxy: %w", err)
	}
	proxyCfg, proxyAgentConn, err := c.Proxy.clientConfig()
	if err != nil {
		closers.Close()
		return nil, nil, fmt.Errorf("proxy: %w", err)
	}
	closers = append(closers, proxyAgentConn)

	proxyClient, err := withDialRetries(ctx, "Dial proxy", c.Proxy.dialErrorLimit(), func() (*ssh.Client, error) {
		return ssh.Dial("tcp", bastion, proxyCfg)
	})
	if err != nil {
		closers.Close()
		return nil, nil, fmt.Errorf("proxy: %w", err)
	}
	closers = append(closeAll{proxyClient}, closers...)

	tunnel, err := withDialRetries(ctx, "Dial from proxy", c.dialErrorLimit(), func() (net.Conn, error) {
		return proxyClient.Dial("tcp", target)
	})
	if err != nil {
		closers.Close()
		return nil, nil, fmt.Errorf("proxy: %w", err)
	}

	// As in the real provider, a failed handshake is retried on the same tunnel
	// (which in practice fails the same way until the limit is reached).
	type handshake struct {
		conn  ssh.Conn
		chans <-chan ssh.NewChannel
		reqs  <-chan *ssh.Request
	}
	hs, err := withDialRetries(ctx, "Dial", c.dialErrorLimit(), func() (handshake, error) {
		conn, chans, reqs, err := ssh.NewClientConn(tunnel, target, cfg)
		return handshake{conn, chans, reqs}, err
	})
	if err != nil {
		_ = tunnel.Close()
		closers.Close()
		return nil, nil, fmt.Errorf("proxy: %w", err)
	}
	client := ssh.NewClient(hs.conn, hs.chans, hs.reqs)
	return client, append(closeAll{client}, closers...), nil
}

// closeAll closes its members in order, ignoring errors.
type closeAll []io.Closer

func (cs closeAll) Close() error {
	for _, c := range cs {
		if c != nil {
			_ = c.Close()
		}
	}
	return nil
}
