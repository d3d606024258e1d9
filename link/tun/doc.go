// Package tun is a link.Endpoint on a Linux TUN device: the kernel routes
// IP packets to the device, and the stack reads them here; what the stack
// writes here, the kernel receives as if it had come in on the device.
//
// Open attaches to a TUN device by name, or creates it if there is none
// (unless Options.NoCreate is set). A device Open created goes away when
// the Device is closed, unless Options.Persist is set; a device that
// already existed — typically made with `ip tuntap add dev NAME mode tun`
// and configured with `ip addr` and `ip link set NAME up` — is left as it
// was.
//
// The device's file descriptor is non-blocking and handed to the Go
// runtime's poller (os.NewFile), so a blocked ReadPackets parks its
// goroutine rather than a thread, and Close wakes it.
//
// The package is for Linux; elsewhere it is empty.
package tun
