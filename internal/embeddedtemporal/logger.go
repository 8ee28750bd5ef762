package embeddedtemporal

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// serverLogger adapts the Temporal server's tag-based logger interface to slog,
// so the embedded server's lines share Vigil's format and destination.
type serverLogger struct {
	logger *slog.Logger
	level  slog.Level
	// stopping silences the errors services log about each other while the
	// server shuts down ("not enough hosts to serve the request").
	stopping *atomic.Bool
}

var _ log.Logger = serverLogger{}

func newServerLogger(l *slog.Logger, level slog.Level) serverLogger {
	return serverLogger{logger: l, level: level, stopping: new(atomic.Bool)}
}

func (l serverLogger) log(level slog.Level, msg string, tags []tag.Tag) {
	if level < l.level || l.stopping.Load() {
		return
	}
	attrs := make([]slog.Attr, 0, len(tags))
	for _, t := range tags {
		attrs = append(attrs, slog.Any(t.Key(), tagValue(t.Value())))
	}
	l.logger.LogAttrs(context.Background(), level, msg, attrs...)
}

// tagValue renders error and Stringer values as text; slog's JSON handler
// would otherwise print many of them as {}.
func tagValue(v any) any {
	switch x := v.(type) {
	case error:
		return x.Error()
	case fmt.Stringer:
		return x.String()
	default:
		return v
	}
}

func (l serverLogger) Debug(msg string, tags ...tag.Tag)  { l.log(slog.LevelDebug, msg, tags) }
func (l serverLogger) Info(msg string, tags ...tag.Tag)   { l.log(slog.LevelInfo, msg, tags) }
func (l serverLogger) Warn(msg string, tags ...tag.Tag)   { l.log(slog.LevelWarn, msg, tags) }
func (l serverLogger) Error(msg string, tags ...tag.Tag)  { l.log(slog.LevelError, msg, tags) }
func (l serverLogger) DPanic(msg string, tags ...tag.Tag) { l.log(slog.LevelError, msg, tags) }
func (l serverLogger) Panic(msg string, tags ...tag.Tag) {
	l.log(slog.LevelError, msg, tags)
	panic(msg)
}
func (l serverLogger) Fatal(msg string, tags ...tag.Tag) {
	l.log(slog.LevelError, msg, tags)
	panic("temporal server fatal: " + msg)
}

// quietSDKLogger silences the SDK client used only for start-up health checks.
type quietSDKLogger struct{}

func (quietSDKLogger) Debug(string, ...any) {}
func (quietSDKLogger) Info(string, ...any)  {}
func (quietSDKLogger) Warn(string, ...any)  {}
func (quietSDKLogger) Error(string, ...any) {}

func describeNamespaceRequest(ns string) *workflowservice.DescribeNamespaceRequest {
	return &workflowservice.DescribeNamespaceRequest{Namespace: ns}
}

// describeTaskQueueRequest asks matching about a probe queue; it fails until
// matching serves.
func describeTaskQueueRequest(ns string) *workflowservice.DescribeTaskQueueRequest {
	return &workflowservice.DescribeTaskQueueRequest{
		Namespace:     ns,
		TaskQueue:     &taskqueuepb.TaskQueue{Name: "vigil-readiness-probe", Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
		TaskQueueType: enumspb.TASK_QUEUE_TYPE_WORKFLOW,
	}
}
