// The Go side of the benchmark's peer rows (BENCHMARKS.md, item 7): COUNT re-exec round
// trips with moby's pkg/reexec, as a Go program that uses it would make them. Its Rust
// twin is bench/src/bin/roundtrips.rs; both take the same arguments.
//
//	roundtrips-go plain COUNT   entries that return at once
//	roundtrips-go ns COUNT      in new user (root mapped), mount, UTS, IPC, PID and net
//	                            namespaces; the entry sets the hostname
package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"

	"github.com/docker/docker/pkg/reexec"
)

func init() {
	reexec.Register("rt-return", func() { os.Exit(0) })
	reexec.Register("rt-hostname", func() {
		if err := syscall.Sethostname([]byte("roundtrip")); err != nil {
			fmt.Fprintln(os.Stderr, "sethostname:", err)
			os.Exit(1)
		}
		os.Exit(0)
	})
	if reexec.Init() {
		os.Exit(0)
	}
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: roundtrips-go plain|ns COUNT")
		os.Exit(2)
	}
	count, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "COUNT:", err)
		os.Exit(2)
	}
	namespaced := os.Args[1] == "ns"
	for i := 0; i < count; i++ {
		name := "rt-return"
		if namespaced {
			name = "rt-hostname"
		}
		cmd := reexec.Command(name)
		if namespaced {
			cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS |
				syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC | syscall.CLONE_NEWPID |
				syscall.CLONE_NEWNET
			cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
			cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		}
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, name, "round trip", i, ":", err)
			os.Exit(1)
		}
	}
}
