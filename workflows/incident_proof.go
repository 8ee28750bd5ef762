package workflows

import (
	"errors"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/workflow"

	"github.com/vigil-health/vigil/internal/actionproof"
)

// transitionUpdates are the incident updates that act as a staff member or
// a source, and so must carry the API's proof.
var transitionUpdates = map[string]bool{
	IncidentUpdateAcknowledge: true, IncidentUpdateClaim: true, IncidentUpdateStart: true,
	IncidentUpdateResolve: true, IncidentUpdateReassign: true, IncidentUpdateNote: true,
}

// RefusedWithoutProof is the start of the reason an unproven transition is
// refused with; the rest points operators to their signals.
const RefusedWithoutProof = "staff actions reach an incident only through Vigil's API"

// TransitionProofInterceptor makes the worker refuse every staff transition
// (an incident Update naming a staff member or source) that does not carry
// a valid proof from Vigil's API (TransitionUpdate), before the update's
// own validator runs: an Update sent from the Temporal Web UI or CLI cannot
// act as a nurse. keys nil refuses every transition. Validators do not run
// on replay, so recorded histories replay unchanged.
func TransitionProofInterceptor(keys *actionproof.Keyring) interceptor.WorkerInterceptor {
	return &proofWorkerInterceptor{keys: keys}
}

type proofWorkerInterceptor struct {
	interceptor.WorkerInterceptorBase
	keys *actionproof.Keyring
}

func (p *proofWorkerInterceptor) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	i := &proofInboundInterceptor{keys: p.keys}
	i.Next = next
	return i
}

type proofInboundInterceptor struct {
	interceptor.WorkflowInboundInterceptorBase
	keys *actionproof.Keyring
}

func (p *proofInboundInterceptor) ValidateUpdate(ctx workflow.Context, in *interceptor.UpdateInput) error {
	if transitionUpdates[in.Name] && workflow.GetInfo(ctx).WorkflowType.Name == "Incident" {
		if err := p.verify(ctx, in); err != nil {
			return forbidden(RefusedWithoutProof + " (" + err.Error() + "); an operator acknowledges, resolves or adds a note " +
				"with the signals acknowledge, resolve and note, payload {\"operator\": \"<name>\", \"notes\": \"...\"}")
		}
	}
	return p.Next.ValidateUpdate(ctx, in)
}

func (p *proofInboundInterceptor) verify(ctx workflow.Context, in *interceptor.UpdateInput) error {
	if p.keys == nil {
		return errors.New("this worker has no action proof key")
	}
	if len(in.Args) != 1 {
		return errors.New("no request")
	}
	req, ok := in.Args[0].(*TransitionRequest)
	if !ok || req == nil {
		return errors.New("no request")
	}
	if req.Proof == "" {
		return errors.New("the update carries no proof")
	}
	info := workflow.GetCurrentUpdateInfo(ctx)
	if info == nil {
		return errors.New("no update id")
	}
	msg := TransitionProofMessage(workflow.GetInfo(ctx).WorkflowExecution.ID, in.Name, info.ID, req)
	if err := p.keys.Verify(msg, req.Proof); err != nil {
		return err
	}
	if age := workflow.Now(ctx).Sub(req.IssuedAt); age > TransitionProofMaxAge || age < -TransitionProofMaxAge {
		return errors.New("the proof has expired")
	}
	return nil
}
