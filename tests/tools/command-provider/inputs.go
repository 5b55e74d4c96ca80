package main

// Reading the inputs of command:remote:Command into Go values, and the outputs the state adds to them.
// Inputs: remote/command.go CommandInputs and common/inputs.go ResourceInputs; outputs: remote/baseOutputs.go.

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// inputKeys are all inputs of the real resource, including triggers, which no run reads.
var inputKeys = []resource.PropertyKey{
	"triggers", "create", "update", "delete", "stdin", "logging", "connection", "environment", "addPreviousOutputInEnv",
}

// loggingValues are remote/logging.go's enum.
var loggingValues = []string{"stdout", "stderr", "stdoutAndStderr", "none"}

const notImplemented = "the test stand-in of pulumi-resource-command (tests/tools/command-provider) " +
	"does not implement this input"

type inputs struct {
	create, update, delete *string
	stdin                  string
	environment            map[string]string
	logging                string
	addPreviousOutputInEnv bool
	connection             connection
}

func (in inputs) logStdout() bool { return in.logging == "stdout" || in.logging == "stdoutAndStderr" }
func (in inputs) logStderr() bool { return in.logging == "stderr" || in.logging == "stdoutAndStderr" }

// readInputs reads m, which may hold secrets and (in a preview) unknowns; an unknown value is not checked.
// It refuses every input the stand-in does not implement, with a failure naming it.
func readInputs(m resource.PropertyMap) (inputs, []*pulumirpc.CheckFailure) {
	var r reader
	// Absent logging and addPreviousOutputInEnv mean stdoutAndStderr and true (remote/logging.go,
	// remote/commandOutputs.go run).
	in := inputs{logging: "stdoutAndStderr", addPreviousOutputInEnv: true}
	if _, ok := m["connection"]; !ok {
		r.fail("connection", "missing required input")
	}
	m = reveal(resource.NewProperty(m)).ObjectValue()
	for _, k := range m.StableKeys() {
		v, path := m[k], string(k)
		if v.IsComputed() {
			continue
		}
		switch k {
		case "create":
			in.create = r.optString(path, v)
		case "update":
			in.update = r.optString(path, v)
		case "delete":
			in.delete = r.optString(path, v)
		case "stdin":
			if s := r.optString(path, v); s != nil {
				in.stdin = *s
			}
		case "logging":
			if s := r.optString(path, v); s != nil {
				in.logging = *s
				if !slices.Contains(loggingValues, *s) {
					r.fail(path, "must be one of "+strings.Join(loggingValues, ", "))
				}
			}
		case "environment":
			in.environment = r.stringMap(path, v)
		case "triggers":
			if !v.IsArray() {
				r.fail(path, "must be an array")
			}
		case "addPreviousOutputInEnv":
			if v.IsBool() {
				in.addPreviousOutputInEnv = v.BoolValue()
			} else {
				r.fail(path, "must be a boolean")
			}
		case "connection":
			in.connection = r.connection(v)
		default:
			r.fail(path, notImplemented)
		}
	}
	return in, r.failures
}

// readChecked reads inputs that Check accepted, as Create, Update and Delete get them.
func readChecked(m resource.PropertyMap) (inputs, error) {
	in, failures := readInputs(m)
	if len(failures) > 0 {
		errs := make([]error, len(failures))
		for i, f := range failures {
			errs[i] = fmt.Errorf("%s: %s", f.GetProperty(), f.GetReason())
		}
		return in, fmt.Errorf("invalid inputs: %w", errors.Join(errs...))
	}
	return in, nil
}

// inputsOf is the inputs part of a state.
func inputsOf(state resource.PropertyMap) resource.PropertyMap {
	m := resource.PropertyMap{}
	for _, k := range inputKeys {
		if v, ok := state[k]; ok {
			m[k] = v
		}
	}
	return m
}

// outputs are what a run adds to the state. They are plain values: the engine makes them secret when the
// program asks for it with additionalSecretOutputs.
type outputs struct{ stdout, stderr string }

func outputsOf(state resource.PropertyMap) outputs {
	text := func(k resource.PropertyKey) string {
		if v := reveal(state[k]); v.IsString() {
			return v.StringValue()
		}
		return ""
	}
	return outputs{stdout: text("stdout"), stderr: text("stderr")}
}

func (o outputs) set(state resource.PropertyMap) {
	state["stdout"] = resource.NewProperty(o.stdout)
	state["stderr"] = resource.NewProperty(o.stderr)
}

// reveal strips the secret marks from v at every depth, for reading; the state keeps them.
func reveal(v resource.PropertyValue) resource.PropertyValue {
	switch {
	case v.IsSecret():
		return reveal(v.SecretValue().Element)
	case v.IsObject():
		m := resource.PropertyMap{}
		for k, e := range v.ObjectValue() {
			m[k] = reveal(e)
		}
		return resource.NewProperty(m)
	case v.IsArray():
		a := make([]resource.PropertyValue, len(v.ArrayValue()))
		for i, e := range v.ArrayValue() {
			a[i] = reveal(e)
		}
		return resource.NewProperty(a)
	}
	return v
}

// reader collects Check failures while reading revealed values.
type reader struct{ failures []*pulumirpc.CheckFailure }

func (r *reader) fail(path, reason string) {
	r.failures = append(r.failures, &pulumirpc.CheckFailure{Property: path, Reason: reason})
}

func (r *reader) optString(path string, v resource.PropertyValue) *string {
	if !v.IsString() {
		r.fail(path, "must be a string")
		return nil
	}
	s := v.StringValue()
	return &s
}

func (r *reader) integer(path string, v resource.PropertyValue) int {
	if !v.IsNumber() {
		r.fail(path, "must be a number")
		return 0
	}
	return int(v.NumberValue())
}

func (r *reader) stringMap(path string, v resource.PropertyValue) map[string]string {
	if !v.IsObject() {
		r.fail(path, "must be an object of strings")
		return nil
	}
	m := map[string]string{}
	for k, e := range v.ObjectValue() {
		switch {
		case e.IsString():
			m[string(k)] = e.StringValue()
		case !e.IsComputed():
			r.fail(path+"."+string(k), "must be a string")
		}
	}
	return m
}
