package conformance

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// dnsZone is a DNS server on loopback answering TXT queries from records
// a test sets, as a domain's DNS host would.
type dnsZone struct {
	addr string
	mu   sync.Mutex
	txt  map[string][]string // fully qualified name → values
}

func startDNS(t *testing.T) *dnsZone {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z := &dnsZone{addr: pc.LocalAddr().String(), txt: map[string][]string{}}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		z.mu.Lock()
		for _, q := range req.Question {
			values, ok := z.txt[strings.ToLower(q.Name)]
			if !ok {
				m.Rcode = dns.RcodeNameError
				continue
			}
			if q.Qtype == dns.TypeTXT {
				for _, v := range values {
					m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 0}, Txt: []string{v}})
				}
			}
		}
		z.mu.Unlock()
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return z
}

// set publishes the TXT values of name (none: the name does not exist).
func (z *dnsZone) set(name string, values ...string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if len(values) == 0 {
		delete(z.txt, dns.Fqdn(strings.ToLower(name)))
		return
	}
	z.txt[dns.Fqdn(strings.ToLower(name))] = values
}
