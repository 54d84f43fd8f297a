// Provider-level tests of the stand-in command provider: the gRPC
// ResourceProvider the engine talks to, driven with requests shaped like the
// ones the engine sends for @pulumi/command 1.2.1, against the in-process test
// SSH server. Our own code.

package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	rpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	"nodelocaldns.test/standins/commandprovider/internal/sshtest"
)

func TestMain(m *testing.M) {
	// Without an engine, pulumi-go-provider logs to slog's default logger: keep the test output readable.
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}

const testURN = "urn:pulumi:e2e::nodelocaldns::command:remote:Command::node-a"

type harness struct {
	t   *testing.T
	ctx context.Context
	srv rpc.ResourceProviderServer
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	t.Setenv("SSH_AUTH_SOCK", "")
	srv, err := p.RawServer(packageName, version, NewProvider())(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	// As the engine does before any resource operation.
	if _, err := srv.Configure(ctx, &rpc.ConfigureRequest{
		AcceptSecrets: true, AcceptResources: true, SendsOldInputs: true, SendsOldInputsToDelete: true,
	}); err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, ctx: ctx, srv: srv}
}

var marshalOpts = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, KeepResources: true}

func (h *harness) marshal(m resource.PropertyMap) *structpb.Struct {
	h.t.Helper()
	s, err := plugin.MarshalProperties(m, marshalOpts)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) unmarshal(s *structpb.Struct) resource.PropertyMap {
	h.t.Helper()
	m, err := plugin.UnmarshalProperties(s, marshalOpts)
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

func (h *harness) check(news resource.PropertyMap) resource.PropertyMap {
	h.t.Helper()
	resp, err := h.srv.Check(h.ctx, &rpc.CheckRequest{Urn: testURN, News: h.marshal(news), RandomSeed: []byte("seed")})
	if err != nil {
		h.t.Fatal(err)
	}
	if len(resp.GetFailures()) > 0 {
		h.t.Fatalf("check failures: %v", resp.GetFailures())
	}
	return h.unmarshal(resp.GetInputs())
}

func (h *harness) create(inputs resource.PropertyMap, preview bool) (string, resource.PropertyMap, error) {
	h.t.Helper()
	resp, err := h.srv.Create(h.ctx, &rpc.CreateRequest{Urn: testURN, Properties: h.marshal(inputs), Preview: preview})
	if err != nil {
		return "", nil, err
	}
	return resp.GetId(), h.unmarshal(resp.GetProperties()), nil
}

func (h *harness) diff(state, oldInputs, news resource.PropertyMap) *rpc.DiffResponse {
	h.t.Helper()
	resp, err := h.srv.Diff(h.ctx, &rpc.DiffRequest{
		Id: "node-a-0000", Urn: testURN,
		Olds: h.marshal(state), OldInputs: h.marshal(oldInputs), News: h.marshal(news),
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return resp
}

func (h *harness) update(state, oldInputs, news resource.PropertyMap, preview bool) (resource.PropertyMap, error) {
	h.t.Helper()
	resp, err := h.srv.Update(h.ctx, &rpc.UpdateRequest{
		Id: "node-a-0000", Urn: testURN, Preview: preview,
		Olds: h.marshal(state), OldInputs: h.marshal(oldInputs), News: h.marshal(news),
	})
	if err != nil {
		return nil, err
	}
	return h.unmarshal(resp.GetProperties()), nil
}

func (h *harness) delete(state, oldInputs resource.PropertyMap) error {
	h.t.Helper()
	_, err := h.srv.Delete(h.ctx, &rpc.DeleteRequest{
		Id: "node-a-0000", Urn: testURN, Properties: h.marshal(state), OldInputs: h.marshal(oldInputs),
	})
	return err
}

// connection builds `connection` as the SDK sends it: secret, with the
// SDK's defaults filled in (types/input.js connectionArgsProvideDefaults).
func connection(srv *sshtest.Server, password string) resource.PropertyValue {
	srv.SetPassword("root", password)
	return resource.MakeSecret(resource.NewPropertyValue(map[string]any{
		"host":           srv.Host,
		"port":           float64(srv.Port),
		"user":           "root",
		"password":       password,
		"dialErrorLimit": float64(0),
		"perDialTimeout": float64(5),
		"hostKey":        sshtest.AuthorizedKey(srv.HostKey.PublicKey()),
	}))
}

func inputs(conn resource.PropertyValue, extra map[string]any) resource.PropertyMap {
	m := resource.PropertyMap{"connection": conn}
	for k, v := range extra {
		m[resource.PropertyKey(k)] = resource.NewPropertyValue(v)
	}
	return m
}

func str(m resource.PropertyMap, k string) string {
	v := m[resource.PropertyKey(k)]
	if v.IsSecret() {
		v = v.SecretValue().Element
	}
	if !v.IsString() {
		return ""
	}
	return v.StringValue()
}

func commands(execs []sshtest.Exec) []string {
	out := []string{}
	for _, e := range execs {
		out = append(out, e.Command)
	}
	return out
}

func TestPluginInfoVersion(t *testing.T) {
	h := newHarness(t)
	info, err := h.srv.GetPluginInfo(h.ctx, &emptypb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	if info.GetVersion() != "1.2.1" {
		t.Errorf("version = %q, want 1.2.1", info.GetVersion())
	}
}

func TestCheckAppliesConnectionDefaults(t *testing.T) {
	h := newHarness(t)
	checked := h.check(resource.PropertyMap{
		"connection": resource.MakeSecret(resource.NewPropertyValue(map[string]any{
			"host":  "10.0.0.1",
			"proxy": map[string]any{"host": "10.0.0.2"},
		})),
		"create": resource.NewProperty("true"),
	})
	conn := checked["connection"]
	if !conn.IsSecret() {
		t.Fatal("connection is not secret after Check")
	}
	c := conn.SecretValue().Element.ObjectValue()
	for _, o := range []resource.PropertyMap{c, c["proxy"].ObjectValue()} {
		if o["user"].StringValue() != "root" || o["port"].NumberValue() != 22 ||
			o["dialErrorLimit"].NumberValue() != 10 || o["perDialTimeout"].NumberValue() != 15 {
			t.Errorf("defaults not applied: %v", o)
		}
	}
}

func TestLifecycle(t *testing.T) {
	h := newHarness(t)
	srv := sshtest.Start(t)
	srv.AcceptEnv(sshtest.MatchNames("PULUMI_COMMAND_*", "NODE_NAME"))
	conn := connection(srv, "pw-lifecycle-1")

	in1 := h.check(inputs(conn, map[string]any{
		"create":      `echo "created $NODE_NAME"; cat`,
		"delete":      `echo "deleting after: $PULUMI_COMMAND_STDOUT"`,
		"environment": map[string]any{"NODE_NAME": "node-a"},
		"stdin":       resource.MakeSecret(resource.NewProperty("stdin-secret")),
	}))

	// Preview: nothing runs, nothing is dialed.
	if _, _, err := h.create(in1, true); err != nil {
		t.Fatal(err)
	}
	if srv.Connections() != 0 {
		t.Fatal("preview create dialed the host")
	}

	id, state1, err := h.create(in1, false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id, "node-a") || len(id) != len("node-a")+8 {
		t.Errorf("id = %q", id)
	}
	if got := str(state1, "stdout"); got != "created node-a\nstdin-secret" {
		t.Errorf("stdout = %q", got)
	}
	if !state1["connection"].IsSecret() {
		t.Error("connection output is not secret")
	}
	if !state1["stdin"].IsSecret() {
		t.Error("stdin output lost its secrecy")
	}
	if state1["create"].IsSecret() {
		t.Error("create output became secret although its input was not")
	}

	// Refresh: state unchanged.
	read, err := h.srv.Read(h.ctx, &rpc.ReadRequest{Id: id, Urn: testURN, Properties: h.marshal(state1), Inputs: h.marshal(in1)})
	if err != nil {
		t.Fatal(err)
	}
	if got := h.unmarshal(read.GetProperties()); !got.DeepEquals(state1) || read.GetId() != id {
		t.Errorf("read changed the state:\n%v\n%v", got, state1)
	}

	// Update with `update` set: the update command runs with the NEW inputs and
	// the previous stdout; the old delete does not run.
	in2 := h.check(inputs(conn, map[string]any{
		"create":      `echo "created $NODE_NAME"; cat`,
		"update":      `echo "updated $NODE_NAME prev=[$PULUMI_COMMAND_STDOUT]"; cat`,
		"delete":      `echo "deleting after: $PULUMI_COMMAND_STDOUT"`,
		"environment": map[string]any{"NODE_NAME": "node-a2"},
		"stdin":       resource.MakeSecret(resource.NewProperty("new-stdin")),
	}))
	if d := h.diff(state1, in1, in2); d.GetChanges() != rpc.DiffResponse_DIFF_SOME || len(d.GetReplaces()) != 0 {
		t.Fatalf("diff = %v", d)
	}
	before := len(srv.Execs())
	if _, err := h.update(state1, in1, in2, true); err != nil {
		t.Fatal(err)
	}
	if len(srv.Execs()) != before {
		t.Fatal("preview update ran a command")
	}
	state2, err := h.update(state1, in1, in2, false)
	if err != nil {
		t.Fatal(err)
	}
	want := "updated node-a2 prev=[created node-a\nstdin-secret]\nnew-stdin"
	if got := str(state2, "stdout"); got != want {
		t.Errorf("stdout after update = %q, want %q", got, want)
	}
	execs := srv.Execs()
	if len(execs) != 2 || !strings.HasPrefix(execs[1].Command, "echo \"updated") {
		t.Errorf("commands run: %q (the old delete must not run on update)", commands(execs))
	}

	// Update without `update`: `create` runs again.
	in3 := h.check(inputs(conn, map[string]any{
		"create":      `echo "recreated $NODE_NAME"`,
		"delete":      `echo "deleting after: $PULUMI_COMMAND_STDOUT"`,
		"environment": map[string]any{"NODE_NAME": "node-a3"},
	}))
	state3, err := h.update(state2, in2, in3, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := str(state3, "stdout"); got != "recreated node-a3" {
		t.Errorf("stdout = %q", got)
	}

	// Delete runs the stored delete with the stored environment and outputs.
	if err := h.delete(state3, in3); err != nil {
		t.Fatal(err)
	}
	last := srv.Execs()[len(srv.Execs())-1]
	if last.Command != `echo "deleting after: $PULUMI_COMMAND_STDOUT"` ||
		last.Env["PULUMI_COMMAND_STDOUT"] != "recreated node-a3" || last.Env["NODE_NAME"] != "node-a3" {
		t.Errorf("delete ran %+v", last)
	}
}

func TestCreateWithoutCreateCommandDoesNotDial(t *testing.T) {
	h := newHarness(t)
	srv := sshtest.Start(t)
	in := h.check(inputs(connection(srv, "pw-2"), map[string]any{"delete": "echo bye"}))
	id, state, err := h.create(in, false)
	if err != nil || id == "" {
		t.Fatal(id, err)
	}
	if srv.Connections() != 0 {
		t.Error("dialed although there is no create command")
	}
	if str(state, "stdout") != "" || str(state, "stderr") != "" {
		t.Errorf("state = %v", state)
	}
}

func TestFailedCreateAndUpdate(t *testing.T) {
	h := newHarness(t)
	srv := sshtest.Start(t)
	conn := connection(srv, "pw-3")
	in := h.check(inputs(conn, map[string]any{"create": "echo visible-output; exit 7"}))
	_, _, err := h.create(in, false)
	if err == nil || !strings.Contains(err.Error(), `running "echo visible-output; exit 7"`) ||
		!strings.Contains(err.Error(), "visible-output") || !strings.Contains(err.Error(), "status 7") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "pw-3") {
		t.Error("error leaks the password")
	}
	if len(srv.Execs()) != 1 {
		t.Errorf("failed command ran %d times", len(srv.Execs()))
	}

	okIn := h.check(inputs(conn, map[string]any{"create": "echo ok"}))
	_, state, err := h.create(okIn, false)
	if err != nil {
		t.Fatal(err)
	}
	badIn := h.check(inputs(conn, map[string]any{"create": "echo ok", "update": "echo nope >&2; false"}))
	if _, err := h.update(state, okIn, badIn, false); err == nil ||
		!strings.Contains(err.Error(), `running "echo nope >&2; false"`) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("err = %v", err)
	}
}

func TestDeleteUsesTheStoredInputs(t *testing.T) {
	h := newHarness(t)
	oldHost := sshtest.Start(t)
	newHost := sshtest.Start(t)
	oldIn := h.check(inputs(connection(oldHost, "pw-old"), map[string]any{
		"create": "echo old", "delete": "echo old-delete", "triggers": []any{"v1"},
	}))
	_, oldState, err := h.create(oldIn, false)
	if err != nil {
		t.Fatal(err)
	}
	// The program now points the resource at another host with another delete
	// command and a new trigger: a replace. The engine creates the new
	// resource, then deletes the old one passing the OLD state.
	newIn := h.check(inputs(connection(newHost, "pw-new"), map[string]any{
		"create": "echo new", "delete": "echo new-delete", "triggers": []any{"v2"},
	}))
	if decision(h.diff(oldState, oldIn, newIn), sdkReplaceOnChanges) != "replace" {
		t.Fatal("expected a replace")
	}
	if _, _, err := h.create(newIn, false); err != nil {
		t.Fatal(err)
	}
	if err := h.delete(oldState, oldIn); err != nil {
		t.Fatal(err)
	}
	if got := commands(oldHost.Execs()); strings.Join(got, "|") != "echo old|echo old-delete" {
		t.Errorf("old host ran %q", got)
	}
	if got := commands(newHost.Execs()); strings.Join(got, "|") != "echo new" {
		t.Errorf("new host ran %q", got)
	}
	last := oldHost.Execs()[1]
	if last.Refused == nil || last.Refused[0] != "PULUMI_COMMAND_STDOUT" {
		t.Errorf("delete did not offer the stored stdout: %+v", last)
	}
}

// sdkReplaceOnChanges is the resource option @pulumi/command 1.2.1 adds to
// every remote.Command (remote/command.js: replaceOnChanges ["triggers[*]"]).
var sdkReplaceOnChanges = []string{"triggers[*]"}

// decision is the engine's verdict for a Diff response: "none", "update" or
// "replace". It follows the engine (pkg/resource/deploy/step_generator.go,
// applyReplaceOnChanges, Pulumi v3.274.1): a detailed-diff path covered by a
// replaceOnChanges path becomes a replace, and any replace kind or replace key
// means replace.
func decision(d *rpc.DiffResponse, replaceOnChanges []string) string {
	if d.GetChanges() != rpc.DiffResponse_DIFF_SOME {
		return "none"
	}
	if len(d.GetReplaces()) > 0 {
		return "replace"
	}
	for path, pd := range d.GetDetailedDiff() {
		switch pd.GetKind() {
		case rpc.PropertyDiff_ADD_REPLACE, rpc.PropertyDiff_DELETE_REPLACE, rpc.PropertyDiff_UPDATE_REPLACE:
			return "replace"
		}
		diffPath, err := resource.ParsePropertyPath(path)
		if err != nil {
			continue
		}
		for _, r := range replaceOnChanges {
			rp, err := resource.ParsePropertyPath(r)
			if err == nil && rp.Contains(diffPath) {
				return "replace"
			}
		}
	}
	return "update"
}

func detailed(d *rpc.DiffResponse) string {
	var out []string
	for k, v := range d.GetDetailedDiff() {
		out = append(out, k+"="+v.GetKind().String())
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func TestDiffDecisions(t *testing.T) {
	h := newHarness(t)
	srv := sshtest.Start(t)
	srv.AcceptEnv(sshtest.MatchNames("*"))
	conn := connection(srv, "pw-diff")
	base := map[string]any{
		"create":                 "echo create",
		"update":                 "echo update",
		"delete":                 "echo delete",
		"stdin":                  "in",
		"logging":                "stdout",
		"environment":            map[string]any{"A": "1"},
		"addPreviousOutputInEnv": true,
		"triggers":               []any{"t1", 2.0},
	}
	oldIn := h.check(inputs(conn, base))
	_, state, err := h.create(oldIn, false)
	if err != nil {
		t.Fatal(err)
	}
	with := func(k string, v any) resource.PropertyMap {
		m := map[string]any{}
		for bk, bv := range base {
			m[bk] = bv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return h.check(inputs(conn, m))
	}

	for _, tc := range []struct {
		name       string
		news       resource.PropertyMap
		want       string // engine decision with the SDK's replaceOnChanges
		wantDetail string // provider's own detailed diff
	}{
		{"no change", oldIn, "none", ""},
		{"create changed", with("create", "echo create2"), "update", "create=UPDATE"},
		{"update changed", with("update", "echo update2"), "update", "update=UPDATE"},
		{"delete changed", with("delete", "echo delete2"), "update", "delete=UPDATE"},
		{"stdin changed", with("stdin", "in2"), "update", "stdin=UPDATE"},
		{"logging changed", with("logging", "none"), "update", "logging=UPDATE"},
		{"environment changed", with("environment", map[string]any{"A": "2"}), "update", "environment.A=UPDATE"},
		{"addPreviousOutputInEnv changed", with("addPreviousOutputInEnv", false), "update", "addPreviousOutputInEnv=UPDATE"},
		{"connection changed", h.check(inputs(connection(sshtest.Start(t), "pw-other"), base)), "update", ""},
		{"trigger element changed", with("triggers", []any{"t1", 3.0}), "replace", "triggers[1]=UPDATE"},
		{"trigger appended", with("triggers", []any{"t1", 2.0, "t3"}), "replace", "triggers[2]=ADD"},
		{"triggers removed", with("triggers", nil), "replace", "triggers=DELETE_REPLACE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := h.diff(state, oldIn, tc.news)
			if got := decision(d, sdkReplaceOnChanges); got != tc.want {
				t.Errorf("decision = %s, want %s (detailed %s, replaces %v)", got, tc.want, detailed(d), d.GetReplaces())
			}
			if tc.wantDetail != "" && detailed(d) != tc.wantDetail {
				t.Errorf("detailed diff = %s, want %s", detailed(d), tc.wantDetail)
			}
			if tc.want != "replace" && len(d.GetReplaces()) != 0 {
				t.Errorf("replaces = %v", d.GetReplaces())
			}
		})
	}

	t.Run("triggers added where there were none: the provider itself replaces", func(t *testing.T) {
		noTrig := map[string]any{"create": "echo x"}
		old := h.check(inputs(conn, noTrig))
		_, st, err := h.create(old, false)
		if err != nil {
			t.Fatal(err)
		}
		news := h.check(inputs(conn, map[string]any{"create": "echo x", "triggers": []any{"a"}}))
		d := h.diff(st, old, news)
		if decision(d, nil) != "replace" || detailed(d) != "triggers=ADD_REPLACE" {
			t.Errorf("detailed %s, replaces %v", detailed(d), d.GetReplaces())
		}
	})

	t.Run("unknowns in preview", func(t *testing.T) {
		before := len(srv.Execs())
		unknownCreate := with("create", "placeholder")
		unknownCreate["create"] = resource.MakeComputed(resource.NewProperty(""))
		d := h.diff(state, oldIn, unknownCreate)
		if decision(d, sdkReplaceOnChanges) != "update" {
			t.Errorf("unknown create: detailed %s", detailed(d))
		}
		// The SDK sends an unknown connection as a secret unknown. infer (with
		// sdk v3.224.0) turns that into an unknown output value, which the
		// property diff treats as unchanged: the real provider v1.2.1 reports
		// NO change for it in preview (the engine re-diffs with the known value
		// during `up`). The stand-in, on the same framework code, does the same.
		unknownConn := with("create", "echo create")
		unknownConn["connection"] = resource.MakeSecret(resource.MakeComputed(resource.NewProperty("")))
		d = h.diff(state, oldIn, unknownConn)
		if got := decision(d, sdkReplaceOnChanges); got != "none" {
			t.Errorf("unknown secret connection: decision %s, detailed %s (the real provider reports none)", got, detailed(d))
		}
		unknownConn["create"] = resource.MakeComputed(resource.NewProperty(""))
		d = h.diff(state, oldIn, unknownConn)
		if got := decision(d, sdkReplaceOnChanges); got != "update" || detailed(d) != "create=UPDATE" {
			t.Errorf("unknown connection and create: decision %s, detailed %s", got, detailed(d))
		}
		unknownTrigger := with("triggers", []any{"t1", 2.0})
		unknownTrigger["triggers"].ArrayValue()[1] = resource.MakeComputed(resource.NewProperty(""))
		d = h.diff(state, oldIn, unknownTrigger)
		if decision(d, sdkReplaceOnChanges) != "replace" {
			t.Errorf("unknown trigger: detailed %s", detailed(d))
		}
		// Preview create and update with unknowns run nothing and do not fail.
		checked, err := h.srv.Check(h.ctx, &rpc.CheckRequest{Urn: testURN, News: h.marshal(unknownConn)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.srv.Create(h.ctx, &rpc.CreateRequest{Urn: testURN, Properties: checked.GetInputs(), Preview: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.update(state, oldIn, unknownCreate, true); err != nil {
			t.Fatal(err)
		}
		if len(srv.Execs()) != before {
			t.Error("a preview ran a command")
		}
	})
}

func TestOtherTokensAreNotImplemented(t *testing.T) {
	h := newHarness(t)
	for _, tok := range []string{"command:local:Command", "command:remote:CopyToRemote", "command:remote:CopyFile"} {
		urn := "urn:pulumi:e2e::nodelocaldns::" + tok + "::x"
		_, err := h.srv.Check(h.ctx, &rpc.CheckRequest{Urn: urn, News: h.marshal(resource.PropertyMap{})})
		if err == nil || !strings.Contains(err.Error(), "not implemented by the stand-in") || !strings.Contains(err.Error(), tok) {
			t.Errorf("%s: err = %v", tok, err)
		}
		_, err = h.srv.Create(h.ctx, &rpc.CreateRequest{Urn: urn, Properties: h.marshal(resource.PropertyMap{})})
		if err == nil || !strings.Contains(err.Error(), "not implemented by the stand-in") {
			t.Errorf("%s create: err = %v", tok, err)
		}
	}
	_, err := h.srv.Invoke(h.ctx, &rpc.InvokeRequest{Tok: "command:local:run", Args: h.marshal(resource.PropertyMap{})})
	if err == nil || !strings.Contains(err.Error(), "not implemented by the stand-in") {
		t.Errorf("invoke: err = %v", err)
	}
}
