// Package interop holds the interop tests of tcpstate against the Linux
// kernel: the tcpstate binary serves and dials over TUN devices inside
// throwaway network namespaces, and the kernel's own TCP — curl, ping, Go
// sockets made inside the namespace — is the peer.
//
// The tests need root and the ip command; they skip with the reason
// elsewhere, and fail instead when the environment variable CI is "true".
// They also use curl, ping and iptables (Debian packages curl,
// iputils-ping and iptables):
//
//	sudo go test ./interop
//	sudo CI=true go test -v ./interop
//
// There is no library code here, only tests.
package interop
