package main

// Check: the inputs as the engine will store them, and why they are refused if they are.

import (
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// check adds the connection defaults and marks the connection secret, and its key fields secret inside it
// (infer applies the provider:"secret" tags of remote/command.go and remote/connection.go in Check). An
// unknown connection stays unknown (and secret). Every other value is returned as it came, secrets and unknowns included.
func check(news resource.PropertyMap) (resource.PropertyMap, []*pulumirpc.CheckFailure) {
	checked := news.Copy()
	if conn, ok := checked["connection"]; ok {
		if conn.IsSecret() {
			conn = conn.SecretValue().Element
		}
		if conn.IsObject() {
			fields := withConnectionDefaults(conn.ObjectValue())
			for _, k := range []resource.PropertyKey{"privateKey", "privateKeyPassword"} {
				if v, set := fields[k]; set && !v.IsSecret() {
					fields[k] = resource.MakeSecret(v)
				}
			}
			conn = resource.NewProperty(fields)
		}
		checked["connection"] = resource.MakeSecret(conn)
	}
	_, failures := readInputs(checked)
	return checked, failures
}
