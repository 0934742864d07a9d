package sni

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// FuzzServerName feeds ServerName arbitrary bytes (seeded, in
// testdata/fuzz/FuzzServerName, with real ClientHellos from crypto/tls and
// OpenSSL, whole, fragmented and broken). Beyond not panicking it checks:
//   - a name it returns is a valid host name;
//   - a prefix of the input is ErrIncomplete, or judged as the whole input
//     is (what arrives later cannot change a verdict already given);
//   - a parsed ClientHello re-fragmented into records of any size gives the
//     same name.
func FuzzServerName(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, cut uint16, size uint8) {
		name, err := ServerName(data)
		if err == nil && name != "" && !validHostName([]byte(name)) {
			t.Fatalf("returned an invalid name %q", name)
		}
		if len(data) > 0 {
			k := int(cut) % len(data)
			pname, perr := ServerName(data[:k])
			if perr != ErrIncomplete && (perr != err || pname != name) {
				t.Fatalf("prefix of %d/%d bytes: %q, %v; whole: %q, %v", k, len(data), pname, perr, name, err)
			}
		}
		if err != nil {
			return
		}
		msg, merr := clientHello(data)
		if merr != nil {
			t.Fatalf("ServerName succeeded but clientHello says %v", merr)
		}
		frag := recordsOf(msg, 1+int(size))
		if fname, ferr := ServerName(frag); ferr != nil || fname != name {
			t.Fatalf("in records of %d bytes: %q, %v; want %q", 1+int(size), fname, ferr, name)
		}
	})
}

// TestWriteFuzzSeeds rewrites the seed corpus from crypto/tls when
// SNI_WRITE_SEEDS=1 (the OpenSSL seeds were captured with openssl s_client
// once and are kept as they are).
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("SNI_WRITE_SEEDS") != "1" {
		t.Skip("set SNI_WRITE_SEEDS=1 to rewrite the crypto/tls seeds")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzServerName")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte, cut uint16, size uint8) {
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(data)) + ")\nuint16(" +
			strconv.Itoa(int(cut)) + ")\nuint8(" + strconv.Itoa(int(size)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tls13 := captureHello(t, &tls.Config{ServerName: "db.example.com"})
	tls12 := captureHello(t, &tls.Config{ServerName: "old.example.com", MaxVersion: tls.VersionTLS12})
	noName := captureHello(t, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	write("tls13", tls13, 100, 255)
	write("tls12", tls12, 7, 0)
	write("no-name", noName, 5, 16)
	write("tls13-fragmented", recordsOf(message(t, tls13), 3), 50, 1)
	write("hand-built-two-names", recordsOf(hello(sniExt(0, "a.test", 0, "b.test")), 100), 3, 9)
	write("hand-built-no-extensions", recordsOf(hello(), 100), 1, 2)
	write("too-large", []byte{contentHandshake, 3, 1, 0x40, 0, typeClientHello, 0, 0x4e, 0x20}, 4, 0)
	write("http", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 3, 0)
}
