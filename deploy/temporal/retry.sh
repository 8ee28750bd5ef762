# Sourced by setup-schema.sh and setup-namespace.sh (busybox sh). The caller
# sets MAX_ATTEMPTS and SLEEP_SECONDS.

# retry CMD [ARG...]: runs CMD until it succeeds, at most MAX_ATTEMPTS times.
retry() {
	attempt=1
	until "$@"; do
		if [ "$attempt" -ge "$MAX_ATTEMPTS" ]; then
			echo "giving up after $attempt attempts: $*" >&2
			return 1
		fi
		echo "not yet ($attempt/$MAX_ATTEMPTS): $*" >&2
		attempt=$((attempt + 1))
		sleep "$SLEEP_SECONDS"
	done
}
