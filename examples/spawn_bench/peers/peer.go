// The Go peer of spawn_bench: runs one workload through os/exec in a loop and writes its
// own timings, so that the Go runtime's start-up is not counted.
//
// usage: peer RESULT_FILE status|output COUNT WARMUP PROGRAM [ARGS..]
//
// status: exec.Command(PROGRAM, ARGS..).Run() (stdio on /dev/null, Go's default);
// output: exec.Command(PROGRAM, ARGS..).Output() (stdout captured; stderr captured too,
// for the error, as Go does when Stderr is nil). WARMUP untimed spawns first, then COUNT
// timed ones. RESULT_FILE gets one line of space-separated fields:
//
//	forkexec-peer version V status S bytes B wall_ns W cpu_ns C samples N1 N2 ..
//
// S: the raw wait status of the last child; B: bytes captured over the timed spawns;
// W: wall time of the timed loop; C: this process's CPU time (getrusage(RUSAGE_SELF),
// user + system, all threads) over the timed loop; Ni: each timed spawn + wait in ns.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "go peer: "+format+"\n", a...)
	os.Exit(1)
}

func number(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		fail("not a count: %q", s)
	}
	return n
}

func cpuNs() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fail("getrusage: %v", err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func main() {
	if len(os.Args) < 6 {
		fail("usage: peer RESULT_FILE status|output COUNT WARMUP PROGRAM [ARGS..]")
	}
	result, mode := os.Args[1], os.Args[2]
	count, warmup := number(os.Args[3]), number(os.Args[4])
	program, args := os.Args[5], os.Args[6:]
	if mode != "status" && mode != "output" {
		fail("unknown mode %q", mode)
	}

	// One spawn + wait: the raw wait status and the bytes captured. A child that exits
	// non-zero is a result, not an error.
	one := func() (uint32, int) {
		c := exec.Command(program, args...)
		var out []byte
		var err error
		if mode == "output" {
			out, err = c.Output()
		} else {
			err = c.Run()
		}
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			fail("%v", err)
		}
		return uint32(c.ProcessState.Sys().(syscall.WaitStatus)), len(out)
	}

	var status uint32
	for i := 0; i < warmup; i++ {
		status, _ = one()
	}
	samples := make([]int64, count)
	bytes := 0
	cpu0 := cpuNs()
	start := time.Now()
	for i := range samples {
		t := time.Now()
		s, n := one()
		samples[i] = int64(time.Since(t))
		status = s
		bytes += n
	}
	wall := time.Since(start)
	cpu := cpuNs() - cpu0

	f, err := os.Create(result)
	if err != nil {
		fail("%v", err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "forkexec-peer version %s status %d bytes %d wall_ns %d cpu_ns %d samples",
		runtime.Version(), status, bytes, wall.Nanoseconds(), cpu)
	for _, s := range samples {
		fmt.Fprintf(w, " %d", s)
	}
	fmt.Fprintln(w)
	if err := w.Flush(); err != nil {
		fail("%v", err)
	}
	if err := f.Close(); err != nil {
		fail("%v", err)
	}
}
