// Package netns makes throwaway Linux network namespaces for tests that
// need a real kernel peer: a TUN device, `ip` configuration, a kernel
// socket, ping or curl, all out of sight of the host's own network.
//
// A test usually starts with ForTest, which creates a namespace, deletes
// it when the test ends, and skips the test with a clear message where
// namespaces cannot be made (not root, no `ip`) — or fails it when the
// environment variable CI is "true", so that CI never passes by skipping:
//
//	ns := netns.ForTest(t)
//	ns.MustRun(t, "ip", "tuntap", "add", "dev", "tun0", "mode", "tun")
//	ns.MustRun(t, "ip", "addr", "add", "10.9.0.1/24", "dev", "tun0")
//	ns.MustRun(t, "ip", "link", "set", "tun0", "up")
//
// There are two ways to act inside a namespace:
//
//   - A command: Command and Run run a program under `ip netns exec`,
//     which also gives it the namespace's view of /sys and
//     /etc/netns/NAME. Use it for ip, ping, curl, tc, ss, or the tcpstate
//     binary itself.
//   - Go code: Do runs a function on an OS thread switched into the
//     namespace. A network namespace belongs to a thread, not to a
//     process, and what a thread creates keeps the namespace it was made
//     in: a socket opened, or a TUN device created, inside Do stays in the
//     namespace and can then be used from any goroutine. Goroutines that
//     the function starts run on other threads, in the test's own
//     namespace — create what you need inside Do, use it outside.
//
// Namespaces are named "tcpstate-PID-N". New deletes those left behind
// by earlier test processes that died before cleaning up.
//
// The package is for Linux; elsewhere it is empty.
package netns
