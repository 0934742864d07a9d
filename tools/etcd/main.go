// Command etcd is the etcd server, built from its Go module at the version go.mod
// pins, so the fleet tests run a real cluster without a download.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
