// Package workflows holds Vigil's Temporal workflows and, beside each one,
// its public contract: workflow-ID builders, message names and the input and
// output structs the API uses to start and talk to it.
//
// Everything here is workflow code and must be deterministic: time comes from
// workflow.Now, waiting from workflow timers, randomness from SideEffect, and
// maps are iterated through workflow.DeterministicKeys. No I/O happens here;
// activities (package activities) do it. `make test` runs workflowcheck over
// this package.
package workflows
