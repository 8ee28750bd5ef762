package api

// AwaitClose is awaitClose, for the integration tests of package api_test.
var AwaitClose = awaitClose
