// Package parentwatch ends the process when the process that started it is gone, so a
// test run that is killed (even with SIGKILL) leaves no etcd or kube-apiserver behind.
package parentwatch

import (
	"os"
	"strconv"
	"syscall"
	"time"
)

// Start watches the pid named by HELM_LOCK_TEST_PARENT_PID. PR_SET_PDEATHSIG is not used:
// it fires when the parent *thread* exits, and Deno spawns children from worker threads
// that come and go.
func Start() {
	pid, err := strconv.Atoi(os.Getenv("HELM_LOCK_TEST_PARENT_PID"))
	if err != nil || pid <= 1 {
		return
	}
	go func() {
		for {
			if os.Getppid() != pid {
				_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
				time.Sleep(5 * time.Second)
				os.Exit(1)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}()
}
