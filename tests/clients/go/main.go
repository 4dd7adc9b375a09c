// A client of mcp-runtime's demo app on the official Go SDK, run by tests/runtime/test_foreign_clients.py
// against replicas behind a balancer with no affinity (tests/support/http_balancer.py).
//
//	mcp-go-client --url http://127.0.0.1:PORT/mcp --checks counter,elicitation,notifications,get-resume,post-resume,delete
//
// Writes one JSON object a line on stdout: {"check", "ok", "detail"} per check, {"pause": what} where the test
// must act (kill a replica, arm a cut) before the client goes on (it waits for a line on stdin), and last
// {"summary": ...}. Exits 1 when a check failed, 2 on bad arguments.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const protocolVersion = "2025-11-25"

var allChecks = []string{"counter", "elicitation", "notifications", "get-resume", "post-resume", "delete"}

var (
	out   = json.NewEncoder(os.Stdout)
	stdin = bufio.NewScanner(os.Stdin)
)

func emit(v any) {
	if err := out.Encode(v); err != nil {
		panic(err)
	}
}

func pause(what string) error {
	emit(map[string]string{"pause": what})
	if !stdin.Scan() {
		return fmt.Errorf("stdin closed while paused for %s", what)
	}
	return nil
}

// responseCounter wraps the HTTP transport and counts the JSON-RPC responses the client is given, by request
// id, over every POST and GET stream (and JSON bodies): a response must arrive exactly once.
type responseCounter struct {
	inner http.RoundTripper
	mu    sync.Mutex
	seen  map[string]int
}

func (c *responseCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.inner.RoundTrip(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	resp.Body = &countingBody{ReadCloser: resp.Body, counter: c}
	return resp, nil
}

func (c *responseCounter) note(line []byte) {
	line = bytes.TrimPrefix(bytes.TrimSpace(line), []byte("data:"))
	var msg struct {
		ID     json.RawMessage `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if json.Unmarshal(bytes.TrimSpace(line), &msg) != nil || len(msg.ID) == 0 || (msg.Result == nil && msg.Error == nil) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen[string(msg.ID)]++
}

func (c *responseCounter) duplicates() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	dup := map[string]int{}
	for id, n := range c.seen {
		if n > 1 {
			dup[id] = n
		}
	}
	return dup
}

type countingBody struct {
	io.ReadCloser
	counter *responseCounter
	partial []byte
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.partial = append(b.partial, p[:n]...)
	for {
		i := bytes.IndexByte(b.partial, '\n')
		if i < 0 {
			break
		}
		b.counter.note(b.partial[:i])
		b.partial = b.partial[i+1:]
	}
	if err == io.EOF && len(b.partial) > 0 {
		b.counter.note(b.partial)
		b.partial = nil
	}
	return n, err
}

// session is one session of the demo app: the SDK's client on its Streamable HTTP transport, answering
// elicitations and recording the resource updates it hears.
type session struct {
	url      string
	counter  *responseCounter
	cs       *mcp.ClientSession
	mu       sync.Mutex
	updates  []string
	progress int
}

func connect(ctx context.Context, url string) (*session, error) {
	s := &session{url: url, counter: &responseCounter{inner: http.DefaultTransport, seen: map[string]int{}}}
	client := mcp.NewClient(&mcp.Implementation{Name: "mcp-fleet-go-client", Version: "1.0.0"}, &mcp.ClientOptions{
		ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			field := "answer"
			if raw, err := json.Marshal(req.Params.RequestedSchema); err == nil {
				var schema struct {
					Properties map[string]any `json:"properties"`
				}
				if json.Unmarshal(raw, &schema) == nil {
					for name := range schema.Properties {
						field = name
						break
					}
				}
			}
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{field: "answer to " + req.Params.Message}}, nil
		},
		ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.updates = append(s.updates, req.Params.URI)
		},
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.progress++
		},
	})
	transport := &mcp.StreamableClientTransport{
		Endpoint:   url,
		HTTPClient: &http.Client{Transport: s.counter},
		MaxRetries: 5,
	}
	cs, err := client.Connect(ctx, transport, &mcp.ClientSessionOptions{ProtocolVersion: protocolVersion})
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	s.cs = cs
	if got := cs.InitializeResult().ProtocolVersion; got != protocolVersion {
		return s, fmt.Errorf("negotiated protocol %s, wanted %s", got, protocolVersion)
	}
	return s, nil
}

func value(result *mcp.CallToolResult) (any, error) {
	if result.IsError {
		raw, _ := json.Marshal(result.Content)
		return nil, fmt.Errorf("the tool answered with an error: %s", raw)
	}
	if m, ok := result.StructuredContent.(map[string]any); ok {
		if v, ok := m["result"]; ok {
			return v, nil
		}
	}
	if len(result.Content) > 0 {
		if text, ok := result.Content[0].(*mcp.TextContent); ok {
			return text.Text, nil
		}
	}
	return nil, errors.New("the tool answered with no result")
}

func (s *session) call(ctx context.Context, name string, args map[string]any, timeout time.Duration) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	result, err := s.cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return value(result)
}

func (s *session) updateCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.updates)
}

func (s *session) heardSince(n int, uri string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.updates[n:], uri)
}

// subscribeNote subscribes to demo://note when the server offers subscriptions (the runtime sends the update
// to the session's GET stream either way).
func (s *session) subscribeNote(ctx context.Context) (bool, error) {
	caps := s.cs.InitializeResult().Capabilities
	if caps == nil || caps.Resources == nil || !caps.Resources.Subscribe {
		return false, nil
	}
	return true, s.cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "demo://note"})
}

func (s *session) noteUpdate(ctx context.Context, text string, wait time.Duration) error {
	before := s.updateCount()
	answer, err := s.call(ctx, "note_set", map[string]any{"text": text}, 15*time.Second)
	if err != nil {
		return err
	}
	if answer != text {
		return fmt.Errorf("note_set answered %v", answer)
	}
	deadline := time.Now().Add(wait)
	for !s.heardSince(before, "demo://note") {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for notifications/resources/updated for demo://note after note_set(%s)", wait, text)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

func counter(ctx context.Context, s *session) (string, error) {
	var seen []float64
	for i := 0; i < 7; i++ {
		v, err := s.call(ctx, "session_increment", map[string]any{}, 15*time.Second)
		if err != nil {
			return "", err
		}
		n, ok := v.(float64)
		if !ok {
			return "", fmt.Errorf("session_increment answered %v", v)
		}
		seen = append(seen, n)
		if i > 0 && n != seen[i-1]+1 {
			return "", fmt.Errorf("session_increment went %v", seen)
		}
	}
	return fmt.Sprintf("session_increment: %v", seen), nil
}

func elicitation(ctx context.Context, s *session) (string, error) {
	var answers []any
	for _, question := range []string{"first question", "second question", "third question"} {
		answer, err := s.call(ctx, "ask", map[string]any{"question": question}, 15*time.Second)
		if err != nil {
			return "", err
		}
		if answer != "answer to "+question {
			return "", fmt.Errorf("ask(%s) answered %v", question, answer)
		}
		answers = append(answers, answer)
	}
	return fmt.Sprintf("ask answered %v", answers), nil
}

func notifications(ctx context.Context, s *session) (string, error) {
	subscribed, err := s.subscribeNote(ctx)
	if err != nil {
		return "", fmt.Errorf("resources/subscribe: %w", err)
	}
	// The SDK opens its GET stream on its own: notifications go there once it is open.
	if err := pause("get-stream-open"); err != nil {
		return "", err
	}
	for _, text := range []string{"one", "two"} {
		if err := s.noteUpdate(ctx, text, 10*time.Second); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("resources/subscribe sent: %v; both updates heard", subscribed), nil
}

func getResume(ctx context.Context, s *session) (string, error) {
	if _, err := s.subscribeNote(ctx); err != nil {
		return "", fmt.Errorf("resources/subscribe: %w", err)
	}
	if err := pause("get-stream-open"); err != nil {
		return "", err
	}
	if err := s.noteUpdate(ctx, "before the kill", 10*time.Second); err != nil {
		return "", err
	}
	if err := pause("kill-get-stream-holder"); err != nil {
		return "", err
	}
	if err := s.noteUpdate(ctx, "after the kill", 20*time.Second); err != nil {
		return "", err
	}
	return "the update sent after the GET stream was lost was heard", nil
}

func postResume(ctx context.Context, s *session) (string, error) {
	if err := pause("cut-next-post-stream"); err != nil {
		return "", err
	}
	started := time.Now()
	callCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	params := &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"seconds": 3}}
	params.SetProgressToken("slow-progress")
	result, err := s.cs.CallTool(callCtx, params)
	if err != nil {
		return "", fmt.Errorf("slow: %w", err)
	}
	answer, err := value(result)
	if err != nil {
		return "", err
	}
	if answer != "waited 3s" {
		return "", fmt.Errorf("slow answered %v", answer)
	}
	time.Sleep(time.Second) // a duplicate would come now
	if dup := s.counter.duplicates(); len(dup) > 0 {
		return "", fmt.Errorf("responses arrived more than once (id: times): %v", dup)
	}
	s.mu.Lock()
	progress := s.progress
	s.mu.Unlock()
	return fmt.Sprintf("slow answered once after %d ms, %d progress notifications", time.Since(started).Milliseconds(), progress), nil
}

func remove(ctx context.Context, s *session) (string, error) {
	if _, err := s.call(ctx, "session_increment", map[string]any{}, 15*time.Second); err != nil {
		return "", err
	}
	id := s.cs.ID()
	if id == "" {
		return "", errors.New("no session id")
	}
	if err := s.cs.Close(); err != nil { // sends DELETE
		return "", fmt.Errorf("close (DELETE): %w", err)
	}
	var statuses []int
	for i := 0; i < 3; i++ { // one request per replica: each goes to the next one
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"session_increment"}}`, 900+i)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, strings.NewReader(body))
		if err != nil {
			return "", err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Session-Id", id)
		req.Header.Set("Mcp-Protocol-Version", protocolVersion)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		_ = resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
	}
	for _, status := range statuses {
		if status != http.StatusNotFound {
			return "", fmt.Errorf("requests after DELETE got %v, wanted 404 each", statuses)
		}
	}
	return fmt.Sprintf("DELETE sent; the session's requests then got %v", statuses), nil
}

var run = map[string]func(context.Context, *session) (string, error){
	"counter":       counter,
	"elicitation":   elicitation,
	"notifications": notifications,
	"get-resume":    getResume,
	"post-resume":   postResume,
	"delete":        remove,
}

func main() {
	url := flag.String("url", "", "the MCP endpoint")
	checks := flag.String("checks", strings.Join(allChecks, ","), "the checks to run, comma-separated")
	flag.Parse()
	if *url == "" || flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "usage: mcp-go-client --url URL [--checks %s]\n", strings.Join(allChecks, ","))
		os.Exit(2)
	}
	var names []string
	for _, name := range strings.Split(*checks, ",") {
		if _, ok := run[name]; !ok {
			fmt.Fprintf(os.Stderr, "unknown check %q (known: %s)\n", name, strings.Join(allChecks, ","))
			os.Exit(2)
		}
		names = append(names, name)
	}
	ctx := context.Background()
	passed := []string{}
	failed := map[string]string{}
	for _, name := range names {
		s, err := connect(ctx, *url)
		var detail string
		if err == nil {
			detail, err = run[name](ctx, s)
		}
		if err != nil {
			failed[name] = err.Error()
			emit(map[string]any{"check": name, "ok": false, "detail": err.Error()})
		} else {
			passed = append(passed, name)
			emit(map[string]any{"check": name, "ok": true, "detail": detail})
		}
		if s != nil && name != "delete" {
			_ = s.cs.Close()
		}
	}
	emit(map[string]any{"summary": map[string]any{
		"client": "go-sdk", "protocol": protocolVersion, "passed": passed, "failed": failed,
	}})
	if len(failed) > 0 {
		os.Exit(1)
	}
}
