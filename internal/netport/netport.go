// Package netport picks TCP ports for servers that bind them a little later:
// the embedded Temporal server's services, and the processes the tests
// start, stop and start again on the same address.
//
// A port the kernel hands out for "port 0" lies in its ephemeral range, and
// the kernel hands it out again, to any process's next "port 0" listener or
// outgoing connection, as soon as it is closed. A port picked that way and
// bound later (or bound again after a restart) is lost whenever another
// process gets it in between: parallel test packages start many listeners on
// port 0. Free therefore picks below the ephemeral range, where only a
// program that names the port can take it.
package netport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// lowest is the first port Free considers; the ports below it are left to
// the services that are configured with fixed ports (Postgres, Temporal's
// 7233, the 8xxx HTTP ports).
const lowest = 15000

// attempts is how many random ports Free tries before it falls back to the
// kernel's choice.
const attempts = 64

// rangeFile names the kernel's ephemeral range (Linux).
const rangeFile = "/proc/sys/net/ipv4/ip_local_port_range"

// Free returns a TCP port on ip that is free now. It prefers a port below
// the kernel's ephemeral range; when it finds none there (or the range is
// unknown and leaves no room), it returns a port the kernel picks.
func Free(ip string) (int, error) {
	if high := ephemeralStart(); high > lowest+attempts {
		for range attempts {
			port := lowest + rand.IntN(high-lowest)
			if l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port))); err == nil {
				_ = l.Close()
				return port, nil
			}
		}
	}
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a free port on %s: %w", ip, err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Distinct returns n different ports on ip, each free now.
func Distinct(ip string, n int) ([]int, error) {
	seen := make(map[int]bool, n)
	ports := make([]int, 0, n)
	for len(ports) < n {
		p, err := Free(ip)
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// ephemeralStart is the first port of the kernel's ephemeral range, or 32768
// (Linux's default) when it cannot be read.
func ephemeralStart() int {
	b, err := os.ReadFile(rangeFile)
	if err != nil {
		return 32768
	}
	return parseRangeStart(string(b))
}

// parseRangeStart reads the first number of "32768\t60999\n"; 32768 when
// there is none.
func parseRangeStart(s string) int {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil || n <= 0 {
		return 32768
	}
	return n
}
