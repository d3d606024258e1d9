// Command tcpstate is the command line of tcpstate, a TCP/IP stack whose
// connection state machine you can watch.
//
//	tcpstate demo --list            name the scenarios
//	tcpstate demo                   run every scenario, in order
//	tcpstate demo close fin-ack     run some of them
//	tcpstate demo close --format json
//	tcpstate sim --bytes 10MB --loss 5% --delay 20ms
//	                                run one transfer in the simulator
//	tcpstate serve --tun tun0 --addr 10.9.0.2/24 --port 80 --app http
//	                                serve over a TUN device
//	tcpstate dial --tun tun0 --addr 10.9.0.2/24 --to 10.9.0.1:80
//	                                netcat over a TUN device
//
// The demo plays the article's walk through the TCP state diagram in a
// deterministic simulator and draws each scenario as a ladder diagram, or
// prints its events as JSON lines. sim runs one transfer over a simulated
// link with the impairments asked for, and says what happened. Neither
// needs privileges or a network.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line args, writing to stdout and stderr, and
// returns the process's exit code. Errors are one line on stderr.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(stderr, "tcpstate:", err)
		var e *exitError
		if errors.As(err, &e) {
			return e.code
		}
		return 1
	}
	return 0
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "tcpstate",
		Short: "A TCP/IP stack whose connection state machine you can watch",
		Long: "tcpstate is a userspace TCP/IP stack (RFC 9293) whose every state change,\n" +
			"segment and timer is observable. Its demo plays the classic scenarios of the\n" +
			"TCP state diagram and draws them as ladder diagrams; its sim runs one transfer\n" +
			"over an impaired simulated link and says what happened.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(newDemoCmd())
	root.AddCommand(newSimCmd())
	root.AddCommand(newServeCmd())
	root.AddCommand(newDialCmd())
	root.AddCommand(newLadderCmd())
	root.AddCommand(newDiagramCmd())
	root.AddCommand(newConnsCmd())
	root.AddCommand(newStatsCmd())
	root.AddCommand(newTrackCmd())
	return root
}
