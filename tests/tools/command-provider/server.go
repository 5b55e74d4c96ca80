package main

// The gRPC face of the plugin: it unmarshals what the engine sends, calls check, diff and run, and marshals
// the result. Where the real provider's framework (pulumi-go-provider v1.3.0 infer) decides something, the
// comment names the place; README.md has the table.

import (
	"context"
	"fmt"

	"github.com/pulumi/pulumi/pkg/v3/resource/provider"
	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

const commandType = "command:remote:Command"

type server struct {
	pulumirpc.UnimplementedResourceProviderServer
	host *provider.HostClient
	// cancelled is done once the engine calls Cancel; running operations stop retrying their dial then.
	cancelled context.Context
	cancel    context.CancelFunc
}

func newServer(host *provider.HostClient) *server {
	cancelled, cancel := context.WithCancel(context.Background())
	return &server{host: host, cancelled: cancelled, cancel: cancel}
}

// wire keeps secrets and unknowns in both directions, as the real provider's gRPC layer does.
var wire = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, KeepResources: true, SkipNulls: true}

func unmarshal(s *structpb.Struct) (resource.PropertyMap, error) {
	return plugin.UnmarshalProperties(s, wire)
}

func marshal(m resource.PropertyMap) (*structpb.Struct, error) {
	return plugin.MarshalProperties(m, wire)
}

// commandURN parses urn and refuses every type but command:remote:Command, the only one the stand-in has.
func commandURN(urn string) (resource.URN, error) {
	u, err := resource.ParseURN(urn)
	if err != nil {
		return "", err
	}
	if t := u.Type(); t != commandType {
		return "", fmt.Errorf("resource type %s is not supported: the test stand-in of pulumi-resource-command "+
			"(tests/tools/command-provider) supports only %s", t, commandType)
	}
	return u, nil
}

// operation is ctx, also cancelled when the engine calls Cancel.
func (s *server) operation(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.cancelled, cancel)
	return ctx, func() { stop(); cancel() }
}

func (s *server) log(urn resource.URN) engineLog { return engineLog{host: s.host, urn: urn} }

func (s *server) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

// GetSchema is minimal: the engine does not need the schema to run a program, and the SDK carries what the
// schema would say (replaceOnChanges, additionalSecretOutputs, defaults).
func (s *server) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: `{"name":"command","version":"` + version + `"}`}, nil
}

// The command provider has no configuration.
func (s *server) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (s *server) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

func (s *server) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: true, AcceptResources: true}, nil
}

func (s *server) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	s.cancel()
	return &emptypb.Empty{}, nil
}

func (s *server) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	if _, err := commandURN(req.GetUrn()); err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	checked, failures := check(news)
	inputs, err := marshal(checked)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: inputs, Failures: failures}, nil
}

func (s *server) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	if _, err := commandURN(req.GetUrn()); err != nil {
		return nil, err
	}
	olds, err := unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	oldInputs := inputsOf(olds) // engines before 3.74 send no old inputs; infer then takes them from the state
	if req.GetOldInputs() != nil {
		if oldInputs, err = unmarshal(req.GetOldInputs()); err != nil {
			return nil, err
		}
	}
	return diff(oldInputs, news), nil
}

func (s *server) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	urn, err := commandURN(req.GetUrn())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	// remote/commandController.go Create: the id is the name plus 8 random hex digits.
	id, err := resource.NewUniqueHex(urn.Name(), 8, 0)
	if err != nil {
		return nil, err
	}
	state := news.Copy()
	if req.GetPreview() {
		// infer markComputed: on create, outputs that do not mirror an input are unknown in a preview.
		state["stdout"] = resource.MakeComputed(resource.NewProperty(""))
		state["stderr"] = resource.MakeComputed(resource.NewProperty(""))
	} else {
		in, err := readChecked(news)
		if err != nil {
			return nil, err
		}
		var out outputs
		if in.create != nil {
			ctx, done := s.operation(ctx)
			defer done()
			if out, err = run(ctx, s.log(urn), in, *in.create, outputs{}); err != nil {
				return nil, err
			}
		}
		out.set(state)
	}
	props, err := marshal(state)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: props}, nil
}

func (s *server) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	urn, err := commandURN(req.GetUrn())
	if err != nil {
		return nil, err
	}
	olds, err := unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	// remote/commandController.go Update: the new inputs with the old stdout and stderr, until a run replaces them.
	out := outputsOf(olds)
	state := news.Copy()
	switch {
	case req.GetPreview() && changedForPreview(olds, news):
		state["stdout"] = resource.MakeComputed(resource.NewProperty(""))
		state["stderr"] = resource.MakeComputed(resource.NewProperty(""))
	case req.GetPreview():
		out.set(state)
	default:
		in, err := readChecked(news)
		if err != nil {
			return nil, err
		}
		cmd := in.update
		if cmd == nil {
			cmd = in.create
		}
		if cmd != nil {
			ctx, done := s.operation(ctx)
			defer done()
			if out, err = run(ctx, s.log(urn), in, *cmd, out); err != nil {
				return nil, err
			}
		}
		out.set(state)
	}
	props, err := marshal(state)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: props}, nil
}

// changedForPreview is infer's markComputed for an update preview (pulumi-go-provider v1.3.0
// infer/resource.go): every output depends on every input, and stdout and stderr become unknown when an input
// is unknown or differs from the same key in the old state (a key the old state lacks does not count).
func changedForPreview(olds, news resource.PropertyMap) bool {
	for _, k := range inputKeys {
		n := news[k]
		if n.IsComputed() {
			return true
		}
		if o, had := olds[k]; had && !o.DeepEquals(n) {
			return true
		}
	}
	return false
}

func (s *server) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	urn, err := commandURN(req.GetUrn())
	if err != nil {
		return nil, err
	}
	state, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	in, err := readChecked(inputsOf(state))
	if err != nil {
		return nil, err
	}
	// remote/commandController.go Delete: nothing to do without a delete command.
	if in.delete != nil {
		ctx, done := s.operation(ctx)
		defer done()
		if _, err := run(ctx, s.log(urn), in, *in.delete, outputsOf(state)); err != nil {
			return nil, err
		}
	}
	return &emptypb.Empty{}, nil
}

// Read returns the state unchanged, as infer's default Read does for a resource without a Read method.
func (s *server) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	if _, err := commandURN(req.GetUrn()); err != nil {
		return nil, err
	}
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
}

// engineLog sends diagnostics about one resource to the engine. A failed send is dropped: it must not fail
// the command (the real provider logs it to its own stderr instead).
type engineLog struct {
	host *provider.HostClient
	urn  resource.URN
}

// status is an ephemeral info message (the progress display's Info column, not the final summary): the real
// provider sends command output and dial retries this way (util/util.go LogOutput uses InfoStatus).
func (l engineLog) status(ctx context.Context, msg string) {
	_ = l.host.LogStatus(ctx, diag.Info, l.urn, msg)
}

// message is a lasting diagnostic, as the real provider sends setenv failures.
func (l engineLog) message(ctx context.Context, severity diag.Severity, msg string) {
	_ = l.host.Log(ctx, severity, l.urn, msg)
}
