// Package node is broker node monitoring: it owns the node tables
// (broker_nodes, broker_scans, node_observations, node_daily_stats,
// node_import_errors, node_resources, node_resource_changes,
// node_status_history, node_settings, node_contacts, node_mail_log and
// node_mail_recipients) through Store, and holds the contract shared by the
// node workflows and activities (workflow id, signal names, search
// attributes, the observation and evaluation shapes).
//
// The read side (query.go, export.go, query_heatmap.go) is the fleet
// summary, one node's details, the error-rate heatmap matrix and the yearly
// CSV exports (stats, errors, resource changes) that replace the seed's file
// backup. A node is known when the broker has listed it (broker_nodes) or an
// operator gave it settings (node_settings). Its stored status is overlaid
// at read time with GAP IN MONITORING when it has not been checked for
// GapAfter (or never): the workflows cannot report their own silence.
//
// What operators maintain about each node (settings.go, settings_store.go,
// mapping.go): its settings (names, interfaces, root and format ids,
// thresholds, labels, mail language) and its contacts. Settings are edited
// one node at a time or imported in one transaction from the seed's mapping
// JSON (see ParseMapping). A node without settings is monitored with the
// defaults of package nodehealth; Defaults returns them as Settings.
//
// Subpackages: broker (the broker's admin API client) and brokersim (its
// simulator), nodehealth (the health rules), nodemail (the e-mail
// templates), heatmap (the error-rate heatmap renderer).
package node
