package main

// The connection input and the SSH dial, as remote/connection.go has them (without proxy, password and agent).

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/retry"
	"golang.org/x/crypto/ssh"
)

// connectionDefaults are remote/connection.go's Annotate SetDefault values; Check writes them into the inputs.
var connectionDefaults = resource.PropertyMap{
	"user":           resource.NewProperty("root"),
	"port":           resource.NewProperty(22.0),
	"dialErrorLimit": resource.NewProperty(10.0),
	"perDialTimeout": resource.NewProperty(15.0),
}

type connection struct {
	host, user                              string
	port                                    int
	privateKey, privateKeyPassword, hostKey *string
	dialErrorLimit, perDialTimeout          int
}

// withConnectionDefaults adds the defaults that fields lacks.
func withConnectionDefaults(fields resource.PropertyMap) resource.PropertyMap {
	fields = fields.Copy()
	for k, v := range connectionDefaults {
		if _, set := fields[k]; !set {
			fields[k] = v
		}
	}
	return fields
}

func (r *reader) connection(v resource.PropertyValue) connection {
	var c connection
	if !v.IsObject() {
		r.fail("connection", "must be an object")
		return c
	}
	fields := withConnectionDefaults(v.ObjectValue())
	if _, ok := fields["host"]; !ok {
		r.fail("connection.host", "missing required input")
	}
	for _, k := range fields.StableKeys() {
		f, path := fields[k], "connection."+string(k)
		if f.IsComputed() {
			continue
		}
		switch k {
		case "host":
			if s := r.optString(path, f); s != nil {
				c.host = *s
			}
		case "user":
			if s := r.optString(path, f); s != nil {
				c.user = *s
			}
		case "port":
			c.port = r.integer(path, f)
		case "privateKey":
			c.privateKey = r.optString(path, f)
		case "privateKeyPassword":
			c.privateKeyPassword = r.optString(path, f)
		case "hostKey":
			c.hostKey = r.optString(path, f)
		case "dialErrorLimit":
			c.dialErrorLimit = r.integer(path, f)
		case "perDialTimeout":
			c.perDialTimeout = r.integer(path, f)
		default:
			r.fail(path, notImplemented)
		}
	}
	return c
}

// clientConfig verifies the host key only when hostKey is set, and bounds each TCP connect (not the SSH
// handshake: that is how x/crypto's ClientConfig.Timeout works) by perDialTimeout seconds, 0 meaning none.
func (c connection) clientConfig() (*ssh.ClientConfig, error) {
	config := &ssh.ClientConfig{
		User:            c.user,
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), // without hostKey the real provider does not check it
		Timeout:         time.Duration(c.perDialTimeout) * time.Second,
	}
	if c.hostKey != nil {
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(*c.hostKey))
		if err != nil {
			return nil, fmt.Errorf("failed to parse host key: %w", err)
		}
		config.HostKeyCallback = ssh.FixedHostKey(key)
		config.HostKeyAlgorithms = []string{key.Type()}
	}
	if c.privateKey != nil {
		var signer ssh.Signer
		var err error
		if c.privateKeyPassword != nil {
			signer, err = ssh.ParsePrivateKeyWithPassphrase([]byte(*c.privateKey), []byte(*c.privateKeyPassword))
		} else {
			signer, err = ssh.ParsePrivateKey([]byte(*c.privateKey))
		}
		if err != nil {
			return nil, err
		}
		config.Auth = append(config.Auth, ssh.PublicKeys(signer))
	}
	return config, nil
}

// dial makes up to dialErrorLimit+1 attempts (-1: no limit), waiting 100 ms before the second and 1.5 times
// longer before each next one up to 5 s (the SDK's retry.Until defaults the real provider uses), and reports
// each retry as a status message.
func (c connection) dial(ctx context.Context, log engineLog) (*ssh.Client, error) {
	config, err := c.clientConfig()
	if err != nil {
		return nil, err
	}
	endpoint := net.JoinHostPort(c.host, strconv.Itoa(c.port))
	limit := strconv.Itoa(c.dialErrorLimit)
	if c.dialErrorLimit == -1 {
		limit = "inf"
	}
	var client *ssh.Client
	ok, _, err := retry.Until(ctx, retry.Acceptor{
		Accept: func(try int, _ time.Duration) (bool, any, error) {
			var dialErr error
			if client, dialErr = ssh.Dial("tcp", endpoint, config); dialErr == nil {
				return true, nil, nil
			}
			dials := try + 1
			if c.dialErrorLimit > -1 && dials > c.dialErrorLimit {
				return true, nil, fmt.Errorf("after %d failed attempts: %w", try, dialErr)
			}
			log.status(ctx, fmt.Sprintf("Dial %d/%s failed: retrying", dials, limit))
			return false, nil, nil
		},
	})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ctx.Err()
	}
	return client, nil
}
