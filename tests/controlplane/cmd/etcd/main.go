// Command etcd is the upstream etcd server, built from the Go module proxy for
// helm-lock's end-to-end tests.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"

	"helm-lock.test/controlplane/internal/parentwatch"
)

func main() {
	parentwatch.Start()
	etcdmain.Main(os.Args)
}
