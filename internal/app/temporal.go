package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/vigil-health/vigil/internal/config"
	"github.com/vigil-health/vigil/internal/embeddedtemporal"
)

// Temporal runs the embedded Temporal server and its Web UI alone, in the
// spirit of `temporal server start-dev`: the frontend on the port of
// TEMPORAL_ADDRESS, the UI on VIGIL_DEV_UI_PORT, both on VIGIL_DEV_BIND_IP,
// with its SQLite file in VIGIL_DEV_DATA_DIR. `vigil api` and `vigil worker`
// then run beside it as separate processes, as they do in production, so
// each can be stopped, killed and restarted on its own.
func Temporal(ctx context.Context, cfg config.Config, logger *slog.Logger, out io.Writer) error {
	apiBase := apiBaseURL(cfg, cfg.HTTPAddr)
	srv, err := startEmbeddedTemporal(ctx, cfg, apiBase, logger)
	if err != nil {
		return err
	}
	defer func() {
		if err := srv.Stop(); err != nil {
			logger.Warn("temporal server stopped with an error", "err", err)
		}
	}()
	logger.InfoContext(ctx, "embedded temporal server started", "address", srv.FrontendAddress(), "ui", srv.UIURL(), "namespace", srv.Namespace())
	_, _ = fmt.Fprintf(out, `
Temporal server is up.
  Temporal gRPC   %[1]s (namespace %[3]s)
  Temporal Web UI %[2]s/namespaces/%[3]s/workflows
  Data            %[4]s

Run beside it:  vigil worker   and   vigil api   (TEMPORAL_ADDRESS=%[1]s,
the same VIGIL_PAYLOAD_KEYS for both). The Web UI decodes payloads through
%[5]s/codec once an admin has signed in at %[5]s/ui/login.
Press Ctrl-C to stop.

`, srv.FrontendAddress(), srv.UIURL(), srv.Namespace(), cfg.Dev.DataDir, apiBase)
	<-ctx.Done()
	return nil
}

// startEmbeddedTemporal starts the embedded Temporal server and Web UI as
// the dev settings say: the frontend on the port of TEMPORAL_ADDRESS (a free
// one when it is 0), the UI on VIGIL_DEV_UI_PORT, both on VIGIL_DEV_BIND_IP.
// The UI decodes payloads through the codec server of the API at apiBase
// (none when its port is not known: 0).
func startEmbeddedTemporal(ctx context.Context, cfg config.Config, apiBase string, logger *slog.Logger) (*embeddedtemporal.Server, error) {
	logger.InfoContext(ctx, "starting embedded temporal server", "data_dir", cfg.Dev.DataDir)
	codecEndpoint, signIn := "", ""
	if !strings.HasSuffix(apiBase, ":0") {
		codecEndpoint, signIn = apiBase+"/codec", apiBase+"/ui/login"
	}
	return embeddedtemporal.Start(ctx, embeddedtemporal.Options{
		CodecEndpoint:  codecEndpoint,
		CodecSignInURL: signIn,
		DataDir:        cfg.Dev.DataDir,
		IP:             cfg.Dev.BindIP,
		FrontendPort:   cfg.TemporalPort(),
		UIPort:         cfg.Dev.UIPort,
		Namespace:      cfg.TemporalNamespace,
		Logger:         logger,
	})
}
