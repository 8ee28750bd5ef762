package demo

import (
	"context"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/vigil-health/vigil/internal/node"
	"github.com/vigil-health/vigil/internal/node/brokersim"
)

// SeedNodes gives the demo broker fleet names and contacts, so node e-mails
// have somewhere to go: each node gets settings (kept when an operator has
// already stored some), an emergency-department main contact and an IT
// contact at example.org.
func SeedNodes(ctx context.Context, db *sqlx.DB, fleet []brokersim.NodeSpec) error {
	store := &node.Store{DB: db}
	interfaces := []string{"CDA", "FHIR", "P21"}
	for i, n := range fleet {
		if _, err := store.GetSettings(ctx, n.ID); errors.Is(err, node.ErrNotFound) {
			s := node.Defaults(n.ID)
			s.CommonName = fmt.Sprintf("[%s] %s", n.ID, n.Name)
			s.LongName = n.Name
			s.ImportInterface = interfaces[i%len(interfaces)]
			s.Labels = []string{"demo", n.Behaviour.String()}
			if i%4 == 3 {
				s.MailLanguage = "en"
			}
			if _, _, err := store.PutSettings(ctx, s); err != nil {
				return fmt.Errorf("demo node %s settings: %w", n.ID, err)
			}
		} else if err != nil {
			return fmt.Errorf("demo node %s settings: %w", n.ID, err)
		}
		for _, c := range []node.Contact{
			{NodeID: n.ID, Role: "ED", FirstName: "Notaufnahme", LastName: n.Name, Email: fmt.Sprintf("notaufnahme@node%s.example.org", n.ID), MainContact: true},
			{NodeID: n.ID, Role: "IT", FirstName: "IT", LastName: n.Name, Email: fmt.Sprintf("it@node%s.example.org", n.ID)},
		} {
			if _, err := store.CreateContact(ctx, c); err != nil && !errors.Is(err, node.ErrDuplicate) {
				return fmt.Errorf("demo node %s contact: %w", n.ID, err)
			}
		}
	}
	return nil
}
