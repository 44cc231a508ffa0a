// gopeer is containerd's Go ttrpc on the other end of internal/ttrpc's interop tests and benchmark.
//
//	gopeer serve <socket>    serve ttrpctest.v1.Interop (same semantics as the TS implementation); prints READY
//	gopeer client <socket>   run calls given as JSON lines on stdin, answer JSON lines on stdout
//	gopeer bench <socket> <unary-calls> <stream-messages> <message-bytes>
//	                         unary latency and server-streaming throughput; prints one JSON object
//
// Built in GOPATH mode from Debian's packaged sources (no network); see internal/ttrpc/bench/go-peer.ts.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/ttrpc"
	anypb "github.com/golang/protobuf/ptypes/any"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

const serviceName = "ttrpctest.v1.Interop"

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: gopeer serve|client|bench <socket> ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2])
	case "client":
		err = runClient(os.Args[2])
	case "bench":
		err = bench(os.Args[2], os.Args[3:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gopeer:", err)
		os.Exit(1)
	}
}

// ---- server ----------------------------------------------------------------------------------

var (
	patternsMu sync.Mutex
	patterns   = map[uint32][]byte{}
)

// patternBytes returns n bytes of the pattern i & 0xff from a per-size cache, like the TS side.
func patternBytes(n uint32) []byte {
	patternsMu.Lock()
	defer patternsMu.Unlock()
	if b, ok := patterns[n]; ok {
		return b
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	if len(patterns) > 64 {
		patterns = map[uint32][]byte{}
	}
	patterns[n] = b
	return b
}

// answer applies a Call's knobs exactly as internal/ttrpc/testdata/interop-service.ts does.
func answer(ctx context.Context, c *Call, index uint32) (*Reply, error) {
	if c.SleepMs > 0 {
		select {
		case <-time.After(time.Duration(c.SleepMs) * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if c.ThrowMessage != "" {
		return nil, errors.New(c.ThrowMessage)
	}
	if c.FailCode != 0 {
		st := status.New(codes.Code(c.FailCode), c.FailMessage).Proto()
		if c.DetailTypeUrl != "" {
			st.Details = append(st.Details, &anypb.Any{TypeUrl: c.DetailTypeUrl, Value: c.DetailValue})
		}
		return nil, status.ErrorProto(st)
	}
	r := &Reply{Payload: c.Payload, Index: index, DeadlineRemainingMs: -1}
	if c.ReplyBytes > 0 {
		r.Payload = patternBytes(c.ReplyBytes)
	}
	if c.MetadataKey != "" {
		if md, ok := ttrpc.GetMetadata(ctx); ok {
			r.MetadataValues = md[c.MetadataKey]
		}
	}
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl).Milliseconds()
		if left < 0 {
			left = 0
		}
		r.DeadlineRemainingMs = left
	}
	return r, nil
}

func serviceDesc() *ttrpc.ServiceDesc {
	return &ttrpc.ServiceDesc{
		Methods: map[string]ttrpc.Method{
			"Unary": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
				var c Call
				if err := unmarshal(&c); err != nil {
					return nil, err
				}
				return answer(ctx, &c, 0)
			},
		},
		Streams: map[string]ttrpc.Stream{
			"ServerStream": {
				StreamingServer: true,
				Handler: func(ctx context.Context, ss ttrpc.StreamServer) (interface{}, error) {
					var c Call
					if err := ss.RecvMsg(&c); err != nil {
						return nil, err
					}
					each := &Call{Payload: c.Payload, SleepMs: c.SleepMs, MetadataKey: c.MetadataKey, ReplyBytes: c.ReplyBytes}
					for i := uint32(0); i < c.Repeat; i++ {
						r, err := answer(ctx, each, i)
						if err != nil {
							return nil, err
						}
						if err := ss.SendMsg(r); err != nil {
							return nil, err
						}
					}
					if c.FailCode != 0 || c.ThrowMessage != "" {
						last := &Call{FailCode: c.FailCode, FailMessage: c.FailMessage, ThrowMessage: c.ThrowMessage,
							DetailTypeUrl: c.DetailTypeUrl, DetailValue: c.DetailValue}
						if _, err := answer(ctx, last, c.Repeat); err != nil {
							return nil, err
						}
					}
					return nil, nil
				},
			},
			"ClientStream": {
				StreamingClient: true,
				Handler: func(ctx context.Context, ss ttrpc.StreamServer) (interface{}, error) {
					var count uint32
					var bytes uint64
					var last *Call
					for {
						c := &Call{}
						if err := ss.RecvMsg(c); err != nil {
							if err == io.EOF {
								break
							}
							return nil, err
						}
						count++
						bytes += uint64(len(c.Payload))
						last = c
					}
					r := &Reply{DeadlineRemainingMs: -1}
					if last != nil {
						last.Payload = nil
						var err error
						if r, err = answer(ctx, last, count); err != nil {
							return nil, err
						}
					}
					r.ReceivedCount = count
					r.ReceivedBytes = bytes
					return r, nil
				},
			},
			"Bidi": {
				StreamingClient: true,
				StreamingServer: true,
				Handler: func(ctx context.Context, ss ttrpc.StreamServer) (interface{}, error) {
					var i uint32
					for {
						c := &Call{}
						if err := ss.RecvMsg(c); err != nil {
							if err == io.EOF {
								return nil, nil
							}
							return nil, err
						}
						n := c.Repeat
						if n == 0 {
							n = 1
						}
						for k := uint32(0); k < n; k++ {
							r, err := answer(ctx, c, i)
							if err != nil {
								return nil, err
							}
							i++
							if err := ss.SendMsg(r); err != nil {
								return nil, err
							}
						}
					}
				},
			},
		},
	}
}

func serve(path string) error {
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	s, err := ttrpc.NewServer()
	if err != nil {
		return err
	}
	s.RegisterService(serviceName, serviceDesc())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		_ = s.Close()
	}()
	fmt.Println("READY")
	if err := s.Serve(context.Background(), l); err != nil && !errors.Is(err, ttrpc.ErrServerClosed) {
		return err
	}
	return nil
}

// ---- client driver ---------------------------------------------------------------------------

type command struct {
	ID            int                 `json:"id"`
	Kind          string              `json:"kind"`
	Calls         []json.RawMessage   `json:"calls"`
	TimeoutMs     int64               `json:"timeout_ms"`
	CancelAfterMs int64               `json:"cancel_after_ms"`
	Metadata      map[string][]string `json:"metadata"`
}

type detail struct {
	TypeURL string `json:"type_url"`
	Value   []byte `json:"value"`
}

type result struct {
	ID        int               `json:"id"`
	Replies   []json.RawMessage `json:"replies"`
	Code      int               `json:"code"`
	Message   string            `json:"message"`
	Details   []detail          `json:"details"`
	ElapsedMs float64           `json:"elapsed_ms"`
}

func errorResult(res *result, err error) {
	if err == nil {
		return
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		res.Code, res.Message = int(codes.DeadlineExceeded), err.Error()
	case errors.Is(err, context.Canceled):
		res.Code, res.Message = int(codes.Canceled), err.Error()
	case errors.Is(err, ttrpc.ErrClosed):
		res.Code, res.Message = int(codes.Unavailable), err.Error()
	default:
		st, ok := status.FromError(err)
		if !ok {
			res.Code, res.Message = int(codes.Unknown), err.Error()
			return
		}
		res.Code, res.Message = int(st.Code()), st.Message()
		for _, d := range st.Proto().Details {
			res.Details = append(res.Details, detail{TypeURL: d.TypeUrl, Value: d.Value})
		}
	}
}

func execute(client *ttrpc.Client, cmd *command) *result {
	res := &result{ID: cmd.ID, Replies: []json.RawMessage{}, Details: []detail{}}
	calls := make([]*Call, len(cmd.Calls))
	for i, raw := range cmd.Calls {
		calls[i] = &Call{}
		if err := protojson.Unmarshal(raw, calls[i]); err != nil {
			res.Code, res.Message = int(codes.InvalidArgument), "driver: bad call json: "+err.Error()
			return res
		}
	}
	ctx := context.Background()
	if len(cmd.Metadata) > 0 {
		ctx = ttrpc.WithMetadata(ctx, ttrpc.MD(cmd.Metadata))
	}
	var cancel context.CancelFunc = func() {}
	if cmd.TimeoutMs > 0 {
		ctx, cancel = context.WithTimeout(ctx, time.Duration(cmd.TimeoutMs)*time.Millisecond)
	} else if cmd.CancelAfterMs > 0 {
		ctx, cancel = context.WithCancel(ctx)
		time.AfterFunc(time.Duration(cmd.CancelAfterMs)*time.Millisecond, cancel)
	}
	defer cancel()
	addReply := func(r *Reply) {
		b, _ := protojson.Marshal(r)
		res.Replies = append(res.Replies, b)
	}
	start := time.Now()
	defer func() { res.ElapsedMs = float64(time.Since(start).Microseconds()) / 1000 }()

	switch cmd.Kind {
	case "unary":
		var r Reply
		if err := client.Call(ctx, serviceName, "Unary", calls[0], &r); err != nil {
			errorResult(res, err)
			return res
		}
		addReply(&r)
	case "server_stream":
		s, err := client.NewStream(ctx, &ttrpc.StreamDesc{StreamingServer: true}, serviceName, "ServerStream", calls[0])
		if err != nil {
			errorResult(res, err)
			return res
		}
		for {
			r := &Reply{}
			if err := s.RecvMsg(r); err != nil {
				if err != io.EOF {
					errorResult(res, err)
				}
				return res
			}
			addReply(r)
		}
	case "client_stream", "bidi":
		desc := &ttrpc.StreamDesc{StreamingClient: true, StreamingServer: cmd.Kind == "bidi"}
		method := "ClientStream"
		if cmd.Kind == "bidi" {
			method = "Bidi"
		}
		s, err := client.NewStream(ctx, desc, serviceName, method, nil)
		if err != nil {
			errorResult(res, err)
			return res
		}
		sendErr := make(chan error, 1)
		go func() {
			for _, c := range calls {
				if err := s.SendMsg(c); err != nil {
					sendErr <- err
					return
				}
			}
			sendErr <- s.CloseSend()
		}()
		if cmd.Kind == "client_stream" {
			r := &Reply{}
			if err := s.RecvMsg(r); err != nil {
				errorResult(res, err)
				return res
			}
			addReply(r)
			return res
		}
		for {
			r := &Reply{}
			if err := s.RecvMsg(r); err != nil {
				if err != io.EOF {
					errorResult(res, err)
				}
				return res
			}
			addReply(r)
		}
	default:
		res.Code, res.Message = int(codes.InvalidArgument), "driver: unknown kind "+cmd.Kind
	}
	return res
}

func runClient(path string) error {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return err
	}
	client := ttrpc.NewClient(conn)
	defer client.Close()
	out := json.NewEncoder(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64<<10), 64<<20)
	for in.Scan() {
		cmd := &command{}
		if err := json.Unmarshal(in.Bytes(), cmd); err != nil {
			return fmt.Errorf("bad command: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := execute(client, cmd)
			mu.Lock()
			defer mu.Unlock()
			_ = out.Encode(res)
		}()
	}
	wg.Wait()
	return in.Err()
}

// ---- bench -----------------------------------------------------------------------------------

func bench(path string, args []string) error {
	if len(args) != 3 {
		return errors.New("usage: gopeer bench <socket> <unary-calls> <stream-messages> <message-bytes>")
	}
	var unaryN, streamN, msgBytes int
	for i, p := range []*int{&unaryN, &streamN, &msgBytes} {
		if _, err := fmt.Sscan(args[i], p); err != nil {
			return fmt.Errorf("bad number %q", args[i])
		}
	}
	conn, err := net.Dial("unix", path)
	if err != nil {
		return err
	}
	client := ttrpc.NewClient(conn)
	defer client.Close()
	ctx := context.Background()
	req := &Call{Payload: patternBytes(16)}
	warm := unaryN / 10
	if warm < 1000 {
		warm = 1000
	}
	samples := make([]float64, 0, unaryN)
	for i := 0; i < warm+unaryN; i++ {
		var r Reply
		t := time.Now()
		if err := client.Call(ctx, serviceName, "Unary", req, &r); err != nil {
			return err
		}
		if i >= warm {
			samples = append(samples, float64(time.Since(t).Nanoseconds())/1000)
		}
	}
	sort.Float64s(samples)
	pct := func(p float64) float64 { return samples[int(p*float64(len(samples)-1))] }

	start := time.Now()
	s, err := client.NewStream(ctx, &ttrpc.StreamDesc{StreamingServer: true}, serviceName, "ServerStream",
		&Call{Repeat: uint32(streamN), ReplyBytes: uint32(msgBytes)})
	if err != nil {
		return err
	}
	var total int
	for {
		r := &Reply{}
		if err := s.RecvMsg(r); err != nil {
			if err == io.EOF {
				break
			}
			return err
		}
		total += len(r.Payload)
	}
	secs := time.Since(start).Seconds()
	return json.NewEncoder(os.Stdout).Encode(map[string]float64{
		"unary_p50_us": pct(0.5),
		"unary_p99_us": pct(0.99),
		"stream_mb_s":  float64(total) / secs / 1e6,
		"stream_bytes": float64(total),
	})
}
