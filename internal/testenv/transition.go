package testenv

import (
	"github.com/vigil-health/vigil/internal/actionproof"
)

// TransitionKeys are the keys that tests' API and worker share to sign and
// verify staff transitions (workflows.TransitionUpdate).
var TransitionKeys = func() *actionproof.Keyring {
	k, err := actionproof.New([]byte("vigil test transition proof key, 32+ bytes"))
	if err != nil {
		panic(err)
	}
	return k
}()
