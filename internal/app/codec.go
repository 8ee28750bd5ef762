package app

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/vigil-health/vigil/internal/actionproof"
	"github.com/vigil-health/vigil/internal/config"
	"github.com/vigil-health/vigil/internal/payloadcodec"
)

// DevPayloadKeyFile is where `vigil dev` keeps its payload key when
// VIGIL_PAYLOAD_KEYS is not set: beside the embedded Temporal server's
// database, whose payloads it encrypts (`make clean` removes both).
func DevPayloadKeyFile(cfg config.Config) string {
	return filepath.Join(cfg.Dev.DataDir, "payload-keys")
}

// PayloadCodec is the codec that encrypts every payload the process sends to
// Temporal, from VIGIL_PAYLOAD_KEYS. Without it, `vigil dev` (dev true) uses
// the key in DevPayloadKeyFile, made on its first start, and `vigil api` and
// `vigil worker` refuse to start: a process that wrote clear payloads, or
// could not read encrypted ones, would be worse than one that stops.
func PayloadCodec(cfg config.Config, dev bool, logger *slog.Logger) (*payloadcodec.Codec, error) {
	keys, err := payloadKeys(cfg, dev, logger)
	if err != nil {
		return nil, err
	}
	c, err := payloadcodec.NewCodec(keys)
	if err != nil {
		return nil, fmt.Errorf("payload codec: %w", err)
	}
	logger.Info("temporal payloads are encrypted", "active_key", c.ActiveKeyID(), "keys", len(keys))
	return c, nil
}

// TransitionKeys sign (API) and verify (worker) the proof that the API
// authorised a staff transition (workflows.TransitionProofInterceptor).
// They are derived from the payload keys, which the API and the worker
// already share, and rotate with them: the first signs, all verify.
func TransitionKeys(cfg config.Config, dev bool, logger *slog.Logger) (*actionproof.Keyring, error) {
	keys, err := payloadKeys(cfg, dev, logger)
	if err != nil {
		return nil, err
	}
	derived := make([][]byte, len(keys))
	for i, k := range keys {
		derived[i] = actionproof.DeriveKey(k.Secret, "incident-transition")
	}
	r, err := actionproof.New(derived[0], derived[1:]...)
	if err != nil {
		return nil, fmt.Errorf("transition proof keys: %w", err)
	}
	return r, nil
}

// payloadKeys are VIGIL_PAYLOAD_KEYS, else (dev) the dev key file.
func payloadKeys(cfg config.Config, dev bool, logger *slog.Logger) ([]payloadcodec.Key, error) {
	var keys []payloadcodec.Key
	switch {
	case cfg.PayloadKeys != "":
		var err error
		if keys, err = payloadcodec.ParseKeys(cfg.PayloadKeys.Reveal()); err != nil {
			return nil, fmt.Errorf("VIGIL_PAYLOAD_KEYS: %w", err)
		}
	case dev:
		path := DevPayloadKeyFile(cfg)
		var created bool
		var err error
		if keys, created, err = payloadcodec.LoadOrCreateKeyFile(path); err != nil {
			return nil, err
		}
		if created {
			logger.Info("no VIGIL_PAYLOAD_KEYS: made a dev payload key; it stays with the Temporal data", "file", path)
		}
	default:
		return nil, errors.New("VIGIL_PAYLOAD_KEYS must be set: id=<base64 of 32 bytes> (openssl rand -base64 32); see the README, Patient data in Temporal")
	}
	return keys, nil
}

// codecHost is the host name the Web UI's pages reach the API's codec
// server by. It must be the host the UI is served from: the browser then
// treats UI and API as one site and sends the console session cookie
// (SameSite=Strict) with the decode requests. A specific API address wins;
// else the dev bind address; else localhost.
func codecHost(cfg config.Config, apiAddr string) string {
	if host, _, err := net.SplitHostPort(apiAddr); err == nil && host != "" {
		if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
			return host
		}
	}
	if ip := net.ParseIP(cfg.Dev.BindIP); ip != nil && !ip.IsUnspecified() {
		return cfg.Dev.BindIP
	}
	return "localhost"
}

// apiBaseURL is the API's base URL as the embedded Web UI's pages reach it,
// for an API listening on apiAddr (a port of 0 is not known yet: use the
// listener's address).
func apiBaseURL(cfg config.Config, apiAddr string) string {
	_, port, _ := net.SplitHostPort(apiAddr)
	return "http://" + net.JoinHostPort(codecHost(cfg, apiAddr), port)
}
