// Command healthcheck is the container image's HEALTHCHECK: it asks a
// balance-l4 admin server's /healthz and exits 0 when the answer is 200, 1
// otherwise. The runtime image has no shell, curl or wget, so it is built
// beside balance-l4 and copied in.
//
//	healthcheck [URL]    default http://127.0.0.1:9090/healthz
//
// /healthz needs no token. An https:// URL is asked without verifying the
// certificate: the check is whether the process in this container answers
// on loopback, whose address the certificate does not name.
package main

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	url := "http://127.0.0.1:9090/healthz"
	if len(os.Args) > 1 {
		url = os.Args[1]
	}
	client := &http.Client{
		Timeout:   3 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, // no proxy either
	}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(1)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(os.Stderr, "healthcheck: %s answered %s\n", url, resp.Status)
		os.Exit(1)
	}
}
