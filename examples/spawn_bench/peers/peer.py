"""The CPython peer of spawn_bench: runs one workload through subprocess in a loop and
writes its own timings, so that the interpreter's start-up is not counted.

usage: peer.py RESULT_FILE status|output COUNT WARMUP PROGRAM [ARGS..]

status: subprocess.run([PROGRAM, ARGS..]) (stdio inherited, CPython's default);
output: subprocess.run([PROGRAM, ARGS..], capture_output=True) (stdout and stderr
captured). WARMUP untimed spawns first, then COUNT timed ones. RESULT_FILE gets one line
of space-separated fields:

    forkexec-peer version V status S bytes B wall_ns W cpu_ns C samples N1 N2 ..

S: the raw wait status of the last child; B: bytes captured over the timed spawns;
W: wall time of the timed loop; C: this process's CPU time (getrusage(RUSAGE_SELF),
user + system) over the timed loop; Ni: each timed spawn + wait in ns.
"""

import platform
import resource
import subprocess
import sys
import time


def cpu_ns():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return round((r.ru_utime + r.ru_stime) * 1e9)


def main():
    if len(sys.argv) < 6:
        sys.exit("usage: peer.py RESULT_FILE status|output COUNT WARMUP PROGRAM [ARGS..]")
    result, mode = sys.argv[1], sys.argv[2]
    count, warmup = int(sys.argv[3]), int(sys.argv[4])
    argv = sys.argv[5:]
    if mode == "output":
        def one():
            r = subprocess.run(argv, capture_output=True)
            return r.returncode, len(r.stdout)
    elif mode == "status":
        def one():
            return subprocess.run(argv).returncode, 0
    else:
        sys.exit(f"unknown mode {mode!r}")

    code = 0
    for _ in range(warmup):
        code, _ = one()
    clock = time.perf_counter_ns
    samples = [0] * count
    total = 0
    cpu0 = cpu_ns()
    start = clock()
    for i in range(count):
        t = clock()
        code, n = one()
        samples[i] = clock() - t
        total += n
    wall = clock() - start
    cpu = cpu_ns() - cpu0

    # returncode is the exit code, or minus the signal: back to a raw wait status.
    status = code << 8 if code >= 0 else -code
    with open(result, "w") as f:
        f.write(f"forkexec-peer version {platform.python_version()} status {status} "
                f"bytes {total} wall_ns {wall} cpu_ns {cpu} samples")
        f.write("".join(f" {s}" for s in samples))
        f.write("\n")


main()
