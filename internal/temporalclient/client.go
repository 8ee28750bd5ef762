// Package temporalclient dials the one Temporal client a Vigil process shares
// between its API and its worker, and registers Vigil's search attributes.
package temporalclient

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// Dial connects to the Temporal frontend at address, retrying until ctx ends
// or 30 seconds pass, so processes started together (compose, `vigil dev`)
// tolerate the server coming up a little later. Options (WithMetrics,
// WithDataConverter) add to the client's options.
func Dial(ctx context.Context, address, namespace string, logger *slog.Logger, options ...Option) (client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	opts := client.Options{
		HostPort:  address,
		Namespace: namespace,
		Logger:    sdklog.NewStructuredLogger(logger.With("component", "temporal-client")),
		ConnectionOptions: client.ConnectionOptions{DialOptions: []grpc.DialOption{
			// The SDK retries a lost connection with a backoff of up to
			// 10 s; a frontend that restarts is used again within a second
			// of answering (reconnect attempts are cheap).
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
				MinConnectTimeout: 5 * time.Second,
			}),
		}},
	}
	for _, o := range options {
		o(&opts)
	}
	for {
		c, err := client.DialContext(ctx, opts)
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("dial temporal at %s: %w", address, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Option changes the options Dial gives the client.
type Option func(*client.Options)

// WithMetrics has the client, and every worker built on it, report the
// SDK's metrics (temporal_*) to h, such as a metrics.Registry's
// TemporalSDK handler.
func WithMetrics(h client.MetricsHandler) Option {
	return func(o *client.Options) { o.MetricsHandler = h }
}

// WithDataConverter has the client, and every worker built on it, convert
// every payload with dc (Vigil's is payloadcodec's, which encrypts them);
// nil keeps the SDK's default. Failures are converted with it too, their
// messages and stack traces encoded (they can quote patient data).
func WithDataConverter(dc converter.DataConverter) Option {
	return func(o *client.Options) {
		o.DataConverter = dc
		o.FailureConverter = FailureConverter(dc)
	}
}

// FailureConverter is the failure converter that goes with dc: a failure's
// details go through dc, and its message and stack trace are encoded
// with it too (Temporal's encoded attributes). Nil for a nil dc (the SDK's
// default).
func FailureConverter(dc converter.DataConverter) converter.FailureConverter {
	if dc == nil {
		return nil
	}
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          dc,
		EncodeCommonAttributes: true,
	})
}

// EnsureSearchAttributes adds the keys that the namespace does not have yet.
// It is idempotent: existing attributes of the same name are left alone, and
// one of another type is reported as an error.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string, keys []temporal.SearchAttributeKey) error {
	existing, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for _, k := range keys {
		if t, ok := existing.GetCustomAttributes()[k.GetName()]; ok {
			if t != k.GetValueType() {
				return fmt.Errorf("search attribute %s exists with type %s, want %s", k.GetName(), t, k.GetValueType())
			}
			continue
		}
		missing[k.GetName()] = k.GetValueType()
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        namespace,
		SearchAttributes: missing,
	}); err != nil {
		return fmt.Errorf("add search attributes: %w", err)
	}
	return nil
}
