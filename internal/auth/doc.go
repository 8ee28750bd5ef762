// Package auth issues and verifies Vigil's tokens and hashes its secrets.
//
// It provides three building blocks for the HTTP API:
//
//   - Passwords: [HashPassword] stores staff passwords with bcrypt and
//     [CheckPassword] verifies them in roughly constant time, including for
//     unknown users (callers pass an empty hash).
//   - Tokens: a [Signer] issues and verifies JSON Web Tokens carrying
//     [Claims]. Tokens are signed with HS512 by default, or with RS256 when an
//     RSA private key is configured. Verification pins the configured
//     algorithm, so "none" tokens and HMAC/RSA algorithm-confusion tokens are
//     rejected.
//   - API keys: [NewAPIKey] mints keys for alert sources. Only the SHA-256
//     hash ([HashAPIKey]) and the display [APIKey.Prefix] are stored; the
//     plaintext is shown to the operator once.
//
// # Access and refresh tokens
//
// Staff login returns two tokens issued by the same [Signer]: a short-lived
// access token (claim typ=[TokenAccess]) presented on every request, and a
// refresh token (typ=[TokenRefresh]) with a longer TTL that is only accepted
// by the refresh endpoint, where it is exchanged for a new access token.
// [Signer.Verify] requires callers to state the type they expect, so a
// refresh token is never accepted as an access token and vice versa.
//
// Refresh token rotation and revocation are the caller's responsibility:
// every token carries a random, unique ID (the jti claim, [Claims.ID]) that
// the caller can record, rotate on use and deny-list. This package keeps no
// state.
//
// # Errors
//
// All failures wrap exported sentinel errors (for example [ErrTokenExpired],
// [ErrTokenInvalid], [ErrWrongTokenType], [ErrPasswordLength]) that callers
// test with [errors.Is] and map to HTTP status codes. Error messages never
// contain secrets, passwords or tokens.
//
// # Secrets in logs
//
// Types that hold secrets ([Secret], [APIKey], [SignerConfig], [Signer])
// implement [fmt.Stringer], [fmt.GoStringer] and [log/slog.LogValuer] so that
// printing or logging them shows "[redacted]" instead of the secret.
package auth
