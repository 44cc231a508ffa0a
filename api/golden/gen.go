// Command gen prints golden protobuf encodings produced by containerd's own Go types (Debian's
// golang-github-containerd-containerd-dev), so api/golden.test.ts can prove that beetroot's
// generated TypeScript puts exactly the same bytes on the wire.
//
// Run offline against the packaged GOPATH:
//   GO111MODULE=off GOPATH=/usr/share/gocode go run api/golden/gen.go > api/golden/golden.json
package main

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"time"

	eventsapi "github.com/containerd/containerd/api/events"
	ttrpcevents "github.com/containerd/containerd/api/services/ttrpc/events/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/runtime/v2/task"
	ptypes "github.com/gogo/protobuf/types"
)

type marshaler interface{ Marshal() ([]byte, error) }

func main() {
	exitedAt := time.Unix(1700000000, 123456789).UTC()
	exit := &eventsapi.TaskExit{ContainerID: "c1", ID: "c1", Pid: 4242, ExitStatus: 3, ExitedAt: exitedAt}
	exitBytes, err := exit.Marshal()
	if err != nil {
		panic(err)
	}
	envelope := &ttrpcevents.Envelope{
		Timestamp: exitedAt,
		Namespace: "default",
		Topic:     "/tasks/exit",
		Event:     &ptypes.Any{TypeUrl: "containerd.events.TaskExit", Value: exitBytes},
	}
	messages := map[string]marshaler{
		"DeleteResponse": &task.DeleteResponse{Pid: 4242, ExitStatus: 137, ExitedAt: exitedAt},
		"TaskExit":       exit,
		"Envelope":       envelope,
		"ForwardRequest": &ttrpcevents.ForwardRequest{Envelope: envelope},
		"CreateTaskRequest": &task.CreateTaskRequest{
			ID: "c1", Bundle: "/run/containerd/io.containerd.runtime.v2.task/default/c1",
			Rootfs: []*types.Mount{{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=/a:/b", "upperdir=/u"}}},
			Terminal: true, Stdin: "/fifo/in", Stdout: "/fifo/out",
		},
		"KillRequest":     &task.KillRequest{ID: "c1", ExecID: "e1", Signal: 9, All: true},
		"ConnectResponse": &task.ConnectResponse{ShimPid: 10, TaskPid: 20, Version: "v1.0.0"},
	}
	out := map[string]string{}
	for name, m := range messages {
		b, err := m.Marshal()
		if err != nil {
			panic(err)
		}
		out[name] = hex.EncodeToString(b)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		panic(err)
	}
}
