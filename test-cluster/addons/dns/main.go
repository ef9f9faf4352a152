// harness-dns is the test cluster's stand-in for CoreDNS, which Debian does
// not package. kubeadm deploys it under CoreDNS's image name and arguments;
// it answers what the project's tests need and nothing more:
//
//   - A records for <service>.<namespace>.svc.<domain> (the ClusterIP, or
//     the ready endpoint addresses of a headless Service) and for
//     <hostname>.<service>.<namespace>.svc.<domain> (StatefulSet pods);
//   - NXDOMAIN for any other name in the cluster domain, and an empty
//     answer for other record types of a name that exists (so resolvers do
//     not wait for AAAA);
//   - everything else is forwarded to the node's resolvers.
//
// It serves UDP and TCP on :53, liveness on :8080/health and readiness on
// :8181/ready (once its Service and Endpoints caches have synced), as
// kubeadm's CoreDNS Deployment probes them. It has no SRV, PTR or pod
// records, no caching of forwarded answers and no metrics.
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
)

const ttl = 5

type resolver struct {
	domain    string // "cluster.local."
	services  listers.ServiceLister
	endpoints listers.EndpointsLister
	upstream  []string
	client    *dns.Client
}

// lookup returns the addresses of a cluster name, and whether it exists.
func (r *resolver) lookup(name string) ([]net.IP, bool) {
	rest := strings.TrimSuffix(name, "svc."+r.domain)
	if rest == name {
		return nil, false
	}
	labels := strings.Split(strings.TrimSuffix(rest, "."), ".")
	var host string
	switch len(labels) {
	case 2:
	case 3:
		host, labels = labels[0], labels[1:]
	default:
		return nil, false
	}
	svc, err := r.services.Services(labels[1]).Get(labels[0])
	if err != nil {
		return nil, false
	}
	headless := svc.Spec.ClusterIP == corev1.ClusterIPNone || svc.Spec.ClusterIP == ""
	if host == "" && !headless {
		return []net.IP{net.ParseIP(svc.Spec.ClusterIP)}, true
	}
	eps, err := r.endpoints.Endpoints(svc.Namespace).Get(svc.Name)
	if errors.IsNotFound(err) {
		return nil, host == ""
	}
	if err != nil {
		return nil, false
	}
	var ips []net.IP
	for _, subset := range eps.Subsets {
		for _, a := range subset.Addresses {
			if host == "" || a.Hostname == host {
				ips = append(ips, net.ParseIP(a.IP))
			}
		}
	}
	return ips, host == "" || len(ips) > 0
}

func (r *resolver) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		reply := new(dns.Msg)
		reply.SetRcode(req, dns.RcodeFormatError)
		_ = w.WriteMsg(reply)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	if !dns.IsSubDomain(r.domain, name) {
		r.forward(w, req)
		return
	}
	reply := new(dns.Msg)
	reply.SetReply(req)
	reply.Authoritative = true
	ips, found := r.lookup(name)
	if !found {
		reply.SetRcode(req, dns.RcodeNameError)
	} else if q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY {
		for _, ip := range ips {
			if v4 := ip.To4(); v4 != nil {
				reply.Answer = append(reply.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl},
					A:   v4,
				})
			}
		}
	}
	_ = w.WriteMsg(reply)
}

func (r *resolver) forward(w dns.ResponseWriter, req *dns.Msg) {
	for _, server := range r.upstream {
		answer, _, err := r.client.Exchange(req, server)
		if err == nil {
			_ = w.WriteMsg(answer)
			return
		}
		log.Printf("forwarding %s to %s: %v", req.Question[0].Name, server, err)
	}
	reply := new(dns.Msg)
	reply.SetRcode(req, dns.RcodeServerFailure)
	_ = w.WriteMsg(reply)
}

func main() {
	// kubeadm passes CoreDNS's "-conf /etc/coredns/Corefile": accepted, unused.
	flag.String("conf", "", "ignored (CoreDNS's Corefile)")
	domain := flag.String("domain", "cluster.local", "the cluster domain")
	flag.Parse()

	config, err := rest.InClusterConfig()
	if err != nil {
		log.Fatalf("in-cluster config: %v", err)
	}
	clientset := kubernetes.NewForConfigOrDie(config)
	factory := informers.NewSharedInformerFactory(clientset, 10*time.Minute)
	services := factory.Core().V1().Services()
	endpoints := factory.Core().V1().Endpoints()
	r := &resolver{
		domain:    dns.Fqdn(*domain),
		services:  services.Lister(),
		endpoints: endpoints.Lister(),
		client:    &dns.Client{Timeout: 2 * time.Second},
	}
	if conf, err := dns.ClientConfigFromFile("/etc/resolv.conf"); err == nil {
		for _, s := range conf.Servers {
			r.upstream = append(r.upstream, net.JoinHostPort(s, conf.Port))
		}
	}
	log.Printf("serving %s; forwarding the rest to %v", r.domain, r.upstream)

	var ready atomic.Value
	ready.Store(false)
	stop := make(chan struct{})
	services.Informer()
	endpoints.Informer()
	factory.Start(stop)
	go func() {
		for typ, ok := range factory.WaitForCacheSync(stop) {
			if !ok {
				log.Fatalf("cache of %v did not sync", typ)
			}
		}
		ready.Store(true)
		log.Printf("caches synced: ready")
	}()

	health := http.NewServeMux()
	health.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("OK")) })
	go func() { log.Fatal(http.ListenAndServe(":8080", health)) }()
	readiness := http.NewServeMux()
	readiness.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		if ready.Load().(bool) {
			_, _ = w.Write([]byte("OK"))
			return
		}
		http.Error(w, "caches not synced", http.StatusServiceUnavailable)
	})
	go func() { log.Fatal(http.ListenAndServe(":8181", readiness)) }()

	for _, network := range []string{"udp", "tcp"} {
		go func(s *dns.Server) { log.Fatal(s.ListenAndServe()) }(&dns.Server{Addr: ":53", Net: network, Handler: r})
	}
	select {}
}
