package integration

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// securityFinding is one subtest of TestSecurity: a finding of the site's threat model
// (docs/security.md) tried as an attacker would, against real servers.
type securityFinding struct {
	name string
	run  func(t *testing.T)
}

// securityFindings is the bad-input suite: one entry per finding, numbered as in
// docs/security.md. Each finding starts the sites it needs, so findings run in parallel.
var securityFindings = []securityFinding{
	{"1-RaftPort", testRaftPortUnauthenticated},
	{"2-JoinBruteForce", testJoinBruteForce},
	{"3-ForgedSummary", testForgedSummary},
	{"3-SecondPoller", testSecondPoller},
	{"3-Rotate", testRotate},
	{"4-SlowConnections", testSlowConnections},
	{"5-Memory", testMemoryBounded},
	{"6-ImportSources", testImportSources},
	{"7-BadBodies", testBadBodies},
	{"8-DataDir", testDataDir},
	{"8-PermanentJoinError", testPermanentJoinError},
}

// TestSecurity runs every finding of the threat model as a parallel subtest.
func TestSecurity(t *testing.T) {
	requireBinary(t)
	for _, f := range securityFindings {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			f.run(t)
		})
	}
}

// vmHWM reads the peak resident set size of a running server in bytes (Linux only; 0 elsewhere).
func vmHWM(t *testing.T, p *proc) int64 {
	t.Helper()
	if p.cur == nil || p.cur.cmd.Process == nil {
		t.Fatalf("%s: not running", p.name)
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cur.cmd.Process.Pid))
	if err != nil {
		return 0 // not Linux: memory checks are skipped
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s: parse VmHWM %q: %v", p.name, rest, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("%s: no VmHWM in /proc status", p.name)
	return 0
}

// maxHWMGrowth is the most a server's peak RSS may grow while it refuses one attack.
const maxHWMGrowth = 256 << 20

// checkHWMGrowth fails when p's peak RSS grew by maxHWMGrowth or more since before.
func checkHWMGrowth(t *testing.T, p *proc, what string, before int64) {
	t.Helper()
	after := vmHWM(t, p)
	if before == 0 || after == 0 {
		return
	}
	grew := after - before
	t.Logf("%s: VmHWM %d MiB -> %d MiB (+%d MiB)", what, before>>20, after>>20, grew>>20)
	if grew >= maxHWMGrowth {
		t.Errorf("%s: VmHWM grew by %d MiB, limit %d MiB", what, grew>>20, maxHWMGrowth>>20)
	}
}

// requireDigestUnchanged fails when the site's digest moved since before.
func requireDigestUnchanged(t *testing.T, p *proc, what string, before digestResp) {
	t.Helper()
	after := getDigest(t, p.url, p.token)
	if after.Digest != before.Digest {
		t.Errorf("%s: digest changed: %s (index %d) -> %s (index %d)", what, before.Digest, before.Index, after.Digest, after.Index)
	}
}
