package main

// Test fixtures: an SSH server and an engine on loopback, and the provider driven through its gRPC methods
// with property maps marshalled as the engine marshals them.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/pkg/v3/resource/provider"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/ssh"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// execRecord is what the SSH server saw of one command.
type execRecord struct {
	command string
	stdin   string
	env     map[string]string
}

// sshServer accepts one client key and answers every exec with the configured output and exit status.
type sshServer struct {
	port          int
	hostKey       string // authorized_keys line
	clientKey     string // PEM
	clientPrivate ed25519.PrivateKey

	mu        sync.Mutex
	stdout    string
	stderr    string
	status    uint32
	refuseEnv bool
	execs     []execRecord
}

func newKey(t *testing.T) (ssh.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	public, private, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPublic, err := ssh.NewPublicKey(public)
	if err != nil {
		t.Fatal(err)
	}
	return sshPublic, private
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func startSSHServer(t *testing.T) *sshServer {
	hostPublic, hostPrivate := newKey(t)
	hostSigner, err := ssh.NewSignerFromKey(hostPrivate)
	if err != nil {
		t.Fatal(err)
	}
	clientPublic, clientPrivate := newKey(t)
	block, err := ssh.MarshalPrivateKey(clientPrivate, "")
	if err != nil {
		t.Fatal(err)
	}
	config := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(key.Marshal(), clientPublic.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown client key")
		},
	}
	config.AddHostKey(hostSigner)
	l := listenLoopback(t)
	s := &sshServer{
		port:          l.Addr().(*net.TCPAddr).Port,
		hostKey:       string(ssh.MarshalAuthorizedKey(hostPublic)),
		clientKey:     string(pem.EncodeToMemory(block)),
		clientPrivate: clientPrivate,
	}
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go s.serve(conn, config)
		}
	}()
	return s
}

func (s *sshServer) serve(conn net.Conn, config *ssh.ServerConfig) {
	defer conn.Close()
	_, channels, requests, err := ssh.NewServerConn(conn, config)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(requests)
	for nc := range channels {
		ch, requests, err := nc.Accept()
		if err != nil {
			return
		}
		go s.session(ch, requests)
	}
}

func (s *sshServer) session(ch ssh.Channel, requests <-chan *ssh.Request) {
	rec := execRecord{env: map[string]string{}}
	for req := range requests {
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			_ = ssh.Unmarshal(req.Payload, &kv)
			s.mu.Lock()
			accept := !s.refuseEnv
			s.mu.Unlock()
			if accept {
				rec.env[kv.Name] = kv.Value
			}
			_ = req.Reply(accept, nil)
		case "exec":
			var e struct{ Command string }
			_ = ssh.Unmarshal(req.Payload, &e)
			rec.command = e.Command
			_ = req.Reply(true, nil)
			go s.exec(ch, rec)
		default:
			_ = req.Reply(false, nil)
		}
	}
}

func (s *sshServer) exec(ch ssh.Channel, rec execRecord) {
	defer ch.Close()
	stdin, _ := io.ReadAll(ch)
	rec.stdin = string(stdin)
	s.mu.Lock()
	s.execs = append(s.execs, rec)
	stdout, stderr, status := s.stdout, s.stderr, s.status
	s.mu.Unlock()
	_, _ = io.WriteString(ch, stdout)
	_, _ = io.WriteString(ch.Stderr(), stderr)
	_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
}

func (s *sshServer) reply(stdout, stderr string, status uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stdout, s.stderr, s.status = stdout, stderr, status
}

func (s *sshServer) setRefuseEnv() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseEnv = true
}

// encryptedClientKey is the client key in PEM, encrypted with passphrase.
func (s *sshServer) encryptedClientKey(t *testing.T, passphrase string) string {
	block, err := ssh.MarshalPrivateKeyWithPassphrase(s.clientPrivate, "", []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(block))
}

func (s *sshServer) recorded() []execRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]execRecord(nil), s.execs...)
}

// fakeEngine records the diagnostics the provider sends.
type fakeEngine struct {
	pulumirpc.UnimplementedEngineServer
	mu   sync.Mutex
	logs []*pulumirpc.LogRequest
}

func (e *fakeEngine) Log(_ context.Context, req *pulumirpc.LogRequest) (*emptypb.Empty, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.logs = append(e.logs, req)
	return &emptypb.Empty{}, nil
}

func (e *fakeEngine) recorded() []*pulumirpc.LogRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*pulumirpc.LogRequest(nil), e.logs...)
}

type harness struct {
	t      *testing.T
	ssh    *sshServer
	engine *fakeEngine
	server *server
}

var urn = string(resource.NewURN("ci", "chatmail-relay", "", commandType, "relay-step"))

func newHarness(t *testing.T) *harness {
	engine := &fakeEngine{}
	grpcServer := grpc.NewServer()
	pulumirpc.RegisterEngineServer(grpcServer, engine)
	l := listenLoopback(t)
	go func() { _ = grpcServer.Serve(l) }()
	t.Cleanup(grpcServer.Stop)
	host, err := provider.NewHostClient(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = host.Close() })
	return &harness{t: t, ssh: startSSHServer(t), engine: engine, server: newServer(host)}
}

// engineWire is how the engine marshals properties for a provider that accepts secrets.
var engineWire = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, KeepResources: true}

func (h *harness) marshal(m resource.PropertyMap) *structpb.Struct {
	h.t.Helper()
	s, err := plugin.MarshalProperties(m, engineWire)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) unmarshal(s *structpb.Struct) resource.PropertyMap {
	h.t.Helper()
	m, err := plugin.UnmarshalProperties(s, engineWire)
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

// connection reaches the test SSH server; fields adds or replaces fields.
func (h *harness) connection(fields resource.PropertyMap) resource.PropertyValue {
	c := resource.PropertyMap{
		"host":       resource.NewProperty("127.0.0.1"),
		"port":       resource.NewProperty(float64(h.ssh.port)),
		"privateKey": resource.NewProperty(h.ssh.clientKey),
	}
	for k, v := range fields {
		c[k] = v
	}
	// The SDK sends the connection as a secret (node_modules/@pulumi/command/remote/command.js).
	return resource.MakeSecret(resource.NewProperty(c))
}

// inputs are the given inputs plus a connection to the test SSH server, through Check, as the engine does.
func (h *harness) inputs(m resource.PropertyMap) resource.PropertyMap {
	h.t.Helper()
	m = m.Copy()
	if _, ok := m["connection"]; !ok {
		m["connection"] = h.connection(nil)
	}
	resp, err := h.server.Check(context.Background(), &pulumirpc.CheckRequest{Urn: urn, News: h.marshal(m)})
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
	resp, err := h.server.Create(context.Background(), &pulumirpc.CreateRequest{
		Urn: urn, Properties: h.marshal(inputs), Preview: preview,
	})
	if err != nil {
		return "", nil, err
	}
	return resp.GetId(), h.unmarshal(resp.GetProperties()), nil
}

// created is the state of a resource created from inputs with the given outputs.
func (h *harness) created(inputs resource.PropertyMap, stdout, stderr string) resource.PropertyMap {
	h.t.Helper()
	h.ssh.reply(stdout, stderr, 0)
	_, state, err := h.create(inputs, false)
	if err != nil {
		h.t.Fatal(err)
	}
	h.ssh.mu.Lock()
	h.ssh.execs = nil
	h.ssh.mu.Unlock()
	return state
}

func (h *harness) update(olds, news resource.PropertyMap, preview bool) (resource.PropertyMap, error) {
	h.t.Helper()
	resp, err := h.server.Update(context.Background(), &pulumirpc.UpdateRequest{
		Urn: urn, Id: "relay-step0123abcd", Olds: h.marshal(olds), News: h.marshal(news),
		OldInputs: h.marshal(inputsOf(olds)), Preview: preview,
	})
	if err != nil {
		return nil, err
	}
	return h.unmarshal(resp.GetProperties()), nil
}

func (h *harness) delete(state resource.PropertyMap) error {
	h.t.Helper()
	_, err := h.server.Delete(context.Background(), &pulumirpc.DeleteRequest{
		Urn: urn, Id: "relay-step0123abcd", Properties: h.marshal(state), OldInputs: h.marshal(inputsOf(state)),
	})
	return err
}

// statusLines are the ephemeral info messages the engine got, in order.
func (h *harness) statusLines() []string {
	var lines []string
	for _, l := range h.engine.recorded() {
		if l.GetEphemeral() && l.GetSeverity() == pulumirpc.LogSeverity_INFO && l.GetUrn() == urn {
			lines = append(lines, l.GetMessage())
		}
	}
	return lines
}

// diagnostics are the lasting messages the engine got, as "SEVERITY message".
func (h *harness) diagnostics() []string {
	var lines []string
	for _, l := range h.engine.recorded() {
		if !l.GetEphemeral() && l.GetUrn() == urn {
			lines = append(lines, l.GetSeverity().String()+" "+l.GetMessage())
		}
	}
	return lines
}
