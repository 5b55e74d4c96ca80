package main

// Each row states one behaviour of the real command:remote:Command 1.2.1 (rule: where it comes from, at
// pulumi-command v1.2.1 under provider/pkg/provider/, or pulumi-go-provider v1.3.0 for infer) and checks the
// stand-in against it. README.md has the same table.

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/ssh"
	"google.golang.org/protobuf/types/known/emptypb"
)

func str(s string) resource.PropertyValue                       { return resource.NewProperty(s) }
func num(n float64) resource.PropertyValue                      { return resource.NewProperty(n) }
func secret(v resource.PropertyValue) resource.PropertyValue    { return resource.MakeSecret(v) }
func unknown() resource.PropertyValue                           { return resource.MakeComputed(str("")) }
func array(vs ...resource.PropertyValue) resource.PropertyValue { return resource.NewProperty(vs) }
func object(m resource.PropertyMap) resource.PropertyValue      { return resource.NewProperty(m) }

func wantEqual[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func wantValue(t *testing.T, m resource.PropertyMap, key resource.PropertyKey, want resource.PropertyValue) {
	t.Helper()
	if got := m[key]; !got.DeepEquals(want) {
		t.Errorf("%s = %v, want %v", key, got, want)
	}
}

func wantContains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(got, want) {
			t.Errorf("%s = %q, want it to contain %q", what, got, want)
		}
	}
}

// connectionOf is the checked connection: a secret object.
func connectionOf(t *testing.T, m resource.PropertyMap) resource.PropertyMap {
	t.Helper()
	c := m["connection"]
	if !c.IsSecret() || !c.SecretValue().Element.IsObject() {
		t.Fatalf("connection = %v, want a secret object", c)
	}
	return c.SecretValue().Element.ObjectValue()
}

func TestCheck(t *testing.T) {
	rows := []struct {
		name, rule string
		news       func(h *harness) resource.PropertyMap
		failures   []string // the properties refused
		reason     string   // in every failure's reason
		then       func(t *testing.T, h *harness, checked resource.PropertyMap)
	}{{
		name: "connection defaults",
		rule: "remote/connection.go Annotate SetDefault: user root, port 22, dialErrorLimit 10, perDialTimeout 15",
		news: func(h *harness) resource.PropertyMap {
			return resource.PropertyMap{"connection": object(resource.PropertyMap{"host": str("192.0.2.1")})}
		},
		then: func(t *testing.T, _ *harness, checked resource.PropertyMap) {
			c := connectionOf(t, checked)
			wantValue(t, c, "host", str("192.0.2.1"))
			wantValue(t, c, "user", str("root"))
			wantValue(t, c, "port", num(22))
			wantValue(t, c, "dialErrorLimit", num(10))
			wantValue(t, c, "perDialTimeout", num(15))
			wantEqual(t, "keys", len(checked), 1)
		},
	}, {
		name: "given connection values are kept",
		rule: "remote/connection.go: defaults apply only to absent fields",
		news: func(h *harness) resource.PropertyMap {
			return resource.PropertyMap{"connection": h.connection(resource.PropertyMap{
				"user": str("admin"), "port": num(2222), "dialErrorLimit": num(30), "perDialTimeout": num(0),
			})}
		},
		then: func(t *testing.T, _ *harness, checked resource.PropertyMap) {
			c := connectionOf(t, checked)
			wantValue(t, c, "user", str("admin"))
			wantValue(t, c, "port", num(2222))
			wantValue(t, c, "dialErrorLimit", num(30))
			wantValue(t, c, "perDialTimeout", num(0))
		},
	}, {
		name: "connection and its key fields become secret",
		rule: `remote/command.go Connection and remote/connection.go PrivateKey, PrivateKeyPassword: provider:"secret", ` +
			"applied in Check (infer/apply_secrets.go)",
		news: func(h *harness) resource.PropertyMap {
			return resource.PropertyMap{"connection": object(resource.PropertyMap{
				"host": str("192.0.2.1"), "privateKey": str("KEY"), "privateKeyPassword": str("PW"),
			})}
		},
		then: func(t *testing.T, _ *harness, checked resource.PropertyMap) {
			c := connectionOf(t, checked)
			wantValue(t, c, "privateKey", secret(str("KEY")))
			wantValue(t, c, "privateKeyPassword", secret(str("PW")))
		},
	}, {
		name: "secrets and unknowns pass through",
		rule: "infer Check re-encodes the inputs with the secrets and unknowns they came with (infer/internal/ende)",
		news: func(h *harness) resource.PropertyMap {
			return resource.PropertyMap{
				"connection": h.connection(resource.PropertyMap{"host": unknown()}),
				"create":     unknown(),
				"stdin":      secret(str("s3cret")),
				"triggers":   array(secret(str("hash")), unknown()),
			}
		},
		then: func(t *testing.T, _ *harness, checked resource.PropertyMap) {
			wantValue(t, connectionOf(t, checked), "host", unknown())
			wantValue(t, checked, "create", unknown())
			wantValue(t, checked, "stdin", secret(str("s3cret")))
			wantValue(t, checked, "triggers", array(secret(str("hash")), unknown()))
		},
	}, {
		name: "an unknown connection stays unknown",
		rule: "infer Check: unknown values are not decoded, so no defaults and no failures",
		news: func(h *harness) resource.PropertyMap {
			return resource.PropertyMap{"connection": unknown()}
		},
		then: func(t *testing.T, _ *harness, checked resource.PropertyMap) {
			wantEqual(t, "connection has unknowns", checked["connection"].ContainsUnknowns(), true)
		},
	}, {
		name:     "connection is required",
		rule:     `remote/command.go: Connection has no "optional" tag`,
		news:     func(h *harness) resource.PropertyMap { return resource.PropertyMap{"create": str("true")} },
		failures: []string{"connection"},
	}, {
		name: "connection.host is required",
		rule: `remote/connection.go: Host has no "optional" tag`,
		news: func(h *harness) resource.PropertyMap {
			return resource.PropertyMap{"connection": object(resource.PropertyMap{"user": str("root")})}
		},
		failures: []string{"connection.host"},
	}, {
		name: "connection fields the stand-in does not implement are refused",
		rule: "stand-in only: the real provider has proxy, password and agentSocketPath (remote/connection.go)",
		news: func(h *harness) resource.PropertyMap {
			return resource.PropertyMap{"connection": h.connection(resource.PropertyMap{
				"proxy":           object(resource.PropertyMap{"host": str("192.0.2.9")}),
				"password":        secret(str("pw")),
				"agentSocketPath": str("/run/agent"),
			})}
		},
		failures: []string{"connection.agentSocketPath", "connection.password", "connection.proxy"},
		reason:   "stand-in of pulumi-resource-command (tests/tools/command-provider) does not implement this input",
	}, {
		name: "inputs the resource does not have are refused",
		rule: "infer Check: unrecognized fields fail (mapper); interpreter and dir belong to command:local:Command",
		news: func(h *harness) resource.PropertyMap {
			return resource.PropertyMap{
				"connection": h.connection(nil), "interpreter": array(str("/bin/sh")), "dir": str("/tmp"),
			}
		},
		failures: []string{"dir", "interpreter"},
		reason:   "stand-in of pulumi-resource-command (tests/tools/command-provider) does not implement this input",
	}, {
		name: "values of the wrong type are refused",
		rule: "infer Check: values must decode into the CommandInputs field types",
		news: func(h *harness) resource.PropertyMap {
			return resource.PropertyMap{
				"connection":             h.connection(resource.PropertyMap{"port": str("22")}),
				"create":                 num(1),
				"environment":            object(resource.PropertyMap{"A": num(1)}),
				"triggers":               str("x"),
				"addPreviousOutputInEnv": str("no"),
			}
		},
		failures: []string{"addPreviousOutputInEnv", "connection.port", "create", "environment.A", "triggers"},
	}, {
		name: "logging takes the four documented values",
		rule: "remote/logging.go Values; stand-in only: the real provider accepts any string and then logs nothing",
		news: func(h *harness) resource.PropertyMap {
			return resource.PropertyMap{"connection": h.connection(nil), "logging": str("quiet")}
		},
		failures: []string{"logging"},
	}}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			h := newHarness(t)
			resp, err := h.server.Check(context.Background(), &pulumirpc.CheckRequest{
				Urn: urn, News: h.marshal(row.news(h)),
			})
			if err != nil {
				t.Fatal(err)
			}
			var failed []string
			for _, f := range resp.GetFailures() {
				failed = append(failed, f.GetProperty())
				wantContains(t, f.GetProperty(), f.GetReason(), row.reason)
			}
			slices.Sort(failed)
			wantEqual(t, "failures", fmt.Sprint(failed), fmt.Sprint(row.failures))
			if row.then != nil {
				row.then(t, h, h.unmarshal(resp.GetInputs()))
			}
		})
	}
}

// replacedByEngine applies the SDK's replaceOnChanges ["triggers[*]"] (node_modules/@pulumi/command/remote/
// command.js) as the engine does (pkg/resource/deploy/step_generator.go applyReplaceOnChanges).
func replacedByEngine(resp *pulumirpc.DiffResponse) bool {
	if len(resp.GetReplaces()) > 0 {
		return true
	}
	everyTrigger, _ := resource.ParsePropertyPath("triggers[*]")
	for path := range resp.GetDetailedDiff() {
		if p, err := resource.ParsePropertyPath(path); err == nil && everyTrigger.Contains(p) {
			return true
		}
	}
	return false
}

func TestDiff(t *testing.T) {
	base := resource.PropertyMap{
		"connection":             secret(object(resource.PropertyMap{"host": str("192.0.2.1"), "port": num(22)})),
		"create":                 str("install"),
		"stdin":                  secret(str("file contents")),
		"environment":            object(resource.PropertyMap{"A": str("1")}),
		"triggers":               array(secret(str("hash-1")), str("server-1")),
		"logging":                str("stdoutAndStderr"),
		"addPreviousOutputInEnv": resource.NewProperty(false),
	}
	with := func(k resource.PropertyKey, v resource.PropertyValue) resource.PropertyMap {
		m := base.Copy()
		m[k] = v
		return m
	}
	without := func(k resource.PropertyKey) resource.PropertyMap {
		m := base.Copy()
		delete(m, k)
		return m
	}
	rows := []struct {
		name, rule  string
		olds, news  resource.PropertyMap
		noOldInputs bool
		detailed    map[string]pulumirpc.PropertyDiff_Kind
		replaces    []string
		replaced    bool // by the engine, with the SDK's replaceOnChanges
	}{{
		name: "no change: nothing runs",
		rule: "infer diff: no property differs -> DIFF_NONE",
		olds: base, news: base.Copy(),
	}, {
		name: "create changed: update",
		rule: "infer diff: a change of an input without replaceOnChanges is an update (Command has Update)",
		olds: base, news: with("create", str("install v2")),
		detailed: map[string]pulumirpc.PropertyDiff_Kind{"create": pulumirpc.PropertyDiff_UPDATE},
	}, {
		name: "secret stdin changed: update",
		rule: "infer diff: secrets compare by value; a changed secret is a change of its key",
		olds: base, news: with("stdin", secret(str("new contents"))),
		detailed: map[string]pulumirpc.PropertyDiff_Kind{"stdin": pulumirpc.PropertyDiff_UPDATE},
	}, {
		name: "environment value changed: update of the nested path",
		rule: "infer diff: plugin.NewDetailedDiffFromObjectDiff reports nested paths",
		olds: base, news: with("environment", object(resource.PropertyMap{"A": str("2")})),
		detailed: map[string]pulumirpc.PropertyDiff_Kind{"environment.A": pulumirpc.PropertyDiff_UPDATE},
	}, {
		name: "update command added: update",
		rule: "infer diff: an added input is an add, not a replace",
		olds: base, news: with("update", str("reload")),
		detailed: map[string]pulumirpc.PropertyDiff_Kind{"update": pulumirpc.PropertyDiff_ADD},
	}, {
		name: "trigger element changed: update from the provider, replace by the engine",
		rule: "infer diff: only the top-level key triggers has replaceOnChanges, so triggers[0] is an update; " +
			"the SDK's replaceOnChanges triggers[*] makes the engine replace",
		olds: base, news: with("triggers", array(secret(str("hash-2")), str("server-1"))),
		detailed: map[string]pulumirpc.PropertyDiff_Kind{"triggers[0]": pulumirpc.PropertyDiff_UPDATE},
		replaced: true,
	}, {
		name: "trigger added to the list: replace by the engine",
		rule: "infer diff: triggers[2] is an add; the SDK's replaceOnChanges triggers[*] makes the engine replace",
		olds: base, news: with("triggers", array(secret(str("hash-1")), str("server-1"), str("x"))),
		detailed: map[string]pulumirpc.PropertyDiff_Kind{"triggers[2]": pulumirpc.PropertyDiff_ADD},
		replaced: true,
	}, {
		name: "triggers set where there were none: replace",
		rule: `common/inputs.go Triggers provider:"replaceOnChanges" -> infer forces a replace of the key triggers`,
		olds: without("triggers"), news: base.Copy(),
		detailed: map[string]pulumirpc.PropertyDiff_Kind{"triggers": pulumirpc.PropertyDiff_ADD_REPLACE},
		replaces: []string{"triggers"}, replaced: true,
	}, {
		name: "triggers removed: replace",
		rule: `common/inputs.go Triggers provider:"replaceOnChanges"`,
		olds: base, news: without("triggers"),
		detailed: map[string]pulumirpc.PropertyDiff_Kind{"triggers": pulumirpc.PropertyDiff_DELETE_REPLACE},
		replaces: []string{"triggers"}, replaced: true,
	}, {
		name:     "connection changed: update, which runs update or create again on the same resource",
		rule:     "remote/command.go Connection has no replaceOnChanges, and is a secret, so the whole key changes",
		olds:     base,
		news:     with("connection", secret(object(resource.PropertyMap{"host": str("192.0.2.2"), "port": num(22)}))),
		detailed: map[string]pulumirpc.PropertyDiff_Kind{"connection": pulumirpc.PropertyDiff_UPDATE},
	}, {
		name: "unknown create: update",
		rule: "infer diff: an unknown value differs from any known one",
		olds: base, news: with("create", unknown()),
		detailed: map[string]pulumirpc.PropertyDiff_Kind{"create": pulumirpc.PropertyDiff_UPDATE},
	}, {
		name: "unknown trigger element: replace by the engine",
		rule: "infer diff + SDK replaceOnChanges triggers[*]",
		olds: base, news: with("triggers", array(secret(str("hash-1")), unknown())),
		detailed: map[string]pulumirpc.PropertyDiff_Kind{"triggers[1]": pulumirpc.PropertyDiff_UPDATE},
		replaced: true,
	}, {
		name: "unknown triggers: replace",
		rule: `common/inputs.go Triggers provider:"replaceOnChanges"`,
		olds: base, news: with("triggers", unknown()),
		detailed: map[string]pulumirpc.PropertyDiff_Kind{"triggers": pulumirpc.PropertyDiff_UPDATE_REPLACE},
		replaces: []string{"triggers"}, replaced: true,
	}, {
		name: "unknown connection: update",
		rule: "infer diff: an unknown value differs from any known one",
		olds: base, news: with("connection", unknown()),
		detailed: map[string]pulumirpc.PropertyDiff_Kind{"connection": pulumirpc.PropertyDiff_UPDATE},
	}, {
		name: "version and __ keys of the new inputs are ignored",
		rule: "infer diff drops version and __-prefixed keys from the new inputs",
		olds: base,
		news: func() resource.PropertyMap {
			m := with("version", str("1.2.1"))
			m["__defaults"] = array()
			return m
		}(),
	}, {
		name: "without old inputs from the engine, the state's inputs are compared",
		rule: "infer diff: without SupportsOldInputs the old inputs come from the state",
		olds: with("stdout", str("out")), news: base.Copy(), noOldInputs: true,
	}}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			h := newHarness(t)
			req := &pulumirpc.DiffRequest{Urn: urn, Id: "relay-step0123abcd", Olds: h.marshal(row.olds),
				News: h.marshal(row.news)}
			if !row.noOldInputs {
				req.OldInputs = h.marshal(row.olds)
			}
			resp, err := h.server.Diff(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			wantChanges := pulumirpc.DiffResponse_DIFF_NONE
			if len(row.detailed) > 0 {
				wantChanges = pulumirpc.DiffResponse_DIFF_SOME
			}
			wantEqual(t, "changes", resp.GetChanges(), wantChanges)
			got := map[string]pulumirpc.PropertyDiff_Kind{}
			for k, v := range resp.GetDetailedDiff() {
				got[k] = v.GetKind()
			}
			wantEqual(t, "detailed diff", fmt.Sprint(got), fmt.Sprint(row.detailed))
			wantEqual(t, "replaces", fmt.Sprint(resp.GetReplaces()), fmt.Sprint(row.replaces))
			wantEqual(t, "replaced by the engine", replacedByEngine(resp), row.replaced)
			wantEqual(t, "delete before replace", resp.GetDeleteBeforeReplace(), false)
		})
	}
}

func TestLifecycle(t *testing.T) {
	rows := []struct {
		name, rule string
		run        func(t *testing.T, h *harness)
	}{{
		name: "create runs create with stdin and keeps its output, trailing newline trimmed",
		rule: "remote/commandController.go Create; remote/commandOutputs.go run: Stdin only when not empty, " +
			"TrimSuffix \\n; state = inputs + stdout + stderr; id = name + 8 hex digits",
		run: func(t *testing.T, h *harness) {
			h.ssh.reply("line 1\nline 2\n", "warning\n", 0)
			in := h.inputs(resource.PropertyMap{"create": str("install -m 600 /dev/stdin /etc/x"), "stdin": str("data")})
			id, state, err := h.create(in, false)
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(`^relay-step[0-9a-f]{8}$`).MatchString(id) {
				t.Errorf("id = %q, want relay-step and 8 hex digits", id)
			}
			execs := h.ssh.recorded()
			wantEqual(t, "runs", len(execs), 1)
			wantEqual(t, "command", execs[0].command, "install -m 600 /dev/stdin /etc/x")
			wantEqual(t, "stdin", execs[0].stdin, "data")
			wantEqual(t, "env", len(execs[0].env), 0) // no previous output on create
			wantValue(t, state, "stdout", str("line 1\nline 2"))
			wantValue(t, state, "stderr", str("warning"))
			for k, v := range in {
				wantValue(t, state, k, v)
			}
			wantEqual(t, "state keys", len(state), len(in)+2)
		},
	}, {
		name: "create without create runs nothing",
		rule: "remote/commandController.go Create: Create nil -> no run, empty stdout and stderr",
		run: func(t *testing.T, h *harness) {
			_, state, err := h.create(h.inputs(resource.PropertyMap{"delete": str("rm /etc/x")}), false)
			if err != nil {
				t.Fatal(err)
			}
			wantEqual(t, "runs", len(h.ssh.recorded()), 0)
			wantValue(t, state, "stdout", str(""))
			wantValue(t, state, "stderr", str(""))
		},
	}, {
		name: "create preview runs nothing; stdout and stderr unknown",
		rule: "remote/commandController.go Create returns on preview; infer markComputed makes outputs that do " +
			"not mirror an input unknown on create",
		run: func(t *testing.T, h *harness) {
			in := h.inputs(resource.PropertyMap{"create": str("install"), "stdin": secret(str("s"))})
			_, state, err := h.create(in, true)
			if err != nil {
				t.Fatal(err)
			}
			wantEqual(t, "runs", len(h.ssh.recorded()), 0)
			wantValue(t, state, "stdout", unknown())
			wantValue(t, state, "stderr", unknown())
			wantValue(t, state, "stdin", secret(str("s")))
		},
	}, {
		name: "update runs update, with the previous output in the environment",
		rule: "remote/commandController.go Update: Update if set; remote/commandOutputs.go run: " +
			"PULUMI_COMMAND_STDOUT/STDERR when addPreviousOutputInEnv is absent (default true) and not empty",
		run: func(t *testing.T, h *harness) {
			olds := h.created(h.inputs(resource.PropertyMap{"create": str("install")}), "old out\n", "old err")
			h.ssh.reply("new out", "", 0)
			state, err := h.update(olds, h.inputs(resource.PropertyMap{"create": str("install"),
				"update": str("reload")}), false)
			if err != nil {
				t.Fatal(err)
			}
			execs := h.ssh.recorded()
			wantEqual(t, "runs", len(execs), 1)
			wantEqual(t, "command", execs[0].command, "reload")
			wantEqual(t, "PULUMI_COMMAND_STDOUT", execs[0].env["PULUMI_COMMAND_STDOUT"], "old out")
			wantEqual(t, "PULUMI_COMMAND_STDERR", execs[0].env["PULUMI_COMMAND_STDERR"], "old err")
			wantValue(t, state, "stdout", str("new out"))
			wantValue(t, state, "stderr", str(""))
		},
	}, {
		name: "update without update runs create again",
		rule: "remote/commandController.go Update: else Create if set",
		run: func(t *testing.T, h *harness) {
			olds := h.created(h.inputs(resource.PropertyMap{"create": str("install v1")}), "", "")
			if _, err := h.update(olds, h.inputs(resource.PropertyMap{"create": str("install v2")}), false); err != nil {
				t.Fatal(err)
			}
			execs := h.ssh.recorded()
			wantEqual(t, "runs", len(execs), 1)
			wantEqual(t, "command", execs[0].command, "install v2")
		},
	}, {
		name: "update with neither command runs nothing and keeps the outputs",
		rule: "remote/commandController.go Update: state = new inputs + old outputs",
		run: func(t *testing.T, h *harness) {
			olds := h.created(h.inputs(resource.PropertyMap{"create": str("install")}), "out", "err")
			state, err := h.update(olds, h.inputs(resource.PropertyMap{"delete": str("rm")}), false)
			if err != nil {
				t.Fatal(err)
			}
			wantEqual(t, "runs", len(h.ssh.recorded()), 0)
			wantValue(t, state, "stdout", str("out"))
			wantValue(t, state, "delete", str("rm"))
			wantEqual(t, "create kept", state.HasValue("create"), false)
		},
	}, {
		name: "addPreviousOutputInEnv false sets no previous output",
		rule: "remote/commandOutputs.go run: only when AddPreviousOutputInEnv is nil or true",
		run: func(t *testing.T, h *harness) {
			no := resource.NewProperty(false)
			olds := h.created(h.inputs(resource.PropertyMap{"create": str("v1"), "addPreviousOutputInEnv": no}),
				"out", "err")
			_, err := h.update(olds, h.inputs(resource.PropertyMap{"create": str("v2"),
				"addPreviousOutputInEnv": no}), false)
			if err != nil {
				t.Fatal(err)
			}
			wantEqual(t, "env", len(h.ssh.recorded()[0].env), 0)
		},
	}, {
		name: "update preview runs nothing; stdout and stderr unknown when an input changed",
		rule: "remote/commandController.go Update returns on preview; infer markComputed: every output depends " +
			"on every input, changed against the old state -> unknown",
		run: func(t *testing.T, h *harness) {
			olds := h.created(h.inputs(resource.PropertyMap{"create": str("v1")}), "out", "err")
			state, err := h.update(olds, h.inputs(resource.PropertyMap{"create": str("v2")}), true)
			if err != nil {
				t.Fatal(err)
			}
			wantEqual(t, "runs", len(h.ssh.recorded()), 0)
			wantValue(t, state, "stdout", unknown())
			wantValue(t, state, "stderr", unknown())
			wantValue(t, state, "create", str("v2"))
		},
	}, {
		name: "update preview keeps the old outputs when the only change is an input the old state lacks",
		rule: "infer markComputed compares only keys present in the old state",
		run: func(t *testing.T, h *harness) {
			olds := h.created(h.inputs(resource.PropertyMap{"create": str("v1")}), "out", "err")
			state, err := h.update(olds, h.inputs(resource.PropertyMap{"create": str("v1"),
				"update": str("reload")}), true)
			if err != nil {
				t.Fatal(err)
			}
			wantValue(t, state, "stdout", str("out"))
			wantValue(t, state, "stderr", str("err"))
		},
	}, {
		name: "delete runs only when set, with stdin and the previous output",
		rule: "remote/commandController.go Delete: Delete nil -> nothing; run with the state's inputs and outputs",
		run: func(t *testing.T, h *harness) {
			plain := h.created(h.inputs(resource.PropertyMap{"create": str("install")}), "out", "")
			if err := h.delete(plain); err != nil {
				t.Fatal(err)
			}
			wantEqual(t, "runs without delete", len(h.ssh.recorded()), 0)
			withDelete := h.created(h.inputs(resource.PropertyMap{"create": str("install"),
				"delete": str("uninstall"), "stdin": str("data")}), "out", "")
			if err := h.delete(withDelete); err != nil {
				t.Fatal(err)
			}
			execs := h.ssh.recorded()
			wantEqual(t, "runs", len(execs), 1)
			wantEqual(t, "command", execs[0].command, "uninstall")
			wantEqual(t, "stdin", execs[0].stdin, "data")
			wantEqual(t, "PULUMI_COMMAND_STDOUT", execs[0].env["PULUMI_COMMAND_STDOUT"], "out")
		},
	}, {
		name: "a failed command fails with its exit status, the command and both streams, never stdin",
		rule: `remote/commandOutputs.go run: fmt.Errorf("%w: running %q:\n%s", err, cmd, stdout+stderr), ` +
			"also when logging is none",
		run: func(t *testing.T, h *harness) {
			h.ssh.reply("out line\n", "err line\n", 3)
			in := h.inputs(resource.PropertyMap{"create": str("install"), "stdin": secret(str("TOPSECRET")),
				"logging": str("none")})
			_, _, err := h.create(in, false)
			if err == nil {
				t.Fatal("create succeeded")
			}
			if !strings.HasPrefix(err.Error(), "Process exited with status 3: running \"install\":\n") {
				t.Errorf("error = %q", err)
			}
			wantContains(t, "error", err.Error(), "out line\n", "err line\n")
			if strings.Contains(err.Error(), "TOPSECRET") {
				t.Errorf("error shows stdin: %q", err)
			}
			olds := h.created(h.inputs(resource.PropertyMap{"create": str("v1")}), "", "")
			h.ssh.reply("", "broken\n", 1)
			_, err = h.update(olds, h.inputs(resource.PropertyMap{"create": str("v2")}), false)
			wantContains(t, "update error", fmt.Sprint(err), "Process exited with status 1: running \"v2\":\nbroken")
		},
	}, {
		name: "environment is set with setenv",
		rule: "remote/commandOutputs.go run: session.Setenv for each Environment entry",
		run: func(t *testing.T, h *harness) {
			env := object(resource.PropertyMap{"A": str("1"), "B": secret(str("2"))})
			_, _, err := h.create(h.inputs(resource.PropertyMap{"create": str("env"), "environment": env}), false)
			if err != nil {
				t.Fatal(err)
			}
			got := h.ssh.recorded()[0].env
			wantEqual(t, "A", got["A"], "1")
			wantEqual(t, "B", got["B"], "2")
		},
	}, {
		name: "a refused environment variable fails the run",
		rule: "remote/commandOutputs.go run: Setenv error -> error diagnostic and " +
			`fmt.Errorf("could not set environment variable %q: %w")`,
		run: func(t *testing.T, h *harness) {
			h.ssh.setRefuseEnv()
			_, _, err := h.create(h.inputs(resource.PropertyMap{"create": str("env"),
				"environment": object(resource.PropertyMap{"A": str("1")})}), false)
			wantEqual(t, "error", fmt.Sprint(err), `could not set environment variable "A": ssh: setenv failed`)
			wantEqual(t, "runs", len(h.ssh.recorded()), 0)
			diags := h.diagnostics()
			if len(diags) != 1 || !strings.HasPrefix(diags[0], "ERROR Unable to set 'A'") {
				t.Errorf("diagnostics = %q", diags)
			}
		},
	}, {
		name: "a refused previous output only warns",
		rule: "remote/commandOutputs.go run: PULUMI_COMMAND_* Setenv error -> warning diagnostic, run continues",
		run: func(t *testing.T, h *harness) {
			olds := h.created(h.inputs(resource.PropertyMap{"create": str("v1")}), "out", "err")
			h.ssh.setRefuseEnv()
			if _, err := h.update(olds, h.inputs(resource.PropertyMap{"create": str("v2")}), false); err != nil {
				t.Fatal(err)
			}
			wantEqual(t, "runs", len(h.ssh.recorded()), 1)
			diags := h.diagnostics()
			if len(diags) != 2 || !strings.HasPrefix(diags[0], "WARNING Unable to set 'PULUMI_COMMAND_STDOUT'") ||
				!strings.HasPrefix(diags[1], "WARNING Unable to set 'PULUMI_COMMAND_STDERR'") {
				t.Errorf("diagnostics = %q", diags)
			}
		},
	}, {
		name: "secrets stay secrets; connection secret; stdout and stderr plain",
		rule: "infer: the encoder re-applies input secrets to the state; Check makes connection secret; " +
			"outputs without a same-named input are not secret (the engine applies additionalSecretOutputs)",
		run: func(t *testing.T, h *harness) {
			h.ssh.reply("out", "err", 0)
			in := h.inputs(resource.PropertyMap{"create": str("install"), "stdin": secret(str("s")),
				"triggers": array(secret(str("hash")), str("server"))})
			_, state, err := h.create(in, false)
			if err != nil {
				t.Fatal(err)
			}
			wantValue(t, state, "stdin", secret(str("s")))
			wantValue(t, state, "triggers", array(secret(str("hash")), str("server")))
			wantValue(t, connectionOf(t, state), "privateKey", secret(str(h.ssh.clientKey)))
			wantValue(t, state, "stdout", str("out"))
			wantValue(t, state, "stderr", str("err"))
		},
	}, {
		name: "a matching hostKey is accepted",
		rule: "remote/connection.go SSHConfig: hostKey set -> ssh.FixedHostKey",
		run: func(t *testing.T, h *harness) {
			in := h.inputs(resource.PropertyMap{"create": str("true"),
				"connection": h.connection(resource.PropertyMap{"hostKey": str(h.ssh.hostKey)})})
			if _, _, err := h.create(in, false); err != nil {
				t.Fatal(err)
			}
		},
	}, {
		name: "a different hostKey is refused",
		rule: "remote/connection.go SSHConfig: ssh.FixedHostKey; Dial counts it as a failed attempt",
		run: func(t *testing.T, h *harness) {
			other, _ := newKey(t)
			in := h.inputs(resource.PropertyMap{"create": str("true"), "connection": h.connection(
				resource.PropertyMap{"hostKey": str(string(ssh.MarshalAuthorizedKey(other))), "dialErrorLimit": num(0)})})
			_, _, err := h.create(in, false)
			wantContains(t, "error", fmt.Sprint(err), "after 0 failed attempts: ", "host key mismatch")
			wantEqual(t, "runs", len(h.ssh.recorded()), 0)
		},
	}, {
		name: "privateKeyPassword decrypts the private key",
		rule: "remote/connection.go SSHConfig: ParsePrivateKeyWithPassphrase",
		run: func(t *testing.T, h *harness) {
			in := h.inputs(resource.PropertyMap{"create": str("true"), "connection": h.connection(
				resource.PropertyMap{"privateKey": str(h.ssh.encryptedClientKey(t, "pw")),
					"privateKeyPassword": str("pw")})})
			if _, _, err := h.create(in, false); err != nil {
				t.Fatal(err)
			}
		},
	}, {
		name: "dial makes dialErrorLimit+1 attempts and reports each retry",
		rule: `remote/connection.go dialWithRetry: fail when dials > limit, "after %d failed attempts: %w", ` +
			`InfoStatus "Dial %d/%s failed: retrying"`,
		run: func(t *testing.T, h *harness) {
			l := listenLoopback(t)
			var attempts atomic.Int32
			go func() {
				for {
					conn, err := l.Accept()
					if err != nil {
						return
					}
					attempts.Add(1)
					_ = conn.Close()
				}
			}()
			in := h.inputs(resource.PropertyMap{"create": str("true"), "connection": h.connection(
				resource.PropertyMap{"port": num(float64(l.Addr().(*net.TCPAddr).Port)), "dialErrorLimit": num(2)})})
			_, _, err := h.create(in, false)
			wantContains(t, "error", fmt.Sprint(err), "after 2 failed attempts: ")
			wantEqual(t, "attempts", attempts.Load(), int32(3))
			wantEqual(t, "status", fmt.Sprint(h.statusLines()),
				fmt.Sprint([]string{"Dial 1/2 failed: retrying", "Dial 2/2 failed: retrying"}))
		},
	}, {
		name: "perDialTimeout bounds each TCP connect; 0 is none",
		rule: "remote/connection.go SSHConfig: Timeout = PerDialTimeout seconds (x/crypto: TCP connect only)",
		run: func(t *testing.T, h *harness) {
			for _, seconds := range []int{15, 0} {
				config, err := connection{user: "root", perDialTimeout: seconds}.clientConfig()
				if err != nil {
					t.Fatal(err)
				}
				wantEqual(t, "timeout", config.Timeout.Seconds(), float64(seconds))
			}
		},
	}, {
		name: "read returns the state unchanged",
		rule: "infer Read without a Read method returns the given state and inputs",
		run: func(t *testing.T, h *harness) {
			state := h.created(h.inputs(resource.PropertyMap{"create": str("install")}), "out", "")
			props := h.marshal(state)
			resp, err := h.server.Read(context.Background(), &pulumirpc.ReadRequest{
				Urn: urn, Id: "relay-step0123abcd", Properties: props, Inputs: h.marshal(inputsOf(state)),
			})
			if err != nil {
				t.Fatal(err)
			}
			wantEqual(t, "id", resp.GetId(), "relay-step0123abcd")
			if !h.unmarshal(resp.GetProperties()).DeepEquals(state) {
				t.Errorf("properties = %v, want %v", h.unmarshal(resp.GetProperties()), state)
			}
			wantEqual(t, "runs", len(h.ssh.recorded()), 0)
		},
	}, {
		name: "only command:remote:Command is supported",
		rule: "stand-in only: the real provider also has command:local:Command, CopyToRemote, CopyFile",
		run: func(t *testing.T, h *harness) {
			local := string(resource.NewURN("ci", "chatmail-relay", "", "command:local:Command", "x"))
			_, err := h.server.Check(context.Background(), &pulumirpc.CheckRequest{Urn: local})
			wantContains(t, "check error", fmt.Sprint(err), "command:local:Command", "supports only command:remote:Command")
			_, err = h.server.Create(context.Background(), &pulumirpc.CreateRequest{Urn: local})
			wantContains(t, "create error", fmt.Sprint(err), "command:local:Command", "supports only command:remote:Command")
		},
	}, {
		name: "plugin version 1.2.1; secrets, preview and resource references accepted",
		rule: "@pulumi/command 1.2.1 asks for plugin 1.2.1; pulumi-go-provider provider.go Configure",
		run: func(t *testing.T, h *harness) {
			info, err := h.server.GetPluginInfo(context.Background(), &emptypb.Empty{})
			if err != nil {
				t.Fatal(err)
			}
			wantEqual(t, "version", info.GetVersion(), "1.2.1")
			resp, err := h.server.Configure(context.Background(), &pulumirpc.ConfigureRequest{})
			if err != nil {
				t.Fatal(err)
			}
			wantEqual(t, "acceptSecrets", resp.GetAcceptSecrets(), true)
			wantEqual(t, "supportsPreview", resp.GetSupportsPreview(), true)
			wantEqual(t, "acceptResources", resp.GetAcceptResources(), true)
		},
	}}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) { row.run(t, newHarness(t)) })
	}
}

func TestLogging(t *testing.T) {
	rows := []struct {
		logging resource.PropertyValue
		rule    string
		lines   []string
	}{
		{resource.PropertyValue{}, "remote/logging.go: absent -> stdout and stderr", []string{"out", "err"}},
		{str("stdoutAndStderr"), "remote/logging.go ShouldLogStdout, ShouldLogStderr", []string{"out", "err"}},
		{str("stdout"), "remote/logging.go ShouldLogStdout", []string{"out"}},
		{str("stderr"), "remote/logging.go ShouldLogStderr", []string{"err"}},
		{str("none"), "remote/logging.go: none logs neither; outputs are still captured", nil},
	}
	for _, row := range rows {
		name := "absent"
		if row.logging.IsString() {
			name = row.logging.StringValue()
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.ssh.reply("out\n", "", 0)
			props := resource.PropertyMap{"create": str("run")}
			if !row.logging.IsNull() {
				props["logging"] = row.logging
			}
			_, state, err := h.create(h.inputs(props), false)
			if err != nil {
				t.Fatal(err)
			}
			// One run writes only stdout, the next only stderr, so the order of the lines is fixed.
			h.ssh.reply("", "err\n", 0)
			if _, err := h.update(state, h.inputs(props).Copy(), false); err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, l := range h.statusLines() {
				if !strings.HasPrefix(l, "Dial ") {
					lines = append(lines, l)
				}
			}
			wantEqual(t, "status lines ("+row.rule+")", fmt.Sprint(lines), fmt.Sprint(row.lines))
			wantValue(t, state, "stdout", str("out"))
		})
	}
}
