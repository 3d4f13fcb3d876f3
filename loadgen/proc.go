package loadgen

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// userHZ is the clock tick of /proc/<pid>/stat utime and stime: USER_HZ, 100 on Linux.
const userHZ = 100

func procPath(pid int, file string) string {
	if pid == 0 {
		return "/proc/self/" + file
	}
	return "/proc/" + strconv.Itoa(pid) + "/" + file
}

// procCPU returns the user+system CPU seconds of process pid (0: this process) from
// /proc/<pid>/stat, with a 1/USER_HZ resolution.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(procPath(pid, "stat"))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces: fields counted
	// after the last ')' start with field 3 (state); utime and stime are fields 14, 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("loadgen: unexpected %s", procPath(pid, "stat"))
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("loadgen: short %s", procPath(pid, "stat"))
	}
	ut, err1 := strconv.ParseUint(string(f[11]), 10, 64)
	st, err2 := strconv.ParseUint(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("loadgen: bad utime/stime in %s", procPath(pid, "stat"))
	}
	return float64(ut+st) / userHZ, nil
}

// procRSS returns VmRSS of process pid (0: this process) in bytes, from /proc/<pid>/status.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(procPath(pid, "status"))
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(rest)
			if len(f) < 1 {
				break
			}
			kb, err := strconv.ParseInt(string(f[0]), 10, 64)
			if err != nil {
				break
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("loadgen: no VmRSS in %s", procPath(pid, "status"))
}

// procSample is a process's CPU time at one instant.
type procSample struct {
	cpu float64
	err error
}

func sampleCPU(pid int) procSample {
	c, err := procCPU(pid)
	return procSample{c, err}
}

// hostCPU is the aggregate "cpu" line of /proc/stat: busy and total jiffies of all cores.
type hostCPU struct {
	busy, total uint64
	err         error
}

func sampleHost() hostCPU {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return hostCPU{err: err}
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 5 || string(f[0]) != "cpu" {
		return hostCPU{err: fmt.Errorf("loadgen: unexpected /proc/stat")}
	}
	var h hostCPU
	for i, x := range f[1:] {
		v, err := strconv.ParseUint(string(x), 10, 64)
		if err != nil {
			return hostCPU{err: err}
		}
		if i >= 8 { // guest and guest_nice are already counted in user and nice
			break
		}
		h.total += v
		if i != 3 && i != 4 { // idle, iowait
			h.busy += v
		}
	}
	return h
}
