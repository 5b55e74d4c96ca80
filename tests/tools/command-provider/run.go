package main

// One run of a command over SSH, as remote/commandOutputs.go run does it.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
)

const setenvHint = "Unable to set '%s': the SSH server must accept it (AcceptEnv in sshd_config). " +
	"A shell on the remote host could take it as a prefix of the command instead: 'VAR=value command'."

// run dials, sets the environment (environment first: a refusal fails the run; then, when
// addPreviousOutputInEnv, the previous stdout and stderr if not empty: a refusal only warns), passes stdin
// when it is not empty, and streams the lines of the streams that logging names to the engine. On failure the
// error holds the exit status, the command and both streams; never stdin.
func run(ctx context.Context, log engineLog, in inputs, cmd string, previous outputs) (outputs, error) {
	client, err := in.connection.dial(ctx, log)
	if err != nil {
		return outputs{}, err
	}
	defer client.Close()
	session, err := client.NewSession()
	if err != nil {
		return outputs{}, err
	}
	defer session.Close()

	for k, v := range in.environment {
		if err := session.Setenv(k, v); err != nil {
			log.message(ctx, diag.Error, fmt.Sprintf(setenvHint, k))
			return outputs{}, fmt.Errorf("could not set environment variable %q: %w", k, err)
		}
	}
	if in.addPreviousOutputInEnv {
		for _, e := range []struct{ name, value string }{
			{"PULUMI_COMMAND_STDOUT", previous.stdout},
			{"PULUMI_COMMAND_STDERR", previous.stderr},
		} {
			if e.value != "" && session.Setenv(e.name, e.value) != nil {
				log.message(ctx, diag.Warning, fmt.Sprintf(setenvHint, e.name))
			}
		}
	}
	if in.stdin != "" {
		session.Stdin = strings.NewReader(in.stdin)
	}

	// The session copies stdout and stderr in two goroutines; both write the combined buffer and the log pipe.
	var stdout, stderr bytes.Buffer
	combined := &lockedBuffer{}
	logReader, logWriter := io.Pipe()
	stdoutTo := []io.Writer{&stdout, combined}
	if in.logStdout() {
		stdoutTo = append(stdoutTo, logWriter)
	}
	stderrTo := []io.Writer{&stderr, combined}
	if in.logStderr() {
		stderrTo = append(stderrTo, logWriter)
	}
	session.Stdout = io.MultiWriter(stdoutTo...)
	session.Stderr = io.MultiWriter(stderrTo...)
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		lines := bufio.NewScanner(logReader)
		for lines.Scan() {
			log.status(ctx, lines.Text())
		}
		_, _ = io.Copy(io.Discard, logReader) // after a line too long to scan, keep the command's output flowing
	}()

	err = session.Run(cmd)
	_ = logWriter.Close()
	<-logged
	if err != nil {
		return outputs{}, fmt.Errorf("%w: running %q:\n%s", err, cmd, combined.String())
	}
	return outputs{
		stdout: strings.TrimSuffix(stdout.String(), "\n"),
		stderr: strings.TrimSuffix(stderr.String(), "\n"),
	}, nil
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
