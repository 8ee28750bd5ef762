-- +goose Up
-- An alert Vigil cannot parse (issue 11) is still an alert: an integration's
-- batch (Alertmanager) keeps its valid alerts, and each one it cannot read
-- opens an UNPARSEABLE_ALERT incident that pages the failsafe role with the
-- raw labels, so a person sees it.
INSERT INTO alert_types (alert_type, severity, category, description, requires_immediate_response, roles) VALUES
    ('UNPARSEABLE_ALERT', 'HIGH', 'INTEGRATION',
     'An integration sent an alert Vigil could not parse; its raw labels are in the value', true, '{CHARGE_NURSE}')
ON CONFLICT (alert_type) DO NOTHING;

-- +goose Down
DELETE FROM alert_types WHERE alert_type = 'UNPARSEABLE_ALERT'
    AND NOT EXISTS (SELECT 1 FROM incidents WHERE alert_type = 'UNPARSEABLE_ALERT');
