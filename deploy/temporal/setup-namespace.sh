#!/bin/sh
# Creates Vigil's Temporal namespace when it is missing and registers Vigil's
# custom search attributes on it. Runs as the one-shot temporal-namespace
# service in the temporalio/admin-tools image (busybox sh and the `temporal`
# CLI, which reads the frontend address from TEMPORAL_ADDRESS). Idempotent:
# safe on every `docker compose up`.
#
# Keep SEARCH_ATTRIBUTES (Keyword) and TEXT_SEARCH_ATTRIBUTES (Text) in step
# with workflows/searchattrs.go (deploy/compose_test.go checks it). The vigil
# worker also registers them itself at start when
# VIGIL_REGISTER_SEARCH_ATTRIBUTES=true; both paths are idempotent.
#
# Postgres (SQL) visibility has 10 custom Keyword slots and 3 Text slots per
# namespace; Vigil uses 9 Keyword and 1 Text.
set -eu

: "${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS is required}"
: "${NAMESPACE:=default}"
: "${NAMESPACE_RETENTION:=72h}"
: "${MAX_ATTEMPTS:=60}"
: "${SLEEP_SECONDS:=2}"
export TEMPORAL_ADDRESS

SEARCH_ATTRIBUTES="VigilKind IncidentStatus Severity AlertType AssignedRole WatchID NodeID WatchState NodeStatus IncidentID"
TEXT_SEARCH_ATTRIBUTES="NodeName"

# retry CMD [ARG...] (mounted beside this script).
. "$(dirname "$0")/retry.sh"

ensure_namespace() {
	if temporal operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1; then
		echo "namespace $NAMESPACE exists"
		return 0
	fi
	temporal operator namespace create --namespace "$NAMESPACE" --retention "$NAMESPACE_RETENTION"
}

# Adds every attribute in one call. The CLI fails only when an attribute exists
# with a different type (a real conflict, fatal here); the server skips the
# ones that already exist with the same type. Older CLIs and servers said
# "already exists" instead, which is tolerated.
add_search_attributes() {
	set --
	for name in $SEARCH_ATTRIBUTES; do
		set -- "$@" --name "$name" --type Keyword
	done
	for name in $TEXT_SEARCH_ATTRIBUTES; do
		set -- "$@" --name "$name" --type Text
	done
	if out=$(temporal operator search-attribute create --namespace "$NAMESPACE" "$@" 2>&1); then
		echo "$out"
		return 0
	fi
	echo "$out" >&2
	case $out in
	*"different type"*)
		echo "a Vigil search attribute exists with another type; fix it by hand" >&2
		exit 1
		;;
	*"already exists"*)
		return 0
		;;
	esac
	return 1
}

# has_search_attribute NAME: succeeds when NAME is registered on the namespace.
has_search_attribute() {
	temporal operator search-attribute list --namespace "$NAMESPACE" 2>/dev/null | grep -qw "$1"
}

echo "waiting for the Temporal frontend at $TEMPORAL_ADDRESS"
retry temporal operator cluster health

retry ensure_namespace
retry add_search_attributes
for name in $SEARCH_ATTRIBUTES $TEXT_SEARCH_ATTRIBUTES; do
	retry has_search_attribute "$name"
done

echo "namespace $NAMESPACE is ready with search attributes: $SEARCH_ATTRIBUTES $TEXT_SEARCH_ATTRIBUTES"
